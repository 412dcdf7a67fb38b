//! Consumer-side checks: a correct output passes, wrong outputs fail at the rates the
//! bounds state (over many fixed seeds, so the tests are deterministic).

use std::num::NonZeroU32;

use proptest::prelude::*;
use stp_sdk::kernels::custom::{CustomBuffer, CustomJob};
use stp_sdk::kernels::mandelbrot::Tile;
use stp_sdk::kernels::matmul_u32::MatmulShape;
use stp_sdk::kernels::sample::{SampleSize, SplitMix64, sample_input};
use stp_sdk::kernels::{
    BindingDecl, BindingKind, Builtin, KernelId, cpu_reference, find_kernel, sha256_batch,
};
use stp_sdk::verify::{
    DEFAULT_SAMPLES, FalseAccept, Method, Options, Outcome, Ring, Seed, Unit, samples_for, verify,
};

fn id(name: &str) -> KernelId {
    find_kernel(name).expect("built-in kernel").id
}

fn seed(i: u64) -> Seed {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&i.to_le_bytes());
    s[8] = 0xa5;
    Seed(s)
}

fn check(kernel: &str, input: &[u8], output: &[u8], s: u64) -> Outcome {
    verify(&id(kernel), input, output, &Options::default(), &seed(s))
        .expect("valid input")
        .outcome
}

fn matmul_input(kernel: Builtin, m: u32, k: u32, n: u32, s: u64) -> Vec<u8> {
    let size = SampleSize {
        m,
        k,
        n,
        ..SampleSize::default()
    };
    sample_input(kernel, &size, s).unwrap()
}

