//! The model library's CPU side: op semantics by hand, the format's round trip and id,
//! strict decoding and validation errors (fixed-point known answers: `model_fixedpoint.rs`).

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use stp_sdk::model::fixedpoint::*;
use stp_sdk::model::ops::{argmax, fully_connected, i32s, pool2d, rounded_average};
use stp_sdk::model::*;

#[test]
fn fully_connected_hand_checked_with_zero_points() {
    // x = [1, -2], w = [[3, 4], [-128, 127]], zp_x = 1, zp_w = -1, bias = [10, -5]:
    // row 0: (0)(4) + (-3)(5) + 10 = -5; row 1: (0)(-127) + (-3)(128) - 5 = -389.
    let x = [1u8, (-2i8) as u8];
    let w = [3u8, 4, (-128i8) as u8, 127];
    assert_eq!(
        i32s(&fully_connected(&x, &w, &[10, -5], 2, (1, -1))),
        vec![-5, -389]
    );
}

#[test]
fn argmax_first_maximum_wins() {
    let x: Vec<u8> = [3i8, 7, 7, -1, 0, 0].iter().map(|&v| v as u8).collect();
    assert_eq!(i32s(&argmax(&x, DType::I8, 3)), vec![1, 1]);
    let ints: Vec<u8> = [i32::MIN, i32::MIN]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(i32s(&argmax(&ints, DType::I32, 2)), vec![0]);
}

#[test]
fn average_pool_rounds_half_away_from_zero() {
    assert_eq!(rounded_average(3, 2), 2);
    assert_eq!(rounded_average(-3, 2), -2);
    assert_eq!(rounded_average(1, 2), 1);
    assert_eq!(rounded_average(-1, 2), -1);
    assert_eq!(rounded_average(4, 3), 1);
    assert_eq!(rounded_average(-5, 3), -2);
    // 2x2 window over a 2x2x1 image: avg(1, 2, 3, -1) = 5/4 -> 1; max 3.
    let x: Vec<u8> = [1i8, 2, 3, -1].iter().map(|&v| v as u8).collect();
    let pool = Pool2d {
        kernel_h: 2,
        kernel_w: 2,
        stride_h: 1,
        stride_w: 1,
    };
    assert_eq!(pool2d(&x, &[2, 2, 1], pool, true), vec![1]);
    assert_eq!(pool2d(&x, &[2, 2, 1], pool, false), vec![3]);
}

