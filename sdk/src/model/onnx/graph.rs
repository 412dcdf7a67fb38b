//! The mapping of a QDQ-quantized ONNX graph onto model ops, node by node in the file's
//! (topological) order.

use std::collections::HashMap;

use super::proto::{GraphProto, NodeProto, tensor_shape_proto::dimension, type_proto};
use super::scale::{FixedScale, fixed_scale};
use super::tensors::{Const, ConstValues, data_type};
use super::{OnnxError, ScaleReport};
use crate::model::fixedpoint::Requant;
use crate::model::format::{DType, Model, Op, Scale, Tensor};

/// Per-tensor quantization parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct QParams {
    pub(super) scale: f32,
    pub(super) zero_point: i32,
}

/// What an ONNX value name stands for in the model being built.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// The float graph input, before its QuantizeLinear.
    FloatInput { shape: Vec<u32> },
    /// An int8 activation tensor of ours (a QuantizeLinear output).
    Int8 { tensor: u32, q: QParams },
    /// The float dequantization of an int8 activation tensor of ours.
    Dequantized { tensor: u32, q: QParams },
    /// A dequantized initializer (weights, bias).
    DequantizedConst { name: String, q: QParams },
    /// A float `scale · acc` of an int32 accumulator tensor of ours, maybe through a Relu.
    Accumulator { tensor: u32, scale: f64, relu: bool },
    /// The float sum of two dequantized int8 activations, maybe through a Relu.
    Sum {
        a: (u32, QParams),
        b: (u32, QParams),
        relu: bool,
    },
}

/// TFLite's int8 add: both inputs are shifted left by this much before rescaling.
const ADD_LEFT_SHIFT: u8 = 20;

pub(super) struct Builder<'g> {
    pub(super) consts: HashMap<&'g str, Const>,
    pub(super) values: HashMap<String, Value>,
    pub(super) tensors: Vec<Tensor>,
    pub(super) ops: Vec<Op>,
    input: Option<u32>,
    pub(super) scales: Vec<ScaleReport>,
    /// Our `[H, W, C]` tensors that hold an ONNX `[C, H, W]` (NCHW per sample) tensor.
    pub(super) chw: HashMap<u32, [u32; 3]>,
    /// Our flat tensors that are an ONNX `[C, H, W]` tensor flattened from our `[H, W, C]`
    /// order (a Gemm over one reorders its weights to match).
    pub(super) flat_chw: HashMap<u32, [u32; 3]>,
}

pub(super) fn unsupported(node: &NodeProto, detail: impl Into<String>) -> OnnxError {
    OnnxError::Unsupported {
        node: node.name().to_owned(),
        detail: detail.into(),
    }
}

/// Gemm's `transB`, refusing what the fully-connected op cannot do.
pub(super) fn gemm_trans_b(node: &NodeProto) -> Result<bool, OnnxError> {
    let attr = |name: &str| node.attribute.iter().find(|a| a.name() == name);
    let int_attr = |name: &str, default: i64| attr(name).map_or(default, |a| a.i());
    let float_attr = |name: &str| attr(name).map_or(1.0, |a| a.f());
    if int_attr("transA", 0) != 0 || float_attr("alpha") != 1.0 || float_attr("beta") != 1.0 {
        return Err(unsupported(
            node,
            "only Gemm with transA = 0, alpha = beta = 1 is supported",
        ));
    }
    Ok(int_attr("transB", 0) != 0)
}

/// The `n` int32 values of a bias initializer.
pub(super) fn bias_values(node: &NodeProto, c: &Const, n: u32) -> Result<Vec<i32>, OnnxError> {
    let (ConstValues::Int(values), data_type::INT32) = (&c.values, c.data_type) else {
        return Err(unsupported(node, "the bias must be int32"));
    };
    if values.len() != n as usize {
        return Err(unsupported(
            node,
            format!("the bias has {} values for {n} outputs", values.len()),
        ));
    }
    Ok(values.clone())
}

pub(super) fn activation(dtype: DType, shape: Vec<u32>) -> Tensor {
    Tensor {
        dtype,
        shape,
        data: None,
    }
}