/// Adds `delta` (wrapping) to the 4-byte little-endian element at `index`.
fn bump(output: &mut [u8], index: usize, delta: u32) {
    let at = index * 4;
    let v = u32::from_le_bytes(output[at..at + 4].try_into().unwrap()).wrapping_add(delta);
    output[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

const MATMULS: [(&str, Builtin); 2] = [
    ("matmul-u32", Builtin::MatmulU32),
    ("matmul-i8", Builtin::MatmulI8),
];

#[test]
fn samples_for_one_percent_at_99_percent_is_459() {
    assert_eq!(samples_for(0.01, 0.99), 459);
    assert_eq!(DEFAULT_SAMPLES, 459);
    assert!(1.0 - 0.99f64.powi(459) >= 0.99);
    assert!(1.0 - 0.99f64.powi(458) < 0.99);
}

#[test]
fn freivalds_verdicts_state_method_and_bound() {
    let input = matmul_input(Builtin::MatmulU32, 8, 9, 10, 1);
    let output = cpu_reference(&id("matmul-u32"), &input).unwrap();
    let v = verify(
        &id("matmul-u32"),
        &input,
        &output,
        &Options::default(),
        &seed(1),
    )
    .unwrap();
    assert!(v.passed());
    assert_eq!(
        v.method,
        Method::Freivalds {
            ring: Ring::Mod2Pow32,
            rounds: 32
        }
    );
    assert_eq!(v.false_accept, FalseAccept::AnyWrongOutput { log2: -32.0 });
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["method"], "freivalds");
    assert_eq!(json["rounds"], 32);
    assert_eq!(json["outcome"]["result"], "pass");
    assert!(json["seconds"].is_f64());
    assert!(v.to_string().contains("2^-32"), "{v}");

    let input = matmul_input(Builtin::MatmulI8, 8, 9, 10, 1);
    let output = cpu_reference(&id("matmul-i8"), &input).unwrap();
    let v = verify(
        &id("matmul-i8"),
        &input,
        &output,
        &Options::default(),
        &seed(1),
    )
    .unwrap();
    assert!(v.passed());
    let FalseAccept::AnyWrongOutput { log2 } = v.false_accept else {
        panic!("{v:?}")
    };
    assert!(log2 <= -60.99, "{log2}");
}

#[test]
fn freivalds_correct_output_passes_for_every_seed() {
    for (name, kernel) in MATMULS {
        for s in 0..64 {
            let (m, k, n) = (1 + s as u32 % 7, 1 + s as u32 % 11, 1 + s as u32 % 5);
            let input = matmul_input(kernel, m, k, n, s);
            let output = cpu_reference(&id(name), &input).unwrap();
            assert_eq!(check(name, &input, &output, s), Outcome::Pass, "{name} {s}");
        }
    }
}

#[test]
fn freivalds_u32_element_off_by_2_pow_31_fails_for_every_seed() {
    // The corner of ℤ/2³²: one random vector misses this error with probability 1/2.
    let input = matmul_input(Builtin::MatmulU32, 12, 13, 14, 7);
    let good = cpu_reference(&id("matmul-u32"), &input).unwrap();
    for s in 0..256 {
        let index = (s as usize * 37) % (12 * 14);
        let mut output = good.clone();
        bump(&mut output, index, 1 << 31);
        let unit = Unit::Element {
            row: (index / 14) as u32,
            col: (index % 14) as u32,
        };
        assert_eq!(
            check("matmul-u32", &input, &output, s),
            Outcome::Fail { unit },
            "seed {s}"
        );
    }
}

#[test]
fn freivalds_u32_high_bit_errors_in_many_elements_fail() {
    // Errors that are all multiples of 2³⁰ in several elements, some in one row, where
    // they can cancel within one vector (2³¹ + 2³¹ = 0 mod 2³²).
    let input = matmul_input(Builtin::MatmulU32, 16, 16, 16, 3);
    let good = cpu_reference(&id("matmul-u32"), &input).unwrap();
    for s in 0..128 {
        let mut output = good.clone();
        for e in 0..(1 + s as usize % 9) {
            let delta = if e % 2 == 0 { 1 << 31 } else { 3 << 30 };
            bump(&mut output, (e * 29 + s as usize) % 256, delta);
        }
        assert!(
            matches!(
                check("matmul-u32", &input, &output, s),
                Outcome::Fail { .. }
            ),
            "seed {s}"
        );
    }
}

#[test]
fn freivalds_i8_element_off_by_2_pow_31_fails_for_every_seed() {
    let input = matmul_input(Builtin::MatmulI8, 12, 13, 14, 7);
    let good = cpu_reference(&id("matmul-i8"), &input).unwrap();
    for s in 0..256 {
        let index = (s as usize * 37) % (12 * 14);
        let mut output = good.clone();
        bump(&mut output, index, 1 << 31);
        let unit = Unit::Element {
            row: (index / 14) as u32,
            col: (index % 14) as u32,
        };
        assert_eq!(
            check("matmul-i8", &input, &output, s),
            Outcome::Fail { unit },
            "seed {s}"
        );
    }
}

#[test]
fn freivalds_wrong_row_fails_and_names_its_first_element() {
    for (name, kernel) in MATMULS {
        let input = matmul_input(kernel, 20, 17, 15, 11);
        let good = cpu_reference(&id(name), &input).unwrap();
        for s in 0..64u64 {
            let row = s as usize % 20;
            let mut output = good.clone();
            let mut rng = SplitMix64::new(s);
            for col in 3..15 {
                bump(&mut output, row * 15 + col, (rng.next_u64() as u32) | 1);
            }
            let unit = Unit::Element {
                row: row as u32,
                col: 3,
            };
            assert_eq!(
                check(name, &input, &output, s),
                Outcome::Fail { unit },
                "{name} seed {s}"
            );
        }
    }
}

#[test]
fn freivalds_one_percent_corrupted_elements_fail_for_every_seed() {
    for (name, kernel) in MATMULS {
        let input = matmul_input(kernel, 40, 30, 50, 5);
        let good = cpu_reference(&id(name), &input).unwrap();
        for s in 0..64u64 {
            let mut output = good.clone();
            let mut rng = SplitMix64::new(s ^ 0xdead);
            for _ in 0..20 {
                // 20 of 2,000 elements, random positions and deltas (a repeat only
                // adds to an element already wrong, or, rarely, cancels it).
                let index = (rng.next_u64() % 2000) as usize;
                bump(&mut output, index, (rng.next_u64() as u32) | 1 << 31);
            }
            if output == good {
                continue;
            }
            assert!(
                matches!(check(name, &input, &output, s), Outcome::Fail { .. }),
                "{name} seed {s}"
            );
        }
    }
}

#[test]
fn wrong_length_output_fails_with_length_unit() {
    let input = matmul_input(Builtin::MatmulU32, 4, 4, 4, 1);
    let mut output = cpu_reference(&id("matmul-u32"), &input).unwrap();
    output.pop();
    let unit = Unit::Length {
        expected: 64,
        actual: 63,
    };
    assert_eq!(
        check("matmul-u32", &input, &output, 1),
        Outcome::Fail { unit }
    );
    let input = sha256_batch::encode_input(&[[1u8; 8]; 3]).unwrap();
    assert_eq!(
        check("sha256-batch", &input, &[0; 95], 1),
        Outcome::Fail {
            unit: Unit::Length {
                expected: 96,
                actual: 95
            }
        }
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fuzz_freivalds_any_single_wrong_element_fails(
        m in 1u32..24, k in 1u32..24, n in 1u32..24, input_seed: u64, check_seed: u64,
        at: prop::sample::Index, delta in 1u32.., i8_kernel: bool,
    ) {
        let (name, kernel) = MATMULS[i8_kernel as usize];
        let input = matmul_input(kernel, m, k, n, input_seed);
        let good = cpu_reference(&id(name), &input).unwrap();
        prop_assert_eq!(check(name, &input, &good, check_seed), Outcome::Pass);
        let index = at.index((m * n) as usize);
        let mut output = good.clone();
        bump(&mut output, index, delta);
        let unit = Unit::Element { row: index as u32 / n, col: index as u32 % n };
        prop_assert_eq!(check(name, &input, &output, check_seed), Outcome::Fail { unit });
    }
}

/// `good` with one byte flipped in each of `wrong` distinct units of `unit_len` bytes.
fn corrupt_units(good: &[u8], unit_len: usize, wrong: usize, s: u64) -> Vec<u8> {
    let units = good.len() / unit_len;
    let mut output = good.to_vec();
    let mut rng = SplitMix64::new(s);
    let mut hit = vec![false; units];
    let mut done = 0;
    while done < wrong {
        let u = (rng.next_u64() % units as u64) as usize;
        if !hit[u] {
            hit[u] = true;
            output[u * unit_len + (rng.next_u64() % unit_len as u64) as usize] ^= 0x10;
            done += 1;
        }
    }
    output
}

fn sha_input() -> Vec<u8> {
    let size = SampleSize {
        count: 10_000,
        len: 20,
        ..SampleSize::default()
    };
    sample_input(Builtin::Sha256Batch, &size, 9).unwrap()
}

fn mandel_input() -> Vec<u8> {
    Tile::centered(100, 100, -0.75, 0.0, 3.0, 64)
        .encode()
        .unwrap()
}

#[test]
fn sampled_correct_output_passes_and_states_its_bound() {
    for (name, input) in [
        ("sha256-batch", sha_input()),
        ("mandelbrot-fixed", mandel_input()),
    ] {
        let good = cpu_reference(&id(name), &input).unwrap();
        for s in 0..20 {
            let v = verify(&id(name), &input, &good, &Options::default(), &seed(s)).unwrap();
            assert!(v.passed(), "{v}");
            assert_eq!(
                v.method,
                Method::Sampled {
                    samples: 459,
                    units: 10_000
                }
            );
            let FalseAccept::WrongFraction {
                fraction,
                probability,
            } = v.false_accept
            else {
                panic!("{v:?}")
            };
            assert_eq!(fraction, 0.01);
            assert!(probability <= 0.01, "{probability}");
        }
    }
}

#[test]
fn sampled_one_percent_corrupted_units_fail_at_the_stated_rate() {
    // Each seed catches the output with probability >= 99 %; over 200 fixed seeds the
    // expected misses are <= 2, and 10 would be a 1-in-10⁵ event.
    for (name, input, unit_len) in [
        ("sha256-batch", sha_input(), 32),
        ("mandelbrot-fixed", mandel_input(), 4),
    ] {
        let good = cpu_reference(&id(name), &input).unwrap();
        let mut caught = 0;
        for s in 0..200u64 {
            let output = corrupt_units(&good, unit_len, 100, s);
            if let Outcome::Fail { unit } = check(name, &input, &output, s + 1000) {
                let (at, len) = match unit {
                    Unit::Message { index } => (index as usize * 32, 32),
                    Unit::Pixel { x, y } => ((y as usize * 100 + x as usize) * 4, 4),
                    other => panic!("{other:?}"),
                };
                assert_ne!(output[at..at + len], good[at..at + len], "{name}: {unit:?}");
                caught += 1;
            }
        }
        assert!(caught >= 190, "{name}: caught {caught} of 200");
    }
}

#[test]
fn sampled_single_wrong_unit_is_caught_at_about_s_over_units() {
    // One wrong unit of 10,000 with s = 459: caught with probability 4.59 %. Over 400
    // seeds about 18 catches: the check is no stronger than its bound says.
    let input = sha_input();
    let good = cpu_reference(&id("sha256-batch"), &input).unwrap();
    let caught = (0..400u64)
        .filter(|&s| {
            let output = corrupt_units(&good, 32, 1, s);
            matches!(
                check("sha256-batch", &input, &output, s),
                Outcome::Fail { .. }
            )
        })
        .count();
    assert!((5..=40).contains(&caught), "caught {caught} of 400");
}

#[test]
fn sampled_with_samples_at_least_units_checks_everything() {
    let input = Tile::centered(16, 8, -0.75, 0.0, 3.0, 32).encode().unwrap();
    let good = cpu_reference(&id("mandelbrot-fixed"), &input).unwrap();
    let options = Options {
        samples: NonZeroU32::new(128).unwrap(),
    };
    for index in [0usize, 57, 127] {
        let mut output = good.clone();
        output[index * 4] ^= 1;
        let v = verify(&id("mandelbrot-fixed"), &input, &output, &options, &seed(3)).unwrap();
        assert_eq!(v.false_accept, FalseAccept::Never);
        let unit = Unit::Pixel {
            x: index as u32 % 16,
            y: index as u32 / 16,
        };
        assert_eq!(v.outcome, Outcome::Fail { unit });
    }
}

#[test]
fn per_unit_references_match_the_full_references() {
    let input = sha_input();
    let full = cpu_reference(&id("sha256-batch"), &input).unwrap();
    let parsed = sha256_batch::parse(&input).unwrap();
    for i in [0u32, 1, 4999, 9999] {
        assert_eq!(parsed.digest(i)[..], full[i as usize * 32..][..32]);
    }
    let tile = Tile::centered(37, 23, -0.75, 0.1, 2.5, 100);
    let full = cpu_reference(&id("mandelbrot-fixed"), &tile.encode().unwrap()).unwrap();
    for (x, y) in [(0, 0), (36, 22), (18, 11), (5, 20)] {
        let at = (y as usize * 37 + x as usize) * 4;
        assert_eq!(tile.pixel(x, y)[..], full[at..at + 4]);
    }
}

#[test]
fn custom_kernel_is_not_checked_and_says_replication_is_the_guarantee() {
    let job = CustomJob {
        wgsl: "@group(0) @binding(0) var<storage, read_write> o: array<u32>;\n@compute @workgroup_size(1) fn go() { o[0] = 7u; }".into(),
        entry_point: "go".into(),
        buffers: vec![CustomBuffer {
            decl: BindingDecl { binding: 0, kind: BindingKind::StorageReadWrite },
            size: 4,
            init: vec![].into(),
        }],
        output_binding: 0,
        workgroups: [1, 1, 1],
    };
    let input = job.encode().unwrap();
    let v = verify(
        &job.kernel_id(),
        &input,
        &[7, 0, 0, 0],
        &Options::default(),
        &seed(0),
    )
    .unwrap();
    assert_eq!(v.method, Method::Replication);
    assert_eq!(v.outcome, Outcome::NotChecked);
    assert_eq!(v.false_accept, FalseAccept::Unbounded);
    assert!(!v.passed());
    assert!(
        v.to_string().contains("replication is the guarantee"),
        "{v}"
    );
    // An unknown id with a non-envelope input is an error, not a verdict.
    assert!(verify(&KernelId([9; 32]), b"x", b"", &Options::default(), &seed(0)).is_err());
}

#[test]
fn seed_decides_the_samples() {
    // Same seed, same verdict; the samples move with the seed.
    let input = sha_input();
    let good = cpu_reference(&id("sha256-batch"), &input).unwrap();
    let output = corrupt_units(&good, 32, 100, 77);
    let a = check("sha256-batch", &input, &output, 5);
    assert_eq!(a, check("sha256-batch", &input, &output, 5));
    let distinct: std::collections::BTreeSet<String> = (0..30)
        .map(|s| format!("{:?}", check("sha256-batch", &input, &output, s)))
        .collect();
    assert!(distinct.len() > 5, "{distinct:?}");
}

#[test]
fn invalid_input_is_an_error() {
    let bad = MatmulShape { m: 0, k: 1, n: 1 };
    let mut input = Vec::new();
    for w in [bad.m, bad.k, bad.n] {
        input.extend_from_slice(&w.to_le_bytes());
    }
    assert!(
        verify(
            &id("matmul-u32"),
            &input,
            &[],
            &Options::default(),
            &seed(0)
        )
        .is_err()
    );
}
