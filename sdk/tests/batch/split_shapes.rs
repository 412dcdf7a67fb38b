//! Exact chunk boundaries, labels and tile parameters of small splits.

use stp_sdk::batch::{Assembly, SplitBy, TileRect, split, split_custom};
use stp_sdk::kernels::custom::{CustomBuffer, CustomJob};
use stp_sdk::kernels::mandelbrot::{self, Tile};
use stp_sdk::kernels::{BindingDecl, BindingKind, sha256_batch};

use super::{bytes, id};

fn labels(batch: &stp_sdk::batch::Batch) -> Vec<&str> {
    batch.chunks.iter().map(|c| c.label.as_str()).collect()
}

fn matmul_10x2x3() -> Vec<u8> {
    let mut input = [10u32, 2, 3].map(u32::to_le_bytes).concat();
    input.extend(bytes(1, (10 * 2 + 2 * 3) * 4));
    input
}

#[test]
fn batch_chunks_spread_rows_evenly_the_first_get_the_extra() {
    let batch = split(&id("matmul-u32"), &matmul_10x2x3(), SplitBy::Chunks(3)).unwrap();
    assert_eq!(labels(&batch), ["rows 0..4", "rows 4..7", "rows 7..10"]);
    let lens = vec![4 * 3 * 4, 3 * 3 * 4, 3 * 3 * 4];
    assert_eq!(batch.assembly, Assembly::Concat { chunk_lens: lens });
}

#[test]
fn batch_rows_give_fixed_blocks_and_the_last_the_rest() {
    let batch = split(&id("matmul-u32"), &matmul_10x2x3(), SplitBy::Rows(4)).unwrap();
    assert_eq!(labels(&batch), ["rows 0..4", "rows 4..8", "rows 8..10"]);
    let one = split(&id("matmul-u32"), &matmul_10x2x3(), SplitBy::Rows(50)).unwrap();
    assert_eq!(labels(&one), ["rows 0..10"]);
}

#[test]
fn batch_sha256_ranges_of_messages() {
    let msgs: Vec<Vec<u8>> = (0..7u8).map(|i| vec![i; 5]).collect();
    let input = sha256_batch::encode_input(&msgs).unwrap();
    let batch = split(&id("sha256-batch"), &input, SplitBy::Rows(3)).unwrap();
    assert_eq!(
        labels(&batch),
        ["messages 0..3", "messages 3..6", "messages 6..7"]
    );
    assert_eq!(
        batch.chunks[2].input,
        sha256_batch::encode_input(&msgs[6..]).unwrap()
    );
}

#[test]
fn batch_mandelbrot_chunks_pick_the_squarest_grid_that_fits() {
    let tile = Tile::centered(13, 7, -0.5, 0.0, 3.0, 20).encode().unwrap();
    let batch = split(&id("mandelbrot-fixed"), &tile, SplitBy::Chunks(6)).unwrap();
    assert_eq!(
        labels(&batch),
        [
            "tile 0,0", "tile 1,0", "tile 2,0", "tile 0,1", "tile 1,1", "tile 2,1"
        ]
    );
    // 13 columns in 3 (5, 4, 4), 7 rows in 2 (4, 3).
    let Assembly::Image { tiles, .. } = &batch.assembly else {
        panic!("an image assembly");
    };
    assert_eq!(
        tiles[1],
        TileRect {
            x: 5,
            y: 0,
            width: 4,
            height: 4
        }
    );
    assert_eq!(
        tiles[5],
        TileRect {
            x: 9,
            y: 4,
            width: 4,
            height: 3
        }
    );
    // 7 tiles on a 13x3 image: only 7 across fits.
    let flat = Tile::centered(13, 3, -0.5, 0.0, 3.0, 20).encode().unwrap();
    let batch = split(&id("mandelbrot-fixed"), &flat, SplitBy::Chunks(7)).unwrap();
    assert_eq!(batch.chunks.len(), 7);
    assert!(
        matches!(&batch.assembly, Assembly::Image { tiles, .. } if tiles.iter().all(|t| t.height == 3))
    );
}

