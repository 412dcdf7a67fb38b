//! GPU output == CPU reference, byte for byte, for random shapes and inputs (proptest), on
//! Vulkan and on GL; and known answers computed on the GPU.

use std::cell::RefCell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use stp_node::exec::gpu::GpuRuntime;
use stp_sdk::kernels::mandelbrot::{ONE, Tile};
use stp_sdk::kernels::matmul_u32::MatmulShape;
use stp_sdk::kernels::sample::{SampleSize, sample_input};
use stp_sdk::kernels::{self, Builtin, KernelId, find_kernel};

use super::support::runtime;

fn id(name: &str) -> KernelId {
    find_kernel(name).expect("built-in").id
}

fn gpu_run(rt: &mut GpuRuntime, kernel: &KernelId, input: &[u8]) -> Vec<u8> {
    let plan = kernels::plan(kernel, input).expect("valid input");
    rt.run(&plan).expect("GPU run").0
}

/// Runs `cases` random inputs from `strategy` on `backends` and compares with the CPU.
fn gpu_equals_cpu<S>(backends: &str, cases: u32, kernel: &str, strategy: S)
where
    S: Strategy<Value = Vec<u8>>,
{
    let Some(rt) = runtime(backends) else { return };
    let rt = RefCell::new(rt);
    let kid = id(kernel);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |input| {
        let plan = kernels::plan(&kid, &input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (gpu, _) = rt
            .borrow_mut()
            .run(&plan)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let cpu =
            kernels::cpu_reference(&kid, &input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(gpu.len(), cpu.len());
        let first_diff = gpu.iter().zip(&cpu).position(|(g, c)| g != c);
        prop_assert!(
            first_diff.is_none(),
            "{kernel} on {backends}: first differing byte {first_diff:?}"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{kernel} on {backends}: GPU bytes differ from the CPU reference: {e}");
    }
}

fn matmul_inputs(kernel: Builtin) -> impl Strategy<Value = Vec<u8>> {
    (1u32..40, 1u32..70, 1u32..40, any::<u64>()).prop_map(move |(m, k, n, seed)| {
        let size = SampleSize {
            m,
            k,
            n,
            ..SampleSize::default()
        };
        sample_input(kernel, &size, seed).expect("valid shape")
    })
}

fn sha_inputs() -> impl Strategy<Value = Vec<u8>> {
    (1u32..150, 0u32..300, any::<u64>()).prop_map(|(count, len, seed)| {
        let size = SampleSize {
            count,
            len,
            ..SampleSize::default()
        };
        sample_input(Builtin::Sha256Batch, &size, seed).expect("valid size")
    })
}

fn mandelbrot_inputs() -> impl Strategy<Value = Vec<u8>> {
    (
        1u32..40,
        1u32..40,
        1u32..300,
        1i32..ONE / 8,
        0.0f64..1.0,
        0.0f64..1.0,
    )
        .prop_map(|(width, height, max_iter, step, fx, fy)| {
            // Place the tile anywhere inside [-4, 4]^2.
            let room = |pixels: u32| 8 * ONE as i64 - (pixels as i64 - 1) * step as i64;
            let x_min = (-4 * ONE as i64 + (fx * room(width) as f64) as i64) as i32;
            let y_min = (-4 * ONE as i64 + (fy * room(height) as f64) as i64) as i32;
            Tile {
                width,
                height,
                x_min,
                y_min,
                step,
                max_iter,
            }
            .encode()
            .expect("tile inside range")
        })
}

#[test]
fn vulkan_matmul_u32_equals_cpu() {
    gpu_equals_cpu(
        "vulkan",
        24,
        "matmul-u32",
        matmul_inputs(Builtin::MatmulU32),
    );
}

#[test]
fn vulkan_matmul_i8_equals_cpu() {
    gpu_equals_cpu("vulkan", 24, "matmul-i8", matmul_inputs(Builtin::MatmulI8));
}

#[test]
fn vulkan_sha256_batch_equals_cpu() {
    gpu_equals_cpu("vulkan", 24, "sha256-batch", sha_inputs());
}

#[test]
fn vulkan_mandelbrot_equals_cpu() {
    gpu_equals_cpu("vulkan", 24, "mandelbrot-fixed", mandelbrot_inputs());
}

#[test]
fn gl_matmul_u32_equals_cpu() {
    gpu_equals_cpu("gl", 16, "matmul-u32", matmul_inputs(Builtin::MatmulU32));
}

#[test]
fn gl_matmul_i8_equals_cpu() {
    gpu_equals_cpu("gl", 16, "matmul-i8", matmul_inputs(Builtin::MatmulI8));
}

#[test]
fn gl_sha256_batch_equals_cpu() {
    gpu_equals_cpu("gl", 16, "sha256-batch", sha_inputs());
}

#[test]
fn gl_mandelbrot_equals_cpu() {
    gpu_equals_cpu("gl", 16, "mandelbrot-fixed", mandelbrot_inputs());
}

#[test]
fn gpu_sha256_matches_fips_180_vectors() {
    let Some(mut rt) = runtime("vulkan") else {
        return;
    };
    let cases: [(&[u8], &str); 3] = [
        (
            b"",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        (
            b"abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for (msg, want) in cases {
        let input = kernels::sha256_batch::encode_input(&[msg; 3]).unwrap();
        let out = gpu_run(&mut rt, &id("sha256-batch"), &input);
        for digest in out.chunks_exact(32) {
            assert_eq!(
                hex::encode(digest),
                want,
                "message {:?}",
                String::from_utf8_lossy(msg)
            );
        }
    }
}

#[test]
fn gpu_matmul_hand_checked() {
    let Some(mut rt) = runtime("vulkan") else {
        return;
    };
    let shape = MatmulShape { m: 2, k: 3, n: 2 };
    let input =
        kernels::matmul_u32::encode_input(shape, &[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10, 11, 12])
            .unwrap();
    let out = gpu_run(&mut rt, &id("matmul-u32"), &input);
    let words: Vec<u32> = out
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(words, vec![58, 64, 139, 154]);

    let input =
        kernels::matmul_i8::encode_input(shape, &[-128, 127, 1, -1, 0, 5], &[-128, 2, 1, -3, 7, 7])
            .unwrap();
    let out = gpu_run(&mut rt, &id("matmul-i8"), &input);
    let words: Vec<i32> = out
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    // A = [-128 127 1; -1 0 5], B = [-128 2; 1 -3; 7 7]
    // row 0: 16384 + 127 + 7 = 16518, -256 - 381 + 7 = -630; row 1: 128 + 0 + 35 = 163, -2 + 0 + 35 = 33
    assert_eq!(words, vec![16518, -630, 163, 33]);
}

#[test]
fn gpu_mandelbrot_pixels_by_hand() {
    let Some(mut rt) = runtime("vulkan") else {
        return;
    };
    let tile = Tile {
        width: 5,
        height: 5,
        x_min: -2 * ONE,
        y_min: -2 * ONE,
        step: ONE,
        max_iter: 64,
    };
    let out = gpu_run(&mut rt, &id("mandelbrot-fixed"), &tile.encode().unwrap());
    let pixel = |x: usize, y: usize| out[(y * 5 + x) * 4..(y * 5 + x) * 4 + 4].to_vec();
    assert_eq!(pixel(2, 2), [0, 0, 0, 255], "origin: inside, black");
    assert_eq!(
        pixel(3, 2),
        [24, 2, 243, 255],
        "c = 1 escapes after 3 steps"
    );
    assert_eq!(
        pixel(0, 0),
        [8, 0, 251, 255],
        "c = -2-2i escapes after 1 step"
    );
}

/// The largest accepted loop counts must run to the end on lavapipe (which silently stops
/// loops after 65,535 iterations): maximum K, message length and iteration cap.
#[test]
fn gpu_kernels_at_their_loop_limits_equal_cpu() {
    let Some(mut rt) = runtime("vulkan") else {
        return;
    };
    let cases = [
        (
            Builtin::MatmulU32,
            SampleSize {
                m: 3,
                k: 16_384,
                n: 5,
                ..SampleSize::default()
            },
        ),
        (
            Builtin::MatmulI8,
            SampleSize {
                m: 3,
                k: 16_384,
                n: 5,
                ..SampleSize::default()
            },
        ),
        (
            Builtin::Sha256Batch,
            SampleSize {
                count: 3,
                len: 16_384,
                ..SampleSize::default()
            },
        ),
    ];
    for (kernel, size) in cases {
        let input = sample_input(kernel, &size, 3).unwrap();
        let def = kernels::builtin_kernels()
            .iter()
            .find(|d| d.builtin == kernel)
            .unwrap();
        assert_eq!(
            gpu_run(&mut rt, &def.id, &input),
            kernels::cpu_reference(&def.id, &input).unwrap(),
            "{}",
            def.name
        );
    }
    // The origin never escapes: all 16,384 iterations must run for the pixel to be black.
    let tile = Tile {
        width: 1,
        height: 1,
        x_min: 0,
        y_min: 0,
        step: 1,
        max_iter: 16_384,
    };
    let input = tile.encode().unwrap();
    assert_eq!(
        gpu_run(&mut rt, &id("mandelbrot-fixed"), &input),
        [0, 0, 0, 255]
    );
    // c = 0.25 + 0i converges slowly but stays bounded; c just outside escapes late.
    let slow = Tile {
        width: 2,
        height: 1,
        x_min: ONE / 4,
        y_min: 0,
        step: 1 << 12,
        max_iter: 16_384,
    };
    let input = slow.encode().unwrap();
    assert_eq!(
        gpu_run(&mut rt, &id("mandelbrot-fixed"), &input),
        kernels::cpu_reference(&id("mandelbrot-fixed"), &input).unwrap()
    );
}

#[test]
fn gpu_matmul_across_many_tiles_equals_cpu() {
    let Some(mut rt) = runtime("vulkan") else {
        return;
    };
    let size = SampleSize {
        m: 100,
        k: 300,
        n: 70,
        ..SampleSize::default()
    };
    for kernel in [Builtin::MatmulU32, Builtin::MatmulI8] {
        let input = sample_input(kernel, &size, 11).unwrap();
        let def = kernels::builtin_kernels()
            .iter()
            .find(|d| d.builtin == kernel)
            .unwrap();
        assert_eq!(
            gpu_run(&mut rt, &def.id, &input),
            kernels::cpu_reference(&def.id, &input).unwrap(),
            "{}",
            def.name
        );
    }
}
