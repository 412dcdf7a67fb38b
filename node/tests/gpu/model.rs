//! Quantized models on the GPU: the fixed-point helpers (the 32×32→64 product from 16-bit
//! halves, SaturatingRoundingDoublingHighMul, RoundingDivideByPOT) against 64-bit CPU
//! arithmetic on edge cases and random values, and every op, random small graphs and
//! synthetic perceptrons byte for byte against the CPU reference, on Vulkan and on GL.

use std::cell::RefCell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use stp_node::exec::gpu::GpuRuntime;
use stp_node::exec::model::run_gpu;
use stp_sdk::kernels::sample::SplitMix64;
use stp_sdk::model::fixedpoint::Requant;
use stp_sdk::model::gpu::{probe_cpu, probe_plan};
use stp_sdk::model::synth;
use stp_sdk::model::{
    Conv2dGeometry, DType, Model, Op, Pool2d, Scale, Tensor, ValidModel, run_cpu,
};

use super::support::runtime;

/// Values where fixed-point code goes wrong when done carelessly.
const EDGES: &[i32] = &[
    0,
    1,
    -1,
    2,
    -2,
    0xffff,
    0x10000,
    -0x10000,
    0x7fff,
    -0x8000,
    1 << 30,
    -(1 << 30),
    (1 << 30) + 1,
    0x5555_5555,
    -0x5555_5555,
    i32::MAX,
    i32::MIN,
    i32::MIN + 1,
    i32::MAX - 1,
];

fn check_probe(rt: &mut GpuRuntime, cases: &[(i32, i32, u32)]) -> Result<(), String> {
    let gpu = rt.run(&probe_plan(cases)).map_err(|e| e.to_string())?.0;
    let cpu = probe_cpu(cases);
    match gpu.chunks(20).zip(cpu.chunks(20)).position(|(g, c)| g != c) {
        None if gpu.len() == cpu.len() => Ok(()),
        None => Err(format!("length {} != {}", gpu.len(), cpu.len())),
        Some(i) => Err(format!(
            "case {:?}: gpu bytes {:?}, cpu bytes {:?}",
            cases[i],
            &gpu[i * 20..i * 20 + 20],
            &cpu[i * 20..i * 20 + 20]
        )),
    }
}

fn fixed_point_on(backends: &str) {
    let Some(mut rt) = runtime(backends) else {
        return;
    };
    // Every pair of edge values, each with shifts 0, 1, 15, 30 and 31.
    let edges: Vec<(i32, i32, u32)> = EDGES
        .iter()
        .flat_map(|&a| EDGES.iter().map(move |&b| (a, b)))
        .flat_map(|(a, b)| [0, 1, 15, 30, 31].map(|s| (a, b, s)))
        .collect();
    check_probe(&mut rt, &edges).unwrap_or_else(|e| panic!("{backends}: {e}"));
    // Random values: uniform bits, and near the 16-bit boundaries.
    let mut rng = SplitMix64::new(42);
    let random: Vec<(i32, i32, u32)> = (0..10_000)
        .map(|i| {
            let mut v = || match i % 3 {
                0 => rng.next_u64() as i32,
                1 => (rng.next_u64() as i32) >> (rng.next_u64() % 32),
                _ => {
                    ((rng.next_u64() % 5) as i32 - 2) + ((rng.next_u64() % 3) as i32 - 1) * 0x10000
                }
            };
            let (a, b) = (v(), v());
            (a, b, (rng.next_u64() % 32) as u32)
        })
        .collect();
    check_probe(&mut rt, &random).unwrap_or_else(|e| panic!("{backends}: {e}"));
}

#[test]
fn vulkan_fixed_point_equals_cpu() {
    fixed_point_on("vulkan");
}

#[test]
fn gl_fixed_point_equals_cpu() {
    fixed_point_on("gl");
}

fn act(dtype: DType, shape: &[u32]) -> Tensor {
    Tensor {
        dtype,
        shape: shape.to_vec(),
        data: None,
    }
}

fn constant(dtype: DType, shape: &[u32], data: Vec<u8>) -> Tensor {
    Tensor {
        dtype,
        shape: shape.to_vec(),
        data: Some(data),
    }
}

