//! Bad splits, bad inputs and bad outputs get typed errors that name the fix.

use stp_sdk::batch::{Assembly, BatchError, SplitBy, TileRect, encode_png, split, split_custom};
use stp_sdk::kernels::mandelbrot::Tile;
use stp_sdk::kernels::{KernelError, KernelId, sha256_batch};

use super::id;
use super::split_shapes::custom_input;

fn matmul_4x1x1() -> Vec<u8> {
    [4u32, 1, 1, 1, 2, 3, 4, 5].map(u32::to_le_bytes).concat()
}

fn image_5x5() -> Vec<u8> {
    Tile::centered(5, 5, -0.5, 0.0, 3.0, 10).encode().unwrap()
}

#[test]
fn batch_zero_chunks_rows_or_tiles_are_refused() {
    let mm = matmul_4x1x1();
    for by in [SplitBy::Chunks(0), SplitBy::Rows(0)] {
        let err = split(&id("matmul-u32"), &mm, by).unwrap_err();
        assert!(matches!(err, BatchError::Zero { .. }), "{err:?}");
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
    for by in [
        SplitBy::Chunks(0),
        SplitBy::Rows(0),
        SplitBy::Tiles { cols: 0, rows: 2 },
        SplitBy::Tiles { cols: 2, rows: 0 },
    ] {
        let err = split(&id("mandelbrot-fixed"), &image_5x5(), by).unwrap_err();
        assert!(matches!(err, BatchError::Zero { .. }), "{by}: {err:?}");
    }
}

#[test]
fn batch_more_chunks_than_units_are_refused() {
    let err = split(&id("matmul-u32"), &matmul_4x1x1(), SplitBy::Chunks(5)).unwrap_err();
    assert_eq!(
        err,
        BatchError::TooManyChunks {
            chunks: 5,
            units: 4,
            unit: "rows of A"
        }
    );
    assert!(err.to_string().contains("at most 4"), "{err}");
    let msgs = sha256_batch::encode_input(&[b"ab", b"cd"]).unwrap();
    let err = split(&id("sha256-batch"), &msgs, SplitBy::Chunks(3)).unwrap_err();
    assert_eq!(
        err,
        BatchError::TooManyChunks {
            chunks: 3,
            units: 2,
            unit: "messages"
        }
    );
    let err = split(
        &id("mandelbrot-fixed"),
        &image_5x5(),
        SplitBy::Tiles { cols: 6, rows: 1 },
    )
    .unwrap_err();
    assert_eq!(
        err,
        BatchError::TooManyChunks {
            chunks: 6,
            units: 5,
            unit: "pixel columns"
        }
    );
    let err = split(&id("mandelbrot-fixed"), &image_5x5(), SplitBy::Chunks(26)).unwrap_err();
    assert_eq!(
        err,
        BatchError::TooManyChunks {
            chunks: 26,
            units: 25,
            unit: "pixels"
        }
    );
    let err = split(&id("mandelbrot-fixed"), &image_5x5(), SplitBy::Chunks(7)).unwrap_err();
    assert_eq!(
        err,
        BatchError::NoTileGrid {
            chunks: 7,
            width: 5,
            height: 5
        }
    );
}

#[test]
fn batch_kernels_without_splitter_and_wrong_split_kinds() {
    let unknown = KernelId([7; 32]);
    let err = split(&unknown, &matmul_4x1x1(), SplitBy::Chunks(2)).unwrap_err();
    assert_eq!(err, BatchError::NoSplitter { kernel: unknown });
    assert!(err.to_string().contains("split_custom"), "{err}");
    let envelope = custom_input(1, 4);
    let custom = stp_sdk::kernels::custom::decode(&envelope)
        .unwrap()
        .kernel_id();
    let err = split(&custom, &envelope, SplitBy::Chunks(1)).unwrap_err();
    assert_eq!(err, BatchError::NoSplitter { kernel: custom });
    let err = split(
        &id("matmul-i8"),
        &[2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3],
        SplitBy::Tiles { cols: 1, rows: 1 },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::UnsupportedSplit {
                kernel: "matmul-i8",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn batch_inputs_that_do_not_parse_carry_the_kernel_error() {
    let mut truncated = matmul_4x1x1();
    truncated.pop();
    let err = split(&id("matmul-u32"), &truncated, SplitBy::Chunks(2)).unwrap_err();
    let BatchError::Input {
        kernel: "matmul-u32",
        source: KernelError::Truncated { what: "B", .. },
    } = err
    else {
        panic!("expected a truncated B, got {err:?}");
    };
    let err = split(&id("sha256-batch"), &[0; 8], SplitBy::Chunks(1)).unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::Input {
                source: KernelError::InvalidParams { .. },
                ..
            }
        ),
        "{err:?}"
    );
    let err = split(
        &id("mandelbrot-fixed"),
        &image_5x5()[..20],
        SplitBy::Chunks(1),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::Input {
                kernel: "mandelbrot-fixed",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn batch_custom_inputs_must_be_envelopes_of_one_kernel() {
    assert_eq!(split_custom(vec![]).unwrap_err(), BatchError::EmptyBatch);
    let mut cut = custom_input(2, 4);
    cut.pop();
    let err = split_custom(vec![custom_input(1, 4), cut]).unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::CustomInput {
                index: 1,
                source: KernelError::Truncated { .. }
            }
        ),
        "{err:?}"
    );
    let err = split_custom(vec![custom_input(1, 4), matmul_4x1x1()]).unwrap_err();
    assert!(
        matches!(
            err,
            BatchError::CustomInput {
                index: 1,
                source: KernelError::BadEnvelope { .. }
            }
        ),
        "{err:?}"
    );
    let first = custom_input(1, 4);
    let mut other = stp_sdk::kernels::custom::decode(&first).unwrap();
    other.entry_point = "main".into();
    other.wgsl = other.wgsl.replace("fn go", "fn main").into();
    let other = other.encode().unwrap();
    let err = split_custom(vec![custom_input(1, 4), custom_input(2, 4), other]).unwrap_err();
    let BatchError::MixedKernels {
        index: 2,
        expected,
        actual,
    } = err
    else {
        panic!("expected mixed kernels at 2, got {err:?}");
    };
    assert_ne!(expected, actual);
}

#[test]
fn batch_assemble_names_the_chunk_and_sizes() {
    let batch = split(&id("matmul-u32"), &matmul_4x1x1(), SplitBy::Chunks(2)).unwrap();
    let err = batch.assembly.assemble(&[vec![0; 8]]).unwrap_err();
    assert_eq!(
        err,
        BatchError::OutputCount {
            expected: 2,
            actual: 1
        }
    );
    let err = batch
        .assembly
        .assemble(&[vec![0; 8], vec![0; 7]])
        .unwrap_err();
    assert_eq!(
        err,
        BatchError::OutputSize {
            index: 1,
            expected: 8,
            actual: 7
        }
    );
    assert!(err.to_string().contains("chunk 1 is 7 bytes"), "{err}");
    let err = batch.assembly.check_output(2, &[0; 8]).unwrap_err();
    assert_eq!(err, BatchError::NoSuchChunk { index: 2, count: 2 });
    let image = split(&id("mandelbrot-fixed"), &image_5x5(), SplitBy::Chunks(4)).unwrap();
    let mut outputs: Vec<Vec<u8>> = (0..4)
        .map(|i| vec![0; image.assembly.chunk_output_len(i).unwrap() as usize])
        .collect();
    assert_eq!(image.assembly.assemble(&outputs).unwrap().len(), 100);
    outputs[3].push(0);
    let err = image.assembly.assemble(&outputs).unwrap_err();
    assert!(
        matches!(err, BatchError::OutputSize { index: 3, .. }),
        "{err:?}"
    );
}

#[test]
fn batch_inconsistent_image_assembly_is_refused() {
    let tile = |x, y, width, height| TileRect {
        x,
        y,
        width,
        height,
    };
    let outside = Assembly::Image {
        width: 4,
        height: 4,
        tiles: vec![tile(0, 0, 4, 2), tile(1, 2, 4, 2)],
    };
    let err = outside.assemble(&[vec![0; 32], vec![0; 32]]).unwrap_err();
    assert!(
        matches!(&err, BatchError::BadAssembly { reason } if reason.contains("tile 1")),
        "{err:?}"
    );
    let hole = Assembly::Image {
        width: 4,
        height: 4,
        tiles: vec![tile(0, 0, 4, 2)],
    };
    let err = hole.assemble(&[vec![0; 32]]).unwrap_err();
    assert!(matches!(err, BatchError::BadAssembly { .. }), "{err:?}");
    let huge = Assembly::Image {
        width: u32::MAX,
        height: u32::MAX,
        tiles: vec![],
    };
    assert!(matches!(
        huge.assemble(&[]).unwrap_err(),
        BatchError::BadAssembly { .. }
    ));
}

#[test]
fn batch_png_of_the_wrong_size_is_refused() {
    let err = encode_png(2, 2, &[0; 15]).unwrap_err();
    assert_eq!(
        err,
        BatchError::ImageSize {
            width: 2,
            height: 2,
            actual: 15
        }
    );
    assert!(encode_png(0, 0, &[]).is_err());
}
