//! `matmul-u32`: wrapping `u32` matrix multiply `C = A × B`, tiled in workgroup memory.
//!
//! Input (little-endian): `u32 M, u32 K, u32 N`, then `A` (M×K `u32`, row-major), then
//! `B` (K×N `u32`, row-major). Output: `C` (M×N `u32`, row-major), each element
//! `Σ_k A[i][k]·B[k][j]` with wrapping (mod 2³²) arithmetic.

use std::borrow::Cow;

use super::reader::{Reader, le_words};
use super::{BindingDecl, BindingKind, BufferInit, DispatchPlan, KernelError, Result};

/// WGSL source of the kernel.
pub const WGSL: &str = include_str!("wgsl/matmul_u32.wgsl");
/// Side of the square tile each workgroup computes (workgroup size 16×16).
pub const TILE: u32 = 16;
/// Largest accepted K: keeps each invocation's loops far below lavapipe's 65,535 cap.
pub const MAX_K: u32 = 16_384;
/// Largest accepted M or N: 65,535 workgroups of 16 per dispatch dimension.
pub const MAX_MN: u32 = 65_535 * TILE;
/// Largest accepted element count of A, B or C (keeps u32 indexing exact).
pub const MAX_ELEMENTS: u64 = 1 << 28;

/// Bindings: params (uniform), A, B (read), C (read_write, the output).
pub const BINDINGS: &[BindingDecl] = &[
    BindingDecl {
        binding: 0,
        kind: BindingKind::Uniform,
    },
    BindingDecl {
        binding: 1,
        kind: BindingKind::StorageRead,
    },
    BindingDecl {
        binding: 2,
        kind: BindingKind::StorageRead,
    },
    BindingDecl {
        binding: 3,
        kind: BindingKind::StorageReadWrite,
    },
];

/// Matrix shape: `A` is M×K, `B` is K×N, `C` is M×N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulShape {
    /// Rows of A and C.
    pub m: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    /// Columns of B and C.
    pub n: u32,
}

impl MatmulShape {
    /// Multiply-accumulate operations of the product (the benchmark's work unit).
    pub fn macs(&self) -> u64 {
        self.m as u64 * self.k as u64 * self.n as u64
    }

    /// Checks the shape against the kernel limits.
    pub fn validate(&self, kernel: &'static str) -> Result<()> {
        let bad = |reason: String| Err(KernelError::InvalidParams { kernel, reason });
        if self.m == 0 || self.k == 0 || self.n == 0 {
            return bad(format!(
                "M, K and N must be at least 1, got {}x{}x{}",
                self.m, self.k, self.n
            ));
        }
        if self.k > MAX_K {
            return bad(format!("K = {} exceeds the maximum {MAX_K}", self.k));
        }
        if self.m > MAX_MN || self.n > MAX_MN {
            return bad(format!(
                "M and N must be at most {MAX_MN}, got M = {}, N = {}",
                self.m, self.n
            ));
        }
        let (m, k, n) = (self.m as u64, self.k as u64, self.n as u64);
        if m * k > MAX_ELEMENTS || k * n > MAX_ELEMENTS || m * n > MAX_ELEMENTS {
            return bad(format!(
                "A, B and C may hold at most {MAX_ELEMENTS} elements each"
            ));
        }
        Ok(())
    }

    /// Workgroups of the tiled dispatch: x over columns, y over rows.
    pub fn workgroups(&self) -> [u32; 3] {
        [self.n.div_ceil(TILE), self.m.div_ceil(TILE), 1]
    }

    pub(crate) fn params(&self) -> Vec<u8> {
        le_words(&[self.m, self.k, self.n, 0])
    }
}

/// Reads and validates the `M, K, N` header shared by both matmul kernels.
pub(crate) fn read_shape(r: &mut Reader<'_>, kernel: &'static str) -> Result<MatmulShape> {
    let shape = MatmulShape {
        m: r.u32("M")?,
        k: r.u32("K")?,
        n: r.u32("N")?,
    };
    shape.validate(kernel)?;
    Ok(shape)
}

