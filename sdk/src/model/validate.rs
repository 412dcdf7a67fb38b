//! Whole-model validation: every index in range, ops in dataflow order (each tensor
//! written once, read only after it exists), operand dtypes, shapes, constness and
//! parameter ranges. Runs before anything is executed.

use super::fixedpoint::Requant;
use super::format::{Conv2dGeometry, DType, Model, Op, Pool2d, Scale, Tensor};
use super::{Limits, ModelError, Result};

/// Checks `model` whole; the first problem found is returned.
pub(super) fn validate(model: &Model, limits: &Limits) -> Result<()> {
    let count = model.tensors.len();
    let input = tensor(model, "model input", model.input)?;
    if input.data.is_some() || input.dtype != DType::I8 {
        return Err(ModelError::Constness {
            site: "model input".into(),
            detail: format!(
                "tensor {} must be a non-constant int8 tensor, found a {} {}",
                model.input,
                if input.data.is_some() {
                    "constant"
                } else {
                    "non-constant"
                },
                input.dtype.name()
            ),
        });
    }
    let constant_bytes: u64 = model
        .tensors
        .iter()
        .filter(|t| t.data.is_some())
        .map(Tensor::bytes)
        .sum();
    if constant_bytes > limits.max_constant_bytes {
        return Err(super::format::too_large(
            "bytes of constants",
            constant_bytes,
            limits.max_constant_bytes,
        ));
    }
    let mut available: Vec<bool> = model.tensors.iter().map(|t| t.data.is_some()).collect();
    available[model.input as usize] = true;
    for (i, op) in model.ops.iter().enumerate() {
        let site = format!("op {i} ({})", op.name());
        let out = op.output();
        for t in op.inputs().into_iter().chain([out]) {
            tensor(model, &site, t)?;
        }
        check_op(model, &site, op, limits)?;
        if let Some(t) = op.inputs().into_iter().find(|&t| !available[t as usize]) {
            return Err(ModelError::NotYetProduced { site, tensor: t });
        }
        if available[out as usize] {
            return Err(ModelError::AlreadyProduced { site, tensor: out });
        }
        available[out as usize] = true;
    }
    if let Some(t) = available.iter().position(|&a| !a) {
        return Err(ModelError::NeverProduced { tensor: t as u32 });
    }
    if model.outputs.is_empty() {
        return Err(ModelError::BadParameter {
            site: "model outputs".into(),
            detail: "a model needs at least one output tensor".into(),
        });
    }
    for &o in &model.outputs {
        tensor(model, "model output", o)?;
    }
    debug_assert!(count == available.len());
    Ok(())
}

fn tensor<'m>(model: &'m Model, site: &str, index: u32) -> Result<&'m Tensor> {
    model
        .tensors
        .get(index as usize)
        .ok_or_else(|| ModelError::NoSuchTensor {
            site: site.to_owned(),
            tensor: index,
            count: model.tensors.len(),
        })
}

/// Checks that tensor `t` has `dtype`.
fn dtype(model: &Model, site: &str, role: &'static str, t: u32, want: DType) -> Result<()> {
    let found = model.tensors[t as usize].dtype;
    if found != want {
        return Err(ModelError::DTypeMismatch {
            site: site.to_owned(),
            role,
            tensor: t,
            expected: want.name(),
            actual: found.name(),
        });
    }
    Ok(())
}

fn shape(model: &Model, site: &str, role: &str, t: u32, want: &[u32]) -> Result<()> {
    let found = &model.tensors[t as usize].shape;
    if found != want {
        return Err(ModelError::ShapeMismatch {
            site: site.to_owned(),
            detail: format!("{role} (tensor {t}) must have shape {want:?}, found {found:?}"),
        });
    }
    Ok(())
}

fn constant(model: &Model, site: &str, role: &str, t: u32) -> Result<()> {
    if model.tensors[t as usize].data.is_none() {
        return Err(ModelError::Constness {
            site: site.to_owned(),
            detail: format!("{role} (tensor {t}) must be a constant with its data in the file"),
        });
    }
    Ok(())
}

fn param(site: &str, ok: bool, detail: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ModelError::BadParameter {
            site: site.to_owned(),
            detail: detail(),
        })
    }
}

fn zero_point(site: &str, what: &str, zp: i32) -> Result<()> {
    param(site, (-128..=127).contains(&zp), || {
        format!("{what} must be in -128..=127, found {zp}")
    })
}