/// FC (random zero points, biases over the whole i32 range) → requantize (random
/// parameters) → argmax of the int8 result, and argmax of the int32 accumulators.
fn dense_case() -> impl Strategy<Value = (Model, Vec<u8>)> {
    (
        (1u32..300, 1u32..40, 1u32..5, -128i32..128, -128i32..128),
        (
            1i32..=i32::MAX,
            0u8..32,
            -128i32..128,
            any::<i8>(),
            any::<i8>(),
        ),
        any::<u64>(),
    )
        .prop_map(
            |((k, n, batch, zx, zw), (multiplier, shift, zp, a, b), seed)| {
                let mut rng = SplitMix64::new(seed);
                let bias: Vec<u8> = (0..n)
                    .flat_map(|i| {
                        let v = rng.next_u64() as i32;
                        // Mostly moderate biases, some extreme ones (wrapping sums).
                        if i % 4 == 0 { v } else { v >> 12 }.to_le_bytes()
                    })
                    .collect();
                let requant = Requant {
                    multiplier,
                    shift,
                    output_zero_point: zp,
                    act_min: a.min(b),
                    act_max: a.max(b),
                };
                let tensors = vec![
                    act(DType::I8, &[k]),
                    constant(DType::I8, &[n, k], rng.bytes((n * k) as usize)),
                    constant(DType::I32, &[n], bias),
                    act(DType::I32, &[n]),
                    act(DType::I8, &[n]),
                    act(DType::I32, &[1]),
                    act(DType::I32, &[1]),
                ];
                let ops = vec![
                    Op::FullyConnected {
                        input: 0,
                        weights: 1,
                        bias: 2,
                        output: 3,
                        input_zero_point: zx,
                        weight_zero_point: zw,
                    },
                    Op::Requantize {
                        input: 3,
                        output: 4,
                        requant,
                    },
                    Op::Argmax {
                        input: 4,
                        output: 5,
                    },
                    Op::Argmax {
                        input: 3,
                        output: 6,
                    },
                ];
                let model = Model {
                    tensors,
                    input: 0,
                    outputs: vec![3, 4, 5, 6],
                    ops,
                };
                let input = synth::input(&model, batch, seed ^ 1);
                (model, input)
            },
        )
}

/// Max and average pools of one NHWC input, the average reshaped flat and argmax'd.
fn pool_case() -> impl Strategy<Value = (Model, Vec<u8>)> {
    (
        (1u32..14, 1u32..14, 1u32..6, 1u32..4),
        (1u8..17, 1u8..17, 1u8..5, 1u8..5),
        any::<u64>(),
    )
        .prop_map(|((h, w, c, batch), (kh, kw, sh, sw), seed)| {
            let pool = Pool2d {
                kernel_h: kh.min(h as u8),
                kernel_w: kw.min(w as u8),
                stride_h: sh,
                stride_w: sw,
            };
            let oh = (h - pool.kernel_h as u32) / sh as u32 + 1;
            let ow = (w - pool.kernel_w as u32) / sw as u32 + 1;
            let tensors = vec![
                act(DType::I8, &[h, w, c]),
                act(DType::I8, &[oh, ow, c]),
                act(DType::I8, &[oh, ow, c]),
                act(DType::I8, &[oh * ow * c]),
                act(DType::I32, &[1]),
            ];
            let ops = vec![
                Op::MaxPool2d {
                    input: 0,
                    output: 1,
                    pool,
                },
                Op::AvgPool2d {
                    input: 0,
                    output: 2,
                    pool,
                },
                Op::Reshape {
                    input: 2,
                    output: 3,
                },
                Op::Argmax {
                    input: 3,
                    output: 4,
                },
            ];
            let model = Model {
                tensors,
                input: 0,
                outputs: vec![1, 2, 4],
                ops,
            };
            let input = synth::input(&model, batch, seed);
            (model, input)
        })
}

fn requant(multiplier: i32, shift: u8, zp: i32) -> Requant {
    Requant {
        multiplier,
        shift,
        output_zero_point: zp,
        act_min: -128,
        act_max: 127,
    }
}

