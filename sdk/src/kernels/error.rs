//! Errors of the kernel library.

use super::KernelId;

/// Why a kernel job cannot be planned or computed. Every variant names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The kernel id is neither a built-in kernel nor the id of the custom envelope given.
    #[error(
        "unknown kernel {id}: not a built-in kernel (see `stp kernel list`) and the input is not a custom-kernel envelope"
    )]
    UnknownKernel {
        /// The id that was asked for.
        id: KernelId,
    },
    /// No built-in kernel has this name or id.
    #[error("no built-in kernel named or with id `{query}`; run `stp kernel list` to see them")]
    UnknownName {
        /// The name or id that was looked up.
        query: String,
    },
    /// The input ends before a field the layout requires.
    #[error(
        "input truncated: {what} needs {needed} more bytes but only {available} are left; check the kernel's input layout"
    )]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the input.
        available: u64,
    },
    /// The input has bytes after everything the header describes.
    #[error(
        "input has {extra} trailing bytes after the data its header describes; the header and the data disagree"
    )]
    TrailingBytes {
        /// How many bytes are left over.
        extra: u64,
    },
    /// A shape or parameter in the header is zero, too large or out of range.
    #[error("invalid {kernel} parameters: {reason}")]
    InvalidParams {
        /// The kernel whose header was read.
        kernel: &'static str,
        /// What is wrong and the allowed range.
        reason: String,
    },
    /// A custom-kernel envelope is malformed.
    #[error("malformed custom-kernel envelope: {reason}")]
    BadEnvelope {
        /// What is wrong with it.
        reason: String,
    },
    /// The custom-kernel envelope describes a different kernel than the job's id.
    #[error(
        "kernel id mismatch: the job names {expected} but the input's WGSL, entry point and bindings hash to {actual}"
    )]
    KernelIdMismatch {
        /// The id the job was posted with.
        expected: KernelId,
        /// The id computed from the envelope.
        actual: KernelId,
    },
    /// Custom kernels are consumer code: there is no CPU reference to compare with.
    #[error("kernel {id} is a custom kernel and has no CPU reference; run it on a GPU backend")]
    NoCpuReference {
        /// The custom kernel's id.
        id: KernelId,
    },
    /// A model job's model or samples are not valid (see [`crate::model::job`]).
    #[error("model job: {0}")]
    Model(#[from] crate::model::ModelError),
    /// A kernel id string is not 32 bytes of hex.
    #[error(
        "invalid kernel id `{input}`: expected 64 hex digits (an optional 0x prefix is allowed)"
    )]
    BadId {
        /// The text that failed to parse.
        input: String,
    },
}

/// Result type of the kernel library.
pub type Result<T, E = KernelError> = std::result::Result<T, E>;
