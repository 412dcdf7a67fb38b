//! Errors of the model format, its validation and its runtimes.

/// Why a model file cannot be decoded or validated, or an input cannot be run. Every
/// variant names what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The file does not start with the `STPM` magic.
    #[error("not a model file: it does not start with the magic bytes `STPM`")]
    BadMagic,
    /// The format version is not one this build reads.
    #[error(
        "model format version {version} is not supported (this build reads version {supported})"
    )]
    UnsupportedVersion {
        /// The version in the file.
        version: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The file ends before a field the format requires.
    #[error(
        "model file truncated: {what} at byte {offset} needs {needed} bytes but only {available} are left"
    )]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where the field starts.
        offset: usize,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// Bytes follow the last op.
    #[error("model file has {count} trailing bytes after the last op")]
    TrailingBytes {
        /// How many bytes are left over.
        count: usize,
    },
    /// A count, dimension or size is over the format's bound.
    #[error("{what} is {value}, over the bound of {limit}")]
    TooLarge {
        /// What was counted.
        what: String,
        /// The value found.
        value: u64,
        /// The bound.
        limit: u64,
    },
    /// A tensor's dtype code is not known.
    #[error("tensor {tensor} has unknown dtype code {code} (0 = int8, 1 = int32)")]
    UnknownDType {
        /// Tensor index.
        tensor: usize,
        /// The code found.
        code: u8,
    },
    /// An op code is not known.
    #[error("op {op} has unknown op code {code}")]
    UnknownOp {
        /// Op index.
        op: usize,
        /// The code found.
        code: u8,
    },
    /// A byte that must be 0 or 1 is neither.
    #[error("{what} must be 0 or 1, found {value}")]
    BadFlag {
        /// The field.
        what: &'static str,
        /// The value found.
        value: u8,
    },
    /// A tensor index is past the tensor table.
    #[error("{site} refers to tensor {tensor}, but the model has only {count} tensors")]
    NoSuchTensor {
        /// Where the reference is (`op 3 (fully-connected)`, `model input`, ...).
        site: String,
        /// The index.
        tensor: u32,
        /// Number of tensors.
        count: usize,
    },
    /// An op reads a tensor that is neither the input, a constant nor produced by an earlier op.
    #[error(
        "{site} reads tensor {tensor}, which no earlier op produces (ops must be in dataflow order)"
    )]
    NotYetProduced {
        /// The op.
        site: String,
        /// The tensor read.
        tensor: u32,
    },
    /// An op writes a tensor that already has a value (the input, a constant, or an earlier output).
    #[error(
        "{site} writes tensor {tensor}, which already has a value (input, constant or an earlier op's output)"
    )]
    AlreadyProduced {
        /// The op.
        site: String,
        /// The tensor written.
        tensor: u32,
    },
    /// A non-constant tensor is never produced.
    #[error("tensor {tensor} is not a constant, not the input and no op produces it")]
    NeverProduced {
        /// The tensor.
        tensor: u32,
    },
    /// An operand must be a constant (weights, bias) but is not, or the reverse.
    #[error("{site}: {detail}")]
    Constness {
        /// The op or the model input.
        site: String,
        /// What is wrong.
        detail: String,
    },
    /// An operand has the wrong dtype.
    #[error("{site}: {role} (tensor {tensor}) must be {expected}, found {actual}")]
    DTypeMismatch {
        /// The op.
        site: String,
        /// The operand's role.
        role: &'static str,
        /// The tensor.
        tensor: u32,
        /// Expected dtype.
        expected: &'static str,
        /// Found dtype.
        actual: &'static str,
    },
    /// Operand shapes do not fit the op.
    #[error("{site}: shape mismatch: {detail}")]
    ShapeMismatch {
        /// The op.
        site: String,
        /// What does not fit.
        detail: String,
    },
    /// An op parameter is out of its range.
    #[error("{site}: {detail}")]
    BadParameter {
        /// The op.
        site: String,
        /// What is out of range.
        detail: String,
    },
    /// The input bytes are not a whole number of samples.
    #[error(
        "input is {len} bytes, not a positive multiple of the model's {sample_bytes}-byte sample (int8, shape {shape:?})"
    )]
    InputSize {
        /// Input length.
        len: usize,
        /// Bytes of one sample.
        sample_bytes: u64,
        /// The input tensor's per-sample shape.
        shape: Vec<u32>,
    },
}

/// Result alias of the model library.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
