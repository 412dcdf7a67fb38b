//! CPU references of the ops: plain integer Rust, the bytes every backend must produce.
//! Each function takes the op's operands over the whole batch and returns its output's
//! bytes. The semantics are documented on [`super::Op`]'s variants.

use super::fixedpoint::Requant;
use super::format::{DType, Model, Op, Pool2d};
use super::run::Values;
use super::validate::pool_output;

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
