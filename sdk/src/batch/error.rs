//! Errors of splitting a workload and assembling its chunks' outputs.

use crate::kernels::{KernelError, KernelId};

/// Why a workload cannot be split or its outputs assembled. Every variant says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A chunk count, block size or tile count of zero.
    #[error("cannot split into {what} of zero: ask for at least 1")]
    Zero {
        /// What was zero (`chunks`, `rows per chunk`, `tile columns`, ...).
        what: &'static str,
    },
    /// More chunks than the input has units to give them.
    #[error(
        "cannot split {units} {unit} into {chunks} chunks: ask for at most {units} or use a larger input"
    )]
    TooManyChunks {
        /// Chunks asked for (along this dimension).
        chunks: u64,
        /// Units the input has (rows, messages, pixel columns, ...).
        units: u64,
        /// What a unit is.
        unit: &'static str,
    },
    /// No grid of `chunks` tiles fits the image.
    #[error(
        "no grid of {chunks} tiles fits a {width}x{height} image: choose a count with a factor pair cols x rows, cols <= {width} and rows <= {height}, or give the grid with tiles"
    )]
    NoTileGrid {
        /// Tiles asked for.
        chunks: u32,
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
    },
    /// The kernel is not a built-in with a splitter.
    #[error(
        "kernel {kernel} has no splitter: matmul-u32, matmul-i8, sha256-batch and mandelbrot-fixed split; for a custom kernel give one envelope per chunk to split_custom"
    )]
    NoSplitter {
        /// The kernel asked for.
        kernel: KernelId,
    },
    /// This way of splitting does not apply to the kernel.
    #[error("{kernel} cannot be split by {by}: {hint}")]
    UnsupportedSplit {
        /// The kernel's name.
        kernel: &'static str,
        /// The split asked for.
        by: String,
        /// The splits it accepts.
        hint: &'static str,
    },
    /// The whole input is not a valid input of its kernel.
    #[error("the input is not a valid {kernel} input: {source}")]
    Input {
        /// The kernel's name.
        kernel: &'static str,
        /// What the kernel's parser found.
        #[source]
        source: KernelError,
    },
    /// `split_custom` was given no inputs.
    #[error("a custom batch needs at least one input envelope")]
    EmptyBatch,
    /// A custom input is not a valid custom-kernel envelope.
    #[error("custom input {index} is not a valid custom-kernel envelope: {source}")]
    CustomInput {
        /// Index of the input in the list given.
        index: usize,
        /// What the envelope decoder found.
        #[source]
        source: KernelError,
    },
    /// A model batch's model or samples are not valid.
    #[error("model batch: {0}")]
    Model(#[source] crate::model::ModelError),
    /// A custom input names another kernel than the first input.
    #[error(
        "custom input {index} is kernel {actual} but input 0 is kernel {expected}: a batch runs one kernel, post the others as their own batch"
    )]
    MixedKernels {
        /// Index of the odd input.
        index: usize,
        /// The kernel id of input 0.
        expected: KernelId,
        /// The kernel id of this input.
        actual: KernelId,
    },
    /// `assemble` got a different number of outputs than the batch has chunks.
    #[error("expected {expected} chunk outputs (one per chunk, in chunk order), got {actual}")]
    OutputCount {
        /// Chunks of the batch.
        expected: usize,
        /// Outputs given.
        actual: usize,
    },
    /// A chunk index past the batch's last chunk.
    #[error("the batch has {count} chunks (0..{count}), there is no chunk {index}")]
    NoSuchChunk {
        /// The index asked for.
        index: usize,
        /// Chunks of the batch.
        count: usize,
    },
    /// A chunk's output has the wrong size.
    #[error(
        "the output of chunk {index} is {actual} bytes but that chunk produces {expected}: fetch it again or re-run the chunk"
    )]
    OutputSize {
        /// The chunk's index.
        index: usize,
        /// Bytes the chunk produces.
        expected: u64,
        /// Bytes given.
        actual: u64,
    },
    /// An assembly (e.g. read back from a manifest) is inconsistent.
    #[error("invalid assembly: {reason}; split the workload again to rebuild it")]
    BadAssembly {
        /// What is wrong.
        reason: String,
    },
    /// RGBA8 bytes that are not `width × height` pixels.
    #[error("{actual} bytes are not a {width}x{height} RGBA8 image ({width} x {height} x 4 bytes)")]
    ImageSize {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// Bytes given.
        actual: u64,
    },
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {reason}")]
    Png {
        /// The encoder's message.
        reason: String,
    },
}

/// Result type of the batch module.
pub type Result<T, E = BatchError> = std::result::Result<T, E>;