impl<'g> Builder<'g> {
    pub(super) fn new(graph: &'g GraphProto) -> Result<Self, OnnxError> {
        let mut consts = HashMap::new();
        for t in &graph.initializer {
            consts.insert(t.name(), Const::from_proto(t)?);
        }
        let mut values = HashMap::new();
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !consts.contains_key(i.name()))
            .collect();
        if inputs.len() != 1 {
            return Err(OnnxError::Unsupported {
                node: "graph".into(),
                detail: format!("exactly one graph input is needed, found {}", inputs.len()),
            });
        }
        let input = inputs[0];
        let bad_input = |detail: String| OnnxError::Unsupported {
            node: input.name().to_owned(),
            detail,
        };
        let Some(type_proto::Value::TensorType(tt)) =
            input.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(bad_input("the graph input is not a tensor".into()));
        };
        if tt.elem_type() != data_type::FLOAT {
            return Err(bad_input(format!(
                "the graph input must be float (quantized by a QuantizeLinear), found element type {}",
                tt.elem_type()
            )));
        }
        let dims: Vec<Option<i64>> = tt
            .shape
            .iter()
            .flat_map(|s| &s.dim)
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect();
        // A leading batch dimension (1 or symbolic) is dropped: shapes are per sample.
        let per_sample = match dims.as_slice() {
            [first, rest @ ..] if !rest.is_empty() && matches!(first, None | Some(1)) => rest,
            all => all,
        };
        let shape = per_sample
            .iter()
            .map(|d| d.filter(|&v| (1..=1 << 24).contains(&v)).map(|v| v as u32))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| bad_input(format!("the per-sample dims {dims:?} must be fixed")))?;
        values.insert(input.name().to_owned(), Value::FloatInput { shape });
        Ok(Self {
            consts,
            values,
            tensors: Vec::new(),
            ops: Vec::new(),
            input: None,
            scales: Vec::new(),
            chw: HashMap::new(),
            flat_chw: HashMap::new(),
        })
    }

    pub(super) fn push(&mut self, tensor: Tensor) -> u32 {
        self.tensors.push(tensor);
        self.tensors.len() as u32 - 1
    }

    pub(super) fn value(&self, node: &NodeProto, i: usize) -> Result<&Value, OnnxError> {
        let name = node.input.get(i).map(String::as_str).unwrap_or("");
        self.values.get(name).ok_or_else(|| OnnxError::Missing {
            node: node.name().to_owned(),
            tensor: name.to_owned(),
        })
    }

    pub(super) fn constant(&self, node: &NodeProto, i: usize) -> Result<&Const, OnnxError> {
        let name = node.input.get(i).map(String::as_str).unwrap_or("");
        self.consts
            .get(name)
            .ok_or_else(|| unsupported(node, format!("operand `{name}` must be an initializer")))
    }

    fn qparams(&self, node: &NodeProto) -> Result<QParams, OnnxError> {
        self.qparams_at(node, 1, 2)
    }

    /// The scale at input `scale` and the (optional) zero point at input `zp`.
    pub(super) fn qparams_at(
        &self,
        node: &NodeProto,
        scale: usize,
        zp: usize,
    ) -> Result<QParams, OnnxError> {
        let zp_index = zp;
        let scale = self.constant(node, scale)?.scalar_f32(node.name())?;
        let zero_point = match node.input.get(zp_index).filter(|n| !n.is_empty()) {
            Some(_) => {
                let zp = self.constant(node, zp_index)?;
                if zp.data_type != data_type::INT8 && zp.data_type != data_type::INT32 {
                    return Err(unsupported(
                        node,
                        "only int8 quantization is supported (the zero point's type is not int8; quantize with QInt8 activations and weights)",
                    ));
                }
                zp.scalar_int(node.name())?
            }
            None => 0,
        };
        if !(scale.is_finite() && scale > 0.0) {
            return Err(unsupported(node, format!("scale {scale} is not positive")));
        }
        Ok(QParams { scale, zero_point })
    }

    fn set_output(&mut self, node: &NodeProto, value: Value) -> Result<(), OnnxError> {
        let name = node
            .output
            .first()
            .ok_or_else(|| unsupported(node, "the node has no output"))?;
        self.values.insert(name.clone(), value);
        Ok(())
    }

    /// Maps one node.
    pub(super) fn node(&mut self, node: &'g NodeProto) -> Result<(), OnnxError> {
        let microsoft = node.domain() == "com.microsoft";
        if !(node.domain().is_empty() || node.domain() == "ai.onnx" || microsoft)
            || (microsoft && node.op_type() != "QGemm")
        {
            return Err(OnnxError::UnsupportedOp {
                node: node.name().to_owned(),
                op_type: format!("{}.{}", node.domain(), node.op_type()),
            });
        }
        let value = match node.op_type() {
            "QuantizeLinear" => self.quantize(node)?,
            "DequantizeLinear" => self.dequantize(node)?,
            "Gemm" => self.gemm(node, false)?,
            "MatMul" => self.gemm(node, true)?,
            "Conv" => self.conv(node)?,
            "MaxPool" => self.pool(node, true)?,
            "AveragePool" => self.pool(node, false)?,
            "Flatten" | "Reshape" => self.flatten(node)?,
            "QLinearConv" => self.qlinear_conv(node)?,
            "QLinearMatMul" => self.qlinear_matmul(node)?,
            "QGemm" if microsoft => self.qgemm(node)?,
            "Add" => self.add(node)?,
            "Relu" => match self.value(node, 0)? {
                Value::Accumulator { tensor, scale, .. } => Value::Accumulator {
                    tensor: *tensor,
                    scale: *scale,
                    relu: true,
                },
                Value::Sum { a, b, .. } => Value::Sum {
                    a: *a,
                    b: *b,
                    relu: true,
                },
                _ => {
                    return Err(unsupported(
                        node,
                        "a Relu must directly follow a Gemm, MatMul or Add (before its QuantizeLinear)",
                    ));
                }
            },
            other => {
                return Err(OnnxError::UnsupportedOp {
                    node: node.name().to_owned(),
                    op_type: other.to_owned(),
                });
            }
        };
        self.set_output(node, value)
    }

    fn quantize(&mut self, node: &NodeProto) -> Result<Value, OnnxError> {
        let q = self.qparams(node)?;
        if !(-128..=127).contains(&q.zero_point) {
            return Err(unsupported(node, "the zero point is not int8"));
        }
        match self.value(node, 0)?.clone() {
            Value::FloatInput { shape } => {
                if self.input.is_some() {
                    return Err(unsupported(node, "the graph input is quantized twice"));
                }
                // An image [C, H, W] is stored channels-last, as the conv ops take it.
                let t = match shape[..] {
                    [c, h, w] => {
                        let t = self.push(activation(DType::I8, vec![h, w, c]));
                        self.chw.insert(t, [c, h, w]);
                        t
                    }
                    _ => self.push(activation(DType::I8, shape)),
                };
                self.input = Some(t);
                Ok(Value::Int8 { tensor: t, q })
            }
            Value::Accumulator {
                tensor,
                scale,
                relu,
            } => {
                let out = self.requantize(node, tensor, scale, q, relu)?;
                Ok(Value::Int8 { tensor: out, q })
            }
            Value::Sum { a, b, relu } => self.quantized_add(node, a, b, relu, q),
            Value::Dequantized { tensor, q: q0 } if q0 == q => Ok(Value::Int8 { tensor, q }),
            _ => Err(unsupported(
                node,
                "a QuantizeLinear must quantize the graph input, a Gemm/MatMul result, or re-quantize with the same parameters",
            )),
        }
    }

    /// Requantizes the int32 accumulator `acc` (real value `acc_scale · acc`) to int8 with
    /// `q`, clamped at the zero point below when `relu`; the result keeps `acc`'s layout.
    pub(super) fn requantize(
        &mut self,
        node: &NodeProto,
        acc: u32,
        acc_scale: f64,
        q: QParams,
        relu: bool,
    ) -> Result<u32, OnnxError> {
        let fixed = self.scale(node, acc_scale / q.scale as f64)?;
        let shape = self.tensors[acc as usize].shape.clone();
        let out = self.push(activation(DType::I8, shape));
        if let Some(&chw) = self.chw.get(&acc) {
            self.chw.insert(out, chw);
        }
        let act_min = if relu {
            q.zero_point.max(-128) as i8
        } else {
            -128
        };
        self.ops.push(Op::Requantize {
            input: acc,
            output: out,
            requant: Requant {
                multiplier: fixed.multiplier,
                shift: fixed.shift,
                output_zero_point: q.zero_point,
                act_min,
                act_max: 127,
            },
        });
        Ok(out)
    }

    /// Add of two dequantized int8 activations of one shape (a constant operand is not
    /// supported: the op adds sample by sample).
    fn add(&self, node: &NodeProto) -> Result<Value, OnnxError> {
        let operand = |i: usize| match self.value(node, i)? {
            Value::Dequantized { tensor, q } => Ok((*tensor, *q)),
            _ => Err(unsupported(
                node,
                format!(
                    "Add operand `{}` must be a dequantized int8 activation (constants and float tensors are not supported)",
                    node.input[i]
                ),
            )),
        };
        let (a, b) = (operand(0)?, operand(1)?);
        let (sa, sb) = (
            &self.tensors[a.0 as usize].shape,
            &self.tensors[b.0 as usize].shape,
        );
        if sa != sb {
            return Err(unsupported(
                node,
                format!(
                    "Add operands have shapes {sa:?} and {sb:?}; broadcasting is not supported"
                ),
            ));
        }
        Ok(Value::Sum { a, b, relu: false })
    }

    /// TFLite's int8 add parameters: each input rescaled by its scale over twice the larger
    /// one, the sum by that over `2^left_shift ·` the output scale.
    fn quantized_add(
        &mut self,
        node: &NodeProto,
        (a, qa): (u32, QParams),
        (b, qb): (u32, QParams),
        relu: bool,
        q: QParams,
    ) -> Result<Value, OnnxError> {
        let twice_max = 2.0 * f64::max(qa.scale as f64, qb.scale as f64);
        let a_fixed = self.scale(node, qa.scale as f64 / twice_max)?;
        let b_fixed = self.scale(node, qb.scale as f64 / twice_max)?;
        let out_ratio = twice_max / ((1u64 << ADD_LEFT_SHIFT) as f64 * q.scale as f64);
        let out_fixed = self.scale(node, out_ratio)?;
        let shape = self.tensors[a as usize].shape.clone();
        let output = self.push(activation(DType::I8, shape));
        let scale = |f: FixedScale| Scale {
            multiplier: f.multiplier,
            shift: f.shift,
        };
        self.ops.push(Op::Add {
            a,
            b,
            output,
            a_zero_point: qa.zero_point,
            b_zero_point: qb.zero_point,
            left_shift: ADD_LEFT_SHIFT,
            a_scale: scale(a_fixed),
            b_scale: scale(b_fixed),
            requant: Requant {
                multiplier: out_fixed.multiplier,
                shift: out_fixed.shift,
                output_zero_point: q.zero_point,
                act_min: if relu { q.zero_point as i8 } else { -128 },
                act_max: 127,
            },
        });
        Ok(Value::Int8 { tensor: output, q })
    }

    fn scale(&mut self, node: &NodeProto, ratio: f64) -> Result<FixedScale, OnnxError> {
        let fixed = fixed_scale(ratio).ok_or_else(|| {
            unsupported(
                node,
                format!(
                    "scale ratio {ratio:e} is outside (2^-32, 1): the model format has right shifts only"
                ),
            )
        })?;
        self.scales.push(ScaleReport {
            node: node.name().to_owned(),
            fixed,
        });
        Ok(fixed)
    }

    fn dequantize(&mut self, node: &NodeProto) -> Result<Value, OnnxError> {
        let q = self.qparams(node)?;
        let name = node.input.first().cloned().unwrap_or_default();
        if self.consts.contains_key(name.as_str()) {
            return Ok(Value::DequantizedConst { name, q });
        }
        match self.value(node, 0)? {
            Value::Int8 { tensor, q: q0 } if *q0 == q => {
                Ok(Value::Dequantized { tensor: *tensor, q })
            }
            _ => Err(unsupported(
                node,
                "a DequantizeLinear must read an initializer or a QuantizeLinear output with the same parameters",
            )),
        }
    }

    /// Gemm (`A·Bᵀ` or `A·B`, plus an int32 bias) or MatMul over dequantized operands.
    fn gemm(&mut self, node: &NodeProto, matmul: bool) -> Result<Value, OnnxError> {
        let trans_b = if matmul { false } else { gemm_trans_b(node)? };
        let (input, qa) = match self.value(node, 0)? {
            Value::Dequantized { tensor, q } => (*tensor, *q),
            Value::FloatInput { .. } | Value::Accumulator { .. } => {
                return Err(OnnxError::NotQuantized {
                    node: node.name().to_owned(),
                    op_type: node.op_type().to_owned(),
                    tensor: node.input[0].clone(),
                });
            }
            _ => {
                return Err(unsupported(
                    node,
                    "operand A is not a dequantized activation",
                ));
            }
        };
        let (c, qw) = self.dequantized_const(node, 1)?;
        let weights = self.fc_weights(node, c, input, trans_b)?;
        let acc_scale = qa.scale as f64 * qw.scale as f64;
        let n = weights.len() / self.fc_k(node, input)? as usize;
        let bias = match node.input.get(2).filter(|s| !s.is_empty()) {
            Some(_) if !matmul => self.bias(node, n as u32, acc_scale)?,
            _ => vec![0; n],
        };
        let out = self.emit_fc(node, input, qa.zero_point, weights, qw.zero_point, bias)?;
        Ok(Value::Accumulator {
            tensor: out,
            scale: acc_scale,
            relu: false,
        })
    }

    /// K of a fully-connected op over `input`, which must be `[K]` per sample.
    pub(super) fn fc_k(&self, node: &NodeProto, input: u32) -> Result<u32, OnnxError> {
        match self.tensors[input as usize].shape.as_slice() {
            [k] => Ok(*k),
            other => Err(unsupported(
                node,
                format!("operand A must be [K] per sample (Flatten it first), found {other:?}"),
            )),
        }
    }

    /// Emits a fully-connected op of `[N, K]` weights; returns its int32 `[N]` output.
    pub(super) fn emit_fc(
        &mut self,
        node: &NodeProto,
        input: u32,
        input_zero_point: i32,
        weights: Vec<i32>,
        weight_zero_point: i32,
        bias: Vec<i32>,
    ) -> Result<u32, OnnxError> {
        let k = self.fc_k(node, input)?;
        let n = (weights.len() / k as usize) as u32;
        if bias.len() != n as usize {
            return Err(unsupported(
                node,
                format!("the bias has {} values for {n} outputs", bias.len()),
            ));
        }
        let w = self.push(Tensor {
            dtype: DType::I8,
            shape: vec![n, k],
            data: Some(weights.iter().map(|&v| v as i8 as u8).collect()),
        });
        let b = self.push(Tensor {
            dtype: DType::I32,
            shape: vec![n],
            data: Some(bias.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
        let out = self.push(activation(DType::I32, vec![n]));
        self.ops.push(Op::FullyConnected {
            input,
            weights: w,
            bias: b,
            output: out,
            input_zero_point,
            weight_zero_point,
        });
        Ok(out)
    }

    pub(super) fn dequantized_const(
        &self,
        node: &NodeProto,
        i: usize,
    ) -> Result<(&Const, QParams), OnnxError> {
        match self.value(node, i)? {
            Value::DequantizedConst { name, q } => Ok((&self.consts[name.as_str()], *q)),
            _ => Err(OnnxError::NotQuantized {
                node: node.name().to_owned(),
                op_type: node.op_type().to_owned(),
                tensor: node.input[i].clone(),
            }),
        }
    }

    /// The int8 weights `c` of a fully-connected op over `input`, as `[N, K]` row-major
    /// values; over a flattened NCHW tensor their columns are put in our `[H, W, C]` order.
    pub(super) fn fc_weights(
        &self,
        node: &NodeProto,
        c: &Const,
        input: u32,
        trans_b: bool,
    ) -> Result<Vec<i32>, OnnxError> {
        let k = self.fc_k(node, input)?;
        let (ConstValues::Int(values), data_type::INT8) = (&c.values, c.data_type) else {
            return Err(unsupported(node, "the weights must be int8"));
        };
        let [rows, cols] = c.dims[..] else {
            return Err(unsupported(
                node,
                format!("the weights must be 2-D, found {:?}", c.dims),
            ));
        };
        let (n, kk) = if trans_b { (rows, cols) } else { (cols, rows) };
        if kk != k as i64 {
            return Err(unsupported(
                node,
                format!("weights {:?} do not fit an input of {k}", c.dims),
            ));
        }
        let (n, k) = (n as usize, k as usize);
        // Column j of row i of the [N, K] weights, in ONNX's order.
        let at = |i: usize, j: usize| {
            if trans_b {
                values[i * k + j]
            } else {
                values[j * n + i]
            }
        };
        let onnx_column = |j: usize| match self.flat_chw.get(&input) {
            // Ours is (h, w, c) at ((h·W + w)·C + c); ONNX's (c, h, w) at (c·H + h)·W + w.
            Some(&[ch, h, w]) => {
                let (ch, h, w) = (ch as usize, h as usize, w as usize);
                let (c, hw) = (j % ch, j / ch);
                (c * h + hw / w) * w + hw % w
            }
            None => j,
        };
        Ok((0..n * k).map(|i| at(i / k, onnx_column(i % k))).collect())
    }

    /// The int32 bias, which must be quantized with the accumulator's scale and zero point 0.
    fn bias(&self, node: &NodeProto, n: u32, acc_scale: f64) -> Result<Vec<i32>, OnnxError> {
        let (c, q) = self.dequantized_const(node, 2)?;
        let relative = (q.scale as f64 - acc_scale).abs() / acc_scale;
        if c.data_type != data_type::INT32 || q.zero_point != 0 || relative > 1e-5 {
            return Err(unsupported(
                node,
                format!(
                    "the bias must be int32 with zero point 0 and scale = input scale × weight scale ({acc_scale:e}), found scale {:e}, zero point {}",
                    q.scale, q.zero_point
                ),
            ));
        }
        bias_values(node, c, n)
    }

    /// The model: its outputs are the int8 tensors the graph outputs dequantize, and the
    /// class (argmax) of the first one.
    pub(super) fn finish(mut self, graph: &GraphProto) -> Result<Model, OnnxError> {
        let input = self.input.ok_or_else(|| OnnxError::Unsupported {
            node: "graph".into(),
            detail: "the graph input is never quantized (no QuantizeLinear reads it): the model is not QDQ-quantized".into(),
        })?;
        let mut outputs = Vec::new();
        for o in &graph.output {
            match self.values.get(o.name()) {
                Some(Value::Dequantized { tensor, .. } | Value::Int8 { tensor, .. }) => {
                    outputs.push(*tensor)
                }
                _ => {
                    return Err(OnnxError::Unsupported {
                        node: o.name().to_owned(),
                        detail: "a graph output must be an int8 tensor or its dequantization"
                            .into(),
                    });
                }
            }
        }
        let Some(&first) = outputs.first() else {
            return Err(OnnxError::Unsupported {
                node: "graph".into(),
                detail: "the graph has no output".into(),
            });
        };
        if self.tensors[first as usize].shape.len() == 1 {
            let class = self.push(activation(DType::I32, vec![1]));
            self.ops.push(Op::Argmax {
                input: first,
                output: class,
            });
            outputs.push(class);
        }
        Ok(Model {
            tensors: self.tensors,
            input,
            outputs,
            ops: self.ops,
        })
    }
}
