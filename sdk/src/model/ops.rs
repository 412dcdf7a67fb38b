//! CPU references of the ops: plain integer Rust, the bytes every backend must produce.
//! Each function takes the op's operands over the whole batch and returns its output's
//! bytes. The semantics are documented on [`super::Op`]'s variants.

use super::fixedpoint::{Requant, multiply_by_quantized_multiplier};
use super::format::{Conv2dGeometry, DType, Model, Op, Pool2d, Scale};
use super::run::Values;
use super::validate::{conv_output, pool_output};

/// Computes one (validated) op over the batch.
pub fn eval(model: &Model, op: &Op, values: &Values<'_>) -> Vec<u8> {
    let shape = |t: u32| model.tensors[t as usize].shape.clone();
    match *op {
        Op::FullyConnected {
            input,
            weights,
            bias,
            input_zero_point,
            weight_zero_point,
            ..
        } => fully_connected(
            values.get(input),
            values.get(weights),
            &i32s(values.get(bias)),
            shape(input)[0] as usize,
            (input_zero_point, weight_zero_point),
        ),
        Op::Requantize { input, requant, .. } => requantize(values.get(input), &requant),
        Op::MaxPool2d { input, pool, .. } => pool2d(values.get(input), &shape(input), pool, false),
        Op::AvgPool2d { input, pool, .. } => pool2d(values.get(input), &shape(input), pool, true),
        Op::Reshape { input, .. } => values.get(input).to_vec(),
        Op::Argmax { input, .. } => argmax(
            values.get(input),
            model.tensors[input as usize].dtype,
            shape(input)[0] as usize,
        ),
        Op::Conv2d {
            input,
            filter,
            bias,
            input_zero_point,
            filter_zero_point,
            geometry,
            ..
        } => conv2d(
            values.get(input),
            &shape(input),
            values.get(filter),
            &shape(filter),
            &i32s(values.get(bias)),
            geometry,
            (input_zero_point, filter_zero_point),
        ),
        Op::Add {
            a,
            b,
            a_zero_point,
            b_zero_point,
            left_shift,
            a_scale,
            b_scale,
            requant,
            ..
        } => {
            let side = |x: u8, zp: i32, s: Scale| {
                let shifted = (x as i8 as i32 - zp) << left_shift;
                multiply_by_quantized_multiplier(shifted, s.multiplier, s.shift as u32)
            };
            let (a, b) = (values.get(a), values.get(b));
            a.iter()
                .zip(b)
                .map(|(&x, &y)| {
                    let sum =
                        side(x, a_zero_point, a_scale).wrapping_add(side(y, b_zero_point, b_scale));
                    requant.apply(sum) as u8
                })
                .collect()
        }
    }
}

