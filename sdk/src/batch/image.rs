//! Splitting a `mandelbrot-fixed` image into tiles, and writing the assembled image as PNG.
//!
//! Pixel `(px, py)` of a tile samples `(x_min + px·step, y_min + py·step)`. A tile whose
//! top-left pixel is `(x0, y0)` of the whole image gets `x_min + x0·step` and
//! `y_min + y0·step` with the same `step` and `max_iter`: its pixel `(px, py)` samples
//! exactly the point of pixel `(x0 + px, y0 + py)`, so its bytes are those of the whole.
//! (Every point of a valid image lies in `[-4, 4]²`, so none of these sums wraps.)

use std::ops::Range;

use super::{Assembly, Batch, BatchError, Chunk, Result, SplitBy, TileRect, ranges};
use crate::kernels::mandelbrot::{self, Tile};
use crate::kernels::{KernelDef, KernelError};

/// Splits a `mandelbrot-fixed` input into tiles, row by row of the grid.
pub(super) fn split(def: &KernelDef, input: &[u8], by: SplitBy) -> Result<Batch> {
    let whole = mandelbrot::parse(input).map_err(|source| BatchError::Input {
        kernel: def.name,
        source,
    })?;
    let (cols, rows, strips) = match by {
        SplitBy::Tiles { cols, rows } => (
            ranges::even(whole.width, cols, "tile columns", "pixel columns")?,
            ranges::even(whole.height, rows, "tile rows", "pixel rows")?,
            false,
        ),
        SplitBy::Chunks(n) => {
            let (c, r) = grid(n, whole.width, whole.height)?;
            (
                ranges::even(whole.width, c, "tile columns", "pixel columns")?,
                ranges::even(whole.height, r, "tile rows", "pixel rows")?,
                false,
            )
        }
        SplitBy::Rows(r) => (
            ranges::even(whole.width, 1, "tile columns", "pixel columns")?,
            ranges::fixed(whole.height, r, "pixel rows per chunk")?,
            true,
        ),
    };
    let mut chunks = Vec::with_capacity(cols.len() * rows.len());
    let mut tiles = Vec::with_capacity(chunks.capacity());
    for (row, ys) in rows.iter().enumerate() {
        for (col, xs) in cols.iter().enumerate() {
            let rect = rect(xs, ys);
            let label = if strips {
                format!("rows {}..{}", ys.start, ys.end)
            } else {
                format!("tile {col},{row}")
            };
            chunks.push(Chunk {
                index: chunks.len() as u32,
                input: sub_tile(&whole, &rect).map_err(|source| BatchError::Input {
                    kernel: def.name,
                    source,
                })?,
                label,
            });
            tiles.push(rect);
        }
    }
    let assembly = Assembly::Image {
        width: whole.width,
        height: whole.height,
        tiles,
    };
    Ok(Batch {
        kernel: def.id,
        chunks,
        assembly,
    })
}

fn rect(xs: &Range<u32>, ys: &Range<u32>) -> TileRect {
    TileRect {
        x: xs.start,
        y: ys.start,
        width: xs.end - xs.start,
        height: ys.end - ys.start,
    }
}

/// The input of the tile `rect` of `whole`.
fn sub_tile(whole: &Tile, rect: &TileRect) -> Result<Vec<u8>, KernelError> {
    let origin = |min: i32, offset: u32| (min as i64 + offset as i64 * whole.step as i64) as i32;
    Tile {
        width: rect.width,
        height: rect.height,
        x_min: origin(whole.x_min, rect.x),
        y_min: origin(whole.y_min, rect.y),
        ..*whole
    }
    .encode()
}

/// The `cols × rows = n` grid fitting a `width × height` image that is closest to square
/// (ties: more columns than rows).
fn grid(n: u32, width: u32, height: u32) -> Result<(u32, u32)> {
    if n == 0 {
        return Err(BatchError::Zero { what: "chunks" });
    }
    let pixels = width as u64 * height as u64;
    if n as u64 > pixels {
        return Err(BatchError::TooManyChunks {
            chunks: n as u64,
            units: pixels,
            unit: "pixels",
        });
    }
    (1..=n.isqrt())
        .filter(|&d| n.is_multiple_of(d))
        .flat_map(|d| [(n / d, d), (d, n / d)])
        .filter(|&(c, r)| c <= width && r <= height)
        .min_by_key(|&(c, r)| (c.abs_diff(r), r))
        .ok_or(BatchError::NoTileGrid {
            chunks: n,
            width,
            height,
        })
}

/// Encodes `width × height` RGBA8 pixels (row-major, as an assembled mandelbrot image) as a
/// PNG file.
pub fn encode_png(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>> {
    if rgba.len() as u64 != width as u64 * height as u64 * 4 || width == 0 || height == 0 {
        return Err(BatchError::ImageSize {
            width,
            height,
            actual: rgba.len() as u64,
        });
    }
    let png_err = |e: png::EncodingError| BatchError::Png {
        reason: e.to_string(),
    };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_err)?;
    writer.write_image_data(rgba).map_err(png_err)?;
    writer.finish().map_err(png_err)?;
    Ok(out)
}