fn rank1(model: &Model, site: &str, role: &str, t: u32, limit: u64) -> Result<u32> {
    let s = &model.tensors[t as usize].shape;
    if s.len() != 1 {
        return Err(ModelError::ShapeMismatch {
            site: site.to_owned(),
            detail: format!(
                "{role} (tensor {t}) must be rank 1, found shape {s:?} (reshape it first)"
            ),
        });
    }
    if s[0] as u64 > limit {
        return Err(super::format::too_large(
            format!("{site}: {role} length"),
            s[0] as u64,
            limit,
        ));
    }
    Ok(s[0])
}

fn check_op(model: &Model, site: &str, op: &Op, limits: &Limits) -> Result<()> {
    match *op {
        Op::FullyConnected {
            input,
            weights,
            bias,
            output,
            input_zero_point,
            weight_zero_point,
        } => {
            dtype(model, site, "input", input, DType::I8)?;
            let k = rank1(model, site, "input", input, limits.max_reduction)?;
            constant(model, site, "weights", weights)?;
            constant(model, site, "bias", bias)?;
            dtype(model, site, "weights", weights, DType::I8)?;
            dtype(model, site, "bias", bias, DType::I32)?;
            dtype(model, site, "output", output, DType::I32)?;
            let n = *model.tensors[weights as usize].shape.first().unwrap_or(&0);
            shape(model, site, "weights", weights, &[n, k])?;
            shape(model, site, "bias", bias, &[n])?;
            shape(model, site, "output", output, &[n])?;
            zero_point(site, "input zero point", input_zero_point)?;
            zero_point(site, "weight zero point", weight_zero_point)
        }
        Op::Requantize {
            input,
            output,
            requant: q,
        } => {
            dtype(model, site, "input", input, DType::I32)?;
            dtype(model, site, "output", output, DType::I8)?;
            let in_shape = &model.tensors[input as usize].shape;
            shape(model, site, "output", output, in_shape)?;
            check_requant(site, &q)
        }
        Op::Conv2d {
            input,
            filter,
            bias,
            output,
            input_zero_point,
            filter_zero_point,
            geometry,
        } => {
            dtype(model, site, "input", input, DType::I8)?;
            constant(model, site, "filter", filter)?;
            constant(model, site, "bias", bias)?;
            dtype(model, site, "filter", filter, DType::I8)?;
            dtype(model, site, "bias", bias, DType::I32)?;
            dtype(model, site, "output", output, DType::I32)?;
            zero_point(site, "input zero point", input_zero_point)?;
            zero_point(site, "filter zero point", filter_zero_point)?;
            check_conv(model, site, input, filter, bias, output, geometry, limits)
        }
        Op::Add {
            a,
            b,
            output,
            a_zero_point,
            b_zero_point,
            left_shift,
            a_scale,
            b_scale,
            requant,
        } => {
            dtype(model, site, "a", a, DType::I8)?;
            dtype(model, site, "b", b, DType::I8)?;
            dtype(model, site, "output", output, DType::I8)?;
            let a_shape = &model.tensors[a as usize].shape;
            shape(model, site, "b", b, a_shape)?;
            shape(model, site, "output", output, a_shape)?;
            zero_point(site, "zero point of a", a_zero_point)?;
            zero_point(site, "zero point of b", b_zero_point)?;
            param(site, left_shift <= 22, || {
                format!("left shift must be in 0..=22, found {left_shift}")
            })?;
            check_scale(site, a_scale)?;
            check_scale(site, b_scale)?;
            check_requant(site, &requant)
        }
        Op::MaxPool2d {
            input,
            output,
            pool,
        }
        | Op::AvgPool2d {
            input,
            output,
            pool,
        } => check_pool(model, site, input, output, pool),
        Op::Reshape { input, output } => {
            let (a, b) = (
                &model.tensors[input as usize],
                &model.tensors[output as usize],
            );
            dtype(model, site, "output", output, a.dtype)?;
            if a.elements() != b.elements() {
                return Err(ModelError::ShapeMismatch {
                    site: site.to_owned(),
                    detail: format!(
                        "cannot reshape {:?} ({} elements) to {:?} ({} elements)",
                        a.shape,
                        a.elements(),
                        b.shape,
                        b.elements()
                    ),
                });
            }
            Ok(())
        }
        Op::Argmax { input, output } => {
            rank1(model, site, "input", input, limits.max_reduction)?;
            dtype(model, site, "output", output, DType::I32)?;
            shape(model, site, "output", output, &[1])
        }
    }
}

fn check_scale(site: &str, s: Scale) -> Result<()> {
    param(site, s.multiplier >= 1, || {
        format!("multiplier must be positive, found {}", s.multiplier)
    })?;
    param(site, s.shift <= 31, || {
        format!("shift must be in 0..=31, found {}", s.shift)
    })
}