/// Conv-2d (random shape, strides, padding, zero points) → two requantizations → add.
fn conv_add_case() -> impl Strategy<Value = (Model, Vec<u8>)> {
    (
        (1u32..9, 1u32..9, 1u32..5, 1u32..6, 1u32..3),
        (
            1u32..6,
            1u32..6,
            1u8..4,
            1u8..4,
            [0u8..3, 0u8..3, 0u8..3, 0u8..3],
        ),
        (
            -128i32..128,
            -128i32..128,
            0u8..=22,
            [1i32..=i32::MAX, 1i32..=i32::MAX, 1i32..=i32::MAX],
        ),
        any::<u64>(),
    )
        .prop_map(
            |(
                (h, w, cin, cout, batch),
                (kh, kw, sh, sw, pads),
                (zx, zf, left_shift, mults),
                seed,
            )| {
                let mut rng = SplitMix64::new(seed);
                let g = Conv2dGeometry {
                    stride_h: sh,
                    stride_w: sw,
                    pad_top: pads[0],
                    pad_left: pads[1],
                    pad_bottom: pads[2],
                    pad_right: pads[3],
                };
                let kh = kh.min(h + pads[0] as u32 + pads[2] as u32);
                let kw = kw.min(w + pads[1] as u32 + pads[3] as u32);
                let oh = (h + pads[0] as u32 + pads[2] as u32 - kh) / sh as u32 + 1;
                let ow = (w + pads[1] as u32 + pads[3] as u32 - kw) / sw as u32 + 1;
                let out = [oh, ow, cout];
                let bias: Vec<u8> = (0..cout)
                    .flat_map(|_| ((rng.next_u64() as i32) >> 8).to_le_bytes())
                    .collect();
                let shift = |r: &mut SplitMix64| (r.next_u64() % 24) as u8;
                let zp = |r: &mut SplitMix64| (r.next_u64() % 256) as i32 - 128;
                let (s1, s2, s3, s4, s5) = (
                    shift(&mut rng),
                    shift(&mut rng),
                    shift(&mut rng),
                    shift(&mut rng),
                    shift(&mut rng),
                );
                let (z1, z2, z3) = (zp(&mut rng), zp(&mut rng), zp(&mut rng));
                let tensors = vec![
                    act(DType::I8, &[h, w, cin]),
                    constant(
                        DType::I8,
                        &[cout, kh, kw, cin],
                        rng.bytes((cout * kh * kw * cin) as usize),
                    ),
                    constant(DType::I32, &[cout], bias),
                    act(DType::I32, &out),
                    act(DType::I8, &out),
                    act(DType::I8, &out),
                    act(DType::I8, &out),
                ];
                let ops = vec![
                    Op::Conv2d {
                        input: 0,
                        filter: 1,
                        bias: 2,
                        output: 3,
                        input_zero_point: zx,
                        filter_zero_point: zf,
                        geometry: g,
                    },
                    Op::Requantize {
                        input: 3,
                        output: 4,
                        requant: requant(mults[0], s1, z1),
                    },
                    Op::Requantize {
                        input: 3,
                        output: 5,
                        requant: requant(mults[1], s2, z2),
                    },
                    Op::Add {
                        a: 4,
                        b: 5,
                        output: 6,
                        a_zero_point: z1,
                        b_zero_point: z2,
                        left_shift,
                        a_scale: Scale {
                            multiplier: mults[2],
                            shift: s3,
                        },
                        b_scale: Scale {
                            multiplier: mults[0] / 2 + 1,
                            shift: s4,
                        },
                        requant: requant(mults[1] / 3 + 1, s5, z3),
                    },
                ];
                let model = Model {
                    tensors,
                    input: 0,
                    outputs: vec![3, 4, 5, 6],
                    ops,
                };
                let input = synth::input(&model, batch, seed ^ 7);
                (model, input)
            },
        )
}

/// A synthetic perceptron of 2 to 4 random layer sizes.
fn mlp_case() -> impl Strategy<Value = (Model, Vec<u8>)> {
    (
        proptest::collection::vec(1u32..200, 2..5),
        1u32..4,
        any::<u64>(),
    )
        .prop_map(|(layers, batch, seed)| {
            let model = synth::mlp(&layers, seed).expect("valid layers");
            let input = synth::input(&model, batch, seed);
            (model, input)
        })
}

