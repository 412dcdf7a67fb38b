//! The binary encoding of a [`Model`]: canonical bytes out, strict decoding in (the
//! layout is in [`super::format`]'s docs).

use super::fixedpoint::Requant;
use super::format::{
    Conv2dGeometry, DType, MAGIC, Model, Op, Pool2d, Scale, Tensor, VERSION, too_large,
};
use super::{Limits, ModelError, Result};

impl Model {
    /// The canonical bytes of the model (the module docs give the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(MAGIC);
        put_u32(&mut w, VERSION);
        put_u32(&mut w, self.tensors.len() as u32);
        for t in &self.tensors {
            w.push(t.dtype.code());
            w.push(t.shape.len() as u8);
            t.shape.iter().for_each(|&d| put_u32(&mut w, d));
            w.push(u8::from(t.data.is_some()));
            if let Some(data) = &t.data {
                w.extend_from_slice(data);
            }
        }
        put_u32(&mut w, self.input);
        put_u32(&mut w, self.outputs.len() as u32);
        self.outputs.iter().for_each(|&o| put_u32(&mut w, o));
        put_u32(&mut w, self.ops.len() as u32);
        self.ops.iter().for_each(|op| encode_op(&mut w, op));
        w
    }

    /// Decodes the bytes of a model file strictly (bounds, no trailing bytes). The result
    /// is not yet validated as a graph: [`super::ValidModel::decode`] does both.
    pub fn decode_unvalidated(bytes: &[u8], limits: &Limits) -> Result<Self> {
        if bytes.len() as u64 > limits.max_file_bytes {
            return Err(too_large(
                "model file size",
                bytes.len() as u64,
                limits.max_file_bytes,
            ));
        }
        let mut r = Reader { bytes, pos: 0 };
        if r.take("magic", 4)? != MAGIC {
            return Err(ModelError::BadMagic);
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(ModelError::UnsupportedVersion {
                version,
                supported: VERSION,
            });
        }
        let count = r.count("tensor count", limits.max_tensors)?;
        let tensors = (0..count)
            .map(|i| decode_tensor(&mut r, i, limits))
            .collect::<Result<Vec<_>>>()?;
        let input = r.u32("input tensor")?;
        let outputs = (0..r.count("output count", limits.max_outputs)?)
            .map(|_| r.u32("output tensor"))
            .collect::<Result<Vec<_>>>()?;
        let ops = (0..r.count("op count", limits.max_ops)?)
            .map(|i| decode_op(&mut r, i))
            .collect::<Result<Vec<_>>>()?;
        if r.pos != bytes.len() {
            return Err(ModelError::TrailingBytes {
                count: bytes.len() - r.pos,
            });
        }
        Ok(Self {
            tensors,
            input,
            outputs,
            ops,
        })
    }
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn encode_op(w: &mut Vec<u8>, op: &Op) {
    let words = |w: &mut Vec<u8>, vs: &[u32]| vs.iter().for_each(|&v| put_u32(w, v));
    match *op {
        Op::FullyConnected {
            input,
            weights,
            bias,
            output,
            input_zero_point,
            weight_zero_point,
        } => {
            w.push(1);
            words(w, &[input, weights, bias, output]);
            words(w, &[input_zero_point as u32, weight_zero_point as u32]);
        }
        Op::Requantize {
            input,
            output,
            requant: q,
        } => {
            w.push(2);
            words(w, &[input, output, q.multiplier as u32]);
            w.push(q.shift);
            put_u32(w, q.output_zero_point as u32);
            w.extend_from_slice(&[q.act_min as u8, q.act_max as u8]);
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
        } => {
            w.push(if matches!(op, Op::MaxPool2d { .. }) {
                3
            } else {
                4
            });
            words(w, &[input, output]);
            w.extend_from_slice(&[pool.kernel_h, pool.kernel_w, pool.stride_h, pool.stride_w]);
        }
        Op::Reshape { input, output } => {
            w.push(5);
            words(w, &[input, output]);
        }
        Op::Argmax { input, output } => {
            w.push(6);
            words(w, &[input, output]);
        }
        Op::Conv2d {
            input,
            filter,
            bias,
            output,
            input_zero_point,
            filter_zero_point,
            geometry: g,
        } => {
            w.push(7);
            words(w, &[input, filter, bias, output]);
            words(w, &[input_zero_point as u32, filter_zero_point as u32]);
            w.extend_from_slice(&[
                g.stride_h,
                g.stride_w,
                g.pad_top,
                g.pad_left,
                g.pad_bottom,
                g.pad_right,
            ]);
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
            requant: q,
        } => {
            w.push(8);
            words(w, &[a, b, output, a_zero_point as u32, b_zero_point as u32]);
            w.push(left_shift);
            for s in [a_scale, b_scale] {
                put_u32(w, s.multiplier as u32);
                w.push(s.shift);
            }
            put_u32(w, q.multiplier as u32);
            w.push(q.shift);
            put_u32(w, q.output_zero_point as u32);
            w.extend_from_slice(&[q.act_min as u8, q.act_max as u8]);
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, what: &'static str, n: u64) -> Result<&'a [u8]> {
        let available = (self.bytes.len() - self.pos) as u64;
        if n > available {
            return Err(ModelError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(what, 1)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(what, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(self.u32(what)? as i32)
    }

    fn count(&mut self, what: &'static str, limit: u64) -> Result<u64> {
        let n = self.u32(what)? as u64;
        if n > limit {
            return Err(too_large(what, n, limit));
        }
        Ok(n)
    }
}

fn decode_tensor(r: &mut Reader<'_>, index: u64, limits: &Limits) -> Result<Tensor> {
    let tensor = index as usize;
    let dtype = match r.u8("tensor dtype")? {
        0 => DType::I8,
        1 => DType::I32,
        code => return Err(ModelError::UnknownDType { tensor, code }),
    };
    let rank = r.u8("tensor rank")?;
    if !(1..=4).contains(&rank) {
        return Err(ModelError::BadParameter {
            site: format!("tensor {tensor}"),
            detail: format!("rank must be 1 to 4, found {rank}"),
        });
    }
    let shape = (0..rank)
        .map(|_| r.u32("tensor dimension"))
        .collect::<Result<Vec<_>>>()?;
    let elements = shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64));
    if shape.contains(&0) {
        return Err(ModelError::BadParameter {
            site: format!("tensor {tensor}"),
            detail: format!("every dimension must be at least 1, shape {shape:?}"),
        });
    }
    if elements > limits.max_tensor_elements {
        return Err(too_large(
            format!("tensor {tensor}'s element count (shape {shape:?})"),
            elements,
            limits.max_tensor_elements,
        ));
    }
    let data = match r.u8("tensor constant flag")? {
        0 => None,
        1 => Some(r.take("tensor data", elements * dtype.size())?.to_vec()),
        value => {
            return Err(ModelError::BadFlag {
                what: "tensor constant flag",
                value,
            });
        }
    };
    Ok(Tensor { dtype, shape, data })
}

fn read_scale(r: &mut Reader<'_>) -> Result<Scale> {
    Ok(Scale {
        multiplier: r.i32("multiplier")?,
        shift: r.u8("shift")?,
    })
}

fn read_requant(r: &mut Reader<'_>) -> Result<Requant> {
    Ok(Requant {
        multiplier: r.i32("multiplier")?,
        shift: r.u8("shift")?,
        output_zero_point: r.i32("output zero point")?,
        act_min: r.u8("activation min")? as i8,
        act_max: r.u8("activation max")? as i8,
    })
}

fn decode_op(r: &mut Reader<'_>, index: u64) -> Result<Op> {
    let code = r.u8("op code")?;
    let t = |r: &mut Reader<'_>| r.u32("op tensor");
    Ok(match code {
        1 => Op::FullyConnected {
            input: t(r)?,
            weights: t(r)?,
            bias: t(r)?,
            output: t(r)?,
            input_zero_point: r.i32("input zero point")?,
            weight_zero_point: r.i32("weight zero point")?,
        },
        2 => Op::Requantize {
            input: t(r)?,
            output: t(r)?,
            requant: read_requant(r)?,
        },
        7 => {
            let (input, filter, bias, output) = (t(r)?, t(r)?, t(r)?, t(r)?);
            let (input_zero_point, filter_zero_point) =
                (r.i32("input zero point")?, r.i32("filter zero point")?);
            let g = r.take("convolution strides and padding", 6)?;
            Op::Conv2d {
                input,
                filter,
                bias,
                output,
                input_zero_point,
                filter_zero_point,
                geometry: Conv2dGeometry {
                    stride_h: g[0],
                    stride_w: g[1],
                    pad_top: g[2],
                    pad_left: g[3],
                    pad_bottom: g[4],
                    pad_right: g[5],
                },
            }
        }
        8 => Op::Add {
            a: t(r)?,
            b: t(r)?,
            output: t(r)?,
            a_zero_point: r.i32("zero point of a")?,
            b_zero_point: r.i32("zero point of b")?,
            left_shift: r.u8("left shift")?,
            a_scale: read_scale(r)?,
            b_scale: read_scale(r)?,
            requant: read_requant(r)?,
        },
        3 | 4 => {
            let (input, output) = (t(r)?, t(r)?);
            let b = r.take("pool window and stride", 4)?;
            let pool = Pool2d {
                kernel_h: b[0],
                kernel_w: b[1],
                stride_h: b[2],
                stride_w: b[3],
            };
            if code == 3 {
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
            }
        }
        5 => Op::Reshape {
            input: t(r)?,
            output: t(r)?,
        },
        6 => Op::Argmax {
            input: t(r)?,
            output: t(r)?,
        },
        code => {
            return Err(ModelError::UnknownOp {
                op: index as usize,
                code,
            });
        }
    })
}
