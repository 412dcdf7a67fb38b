//! Putting the chunks' outputs together.

use serde::{Deserialize, Serialize};

use super::{BatchError, Result};
use crate::kernels::mandelbrot;

/// A rectangle of pixels of an assembled image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TileRect {
    /// Column of the tile's left edge.
    pub x: u32,
    /// Row of the tile's top edge.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl TileRect {
    fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// What [`assemble`](Assembly::assemble) needs: plain data, kept in a batch's manifest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Assembly {
    /// The outputs, concatenated in chunk order; chunk `i` produces `chunk_lens[i]` bytes.
    Concat {
        /// Output length of each chunk, in bytes.
        chunk_lens: Vec<u64>,
    },
    /// A model's outputs over a batch split by samples: chunk `i` ran `chunk_samples[i]`
    /// samples, and its output holds, for each model output `o` in turn, its samples'
    /// `sample_bytes[o]` bytes each. The whole is the output of one run over every sample:
    /// output 0 of all samples, then output 1 of all samples, and so on.
    Samples {
        /// Samples of each chunk.
        chunk_samples: Vec<u32>,
        /// Bytes of one sample of each model output.
        sample_bytes: Vec<u64>,
    },
    /// RGBA8 tiles placed into one `width × height` image, row-major.
    Image {
        /// Width of the whole image in pixels.
        width: u32,
        /// Height of the whole image in pixels.
        height: u32,
        /// Where chunk `i`'s pixels go.
        tiles: Vec<TileRect>,
    },
}

impl Assembly {
    /// Number of chunks the assembly expects.
    pub fn chunk_count(&self) -> usize {
        match self {
            Self::Concat { chunk_lens } => chunk_lens.len(),
            Self::Samples { chunk_samples, .. } => chunk_samples.len(),
            Self::Image { tiles, .. } => tiles.len(),
        }
    }

    /// Bytes chunk `index` produces (its jobs' exact output size), if it exists.
    pub fn chunk_output_len(&self, index: usize) -> Option<u64> {
        match self {
            Self::Concat { chunk_lens } => chunk_lens.get(index).copied(),
            Self::Samples {
                chunk_samples,
                sample_bytes,
            } => chunk_samples
                .get(index)
                .map(|&n| u64::from(n) * sample_bytes.iter().sum::<u64>()),
            Self::Image { tiles, .. } => tiles.get(index).map(|t| t.pixels() * 4),
        }
    }

    /// Checks one chunk's output size as it arrives, before the whole batch is in.
    pub fn check_output(&self, index: usize, output: &[u8]) -> Result<()> {
        let expected = self
            .chunk_output_len(index)
            .ok_or(BatchError::NoSuchChunk {
                index,
                count: self.chunk_count(),
            })?;
        if output.len() as u64 != expected {
            return Err(BatchError::OutputSize {
                index,
                expected,
                actual: output.len() as u64,
            });
        }
        Ok(())
    }

    /// Bytes of the aggregate output.
    pub fn output_len(&self) -> u64 {
        match self {
            Self::Concat { chunk_lens } => chunk_lens.iter().sum(),
            Self::Samples {
                chunk_samples,
                sample_bytes,
            } => {
                chunk_samples.iter().map(|&n| u64::from(n)).sum::<u64>()
                    * sample_bytes.iter().sum::<u64>()
            }
            Self::Image { width, height, .. } => *width as u64 * *height as u64 * 4,
        }
    }

    /// Width and height of the aggregate image (mandelbrot batches), else `None`.
    pub fn image(&self) -> Option<(u32, u32)> {
        match self {
            Self::Image { width, height, .. } => Some((*width, *height)),
            Self::Concat { .. } | Self::Samples { .. } => None,
        }
    }

    /// The whole output from the chunks' outputs, given in chunk order. Fails on a wrong
    /// number of outputs or a chunk output of the wrong size, naming the chunk.
    pub fn assemble(&self, outputs: &[Vec<u8>]) -> Result<Vec<u8>> {
        if outputs.len() != self.chunk_count() {
            return Err(BatchError::OutputCount {
                expected: self.chunk_count(),
                actual: outputs.len(),
            });
        }
        for (index, output) in outputs.iter().enumerate() {
            self.check_output(index, output)?;
        }
        match self {
            Self::Concat { .. } => Ok(outputs.concat()),
            Self::Samples {
                chunk_samples,
                sample_bytes,
            } => Ok(interleave(chunk_samples, sample_bytes, outputs)),
            Self::Image {
                width,
                height,
                tiles,
            } => place_tiles(*width, *height, tiles, outputs),
        }
    }
}

/// Output `o` of every chunk in chunk order, for each output in turn.
fn interleave(chunk_samples: &[u32], sample_bytes: &[u64], outputs: &[Vec<u8>]) -> Vec<u8> {
    let mut whole = Vec::with_capacity(outputs.iter().map(Vec::len).sum());
    let mut offsets = vec![0usize; outputs.len()];
    for &per in sample_bytes {
        for ((out, &n), at) in outputs.iter().zip(chunk_samples).zip(&mut offsets) {
            let len = n as usize * per as usize;
            whole.extend_from_slice(&out[*at..*at + len]);
            *at += len;
        }
    }
    whole
}

/// Copies each tile's rows into a `width × height` RGBA8 image.
fn place_tiles(
    width: u32,
    height: u32,
    tiles: &[TileRect],
    outputs: &[Vec<u8>],
) -> Result<Vec<u8>> {
    check_tiling(width, height, tiles)?;
    let stride = width as usize * 4;
    let mut image = vec![0u8; height as usize * stride];
    for (tile, pixels) in tiles.iter().zip(outputs) {
        let row_len = tile.width as usize * 4;
        for (dy, row) in pixels.chunks_exact(row_len).enumerate() {
            let start = (tile.y as usize + dy) * stride + tile.x as usize * 4;
            image[start..start + row_len].copy_from_slice(row);
        }
    }
    Ok(image)
}

/// Every tile inside the image, and the tiles' areas adding up to the image's (a split
/// never overlaps tiles, so this means they cover it).
fn check_tiling(width: u32, height: u32, tiles: &[TileRect]) -> Result<()> {
    let bad = |reason: String| Err(BatchError::BadAssembly { reason });
    let pixels = width as u64 * height as u64;
    if pixels == 0 || pixels > mandelbrot::MAX_PIXELS {
        return bad(format!(
            "a {width}x{height} image is outside 1..={} pixels",
            mandelbrot::MAX_PIXELS
        ));
    }
    if let Some(i) = tiles.iter().position(|t| {
        t.x as u64 + t.width as u64 > width as u64 || t.y as u64 + t.height as u64 > height as u64
    }) {
        return bad(format!(
            "tile {i} reaches outside the {width}x{height} image"
        ));
    }
    let area: u64 = tiles.iter().map(TileRect::pixels).sum();
    if area != pixels {
        return bad(format!(
            "the tiles cover {area} pixels of a {pixels}-pixel image"
        ));
    }
    Ok(())
}
