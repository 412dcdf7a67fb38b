//! `mandelbrot-fixed`: a Mandelbrot tile rendered in fixed-point integer arithmetic.
//!
//! Numbers are Q5.27 fixed point in an `i32` (`value = raw / 2²⁷`, [`ONE`] is 1.0).
//! Input (little-endian, exactly 24 bytes): `u32 width, u32 height, i32 x_min, i32 y_min,
//! i32 step, u32 max_iter`. Pixel `(px, py)` samples `c = (x_min + px·step, y_min + py·step)`;
//! row 0 is `y_min` (the set is symmetric, so this only flips the picture).
//! Output: `width × height` RGBA8 pixels, row-major (4 bytes each): black for points that
//! reach `max_iter`, else [`palette`] of the escape count.
//!
//! Arithmetic (identical in WGSL and here): `mul(a, b) = sign · ((|a|·|b|) >> 27)` with an
//! exact 64-bit product (emulated from 16-bit limbs on the GPU). Each step first stops when
//! `|x| > 2` or `|y| > 2`, then when `x² + y² > 4`; with every `c` inside `[-4, 4]²` no
//! intermediate value leaves the Q5.27 range, so nothing ever wraps.

use std::borrow::Cow;

use super::reader::{Reader, le_words};
use super::{BindingDecl, BindingKind, BufferInit, DispatchPlan, KernelError, Result};

/// WGSL source of the kernel.
pub const WGSL: &str = include_str!("wgsl/mandelbrot.wgsl");
/// Fractional bits of the fixed-point format.
pub const FRAC_BITS: u32 = 27;
/// 1.0 in Q5.27.
pub const ONE: i32 = 1 << FRAC_BITS;
/// Largest accepted iteration cap (per-invocation loops stay far below 65,535).
pub const MAX_ITER: u32 = 16_384;
/// Largest accepted pixel count.
pub const MAX_PIXELS: u64 = 1 << 26;
/// Workgroup side (8×8 pixels).
pub const WORKGROUP: u32 = 8;
/// Largest accepted |coordinate| of any sampled point: 4.0.
pub const MAX_COORD: i64 = 4 * ONE as i64;

/// Bindings: params (uniform), pixels (read_write, the output).
pub const BINDINGS: &[BindingDecl] = &[
    BindingDecl {
        binding: 0,
        kind: BindingKind::Uniform,
    },
    BindingDecl {
        binding: 1,
        kind: BindingKind::StorageReadWrite,
    },
];

/// The tile to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Real part of pixel column 0 (Q5.27).
    pub x_min: i32,
    /// Imaginary part of pixel row 0 (Q5.27).
    pub y_min: i32,
    /// Distance between neighbouring pixels (Q5.27, positive).
    pub step: i32,
    /// Iteration cap; points that reach it are inside the set.
    pub max_iter: u32,
}

impl Tile {
    /// A tile of `width × height` pixels centred on (`cx`, `cy`) spanning `span` horizontally
    /// (floating point is used only here, to pick the integer parameters).
    pub fn centered(width: u32, height: u32, cx: f64, cy: f64, span: f64, max_iter: u32) -> Self {
        let scale = ONE as f64;
        let step = (span / width.max(1) as f64 * scale).round().max(1.0) as i32;
        let x_min = (cx * scale) as i64 - (step as i64 * width as i64) / 2;
        let y_min = (cy * scale) as i64 - (step as i64 * height as i64) / 2;
        let clamp = |v: i64| v.clamp(-MAX_COORD, MAX_COORD) as i32;
        Self {
            width,
            height,
            x_min: clamp(x_min),
            y_min: clamp(y_min),
            step,
            max_iter,
        }
    }

    /// Checks the tile against the kernel limits.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(KernelError::InvalidParams {
                kernel: "mandelbrot-fixed",
                reason,
            })
        };
        let pixels = self.width as u64 * self.height as u64;
        if self.width == 0 || self.height == 0 || pixels > MAX_PIXELS {
            return bad(format!(
                "width × height must be 1..={MAX_PIXELS} pixels, got {}x{}",
                self.width, self.height
            ));
        }
        if self.max_iter == 0 || self.max_iter > MAX_ITER {
            return bad(format!(
                "max_iter must be 1..={MAX_ITER}, got {}",
                self.max_iter
            ));
        }
        if self.step <= 0 {
            return bad(format!("step must be positive, got {}", self.step));
        }
        let x_max = self.x_min as i64 + (self.width as i64 - 1) * self.step as i64;
        let y_max = self.y_min as i64 + (self.height as i64 - 1) * self.step as i64;
        let inside = |v: i64| (-MAX_COORD..=MAX_COORD).contains(&v);
        if ![self.x_min as i64, x_max, self.y_min as i64, y_max]
            .into_iter()
            .all(inside)
        {
            return bad("every sampled point must lie in [-4, 4] × [-4, 4]".to_owned());
        }
        Ok(())
    }

    /// Encodes the tile as kernel input.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        let (x, y, s) = (self.x_min as u32, self.y_min as u32, self.step as u32);
        Ok(le_words(&[self.width, self.height, x, y, s, self.max_iter]))
    }

    /// The point sampled by pixel (`px`, `py`), in Q5.27.
    pub fn point(&self, px: u32, py: u32) -> (i32, i32) {
        let at = |min: i32, p: u32| min.wrapping_add((p as i32).wrapping_mul(self.step));
        (at(self.x_min, px), at(self.y_min, py))
    }

    /// The RGBA8 pixel (`px`, `py`) alone, as [`cpu_reference`] computes it (sampled
    /// verification recomputes a few of them).
    pub fn pixel(&self, px: u32, py: u32) -> [u8; 4] {
        let (cx, cy) = self.point(px, py);
        palette(escape_count(cx, cy, self.max_iter), self.max_iter)
    }
}