fn gpu_equals_cpu_once(rt: &mut GpuRuntime, model: Model, input: &[u8]) -> Result<(), String> {
    let model = ValidModel::new(model).map_err(|e| format!("invalid test model: {e}"))?;
    let cpu = run_cpu(&model, input).map_err(|e| e.to_string())?;
    let (gpu, _) = run_gpu(rt, &model, input).map_err(|e| e.to_string())?;
    for (i, (g, c)) in gpu.outputs.iter().zip(&cpu.outputs).enumerate() {
        if g != c {
            let at = g.iter().zip(c).position(|(a, b)| a != b);
            return Err(format!(
                "output {i} differs (lengths {} / {}, first differing byte {at:?}) in {:?}",
                g.len(),
                c.len(),
                model.model().ops
            ));
        }
    }
    if gpu.sha256() != cpu.sha256() {
        return Err("output hashes differ".into());
    }
    Ok(())
}

fn graphs_equal_cpu<S>(backends: &str, cases: u32, what: &str, strategy: S)
where
    S: Strategy<Value = (Model, Vec<u8>)>,
{
    let Some(rt) = runtime(backends) else { return };
    let rt = RefCell::new(rt);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |(model, input)| {
        gpu_equals_cpu_once(&mut rt.borrow_mut(), model, &input).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{what} on {backends}: GPU bytes differ from the CPU reference: {e}");
    }
}

#[test]
fn vulkan_dense_ops_equal_cpu() {
    graphs_equal_cpu(
        "vulkan",
        24,
        "fully-connected/requantize/argmax",
        dense_case(),
    );
}

#[test]
fn gl_dense_ops_equal_cpu() {
    graphs_equal_cpu("gl", 12, "fully-connected/requantize/argmax", dense_case());
}

#[test]
fn vulkan_pool_ops_equal_cpu() {
    graphs_equal_cpu("vulkan", 24, "pools/reshape/argmax", pool_case());
}

#[test]
fn gl_pool_ops_equal_cpu() {
    graphs_equal_cpu("gl", 12, "pools/reshape/argmax", pool_case());
}

#[test]
fn vulkan_conv_add_ops_equal_cpu() {
    graphs_equal_cpu("vulkan", 24, "conv-2d/requantize/add", conv_add_case());
}

#[test]
fn gl_conv_add_ops_equal_cpu() {
    graphs_equal_cpu("gl", 12, "conv-2d/requantize/add", conv_add_case());
}

/// The conv/add graph returning only the sum: the conv's int32 output, read by both
/// requantizations, is dead by the add, whose output then reuses its device buffer.
fn conv_add_sum_only() -> impl Strategy<Value = (Model, Vec<u8>)> {
    conv_add_case().prop_map(|(mut model, input)| {
        model.outputs = vec![6];
        (model, input)
    })
}

#[test]
fn vulkan_graphs_reusing_device_buffers_equal_cpu() {
    graphs_equal_cpu(
        "vulkan",
        16,
        "conv-2d/add into a reused buffer",
        conv_add_sum_only(),
    );
}

#[test]
fn gl_graphs_reusing_device_buffers_equal_cpu() {
    graphs_equal_cpu(
        "gl",
        8,
        "conv-2d/add into a reused buffer",
        conv_add_sum_only(),
    );
}

#[test]
fn vulkan_synthetic_models_equal_cpu() {
    graphs_equal_cpu("vulkan", 8, "synthetic perceptron", mlp_case());
}

#[test]
fn gl_synthetic_models_equal_cpu() {
    graphs_equal_cpu("gl", 4, "synthetic perceptron", mlp_case());
}

/// The longest reduction the format allows (K = 16,384) and a 784-1024-10 perceptron:
/// within Mesa's loop cap, the GPU still equals the CPU.
#[test]
fn vulkan_models_at_their_loop_limits_equal_cpu() {
    let Some(mut rt) = runtime("vulkan") else {
        return;
    };
    for layers in [&[16_384u32, 70][..], &[784, 1024, 10]] {
        let model = synth::mlp(layers, 3).expect("valid layers");
        let input = synth::input(&model, 2, 4);
        gpu_equals_cpu_once(&mut rt, model, &input).unwrap_or_else(|e| panic!("{layers:?}: {e}"));
    }
}