/// A small model: input [2,2,1] -> max pool 1x1 -> reshape [4] -> FC 3 -> requantize -> argmax.
fn small_model() -> Model {
    let act = |dtype, shape: &[u32]| Tensor {
        dtype,
        shape: shape.to_vec(),
        data: None,
    };
    let tensors = vec![
        act(DType::I8, &[2, 2, 1]),
        act(DType::I8, &[2, 2, 1]),
        act(DType::I8, &[4]),
        Tensor {
            dtype: DType::I8,
            shape: vec![3, 4],
            data: Some(vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        },
        Tensor {
            dtype: DType::I32,
            shape: vec![3],
            data: Some([-1i32, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect()),
        },
        act(DType::I32, &[3]),
        act(DType::I8, &[3]),
        act(DType::I32, &[1]),
    ];
    let pool = Pool2d {
        kernel_h: 1,
        kernel_w: 1,
        stride_h: 1,
        stride_w: 1,
    };
    let requant = Requant {
        multiplier: 1 << 30,
        shift: 0,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    Model {
        tensors,
        input: 0,
        outputs: vec![6, 7],
        ops: vec![
            Op::MaxPool2d {
                input: 0,
                output: 1,
                pool,
            },
            Op::Reshape {
                input: 1,
                output: 2,
            },
            Op::FullyConnected {
                input: 2,
                weights: 3,
                bias: 4,
                output: 5,
                input_zero_point: 0,
                weight_zero_point: 0,
            },
            Op::Requantize {
                input: 5,
                output: 6,
                requant,
            },
            Op::Argmax {
                input: 6,
                output: 7,
            },
        ],
    }
}

#[test]
fn small_model_runs_on_the_cpu_with_hand_checked_outputs() {
    let model = ValidModel::new(small_model()).unwrap();
    // x = [1, 0, -1, 2]: FC rows 1-3+8-1 = 5, 5-7+16 = 14, 9-11+24+1 = 23; halved: 3, 7, 12.
    let out = run_cpu(&model, &[1, 0, 255, 2]).unwrap();
    assert_eq!(out.batch, 1);
    assert_eq!(out.outputs[0], vec![3, 7, 12]);
    assert_eq!(i32s(&out.outputs[1]), vec![2]);
    let mut h = Sha256::new();
    h.update([3u8, 7, 12]);
    h.update(2i32.to_le_bytes());
    assert_eq!(out.sha256(), <[u8; 32]>::from(h.finalize()));
}

#[test]
fn encoding_round_trips_and_the_id_is_the_sha256_of_the_bytes() {
    let model = ValidModel::new(synth::mlp(&[20, 8, 3], 5).unwrap()).unwrap();
    let bytes = model.model().encode();
    assert_eq!(&bytes[..4], b"STPM");
    let decoded = ValidModel::decode(&bytes).unwrap();
    assert_eq!(decoded, model);
    assert_eq!(decoded.id().0, <[u8; 32]>::from(Sha256::digest(&bytes)));
    assert_eq!(
        synth::mlp(&[20, 8, 3], 5).unwrap().encode(),
        bytes,
        "deterministic"
    );
    assert_ne!(
        synth::mlp(&[20, 8, 3], 6).unwrap().encode(),
        bytes,
        "seeded"
    );
}

#[test]
fn every_truncation_and_trailing_bytes_are_rejected() {
    let bytes = small_model().encode();
    for len in 0..bytes.len() {
        let err = ValidModel::decode(&bytes[..len]).unwrap_err();
        assert!(
            matches!(err, ModelError::Truncated { .. }),
            "prefix {len}: {err}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        ValidModel::decode(&long).unwrap_err(),
        ModelError::TrailingBytes { count: 1 }
    );
}

#[test]
fn bad_header_unknown_op_and_bad_flags_are_rejected() {
    let bytes = small_model().encode();
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert_eq!(
        ValidModel::decode(&magic).unwrap_err(),
        ModelError::BadMagic
    );
    let mut version = bytes.clone();
    version[4] = 2;
    assert!(matches!(
        ValidModel::decode(&version).unwrap_err(),
        ModelError::UnsupportedVersion { version: 2, .. }
    ));
    let mut op = bytes.clone();
    let last_op = op.len() - 9; // argmax: u8 code + two u32
    op[last_op] = 99;
    assert_eq!(
        ValidModel::decode(&op).unwrap_err(),
        ModelError::UnknownOp { op: 4, code: 99 }
    );
    let mut flag = bytes.clone();
    flag[4 + 4 + 4 + 2 + 12] = 2; // tensor 0: dtype, rank, 3 dims, then the constant flag
    assert!(matches!(
        ValidModel::decode(&flag).unwrap_err(),
        ModelError::BadFlag { value: 2, .. }
    ));
}

#[test]
fn a_tensor_over_its_bound_is_rejected_before_its_data_is_read() {
    let mut model = small_model();
    model.tensors[5].shape = vec![1 << 13, 1 << 12];
    let err = ValidModel::decode(&model.encode()).unwrap_err();
    assert!(
        matches!(err, ModelError::TooLarge { value, .. } if value == 1 << 25),
        "{err}"
    );
}

#[test]
fn graph_errors_are_typed() {
    let mut swapped = small_model();
    swapped.ops.swap(0, 1);
    assert!(matches!(
        ValidModel::new(swapped).unwrap_err(),
        ModelError::NotYetProduced { tensor: 1, .. }
    ));

    let mut overwrite = small_model();
    overwrite.ops[0] = Op::Reshape {
        input: 0,
        output: 0,
    };
    assert!(matches!(
        ValidModel::new(overwrite).unwrap_err(),
        ModelError::AlreadyProduced { tensor: 0, .. }
    ));

    let mut bias = small_model();
    bias.tensors[4].shape = vec![2];
    bias.tensors[4].data = Some(vec![0; 8]);
    assert!(matches!(
        ValidModel::new(bias).unwrap_err(),
        ModelError::ShapeMismatch { .. }
    ));

    let mut weights = small_model();
    weights.tensors[3].data = None;
    assert!(matches!(
        ValidModel::new(weights).unwrap_err(),
        ModelError::Constness { .. }
    ));

    let mut range = small_model();
    range.tensors.push(Tensor {
        dtype: DType::I8,
        shape: vec![1],
        data: None,
    });
    assert!(matches!(
        ValidModel::new(range).unwrap_err(),
        ModelError::NeverProduced { tensor: 8 }
    ));

    let mut index = small_model();
    index.outputs.push(40);
    assert!(matches!(
        ValidModel::new(index).unwrap_err(),
        ModelError::NoSuchTensor { tensor: 40, .. }
    ));

    let mut shift = small_model();
    if let Op::Requantize { requant, .. } = &mut shift.ops[3] {
        requant.shift = 32;
    }
    assert!(matches!(
        ValidModel::new(shift).unwrap_err(),
        ModelError::BadParameter { .. }
    ));

    let mut dtype = small_model();
    dtype.tensors[6].dtype = DType::I32;
    assert!(matches!(
        ValidModel::new(dtype).unwrap_err(),
        ModelError::DTypeMismatch { .. }
    ));
}

#[test]
fn input_of_the_wrong_size_is_rejected() {
    let model = ValidModel::new(small_model()).unwrap();
    for len in [0, 3, 5] {
        let err = run_cpu(&model, &vec![0; len]).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::InputSize {
                    sample_bytes: 4,
                    ..
                }
            ),
            "{len}: {err}"
        );
    }
    assert_eq!(run_cpu(&model, &[0; 12]).unwrap().batch, 3);
}

#[test]
fn synthetic_models_reject_bad_layer_lists() {
    assert!(synth::mlp(&[10], 1).is_err());
    assert!(synth::mlp(&[10, 0], 1).is_err());
    assert!(synth::mlp(&[20_000, 10], 1).is_err());
}

fn geometry(stride: u8, pad: u8) -> Conv2dGeometry {
    Conv2dGeometry {
        stride_h: stride,
        stride_w: stride,
        pad_top: pad,
        pad_left: pad,
        pad_bottom: pad,
        pad_right: pad,
    }
}

#[test]
fn conv2d_hand_checked_with_padding_stride_and_zero_point() {
    use stp_sdk::model::ops::conv2d;
    let x: Vec<u8> = (1..=9).collect(); // 3x3x1
    let ones = [1u8; 4]; // 1x2x2x1
    let valid = conv2d(
        &x,
        &[3, 3, 1],
        &ones,
        &[1, 2, 2, 1],
        &[0],
        geometry(1, 0),
        (0, 0),
    );
    assert_eq!(i32s(&valid), vec![12, 16, 24, 28]);
    // Padded 5x5, stride 2: windows see {1}, {2, 3}, {4, 7}, {5, 6, 8, 9}.
    let padded = conv2d(
        &x,
        &[3, 3, 1],
        &ones,
        &[1, 2, 2, 1],
        &[100],
        geometry(2, 1),
        (0, 0),
    );
    assert_eq!(i32s(&padded), vec![101, 105, 111, 128]);
    // Input zero point 1: padding still adds nothing, each real tap one less.
    let zp = conv2d(
        &x,
        &[3, 3, 1],
        &ones,
        &[1, 2, 2, 1],
        &[0],
        geometry(2, 1),
        (1, 0),
    );
    assert_eq!(i32s(&zp), vec![0, 3, 9, 24]);
}

/// input [3] -> add(input, input) with zero points and near-identity scales.
fn add_model(a_zero_point: i32) -> Model {
    let act = |shape: &[u32]| Tensor {
        dtype: DType::I8,
        shape: shape.to_vec(),
        data: None,
    };
    let identity = Scale {
        multiplier: i32::MAX,
        shift: 0,
    };
    let requant = Requant {
        multiplier: i32::MAX,
        shift: 0,
        output_zero_point: 0,
        act_min: -128,
        act_max: 127,
    };
    Model {
        tensors: vec![act(&[3]), act(&[3])],
        input: 0,
        outputs: vec![1],
        ops: vec![Op::Add {
            a: 0,
            b: 0,
            output: 1,
            a_zero_point,
            b_zero_point: 0,
            left_shift: 0,
            a_scale: identity,
            b_scale: identity,
            requant,
        }],
    }
}

#[test]
fn add_hand_checked_saturates_and_applies_zero_points() {
    let model = ValidModel::new(add_model(0)).unwrap();
    let x: Vec<u8> = [3i8, 100, -100].iter().map(|&v| v as u8).collect();
    let out = run_cpu(&model, &x).unwrap();
    assert_eq!(out.outputs[0], [6i8, 127, -128].map(|v| v as u8));
    let model = ValidModel::new(add_model(10)).unwrap();
    let out = run_cpu(&model, &x).unwrap();
    // (3 - 10) + 3 = -4; (100 - 10) + 100 = 190 -> 127; (-100 - 10) - 100 -> -128.
    assert_eq!(out.outputs[0], [-4i8, 127, -128].map(|v| v as u8));
    let mut shifted = add_model(0);
    if let Op::Add { left_shift, .. } = &mut shifted.ops[0] {
        *left_shift = 23;
    }
    assert!(matches!(
        ValidModel::new(shifted).unwrap_err(),
        ModelError::BadParameter { .. }
    ));
}

#[test]
fn conv_and_add_round_trip_through_the_encoding() {
    let mut model = add_model(-3);
    model.tensors[0].shape = vec![2, 2, 1];
    model.tensors[1].shape = vec![2, 2, 1];
    model.tensors.push(Tensor {
        dtype: DType::I8,
        shape: vec![1, 2, 2, 1],
        data: Some(vec![1, 255, 2, 254]),
    });
    model.tensors.push(Tensor {
        dtype: DType::I32,
        shape: vec![1],
        data: Some(7i32.to_le_bytes().to_vec()),
    });
    model.tensors.push(Tensor {
        dtype: DType::I32,
        shape: vec![1, 1, 1],
        data: None,
    });
    model.ops.push(Op::Conv2d {
        input: 1,
        filter: 2,
        bias: 3,
        output: 4,
        input_zero_point: 5,
        filter_zero_point: -2,
        geometry: Conv2dGeometry {
            pad_bottom: 0,
            ..geometry(1, 0)
        },
    });
    model.outputs.push(4);
    let valid = ValidModel::new(model.clone()).unwrap();
    assert_eq!(ValidModel::decode(&model.encode()).unwrap(), valid);
    let mut wrong = model;
    wrong.tensors[4].shape = vec![2, 2, 1];
    assert!(matches!(
        ValidModel::new(wrong).unwrap_err(),
        ModelError::ShapeMismatch { .. }
    ));
}

#[test]
fn the_batch_bound_counts_activations_not_constants() {
    let model = ValidModel::new(synth::mlp(&[2048, 2048, 2], 1).unwrap()).unwrap();
    // Weights of 2048 x 2048 are shared by the batch; activations are 2048 per sample.
    assert_eq!(model.batch_of(&vec![0; 5 * 2048]).unwrap(), 5);
    let over = vec![0; 8193 * 2048]; // 8193 x 2048 > 2^24
    assert!(matches!(
        model.batch_of(&over).unwrap_err(),
        ModelError::TooLarge { .. }
    ));
}

#[test]
fn in_memory_models_meet_the_file_bounds() {
    let mut huge = small_model();
    huge.tensors[5].shape = vec![u32::MAX; 4];
    assert!(matches!(
        ValidModel::new(huge).unwrap_err(),
        ModelError::TooLarge { .. }
    ));
    let mut short = small_model();
    short.tensors[3].data = Some(vec![0; 11]); // 3 x 4 needs 12
    assert!(ValidModel::new(short).is_err());
    let mut rank = small_model();
    rank.tensors[0].shape = vec![1; 5];
    assert!(ValidModel::new(rank).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Corrupted files never panic the decoder, and whatever decodes re-encodes to the very
    /// same bytes (the encoding is canonical, so the id names one model).
    #[test]
    fn corrupted_files_are_rejected_or_canonical(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = small_model().encode();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(model) = ValidModel::decode(&bytes) {
            prop_assert_eq!(model.model().encode(), bytes);
        }
    }
}