/// A parsed input: shape and the raw little-endian bytes of A and B.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The shape from the header.
    pub shape: MatmulShape,
    /// A, M×K little-endian `u32`.
    pub a: &'a [u8],
    /// B, K×N little-endian `u32`.
    pub b: &'a [u8],
}

/// Parses and validates an input; fails on truncated or trailing bytes.
pub fn parse(input: &[u8]) -> Result<Input<'_>> {
    let mut r = Reader::new(input);
    let shape = read_shape(&mut r, "matmul-u32")?;
    let a = r.bytes("A", shape.m as u64 * shape.k as u64 * 4)?;
    let b = r.bytes("B", shape.k as u64 * shape.n as u64 * 4)?;
    r.finish()?;
    Ok(Input { shape, a, b })
}

/// Encodes an input; `a` and `b` must hold M×K and K×N elements.
pub fn encode_input(shape: MatmulShape, a: &[u32], b: &[u32]) -> Result<Vec<u8>> {
    check_lengths("matmul-u32", shape, a.len(), b.len())?;
    let mut out = le_words(&[shape.m, shape.k, shape.n]);
    out.extend(a.iter().chain(b).flat_map(|w| w.to_le_bytes()));
    Ok(out)
}

/// Validates a shape and the element counts of A and B given for it.
pub(crate) fn check_lengths(
    kernel: &'static str,
    shape: MatmulShape,
    a: usize,
    b: usize,
) -> Result<()> {
    shape.validate(kernel)?;
    let (want_a, want_b) = (
        shape.m as u64 * shape.k as u64,
        shape.k as u64 * shape.n as u64,
    );
    if a as u64 != want_a || b as u64 != want_b {
        let reason =
            format!("A needs M*K = {want_a} and B needs K*N = {want_b} elements, got {a} and {b}");
        return Err(KernelError::InvalidParams { kernel, reason });
    }
    Ok(())
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// CPU reference: the exact bytes every backend must produce.
pub fn cpu_reference(input: &[u8]) -> Result<Vec<u8>> {
    let Input { shape, a, b } = parse(input)?;
    let (a, b) = (words(a), words(b));
    let (k, n) = (shape.k as usize, shape.n as usize);
    let mut c = vec![0u32; shape.m as usize * n];
    for (row, c_row) in c.chunks_exact_mut(n).enumerate() {
        for (kk, &av) in a[row * k..(row + 1) * k].iter().enumerate() {
            for (cv, &bv) in c_row.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
                *cv = cv.wrapping_add(av.wrapping_mul(bv));
            }
        }
    }
    Ok(le_words(&c))
}

pub(crate) fn plan<'a>(def: &'a super::KernelDef, input: &'a [u8]) -> Result<DispatchPlan<'a>> {
    let Input { shape, a, b } = parse(input)?;
    Ok(matmul_plan(def, shape, a, b))
}

/// The dispatch of both matmul kernels: params, A, B, and a 4-byte-per-element C, one
/// 16×16 tile per workgroup. Only the element encoding of A and B differs between them.
pub(crate) fn matmul_plan<'a>(
    def: &'a super::KernelDef,
    shape: MatmulShape,
    a: &'a [u8],
    b: &'a [u8],
) -> DispatchPlan<'a> {
    let output_len = shape.m as u64 * shape.n as u64 * 4;
    DispatchPlan {
        kernel: def.id,
        wgsl: Cow::Borrowed(def.wgsl),
        entry_point: Cow::Borrowed(def.entry_point),
        bindings: BINDINGS.to_vec(),
        buffers: vec![
            BufferInit::padded(BindingKind::Uniform, shape.params()),
            BufferInit::padded(BindingKind::StorageRead, Cow::Borrowed(a)),
            BufferInit::padded(BindingKind::StorageRead, Cow::Borrowed(b)),
            BufferInit::zeroed(BindingKind::StorageReadWrite, output_len),
        ],
        output_index: 3,
        output_len,
        workgroups: shape.workgroups(),
    }
}
