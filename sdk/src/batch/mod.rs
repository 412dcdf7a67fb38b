//! Workloads, not single kernels: split one large input into chunk jobs, and assemble the
//! chunks' outputs back into the output of the whole.
//!
//! [`split`] cuts a built-in kernel's input into chunks, each a complete, valid input of the
//! same kernel, so every chunk is an ordinary job any provider runs and any consumer checks
//! (agreement, [`crate::verify`]). [`split_custom`] batches custom-kernel envelopes, one
//! chunk per envelope. The [`Assembly`] that comes with a [`Batch`] is everything needed to
//! put the outputs together later; it is plain data (serde) for a manifest on disk.
//!
//! | kernel | split by | chunk | aggregate |
//! |---|---|---|---|
//! | `matmul-u32`, `matmul-i8` | [`SplitBy::Chunks`] / [`SplitBy::Rows`] | a block of rows of A with the whole B | the blocks of C, concatenated |
//! | `sha256-batch` | [`SplitBy::Chunks`] / [`SplitBy::Rows`] (messages per chunk) | a range of messages | the digests, concatenated |
//! | `mandelbrot-fixed` | [`SplitBy::Tiles`] / [`SplitBy::Chunks`] (a near-square grid) / [`SplitBy::Rows`] (strips) | a tile whose pixels are bit-identical to the same pixels of the whole image | the whole RGBA8 image ([`encode_png`]) |
//! | custom | [`split_custom`] | one envelope | the outputs, concatenated |
//! | a model ([`crate::model::job`]) | [`split_model`]: [`SplitBy::Chunks`] / [`SplitBy::Rows`] (samples per chunk) | a range of samples with the whole model | each model output over all samples, in order |
//!
//! `Chunks(n)` spreads units as evenly as possible (the first `total % n` chunks get one
//! more); `Rows(r)` gives every chunk `r` units and the last the remainder.
//!
//! [`merkle`] commits to all chunks' results with one root.

mod assembly;
mod custom;
mod error;
mod image;
mod matmul;
mod model;
mod ranges;
mod sha256;

pub mod merkle;
pub mod parts;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::kernels::{Builtin, KernelId, builtin};

pub use assembly::{Assembly, TileRect};
pub use custom::split_custom;
pub use error::{BatchError, Result};
pub use image::encode_png;
pub use model::split_model;

/// How to split a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// This many chunks, as even as possible (mandelbrot: a grid as close to square as the
    /// count allows).
    Chunks(u32),
    /// This many rows (matrix rows, messages, pixel rows) per chunk; the last may be shorter.
    Rows(u32),
    /// A grid of tiles (mandelbrot only).
    Tiles {
        /// Tiles across.
        cols: u32,
        /// Tiles down.
        rows: u32,
    },
}

impl fmt::Display for SplitBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chunks(n) => write!(f, "chunks={n}"),
            Self::Rows(r) => write!(f, "rows={r}"),
            Self::Tiles { cols, rows } => write!(f, "tiles={cols}x{rows}"),
        }
    }
}

/// A [`SplitBy`] that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid split `{input}`: expected chunks=N, rows=N or tiles=COLSxROWS")]
pub struct ParseSplitError {
    /// The text given.
    pub input: String,
}

impl FromStr for SplitBy {
    type Err = ParseSplitError;

    /// Parses `chunks=8`, `rows=64` or `tiles=4x3` (the [`Display`](fmt::Display) form).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseSplitError {
            input: s.to_owned(),
        };
        let (key, value) = s.split_once('=').ok_or_else(err)?;
        let num = |v: &str| v.trim().parse::<u32>().map_err(|_| err());
        match key.trim() {
            "chunks" => Ok(Self::Chunks(num(value)?)),
            "rows" => Ok(Self::Rows(num(value)?)),
            "tiles" => {
                let (c, r) = value.split_once(['x', 'X']).ok_or_else(err)?;
                Ok(Self::Tiles {
                    cols: num(c)?,
                    rows: num(r)?,
                })
            }
            _ => Err(err()),
        }
    }
}

/// One chunk of a batch: a complete input of the batch's kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the batch (outputs are assembled in this order).
    pub index: u32,
    /// The chunk's kernel input.
    pub input: Vec<u8>,
    /// What part of the workload it is: `rows 64..128`, `messages 0..100`, `tile 2,3`,
    /// `input 4`.
    pub label: String,
}

/// A workload split into chunks of one kernel, and how to assemble their outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The kernel every chunk runs.
    pub kernel: KernelId,
    /// The chunks, in assembly order.
    pub chunks: Vec<Chunk>,
    /// How the chunks' outputs make the whole output.
    pub assembly: Assembly,
}

impl Batch {
    /// A batch of `(input, label, output length)` parts, indexed in order, concatenated.
    fn concat(kernel: KernelId, parts: Vec<(Vec<u8>, String, u64)>) -> Self {
        let mut chunk_lens = Vec::with_capacity(parts.len());
        let chunks = parts
            .into_iter()
            .enumerate()
            .map(|(index, (input, label, len))| {
                chunk_lens.push(len);
                Chunk {
                    index: index as u32,
                    input,
                    label,
                }
            })
            .collect();
        Self {
            kernel,
            chunks,
            assembly: Assembly::Concat { chunk_lens },
        }
    }
}

/// Splits the input of a built-in kernel into chunks (see the [module](self) table).
///
/// Fails on a count of zero, more chunks than the input has units, a split that does not
/// apply to the kernel, a kernel without a splitter (custom kernels: [`split_custom`]) and an
/// input that does not parse. Every matmul chunk carries the whole B, so `n` chunks hold
/// `n` copies of it.
pub fn split(kernel: &KernelId, input: &[u8], by: SplitBy) -> Result<Batch> {
    let def = builtin(kernel).ok_or(BatchError::NoSplitter { kernel: *kernel })?;
    match def.builtin {
        Builtin::MatmulU32 | Builtin::MatmulI8 => matmul::split(def, input, by),
        Builtin::Sha256Batch => sha256::split(def, input, by),
        Builtin::Mandelbrot => image::split(def, input, by),
    }
}
