//! onnxruntime's QOperator form: QLinearConv, QLinearMatMul and `com.microsoft.QGemm` read
//! int8 activations with their scales and zero points as operands and give int8 outputs;
//! each maps onto conv-2d or fully-connected, then requantize.

use super::OnnxError;
use super::graph::{Builder, QParams, Value, bias_values, gemm_trans_b, unsupported};
use super::proto::NodeProto;

impl Builder<'_> {
    /// Operand 0 as an int8 activation whose parameters are operands 1 and 2.
    fn int8_operand(&self, node: &NodeProto) -> Result<(u32, QParams), OnnxError> {
        let declared = self.qparams_at(node, 1, 2)?;
        match self.value(node, 0)? {
            Value::Int8 { tensor, q } if *q == declared => Ok((*tensor, *q)),
            Value::Int8 { .. } => Err(unsupported(
                node,
                "the input's scale and zero point differ from the ones it was quantized with",
            )),
            _ => Err(OnnxError::NotQuantized {
                node: node.name().to_owned(),
                op_type: node.op_type().to_owned(),
                tensor: node.input[0].clone(),
            }),
        }
    }

    /// An optional int32 bias initializer at operand `i`.
    fn raw_bias(
        &self,
        node: &NodeProto,
        i: usize,
    ) -> Result<Option<super::tensors::Const>, OnnxError> {
        match node.input.get(i).filter(|s| !s.is_empty()) {
            Some(_) => Ok(Some(self.constant(node, i)?.clone())),
            None => Ok(None),
        }
    }

    /// QLinearConv: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, [bias].
    pub(super) fn qlinear_conv(&mut self, node: &NodeProto) -> Result<Value, OnnxError> {
        if node
            .attribute
            .iter()
            .any(|a| a.name() == "group" && a.i() != 1)
        {
            return Err(unsupported(node, "grouped convolutions are not supported"));
        }
        let (input, qx) = self.int8_operand(node)?;
        if !self.chw.contains_key(&input) {
            return Err(unsupported(
                node,
                "the input must be an NCHW image (N, C, H, W)",
            ));
        }
        let filter = self.constant(node, 3)?.clone();
        let qw = self.qparams_at(node, 4, 5)?;
        let qy = self.qparams_at(node, 6, 7)?;
        let bias = self.raw_bias(node, 8)?;
        let acc = self.emit_conv(
            node,
            (input, qx.zero_point),
            (&filter, qw.zero_point),
            bias.as_ref(),
        )?;
        let scale = qx.scale as f64 * qw.scale as f64;
        let out = self.requantize(node, acc, scale, qy, false)?;
        Ok(Value::Int8 { tensor: out, q: qy })
    }

    /// QLinearMatMul: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp.
    pub(super) fn qlinear_matmul(&mut self, node: &NodeProto) -> Result<Value, OnnxError> {
        self.quantized_fc(node, false, None, (6, 7))
    }

    /// `com.microsoft.QGemm`: a, a_scale, a_zp, b, b_scale, b_zp, [bias], y_scale, y_zp.
    pub(super) fn qgemm(&mut self, node: &NodeProto) -> Result<Value, OnnxError> {
        if node.input.get(7).is_none_or(|s| s.is_empty()) {
            return Err(unsupported(
                node,
                "a QGemm without y_scale has a float output: it must be quantized",
            ));
        }
        let trans_b = gemm_trans_b(node)?;
        let bias = self.raw_bias(node, 6)?;
        self.quantized_fc(node, trans_b, bias, (7, 8))
    }

    fn quantized_fc(
        &mut self,
        node: &NodeProto,
        trans_b: bool,
        bias: Option<super::tensors::Const>,
        (y_scale, y_zp): (usize, usize),
    ) -> Result<Value, OnnxError> {
        let (input, qa) = self.int8_operand(node)?;
        let qw = self.qparams_at(node, 4, 5)?;
        let qy = self.qparams_at(node, y_scale, y_zp)?;
        let weights = self.fc_weights(node, self.constant(node, 3)?, input, trans_b)?;
        let n = (weights.len() / self.fc_k(node, input)? as usize) as u32;
        let bias = match &bias {
            Some(b) => bias_values(node, b, n)?,
            None => vec![0; n as usize],
        };
        let acc = self.emit_fc(node, input, qa.zero_point, weights, qw.zero_point, bias)?;
        let scale = qa.scale as f64 * qw.scale as f64;
        let out = self.requantize(node, acc, scale, qy, false)?;
        Ok(Value::Int8 { tensor: out, q: qy })
    }
}