fn check_requant(site: &str, q: &Requant) -> Result<()> {
    let scale = Scale {
        multiplier: q.multiplier,
        shift: q.shift,
    };
    check_scale(site, scale)?;
    zero_point(site, "output zero point", q.output_zero_point)?;
    param(site, q.act_min <= q.act_max, || {
        format!("activation range {}..={} is empty", q.act_min, q.act_max)
    })
}

#[allow(clippy::too_many_arguments)]
fn check_conv(
    model: &Model,
    site: &str,
    input: u32,
    filter: u32,
    bias: u32,
    output: u32,
    g: Conv2dGeometry,
    limits: &Limits,
) -> Result<()> {
    let strides = [g.stride_h, g.stride_w];
    param(site, strides.iter().all(|v| (1..=16).contains(v)), || {
        format!("strides must be in 1..=16, found {strides:?}")
    })?;
    let pads = [g.pad_top, g.pad_left, g.pad_bottom, g.pad_right];
    param(site, pads.iter().all(|&v| v <= 16), || {
        format!("padding must be in 0..=16, found {pads:?}")
    })?;
    let in_shape = &model.tensors[input as usize].shape;
    let f_shape = &model.tensors[filter as usize].shape;
    let Some(out) = conv_output(in_shape, f_shape, g) else {
        return Err(ModelError::ShapeMismatch {
            site: site.to_owned(),
            detail: format!(
                "input {in_shape:?} must be [H, W, Cin] and filter {f_shape:?} [Cout, KH, KW, Cin], KH and KW at most 32 and within the padded input"
            ),
        });
    };
    let taps = f_shape[1] as u64 * f_shape[2] as u64 * f_shape[3] as u64;
    if taps > limits.max_reduction {
        return Err(super::format::too_large(
            format!("{site}: KH·KW·Cin"),
            taps,
            limits.max_reduction,
        ));
    }
    shape(model, site, "bias", bias, &[f_shape[0]])?;
    shape(model, site, "output", output, &out)
}

/// The output shape `[OH, OW, Cout]` of a convolution of `[H, W, Cin]` by
/// `[Cout, KH, KW, Cin]`, if the shapes fit and the strides are at least 1.
pub(super) fn conv_output(input: &[u32], filter: &[u32], g: Conv2dGeometry) -> Option<[u32; 3]> {
    let (&[h, w, cin], &[cout, kh, kw, filter_cin]) = (input, filter) else {
        return None;
    };
    let padded_h = h + g.pad_top as u32 + g.pad_bottom as u32;
    let padded_w = w + g.pad_left as u32 + g.pad_right as u32;
    let fits = cin == filter_cin && kh <= 32 && kw <= 32 && padded_h >= kh && padded_w >= kw;
    if !fits || g.stride_h == 0 || g.stride_w == 0 {
        return None;
    }
    Some([
        (padded_h - kh) / g.stride_h as u32 + 1,
        (padded_w - kw) / g.stride_w as u32 + 1,
        cout,
    ])
}

/// The output shape `[OH, OW, C]` of a pool over `[H, W, C]`, if the window fits.
pub(super) fn pool_output(input: &[u32], pool: Pool2d) -> Option<[u32; 3]> {
    let &[h, w, c] = input else { return None };
    let (kh, kw) = (pool.kernel_h as u32, pool.kernel_w as u32);
    let (sh, sw) = (pool.stride_h as u32, pool.stride_w as u32);
    if h < kh || w < kw || sh == 0 || sw == 0 {
        return None;
    }
    Some([(h - kh) / sh + 1, (w - kw) / sw + 1, c])
}

fn check_pool(model: &Model, site: &str, input: u32, output: u32, pool: Pool2d) -> Result<()> {
    dtype(model, site, "input", input, DType::I8)?;
    dtype(model, site, "output", output, DType::I8)?;
    let fields = [pool.kernel_h, pool.kernel_w, pool.stride_h, pool.stride_w];
    param(site, fields.iter().all(|v| (1..=16).contains(v)), || {
        format!("pool window and strides must be in 1..=16, found {fields:?}")
    })?;
    let in_shape = &model.tensors[input as usize].shape;
    let Some(out) = pool_output(in_shape, pool) else {
        return Err(ModelError::ShapeMismatch {
            site: site.to_owned(),
            detail: format!(
                "input (tensor {input}) must be [H, W, C] with H >= {} and W >= {}, found {in_shape:?}",
                pool.kernel_h, pool.kernel_w
            ),
        });
    };
    shape(model, site, "output", output, &out)
}
