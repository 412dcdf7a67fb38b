//! Import of int8 QDQ-quantized ONNX models (onnxruntime's `quantize_static`, QDQ format,
//! per-tensor scales, int8 activations and weights) into the integer-only model format.
//!
//! Mapped: `QuantizeLinear` of the float graph input (the model input becomes its int8
//! output), `DequantizeLinear` of int8 / int32 initializers and of int8 activations,
//! `Gemm` (`transA = 0`, `alpha = beta = 1`, int32 bias quantized with the accumulator's
//! scale) and `MatMul` → fully-connected, an optional `Relu`, and the `QuantizeLinear`
//! after them → requantize; `Add` of two dequantized activations of one shape (+ `Relu`)
//! and its `QuantizeLinear` → the int8 add with TFLite's parameters (left shift 20).
//! Each float ratio (`input scale × weight scale / output scale`, and an add's three) is
//! turned, once, into a fixed-point multiplier and right shift; [`Imported::scales`]
//! reports each with the relative error the conversion introduces. The first graph output
//! also gets an argmax (the class). Anything else is refused with an error naming the node.
//!
//! The protobuf types in `proto.rs` are prost's code for `onnx.proto` (next to it, from
//! onnx 1.23.2), generated with `prost-build` 0.14 from the descriptors `protox` 0.9
//! compiles (`protox::compile(["onnx.proto"], ["."])` then
//! `prost_build::Config::new().compile_fds(..)`), so no `protoc` is needed to rebuild.

mod conv;
mod error;
mod graph;
#[allow(missing_docs, clippy::all, unreachable_pub)]
mod proto;
mod qop;
pub mod scale;
mod tensors;
#[cfg(test)]
mod tests;

use prost::Message;

pub use error::OnnxError;
pub use scale::FixedScale;

use super::ValidModel;

/// One requantization's float ratio and its fixed-point form.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleReport {
    /// The ONNX node (a `QuantizeLinear`) the ratio belongs to.
    pub node: String,
    /// The ratio, its multiplier and shift, and the conversion's relative error.
    pub fixed: FixedScale,
}

/// An imported model and what the conversion did to its scales.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The validated model.
    pub model: ValidModel,
    /// Every float scale ratio converted, in graph order.
    pub scales: Vec<ScaleReport>,
}

impl Imported {
    /// The largest relative difference between a float ratio and its fixed-point form.
    pub fn max_scale_error(&self) -> f64 {
        self.scales
            .iter()
            .map(|s| s.fixed.relative_error)
            .fold(0.0, f64::max)
    }
}

/// Imports an ONNX file's bytes.
pub fn import(bytes: &[u8]) -> Result<Imported, OnnxError> {
    let file = proto::ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    let graph = file.graph.as_ref().ok_or(OnnxError::NoGraph)?;
    let mut builder = graph::Builder::new(graph)?;
    for node in &graph.node {
        builder.node(node)?;
    }
    let scales = std::mem::take(&mut builder.scales);
    let model = ValidModel::new(builder.finish(graph)?)?;
    Ok(Imported { model, scales })
}
