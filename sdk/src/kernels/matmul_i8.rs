//! `matmul-i8`: `i8 × i8 → i32` matrix multiply, the building block of quantized inference.
//!
//! Input (little-endian): `u32 M, u32 K, u32 N`, then `A` (M×K `i8`, row-major), then
//! `B` (K×N `i8`, row-major). Output: `C` (M×N `i32` LE, row-major),
//! `C[i][j] = Σ_k A[i][k]·B[k][j]` accumulated in `i32` (wrapping, which the size limits
//! make unreachable: |C| ≤ 16,384 · 128² < 2³¹).

use super::matmul_u32::{MatmulShape, check_lengths, read_shape};
use super::reader::Reader;
use super::{BindingDecl, DispatchPlan, Result};

/// WGSL source of the kernel.
pub const WGSL: &str = include_str!("wgsl/matmul_i8.wgsl");
/// Bindings: params (uniform), A, B (read, packed bytes), C (read_write, the output).
pub const BINDINGS: &[BindingDecl] = super::matmul_u32::BINDINGS;

/// A parsed input: shape and the raw bytes of A and B.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The shape from the header.
    pub shape: MatmulShape,
    /// A, M×K `i8`.
    pub a: &'a [u8],
    /// B, K×N `i8`.
    pub b: &'a [u8],
}

/// Parses and validates an input; fails on truncated or trailing bytes.
pub fn parse(input: &[u8]) -> Result<Input<'_>> {
    let mut r = Reader::new(input);
    let shape = read_shape(&mut r, "matmul-i8")?;
    let a = r.bytes("A", shape.m as u64 * shape.k as u64)?;
    let b = r.bytes("B", shape.k as u64 * shape.n as u64)?;
    r.finish()?;
    Ok(Input { shape, a, b })
}

/// Encodes an input; `a` and `b` must hold M×K and K×N elements.
pub fn encode_input(shape: MatmulShape, a: &[i8], b: &[i8]) -> Result<Vec<u8>> {
    check_lengths("matmul-i8", shape, a.len(), b.len())?;
    let mut out = super::reader::le_words(&[shape.m, shape.k, shape.n]);
    out.extend(a.iter().chain(b).map(|&v| v as u8));
    Ok(out)
}

/// CPU reference: the exact bytes every backend must produce.
pub fn cpu_reference(input: &[u8]) -> Result<Vec<u8>> {
    let Input { shape, a, b } = parse(input)?;
    let (k, n) = (shape.k as usize, shape.n as usize);
    let mut c = vec![0i32; shape.m as usize * n];
    for (row, c_row) in c.chunks_exact_mut(n).enumerate() {
        for (kk, &av) in a[row * k..(row + 1) * k].iter().enumerate() {
            let av = av as i8 as i32;
            for (cv, &bv) in c_row.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
                *cv = cv.wrapping_add(av.wrapping_mul(bv as i8 as i32));
            }
        }
    }
    Ok(c.iter().flat_map(|v| v.to_le_bytes()).collect())
}

pub(crate) fn plan<'a>(def: &'a super::KernelDef, input: &'a [u8]) -> Result<DispatchPlan<'a>> {
    let Input { shape, a, b } = parse(input)?;
    Ok(super::matmul_u32::matmul_plan(def, shape, a, b))
}