/// Parses and validates an input.
pub fn parse(input: &[u8]) -> Result<Tile> {
    let mut r = Reader::new(input);
    let tile = Tile {
        width: r.u32("width")?,
        height: r.u32("height")?,
        x_min: r.i32("x_min")?,
        y_min: r.i32("y_min")?,
        step: r.i32("step")?,
        max_iter: r.u32("max_iter")?,
    };
    r.finish()?;
    tile.validate()?;
    Ok(tile)
}

/// Fixed-point multiply: `sign · ((|a|·|b|) >> 27)`, exactly as the WGSL computes it.
pub fn fixed_mul(a: i32, b: i32) -> i32 {
    let magnitude = ((a.unsigned_abs() as u64 * b.unsigned_abs() as u64) >> FRAC_BITS) as u32;
    let value = magnitude as i32;
    if (a < 0) != (b < 0) {
        value.wrapping_neg()
    } else {
        value
    }
}

/// Iterations before the orbit of `c` escapes, or `max_iter` if it never does.
pub fn escape_count(cx: i32, cy: i32, max_iter: u32) -> u32 {
    const TWO: i32 = 2 * ONE;
    const FOUR: i32 = 4 * ONE;
    let (mut x, mut y, mut n) = (0i32, 0i32, 0u32);
    while n < max_iter {
        if !(-TWO..=TWO).contains(&x) || !(-TWO..=TWO).contains(&y) {
            break;
        }
        let (x2, y2) = (fixed_mul(x, x), fixed_mul(y, y));
        if x2.wrapping_add(y2) > FOUR {
            break;
        }
        let xy = fixed_mul(x, y);
        y = xy.wrapping_add(xy).wrapping_add(cy);
        x = x2.wrapping_sub(y2).wrapping_add(cx);
        n += 1;
    }
    n
}

/// RGBA8 colour of an escape count: black inside, else a repeating integer gradient.
pub fn palette(n: u32, max_iter: u32) -> [u8; 4] {
    if n >= max_iter {
        return [0, 0, 0, 255];
    }
    let t = (n.wrapping_mul(8)) & 511;
    let v = if t > 255 { 511 - t } else { t };
    [v as u8, ((v * v) >> 8) as u8, (255 - v / 2) as u8, 255]
}

/// CPU reference: the exact bytes every backend must produce.
pub fn cpu_reference(input: &[u8]) -> Result<Vec<u8>> {
    let tile = parse(input)?;
    let mut out = Vec::with_capacity(tile.width as usize * tile.height as usize * 4);
    for py in 0..tile.height {
        for px in 0..tile.width {
            let (cx, cy) = tile.point(px, py);
            out.extend_from_slice(&palette(escape_count(cx, cy, tile.max_iter), tile.max_iter));
        }
    }
    Ok(out)
}

/// Wraps RGBA8 output in a binary PPM (P6) image any viewer opens (alpha dropped).
pub fn to_ppm(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>> {
    if rgba.len() as u64 != width as u64 * height as u64 * 4 {
        let reason = format!("{} bytes is not {width}x{height} RGBA8 pixels", rgba.len());
        return Err(KernelError::InvalidParams {
            kernel: "mandelbrot-fixed",
            reason,
        });
    }
    let mut out = format!("P6\n{width} {height}\n255\n").into_bytes();
    rgba.chunks_exact(4)
        .for_each(|p| out.extend_from_slice(&p[..3]));
    Ok(out)
}

pub(crate) fn plan<'a>(def: &'a super::KernelDef, input: &'a [u8]) -> Result<DispatchPlan<'a>> {
    let t = parse(input)?;
    let output_len = t.width as u64 * t.height as u64 * 4;
    let params = le_words(&[
        t.width,
        t.height,
        t.x_min as u32,
        t.y_min as u32,
        t.step as u32,
        t.max_iter,
        0,
        0,
    ]);
    Ok(DispatchPlan {
        kernel: def.id,
        wgsl: Cow::Borrowed(def.wgsl),
        entry_point: Cow::Borrowed(def.entry_point),
        bindings: BINDINGS.to_vec(),
        buffers: vec![
            BufferInit::padded(BindingKind::Uniform, params),
            BufferInit::zeroed(BindingKind::StorageReadWrite, output_len),
        ],
        output_index: 1,
        output_len,
        workgroups: [t.width.div_ceil(WORKGROUP), t.height.div_ceil(WORKGROUP), 1],
    })
}