/// Little-endian int32 words of `bytes`.
pub fn i32s(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn le_bytes(values: impl IntoIterator<Item = i32>) -> Vec<u8> {
    values.into_iter().flat_map(i32::to_le_bytes).collect()
}

/// Fully connected over a batch: `x` is `B×K` int8, `w` is `N×K` int8, `bias` has `N`
/// values; returns `B×N` int32 (wrapping accumulation). `zero_points` = (input, weights).
pub fn fully_connected(
    x: &[u8],
    w: &[u8],
    bias: &[i32],
    k: usize,
    zero_points: (i32, i32),
) -> Vec<u8> {
    let (zx, zw) = zero_points;
    let mut out = Vec::with_capacity(x.len() / k * bias.len());
    for sample in x.chunks_exact(k) {
        for (row, &b) in w.chunks_exact(k).zip(bias) {
            let dot = sample.iter().zip(row).fold(0i32, |acc, (&xv, &wv)| {
                let p = (xv as i8 as i32 - zx).wrapping_mul(wv as i8 as i32 - zw);
                acc.wrapping_add(p)
            });
            out.push(b.wrapping_add(dot));
        }
    }
    le_bytes(out)
}

/// Requantizes int32 little-endian values to int8 with [`Requant::apply`].
pub fn requantize(acc: &[u8], q: &Requant) -> Vec<u8> {
    i32s(acc).into_iter().map(|v| q.apply(v) as u8).collect()
}

/// TFLite's int8 average: `(s + n/2) / n` if `s > 0`, else `(s − n/2) / n`, truncating.
pub fn rounded_average(sum: i32, count: i32) -> i32 {
    if sum > 0 {
        (sum + count / 2) / count
    } else {
        (sum - count / 2) / count
    }
}

/// Max (or average) pool over a batch of int8 `[H, W, C]` samples (NHWC, no padding).
pub fn pool2d(x: &[u8], shape: &[u32], pool: Pool2d, average: bool) -> Vec<u8> {
    let Some([oh, ow, _]) = pool_output(shape, pool) else {
        return Vec::new();
    };
    let [h, w, c] = [shape[0] as usize, shape[1] as usize, shape[2] as usize];
    let (kh, kw) = (pool.kernel_h as usize, pool.kernel_w as usize);
    let (sh, sw) = (pool.stride_h as usize, pool.stride_w as usize);
    let mut out = Vec::with_capacity(x.len() / (h * w) * oh as usize * ow as usize);
    for sample in x.chunks_exact(h * w * c) {
        for oy in 0..oh as usize {
            for ox in 0..ow as usize {
                for ch in 0..c {
                    let window = (0..kh).flat_map(|dy| (0..kw).map(move |dx| (dy, dx)));
                    let vals = window
                        .map(|(dy, dx)| sample[((oy * sh + dy) * w + ox * sw + dx) * c + ch] as i8);
                    let v = if average {
                        let sum: i32 = vals.map(i32::from).sum();
                        rounded_average(sum, (kh * kw) as i32).clamp(-128, 127) as i8
                    } else {
                        vals.max().unwrap_or(i8::MIN)
                    };
                    out.push(v as u8);
                }
            }
        }
    }
    out
}

/// 2-D convolution over a batch of int8 NHWC samples `[H, W, Cin]` with an OHWI filter
/// `[Cout, KH, KW, Cin]`; taps outside the input (padding) are skipped, i.e. count as the
/// input zero point. Returns `[OH, OW, Cout]` int32 per sample (wrapping accumulation).
pub fn conv2d(
    x: &[u8],
    shape: &[u32],
    filter: &[u8],
    filter_shape: &[u32],
    bias: &[i32],
    g: Conv2dGeometry,
    zero_points: (i32, i32),
) -> Vec<u8> {
    let Some([oh, ow, cout]) = conv_output(shape, filter_shape, g) else {
        return Vec::new();
    };
    let (zx, zf) = zero_points;
    let (h, w, cin) = (shape[0] as i64, shape[1] as i64, shape[2] as usize);
    let (kh, kw) = (filter_shape[1] as i64, filter_shape[2] as i64);
    let mut out = Vec::new();
    for sample in x.chunks_exact(h as usize * w as usize * cin) {
        for oy in 0..oh as i64 {
            for ox in 0..ow as i64 {
                for (o, &b) in bias.iter().enumerate().take(cout as usize) {
                    let mut acc = b;
                    for dy in 0..kh {
                        let iy = oy * g.stride_h as i64 + dy - g.pad_top as i64;
                        for dx in 0..kw {
                            let ix = ox * g.stride_w as i64 + dx - g.pad_left as i64;
                            if !(0..h).contains(&iy) || !(0..w).contains(&ix) {
                                continue;
                            }
                            let xi = ((iy * w + ix) as usize) * cin;
                            let fi = ((o as i64 * kh + dy) * kw + dx) as usize * cin;
                            for c in 0..cin {
                                let xv = sample[xi + c] as i8 as i32 - zx;
                                let fv = filter[fi + c] as i8 as i32 - zf;
                                acc = acc.wrapping_add(xv.wrapping_mul(fv));
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    le_bytes(out)
}

/// Index of the first maximum of each `c`-element sample, as int32 little-endian.
pub fn argmax(x: &[u8], dtype: DType, c: usize) -> Vec<u8> {
    let values: Vec<i32> = match dtype {
        DType::I8 => x.iter().map(|&b| b as i8 as i32).collect(),
        DType::I32 => i32s(x),
    };
    le_bytes(values.chunks_exact(c).map(|s| {
        let mut best = 0;
        for (i, &v) in s.iter().enumerate() {
            if v > s[best] {
                best = i;
            }
        }
        best as i32
    }))
}
