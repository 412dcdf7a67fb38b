//! Splitting a matrix product by row blocks of A: each block with the whole B is a product
//! of its own, and the blocks of C, one after the other, are C.

use super::{Batch, BatchError, Result, SplitBy, ranges};
use crate::kernels::matmul_u32::MatmulShape;
use crate::kernels::{Builtin, KernelDef, matmul_i8, matmul_u32};

/// Splits a `matmul-u32` or `matmul-i8` input into blocks of rows of A.
pub(super) fn split(def: &KernelDef, input: &[u8], by: SplitBy) -> Result<Batch> {
    let input_err = |source| BatchError::Input {
        kernel: def.name,
        source,
    };
    let (shape, a, b, elem) = match def.builtin {
        Builtin::MatmulI8 => {
            let p = matmul_i8::parse(input).map_err(input_err)?;
            (p.shape, p.a, p.b, 1)
        }
        _ => {
            let p = matmul_u32::parse(input).map_err(input_err)?;
            (p.shape, p.a, p.b, 4)
        }
    };
    let MatmulShape { k, n, .. } = shape;
    let row_bytes = k as usize * elem;
    let parts = ranges::linear(shape.m, by, def.name, "rows of A")?
        .into_iter()
        .map(|rows| {
            let m = rows.end - rows.start;
            let mut chunk = Vec::with_capacity(12 + m as usize * row_bytes + b.len());
            for word in [m, k, n] {
                chunk.extend_from_slice(&word.to_le_bytes());
            }
            chunk.extend_from_slice(
                &a[rows.start as usize * row_bytes..rows.end as usize * row_bytes],
            );
            chunk.extend_from_slice(b);
            let label = format!("rows {}..{}", rows.start, rows.end);
            (chunk, label, m as u64 * n as u64 * 4)
        })
        .collect();
    Ok(Batch::concat(def.id, parts))
}
