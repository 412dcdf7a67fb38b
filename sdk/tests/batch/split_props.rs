//! For random shapes that do not divide evenly, the assembled CPU references of the chunks
//! equal the CPU reference of the whole input, byte for byte, for every built-in kernel.

use proptest::prelude::*;
use stp_sdk::batch::{Batch, SplitBy, split};
use stp_sdk::kernels::mandelbrot::Tile;
use stp_sdk::kernels::matmul_u32::MatmulShape;
use stp_sdk::kernels::{KernelId, cpu_reference, matmul_u32};

use super::{bytes, id};

/// A total of units and a one-dimensional split of it with a remainder: `Chunks(n)` with
/// `total % n != 0`, or `Rows(r)` with `total % r != 0`.
fn uneven_linear() -> impl Strategy<Value = (u32, SplitBy)> {
    let parts = (2u32..7, 1u32..5).prop_flat_map(|(n, q)| (Just(n), Just(q), 1..n));
    (parts, any::<bool>()).prop_map(|((n, q, rem), by_rows)| {
        let by = if by_rows {
            SplitBy::Rows(n)
        } else {
            SplitBy::Chunks(n)
        };
        (q * n + rem, by)
    })
}

/// `total` units split into `parts` with a remainder: (total, parts).
fn uneven_axis() -> impl Strategy<Value = (u32, u32)> {
    (2u32..5, 1u32..6)
        .prop_flat_map(|(n, q)| (Just(n), Just(q), 1..n))
        .prop_map(|(n, q, rem)| (q * n + rem, n))
}

/// Runs every chunk on the CPU and checks the aggregate against the whole input's output.
fn assembles_to_whole(
    kernel: &KernelId,
    input: &[u8],
    by: SplitBy,
) -> Result<Batch, TestCaseError> {
    let batch = split(kernel, input, by).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let outputs: Vec<Vec<u8>> = batch
        .chunks
        .iter()
        .map(|c| cpu_reference(kernel, &c.input).expect("every chunk is a valid input"))
        .collect();
    let whole = cpu_reference(kernel, input).expect("valid whole input");
    prop_assert_eq!(batch.kernel, *kernel);
    prop_assert!(
        batch
            .chunks
            .iter()
            .enumerate()
            .all(|(i, c)| c.index as usize == i)
    );
    prop_assert_eq!(batch.assembly.output_len(), whole.len() as u64);
    prop_assert_eq!(
        batch.assembly.assemble(&outputs).expect("sizes match"),
        whole
    );
    Ok(batch)
}

fn matmul_input(elem: usize, m: u32, k: u32, n: u32, seed: u64) -> Vec<u8> {
    let mut input = Vec::new();
    for w in [m, k, n] {
        input.extend_from_slice(&w.to_le_bytes());
    }
    input.extend(bytes(seed, (m * k + k * n) as usize * elem));
    input
}

fn sha256_input(count: u32, len: u32, seed: u64) -> Vec<u8> {
    let mut input = Vec::new();
    input.extend_from_slice(&count.to_le_bytes());
    input.extend_from_slice(&len.to_le_bytes());
    input.extend(bytes(seed, (count * len) as usize));
    input
}

fn mandelbrot_view() -> impl Strategy<Value = (f64, f64, f64, u32)> {
    (-1.5f64..0.5, -1.0f64..1.0, 0.3f64..3.0, 1u32..48)
}

/// A `w × h` image whose longer side spans `span` around (`cx`, `cy`): inside `[-3, 3]²`.
fn image(w: u32, h: u32, (cx, cy, span, max_iter): (f64, f64, f64, u32)) -> Vec<u8> {
    let span_x = span * w as f64 / w.max(h) as f64;
    Tile::centered(w, h, cx, cy, span_x, max_iter)
        .encode()
        .expect("a view inside [-3, 3]^2 is valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn batch_matmul_u32_uneven_blocks_assemble_to_whole(
        (m, by) in uneven_linear(), k in 1u32..7, n in 1u32..7, seed: u64,
    ) {
        let input = matmul_input(4, m, k, n, seed);
        let batch = assembles_to_whole(&id("matmul-u32"), &input, by)?;
        let last = batch.chunks.last().unwrap();
        prop_assert!(last.label.ends_with(&format!("..{m}")), "{}", last.label);
    }

    #[test]
    fn batch_matmul_i8_uneven_blocks_assemble_to_whole(
        (m, by) in uneven_linear(), k in 1u32..7, n in 1u32..7, seed: u64,
    ) {
        let input = matmul_input(1, m, k, n, seed);
        assembles_to_whole(&id("matmul-i8"), &input, by)?;
    }

    #[test]
    fn batch_sha256_uneven_message_ranges_assemble_to_whole(
        (count, by) in uneven_linear(), len in 0u32..140, seed: u64,
    ) {
        let input = sha256_input(count, len, seed);
        let batch = assembles_to_whole(&id("sha256-batch"), &input, by)?;
        prop_assert!(batch.chunks[0].label.starts_with("messages 0.."));
    }

    #[test]
    fn batch_mandelbrot_uneven_tiles_assemble_to_whole(
        (w, cols) in uneven_axis(), (h, rows) in uneven_axis(), view in mandelbrot_view(),
    ) {
        let batch = assembles_to_whole(&id("mandelbrot-fixed"), &image(w, h, view), SplitBy::Tiles { cols, rows })?;
        prop_assert_eq!(batch.chunks.len() as u32, cols * rows);
        prop_assert_eq!(batch.assembly.image(), Some((w, h)));
    }

    #[test]
    fn batch_mandelbrot_uneven_strips_assemble_to_whole(
        (h, r) in uneven_axis(), w in 1u32..20, view in mandelbrot_view(),
    ) {
        let batch = assembles_to_whole(&id("mandelbrot-fixed"), &image(w, h, view), SplitBy::Rows(r))?;
        prop_assert_eq!(batch.chunks.len() as u32, h.div_ceil(r));
    }

    #[test]
    fn batch_mandelbrot_chunk_grid_assembles_to_whole(
        n in 2u32..13, w in 12u32..30, h in 12u32..30, view in mandelbrot_view(),
    ) {
        let batch = assembles_to_whole(&id("mandelbrot-fixed"), &image(w, h, view), SplitBy::Chunks(n))?;
        prop_assert_eq!(batch.chunks.len() as u32, n);
    }
}

#[test]
fn batch_matmul_chunk_inputs_are_plain_kernel_inputs() {
    let shape = MatmulShape { m: 3, k: 2, n: 2 };
    let input = matmul_u32::encode_input(shape, &[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10]).unwrap();
    let batch = split(&id("matmul-u32"), &input, SplitBy::Chunks(2)).unwrap();
    let second = MatmulShape { m: 1, k: 2, n: 2 };
    assert_eq!(
        batch.chunks[1].input,
        matmul_u32::encode_input(second, &[5, 6], &[7, 8, 9, 10]).unwrap()
    );
}