#[test]
fn batch_mandelbrot_tile_parameters_shift_the_origin_by_whole_steps() {
    let whole = Tile::centered(10, 9, -0.5, 0.0, 3.0, 30);
    let batch = split(
        &id("mandelbrot-fixed"),
        &whole.encode().unwrap(),
        SplitBy::Tiles { cols: 3, rows: 2 },
    )
    .unwrap();
    // Tile 2,1 starts at column 4 + 3 = 7 and row 5.
    let t = mandelbrot::parse(&batch.chunks[5].input).unwrap();
    assert_eq!((t.width, t.height), (3, 4));
    assert_eq!(t.x_min, whole.x_min + 7 * whole.step);
    assert_eq!(t.y_min, whole.y_min + 5 * whole.step);
    assert_eq!((t.step, t.max_iter), (whole.step, whole.max_iter));
}

#[test]
fn batch_mandelbrot_rows_make_full_width_strips() {
    let tile = Tile::centered(6, 10, -0.5, 0.0, 3.0, 20).encode().unwrap();
    let batch = split(&id("mandelbrot-fixed"), &tile, SplitBy::Rows(4)).unwrap();
    assert_eq!(labels(&batch), ["rows 0..4", "rows 4..8", "rows 8..10"]);
    assert_eq!(batch.assembly.chunk_output_len(2), Some(6 * 2 * 4));
}

/// A custom envelope writing `value` into an output of `out_size` bytes.
pub(crate) fn custom_input(value: u32, out_size: u32) -> Vec<u8> {
    CustomJob {
        wgsl: "@group(0) @binding(0) var<uniform> v: vec4<u32>;\n@group(0) @binding(1) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn go() { o[0] = v.x; }".into(),
        entry_point: "go".into(),
        buffers: vec![
            CustomBuffer {
                decl: BindingDecl { binding: 0, kind: BindingKind::Uniform },
                size: 16,
                init: value.to_le_bytes().to_vec().into(),
            },
            CustomBuffer {
                decl: BindingDecl { binding: 1, kind: BindingKind::StorageReadWrite },
                size: out_size,
                init: vec![].into(),
            },
        ],
        output_binding: 1,
        workgroups: [1, 1, 1],
    }
    .encode()
    .unwrap()
}

#[test]
fn batch_custom_one_chunk_per_envelope_outputs_concatenated() {
    let inputs = vec![custom_input(1, 4), custom_input(2, 8), custom_input(3, 4)];
    let batch = split_custom(inputs.clone()).unwrap();
    let kernel = stp_sdk::kernels::custom::decode(&inputs[0])
        .unwrap()
        .kernel_id();
    assert_eq!(batch.kernel, kernel);
    assert_eq!(labels(&batch), ["input 0", "input 1", "input 2"]);
    assert!(batch.chunks.iter().zip(&inputs).all(|(c, i)| c.input == *i));
    assert_eq!(batch.assembly.output_len(), 16);
    let outputs = vec![vec![1; 4], vec![2; 8], vec![3; 4]];
    assert_eq!(batch.assembly.assemble(&outputs).unwrap(), outputs.concat());
}

#[test]
fn batch_split_by_parses_and_prints_and_assembly_round_trips_json() {
    for (text, by) in [
        ("chunks=8", SplitBy::Chunks(8)),
        ("rows=64", SplitBy::Rows(64)),
        ("tiles=4x3", SplitBy::Tiles { cols: 4, rows: 3 }),
    ] {
        assert_eq!(text.parse::<SplitBy>().unwrap(), by);
        assert_eq!(by.to_string(), text);
    }
    for bad in ["8", "chunks=", "tiles=4", "rows=-1", "cols=3"] {
        assert!(bad.parse::<SplitBy>().is_err(), "{bad}");
    }
    let tile = Tile::centered(9, 5, -0.5, 0.0, 3.0, 20).encode().unwrap();
    for by in [SplitBy::Chunks(4), SplitBy::Rows(2)] {
        let assembly = split(&id("mandelbrot-fixed"), &tile, by).unwrap().assembly;
        let json = serde_json::to_string(&assembly).unwrap();
        assert_eq!(
            serde_json::from_str::<stp_sdk::batch::Assembly>(&json).unwrap(),
            assembly
        );
    }
    let concat = split(&id("matmul-u32"), &matmul_10x2x3(), SplitBy::Chunks(3))
        .unwrap()
        .assembly;
    let json = serde_json::to_string(&concat).unwrap();
    assert!(json.contains("\"kind\":\"concat\""), "{json}");
    assert_eq!(serde_json::from_str::<Assembly>(&json).unwrap(), concat);
}
