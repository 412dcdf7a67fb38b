//! Why an ONNX file cannot be imported.

use crate::model::ModelError;

/// An ONNX file that cannot be turned into a model; every variant names the node (or
/// tensor) at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not an ONNX protobuf (truncated or not ONNX at all).
    #[error("not a readable ONNX file (truncated or not ONNX): {0}")]
    Decode(String),
    /// The file has no graph.
    #[error("the ONNX file has no graph")]
    NoGraph,
    /// An op the importer does not map.
    #[error(
        "node `{node}`: op `{op_type}` is not supported (supported: QuantizeLinear, DequantizeLinear, Gemm, MatMul, Add, Relu around a QDQ-quantized int8 graph)"
    )]
    UnsupportedOp {
        /// The node's name.
        node: String,
        /// Its op type (with the domain if not the default one).
        op_type: String,
    },
    /// A float op's operand is not dequantized from int8: the graph is not QDQ-quantized.
    #[error(
        "node `{node}` ({op_type}): operand `{tensor}` is float, not the output of a DequantizeLinear; quantize the model first (e.g. onnxruntime's quantize_static, QDQ format)"
    )]
    NotQuantized {
        /// The node's name.
        node: String,
        /// Its op type.
        op_type: String,
        /// The float operand.
        tensor: String,
    },
    /// A node's form or parameter is outside what the importer or the model format takes.
    #[error("node `{node}`: {detail}")]
    Unsupported {
        /// The node's name (or the tensor's, for graph inputs and initializers).
        node: String,
        /// What is out of range, and the limit.
        detail: String,
    },
    /// A node reads a tensor no initializer, graph input or earlier node gives.
    #[error("node `{node}` reads `{tensor}`, which nothing before it produces")]
    Missing {
        /// The node's name.
        node: String,
        /// The tensor it reads.
        tensor: String,
    },
    /// The imported graph fails the model validation.
    #[error("the imported model is invalid: {0}")]
    Model(#[from] ModelError),
}
