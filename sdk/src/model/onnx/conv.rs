//! Images: Conv (QDQ), MaxPool, AveragePool and Flatten over NCHW tensors, mapped onto the
//! channels-last (NHWC) ops of the model format. ONNX's `[C, H, W]` activations are stored
//! as our `[H, W, C]` ([`Builder::chw`]), filters are transposed from OIHW to OHWI, and a
//! Gemm after a Flatten has its weight columns reordered ([`Builder::flat_chw`]).

use super::OnnxError;
use super::graph::{Builder, QParams, Value, activation, bias_values, unsupported};
use super::proto::NodeProto;
use super::tensors::{Const, ConstValues, data_type};
use crate::model::format::{Conv2dGeometry, DType, Op, Pool2d, Tensor};
use crate::model::validate::{conv_output, pool_output};

fn ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    node.attribute
        .iter()
        .find(|a| a.name() == name)
        .map(|a| a.ints.clone())
}

fn small(
    node: &NodeProto,
    what: &str,
    v: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<u8, OnnxError> {
    if range.contains(&v) {
        Ok(v as u8)
    } else {
        Err(unsupported(
            node,
            format!("{what} {v} is outside {}..={}", range.start(), range.end()),
        ))
    }
}

/// Strides and pads of a 2-D Conv or pool (dilations 1, explicit or no padding).
fn geometry(node: &NodeProto) -> Result<Conv2dGeometry, OnnxError> {
    let auto_pad = node
        .attribute
        .iter()
        .find(|a| a.name() == "auto_pad")
        .map(|a| String::from_utf8_lossy(a.s()).into_owned());
    if !matches!(auto_pad.as_deref(), None | Some("NOTSET" | "VALID")) {
        return Err(unsupported(
            node,
            "auto_pad SAME_* is not supported: give explicit pads",
        ));
    }
    if ints(node, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
        return Err(unsupported(
            node,
            "dilations other than 1 are not supported",
        ));
    }
    let strides = ints(node, "strides").unwrap_or_else(|| vec![1, 1]);
    let pads = ints(node, "pads").unwrap_or_else(|| vec![0; 4]);
    let (&[sh, sw], &[top, left, bottom, right]) = (&strides[..], &pads[..]) else {
        return Err(unsupported(
            node,
            "2-D strides and pads are needed (an NCHW image)",
        ));
    };
    Ok(Conv2dGeometry {
        stride_h: small(node, "stride", sh, 1..=16)?,
        stride_w: small(node, "stride", sw, 1..=16)?,
        pad_top: small(node, "pad", top, 0..=16)?,
        pad_left: small(node, "pad", left, 0..=16)?,
        pad_bottom: small(node, "pad", bottom, 0..=16)?,
        pad_right: small(node, "pad", right, 0..=16)?,
    })
}

/// An OIHW int8 filter as OHWI values, and its `[Cout, KH, KW, Cin]` shape.
fn ohwi(node: &NodeProto, c: &Const, cin: u32) -> Result<(Vec<u8>, [u32; 4]), OnnxError> {
    let (ConstValues::Int(values), data_type::INT8) = (&c.values, c.data_type) else {
        return Err(unsupported(node, "the filter must be int8"));
    };
    let [o, i, kh, kw] = c.dims[..] else {
        return Err(unsupported(
            node,
            format!("the filter must be 4-D OIHW, found {:?}", c.dims),
        ));
    };
    if i != cin as i64 {
        return Err(unsupported(
            node,
            format!(
                "a filter of {i} input channels for {cin}; grouped convolutions are not supported"
            ),
        ));
    }
    let (o, i, kh, kw) = (o as usize, i as usize, kh as usize, kw as usize);
    let mut out = vec![0u8; values.len()];
    for (at, &v) in values.iter().enumerate() {
        let (oo, rest) = (at / (i * kh * kw), at % (i * kh * kw));
        let (ii, y, x) = (rest / (kh * kw), rest % (kh * kw) / kw, rest % kw);
        out[((oo * kh + y) * kw + x) * i + ii] = v as i8 as u8;
    }
    Ok((out, [o as u32, kh as u32, kw as u32, i as u32]))
}

impl Builder<'_> {
    /// The `[H, W, C]` tensor behind operand 0 of an image op, and its quantization;
    /// `dequantized` says whether the op reads it through a DequantizeLinear (QDQ form).
    fn image(&self, node: &NodeProto) -> Result<(u32, QParams, bool), OnnxError> {
        let (tensor, q, dequantized) = match self.value(node, 0)? {
            Value::Dequantized { tensor, q } => (*tensor, *q, true),
            Value::Int8 { tensor, q } => (*tensor, *q, false),
            _ => {
                return Err(OnnxError::NotQuantized {
                    node: node.name().to_owned(),
                    op_type: node.op_type().to_owned(),
                    tensor: node.input[0].clone(),
                });
            }
        };
        if !self.chw.contains_key(&tensor) {
            return Err(unsupported(
                node,
                "the input must be an NCHW image (N, C, H, W)",
            ));
        }
        Ok((tensor, q, dequantized))
    }

    /// Emits a conv-2d of `input` with the OIHW filter `c`; returns its int32 output.
    pub(super) fn emit_conv(
        &mut self,
        node: &NodeProto,
        (input, input_zero_point): (u32, i32),
        (c, filter_zero_point): (&Const, i32),
        bias: Option<&Const>,
    ) -> Result<u32, OnnxError> {
        let shape = self.tensors[input as usize].shape.clone();
        let cin = shape.get(2).copied().unwrap_or(0);
        let geometry = geometry(node)?;
        let (data, [cout, kh, kw, _]) = ohwi(node, c, cin)?;
        let Some([oh, ow, _]) = conv_output(&shape, &[cout, kh, kw, cin], geometry) else {
            return Err(unsupported(
                node,
                format!(
                    "a {kh}x{kw} filter does not fit the padded {shape:?} input (at most 32x32)"
                ),
            ));
        };
        let bias = match bias {
            Some(b) => bias_values(node, b, cout)?,
            None => vec![0; cout as usize],
        };
        let filter = self.push(Tensor {
            dtype: DType::I8,
            shape: vec![cout, kh, kw, cin],
            data: Some(data),
        });
        let bias = self.push(Tensor {
            dtype: DType::I32,
            shape: vec![cout],
            data: Some(bias.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
        let output = self.push(activation(DType::I32, vec![oh, ow, cout]));
        self.chw.insert(output, [cout, oh, ow]);
        self.ops.push(Op::Conv2d {
            input,
            filter,
            bias,
            output,
            input_zero_point,
            filter_zero_point,
            geometry,
        });
        Ok(output)
    }

    /// Conv over a dequantized activation, filter and bias (QDQ form).
    pub(super) fn conv(&mut self, node: &NodeProto) -> Result<Value, OnnxError> {
        if node
            .attribute
            .iter()
            .any(|a| a.name() == "group" && a.i() != 1)
        {
            return Err(unsupported(node, "grouped convolutions are not supported"));
        }
        let (input, qa, dequantized) = self.image(node)?;
        if !dequantized {
            return Err(unsupported(
                node,
                "a Conv must read a DequantizeLinear output",
            ));
        }
        let (c, qw) = self.dequantized_const(node, 1)?;
        let c = c.clone();
        let acc_scale = qa.scale as f64 * qw.scale as f64;
        let bias = match node.input.get(2).filter(|s| !s.is_empty()) {
            Some(_) => {
                let (b, qb) = self.dequantized_const(node, 2)?;
                let relative = (qb.scale as f64 - acc_scale).abs() / acc_scale;
                if qb.zero_point != 0 || relative > 1e-5 {
                    return Err(unsupported(
                        node,
                        format!(
                            "the bias must have zero point 0 and scale = input scale × filter scale ({acc_scale:e}), found {:e}",
                            qb.scale
                        ),
                    ));
                }
                Some(b.clone())
            }
            None => None,
        };
        let out = self.emit_conv(
            node,
            (input, qa.zero_point),
            (&c, qw.zero_point),
            bias.as_ref(),
        )?;
        Ok(Value::Accumulator {
            tensor: out,
            scale: acc_scale,
            relu: false,
        })
    }

    /// MaxPool or AveragePool (no padding): on int8 values it keeps the quantization, so
    /// it reads and gives the same kind of value (dequantized in QDQ form, int8 in
    /// QOperator form).
    pub(super) fn pool(&mut self, node: &NodeProto, max: bool) -> Result<Value, OnnxError> {
        let (input, q, dequantized) = self.image(node)?;
        if !max && !dequantized {
            return Err(OnnxError::UnsupportedOp {
                node: node.name().to_owned(),
                op_type: "AveragePool on int8 (use the QDQ form)".into(),
            });
        }
        if ints(node, "pads").is_some_and(|p| p.iter().any(|&v| v != 0))
            || node
                .attribute
                .iter()
                .any(|a| a.name() == "ceil_mode" && a.i() != 0)
        {
            return Err(unsupported(
                node,
                "a pool with padding or ceil_mode is not supported",
            ));
        }
        let g = geometry(node)?;
        let Some([kh, kw]) = ints(node, "kernel_shape").and_then(|k| <[i64; 2]>::try_from(k).ok())
        else {
            return Err(unsupported(node, "a 2-D kernel_shape is needed"));
        };
        let pool = Pool2d {
            kernel_h: small(node, "window", kh, 1..=16)?,
            kernel_w: small(node, "window", kw, 1..=16)?,
            stride_h: g.stride_h,
            stride_w: g.stride_w,
        };
        let shape = &self.tensors[input as usize].shape;
        let Some([oh, ow, c]) = pool_output(shape, pool) else {
            return Err(unsupported(
                node,
                format!("a {kh}x{kw} window over a {shape:?} image"),
            ));
        };
        let output = self.push(activation(DType::I8, vec![oh, ow, c]));
        self.chw.insert(output, [c, oh, ow]);
        self.ops.push(if max {
            Op::MaxPool2d {
                input,
                output,
                pool,
            }
        } else {
            Op::AvgPool2d {
                input,
                output,
                pool,
            }
        });
        Ok(if dequantized {
            Value::Dequantized { tensor: output, q }
        } else {
            Value::Int8 { tensor: output, q }
        })
    }

    /// Flatten (axis 1), or a Reshape to `[N, K]` per batch: the same bytes as one `[K]`
    /// tensor per sample, remembered as flattened from NCHW when it was an image.
    pub(super) fn flatten(&mut self, node: &NodeProto) -> Result<Value, OnnxError> {
        if node.op_type() == "Flatten"
            && node
                .attribute
                .iter()
                .any(|a| a.name() == "axis" && a.i() != 1)
        {
            return Err(unsupported(node, "only Flatten with axis 1 is supported"));
        }
        let (input, q, dequantized) = match self.value(node, 0)? {
            Value::Dequantized { tensor, q } => (*tensor, *q, true),
            Value::Int8 { tensor, q } => (*tensor, *q, false),
            _ => return Err(unsupported(node, "only int8 activations can be flattened")),
        };
        let elements = self.tensors[input as usize].elements() as u32;
        if node.op_type() == "Reshape" {
            let shape = self.constant(node, 1)?;
            let ConstValues::Int(dims) = &shape.values else {
                return Err(unsupported(
                    node,
                    "the target shape must be an int64 initializer",
                ));
            };
            if !matches!(dims[..], [1 | -1, k] if k == -1 || k == elements as i32) {
                return Err(unsupported(
                    node,
                    format!("only a Reshape to [batch, {elements}] is supported, found {dims:?}"),
                ));
            }
        }
        let output = self.push(activation(DType::I8, vec![elements]));
        if let Some(&chw) = self.chw.get(&input) {
            self.flat_chw.insert(output, chw);
        }
        self.ops.push(Op::Reshape { input, output });
        Ok(if dequantized {
            Value::Dequantized { tensor: output, q }
        } else {
            Value::Int8 { tensor: output, q }
        })
    }
}
