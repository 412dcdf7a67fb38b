//! Known-answer and bad-input tests of the kernel library's CPU side.

use proptest::prelude::*;
use stp_sdk::kernels::custom::{CustomBuffer, CustomJob};
use stp_sdk::kernels::mandelbrot::{ONE, Tile, escape_count, fixed_mul, palette};
use stp_sdk::kernels::matmul_u32::MatmulShape;
use stp_sdk::kernels::*;

fn id(name: &str) -> KernelId {
    find_kernel(name).expect("built-in kernel").id
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn i32s(bytes: &[u8]) -> Vec<i32> {
    bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn matmul_u32_hand_checked_2x3_times_3x2() {
    let shape = MatmulShape { m: 2, k: 3, n: 2 };
    let input =
        matmul_u32::encode_input(shape, &[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10, 11, 12]).unwrap();
    let out = cpu_reference(&id("matmul-u32"), &input).unwrap();
    // [1 2 3; 4 5 6] x [7 8; 9 10; 11 12] = [58 64; 139 154]
    assert_eq!(u32s(&out), vec![58, 64, 139, 154]);
}

#[test]
fn matmul_u32_wraps_modulo_2_pow_32() {
    let shape = MatmulShape { m: 1, k: 2, n: 1 };
    let input = matmul_u32::encode_input(shape, &[u32::MAX, 1 << 31], &[2, 2]).unwrap();
    let out = cpu_reference(&id("matmul-u32"), &input).unwrap();
    // (2^32 - 1) * 2 + 2^31 * 2 = 2^33 - 2 + 2^32 = -2 mod 2^32
    assert_eq!(u32s(&out), vec![u32::MAX - 1]);
}

#[test]
fn matmul_i8_hand_checked_with_extremes() {
    let shape = MatmulShape { m: 2, k: 2, n: 2 };
    let input = matmul_i8::encode_input(shape, &[-128, 127, 1, -1], &[-128, 2, 1, -3]).unwrap();
    let out = cpu_reference(&id("matmul-i8"), &input).unwrap();
    // row 0: (-128)(-128) + 127*1 = 16511, (-128)(2) + 127(-3) = -637
    // row 1: 1(-128) + (-1)(1) = -129, 1*2 + (-1)(-3) = 5
    assert_eq!(i32s(&out), vec![16511, -637, -129, 5]);
}

#[test]
fn sha256_batch_matches_fips_180_vectors() {
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
        let input = sha256_batch::encode_input(&[msg, msg]).unwrap();
        let out = cpu_reference(&id("sha256-batch"), &input).unwrap();
        assert_eq!(hex::encode(&out[..32]), want);
        assert_eq!(out[..32], out[32..]);
    }
}

#[test]
fn mandelbrot_escape_counts_by_hand() {
    // Origin and -1 (period-2 orbit 0, -1, 0, ...) never escape.
    assert_eq!(escape_count(0, 0, 500), 500);
    assert_eq!(escape_count(-ONE, 0, 500), 500);
    // c = 1: z = 1, 2, 5 -> three steps, then |x| > 2.
    assert_eq!(escape_count(ONE, 0, 500), 3);
    // c = -2 - 2i: z1 = c, then x^2 + y^2 = 8 > 4.
    assert_eq!(escape_count(-2 * ONE, -2 * ONE, 500), 1);
}

#[test]
fn mandelbrot_tile_pixels_by_hand() {
    // 5x5 tile sampling -2..=2 in steps of 1.
    let tile = Tile {
        width: 5,
        height: 5,
        x_min: -2 * ONE,
        y_min: -2 * ONE,
        step: ONE,
        max_iter: 64,
    };
    let out = cpu_reference(&id("mandelbrot-fixed"), &tile.encode().unwrap()).unwrap();
    let pixel = |x: usize, y: usize| &out[(y * 5 + x) * 4..(y * 5 + x) * 4 + 4];
    assert_eq!(pixel(2, 2), [0, 0, 0, 255], "origin is inside: black");
    assert_eq!(pixel(1, 2), [0, 0, 0, 255], "-1 is inside: black");
    // n = 3: t = 24, v = 24 -> (24, 24*24 >> 8 = 2, 255 - 12 = 243)
    assert_eq!(
        pixel(3, 2),
        [24, 2, 243, 255],
        "c = 1 escapes after 3 steps"
    );
    // n = 1: v = 8 -> (8, 0, 251)
    assert_eq!(
        pixel(0, 0),
        [8, 0, 251, 255],
        "c = -2-2i escapes after 1 step"
    );
    assert_eq!(palette(3, 64), [24, 2, 243, 255]);
}

#[test]
fn mandelbrot_ppm_header_and_size() {
    let ppm = mandelbrot::to_ppm(2, 1, &[1, 2, 3, 255, 4, 5, 6, 255]).unwrap();
    assert_eq!(ppm, b"P6\n2 1\n255\n\x01\x02\x03\x04\x05\x06");
    assert!(mandelbrot::to_ppm(2, 2, &[0; 8]).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn fixed_mul_truncates_the_exact_product(a in (1 - 4 * ONE)..4 * ONE, b in (1 - 4 * ONE)..4 * ONE) {
        let exact = (a as i128 * b as i128) / (1i128 << 27); // division truncates toward zero
        prop_assert_eq!(fixed_mul(a, b) as i128, exact);
    }
}

#[test]
fn kernel_id_is_sha256_of_the_documented_encoding() {
    let bindings = [BindingDecl {
        binding: 3,
        kind: BindingKind::StorageReadWrite,
    }];
    let enc = canonical_encoding("fn", "main", &bindings, 3);
    let mut want = b"stp-kernel-v1".to_vec();
    want.extend_from_slice(&[2, 0, 0, 0, b'f', b'n', 4, 0, 0, 0, b'm', b'a', b'i', b'n']);
    want.extend_from_slice(&[1, 0, 0, 0, 3, 0, 0, 0, 2, 3, 0, 0, 0]);
    assert_eq!(enc, want);
    assert_eq!(
        KernelId::compute("fn", "main", &bindings, 3).0,
        result_hash(&want)
    );
}

#[test]
fn kernel_ids_are_distinct_and_round_trip_as_hex() {
    let defs = builtin_kernels();
    for d in defs {
        assert_eq!(d.id.to_string().parse::<KernelId>().unwrap(), d.id);
        assert_eq!(format!("0x{}", d.id).parse::<KernelId>().unwrap(), d.id);
        assert_eq!(find_kernel(&d.id.to_string()).unwrap().name, d.name);
        assert_eq!(find_kernel(d.name).unwrap().id, d.id);
        assert_eq!(defs.iter().filter(|o| o.id == d.id).count(), 1);
    }
    assert!(matches!(
        "zz".parse::<KernelId>(),
        Err(KernelError::BadId { .. })
    ));
    assert!(matches!(
        find_kernel("matmul-f32"),
        Err(KernelError::UnknownName { .. })
    ));
}

#[test]
fn truncated_and_trailing_inputs_are_rejected() {
    let shape = MatmulShape { m: 2, k: 2, n: 2 };
    let input = matmul_u32::encode_input(shape, &[1; 4], &[1; 4]).unwrap();
    let k = id("matmul-u32");
    let err = cpu_reference(&k, &input[..input.len() - 1]).unwrap_err();
    assert!(
        matches!(err, KernelError::Truncated { what: "B", .. }),
        "{err}"
    );
    let err = cpu_reference(&k, &input[..6]).unwrap_err();
    assert!(
        matches!(err, KernelError::Truncated { what: "K", .. }),
        "{err}"
    );
    let mut long = input.clone();
    long.push(0);
    assert_eq!(
        cpu_reference(&k, &long).unwrap_err(),
        KernelError::TrailingBytes { extra: 1 }
    );
    assert_eq!(max_output_size(&k, &input).unwrap(), 16);
}

#[test]
fn out_of_range_parameters_are_rejected_before_allocation() {
    let header = |m: u32, k: u32, n: u32| {
        [m, k, n]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>()
    };
    let k = id("matmul-u32");
    for (m, kk, n) in [
        (0, 1, 1),
        (1, 16_385, 1),
        (2_000_000, 1, 1),
        (65_536, 1, 65_536),
    ] {
        let err = max_output_size(&k, &header(m, kk, n)).unwrap_err();
        assert!(
            matches!(err, KernelError::InvalidParams { .. }),
            "{m}x{kk}x{n}: {err}"
        );
    }
    let bad_tile = Tile {
        width: 4,
        height: 4,
        x_min: 3 * ONE,
        y_min: 0,
        step: ONE,
        max_iter: 10,
    };
    assert!(matches!(
        bad_tile.encode(),
        Err(KernelError::InvalidParams { .. })
    ));
    let sha = [u32::MAX, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<_>>();
    assert!(matches!(
        max_output_size(&id("sha256-batch"), &sha),
        Err(KernelError::InvalidParams { .. })
    ));
}

fn sample_custom() -> CustomJob<'static> {
    CustomJob {
        wgsl: "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn go() { o[0] = 7u; }".into(),
        entry_point: "go".into(),
        buffers: vec![CustomBuffer {
            decl: BindingDecl { binding: 0, kind: BindingKind::StorageReadWrite },
            size: 4,
            init: vec![].into(),
        }],
        output_binding: 0,
        workgroups: [1, 1, 1],
    }
}

#[test]
fn custom_envelope_round_trips_and_is_bound_to_its_id() {
    let job = sample_custom();
    let bytes = job.encode().unwrap();
    let decoded = custom::decode(&bytes).unwrap();
    assert_eq!(decoded, job);
    let kid = job.kernel_id();
    assert_eq!(kid, KernelId::compute(&job.wgsl, "go", &job.bindings(), 0));
    assert_eq!(max_output_size(&kid, &bytes).unwrap(), 4);
    assert_eq!(
        cpu_reference(&kid, &bytes).unwrap_err(),
        KernelError::NoCpuReference { id: kid }
    );
    let other = id("matmul-u32");
    let wrong = KernelId([7; 32]);
    assert!(matches!(
        plan(&wrong, &bytes),
        Err(KernelError::KernelIdMismatch { .. })
    ));
    assert!(matches!(
        plan(&wrong, b"not an envelope"),
        Err(KernelError::UnknownKernel { .. })
    ));
    assert!(
        plan(&other, &bytes).is_err(),
        "an envelope is not a matmul input"
    );
}

#[test]
fn malformed_custom_envelopes_are_typed_errors() {
    let good = sample_custom().encode().unwrap();
    for cut in [0, 8, 12, 20, good.len() - 1] {
        assert!(custom::decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut no_output = sample_custom();
    no_output.output_binding = 5;
    assert!(matches!(
        no_output.encode(),
        Err(KernelError::BadEnvelope { .. })
    ));
    let mut read_only = sample_custom();
    read_only.buffers[0].decl.kind = BindingKind::StorageRead;
    assert!(matches!(
        read_only.encode(),
        Err(KernelError::BadEnvelope { .. })
    ));
    let mut zero = sample_custom();
    zero.workgroups = [0, 1, 1];
    assert!(matches!(
        zero.encode(),
        Err(KernelError::BadEnvelope { .. })
    ));
}
