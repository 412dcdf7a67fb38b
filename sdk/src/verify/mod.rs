//! Checking a provider's output at the consumer for much less than computing it again.
//!
//! Replication (k providers agreeing on a hash) multiplies a job's price by k and leaves a
//! k = 1 job unchecked. The built-in kernels are integer and deterministic, so a consumer
//! holding the input and the returned output can check it on the CPU alone:
//!
//! | kernel             | check                                  | false accept, any wrong output |
//! |--------------------|----------------------------------------|--------------------------------|
//! | `matmul-u32`       | Freivalds over ℤ/2³², 32 0/1 vectors   | ≤ 2⁻³²                         |
//! | `matmul-i8`        | Freivalds over 𝔽ₚ, p = 2⁶¹ − 1, 1 round | ≤ 1/p ≈ 2⁻⁶¹                   |
//! | `sha256-batch`     | s sampled messages recomputed          | ≤ (1 − f)ˢ with f wrong units  |
//! | `mandelbrot-fixed` | s sampled pixels recomputed            | ≤ (1 − f)ˢ with f wrong units  |
//! | model job          | s sampled samples recomputed (all outputs) | ≤ (1 − f)ˢ with f wrong samples |
//! | custom             | none: replication is the guarantee     | —                              |
//!
//! The proofs are in [`freivalds`] and [`sampled`]. Every bound assumes the random
//! choices are unknown to the provider when it commits to its output: the [`Seed`] must
//! be drawn from the operating system's randomness *after* the output arrived (a
//! provider that could predict it could craft an output that passes). It is expanded
//! with BLAKE3 in XOF mode, so the bounds hold for any provider that cannot distinguish
//! BLAKE3's output from uniform bits.
//!
//! The result is a [`Verdict`]: what was checked, the false-accept bound, pass or fail
//! with the first failing unit, and the time the check took; it serializes for `--json`
//! output and displays as one line for people.
//!
//! ```
//! use stp_sdk::kernels::{cpu_reference, find_kernel, sample};
//! use stp_sdk::verify::{Options, Outcome, Seed, verify};
//!
//! let kernel = find_kernel("matmul-u32").unwrap();
//! let size = sample::SampleSize { m: 32, k: 32, n: 32, ..Default::default() };
//! let input = sample::sample_input(kernel.builtin, &size, 1).unwrap();
//! let mut output = cpu_reference(&kernel.id, &input).unwrap(); // as a provider returned it
//! // Drawn from the OS after the output arrived (a fixed seed only in this example).
//! let seed = Seed([7; 32]);
//! let verdict = verify(&kernel.id, &input, &output, &Options::default(), &seed).unwrap();
//! assert!(verdict.passed(), "{verdict}");
//!
//! output[4 * 100 + 3] ^= 0x80; // C[3][4] off by 2^31
//! let verdict = verify(&kernel.id, &input, &output, &Options::default(), &seed).unwrap();
//! assert!(matches!(verdict.outcome, Outcome::Fail { .. }), "{verdict}");
//! ```

pub mod freivalds;
pub mod sampled;

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::kernels::{self, Builtin, KernelId, Result};

/// Messages or pixels recomputed by default: the smallest s with 1 − 0.99ˢ ≥ 0.99, i.e. an
/// output with at least 1 % wrong units is caught with probability ≥ 99 %
/// ([`samples_for`]`(0.01, 0.99)`).
pub const DEFAULT_SAMPLES: u32 = 459;

/// The wrong-unit fraction the default sample count is sized for (and that sampled
/// verdicts state their bound at).
pub const DESIGN_FRACTION: f64 = 0.01;

/// The smallest sample count s with `1 − (1 − fraction)ˢ ≥ confidence`: s distinct units
/// drawn at random from an output whose wrong units are at least `fraction` of all of
/// them include a wrong one with probability at least `confidence`.
/// `fraction` and `confidence` must lie strictly between 0 and 1.
pub fn samples_for(fraction: f64, confidence: f64) -> u32 {
    assert!(
        fraction > 0.0 && fraction < 1.0 && confidence > 0.0 && confidence < 1.0,
        "fraction {fraction} and confidence {confidence} must lie in (0, 1)"
    );
    let s = ((1.0 - confidence).ln() / (1.0 - fraction).ln()).ceil();
    s.clamp(1.0, u32::MAX as f64) as u32
}

/// 32 bytes of randomness the random vectors and samples are derived from. Draw it from
/// the operating system *after* the output arrived; a seed the provider knows voids every
/// bound.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub [u8; 32]);

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seed({})", hex::encode(self.0))
    }
}

impl Seed {
    /// The stream of random bytes for one purpose (domain-separated, so two checks run
    /// from the same seed draw independent-looking values).
    pub(crate) fn stream(&self, purpose: &str) -> Stream {
        let context = format!("ShareThePower verify v1 {purpose}");
        let mut hasher = blake3::Hasher::new_derive_key(&context);
        hasher.update(&self.0);
        Stream {
            reader: hasher.finalize_xof(),
        }
    }
}

/// Pseudo-random words from a [`Seed`] (BLAKE3 XOF).
pub(crate) struct Stream {
    reader: blake3::OutputReader,
}

impl Stream {
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        self.reader.fill(buf);
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.reader.fill(&mut b);
        u64::from_le_bytes(b)
    }

    /// A uniform integer in `0..bound` (rejection sampling, no modulo bias).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "empty range");
        // The largest multiple of `bound` that fits in 2⁶⁴, minus one.
        let zone = u64::MAX - (u64::MAX - bound + 1) % bound;
        loop {
            let x = self.next_u64();
            if x <= zone {
                return x % bound;
            }
        }
    }
}

/// How a check is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Units recomputed by sampled checks (default [`DEFAULT_SAMPLES`]).
    pub samples: NonZeroU32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            samples: NonZeroU32::new(DEFAULT_SAMPLES).expect("nonzero"),
        }
    }
}

/// The ring a Freivalds check computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ring {
    /// ℤ/2³², the kernel's own wrapping arithmetic (not a field).
    Mod2Pow32,
    /// The prime field of p = 2⁶¹ − 1.
    Mersenne61,
}

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mod2Pow32 => "Z/2^32",
            Self::Mersenne61 => "F_p, p = 2^61-1",
        })
    }
}

/// What was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Freivalds' check: `C·r = A·(B·r)` for `rounds` random vectors `r`.
    Freivalds {
        /// The ring of the arithmetic.
        ring: Ring,
        /// Independent random vectors.
        rounds: u32,
    },
    /// Recomputation of `samples` distinct units, chosen at random, out of `units`.
    Sampled {
        /// Units recomputed with the CPU reference.
        samples: u64,
        /// Units in the output (messages or pixels).
        units: u64,
    },
    /// No check at the consumer: a custom kernel has no CPU reference or algebraic
    /// structure; agreement of the job's k replicas is the only guarantee.
    Replication,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Freivalds { ring, rounds: 1 } => write!(f, "Freivalds over {ring}, 1 round"),
            Self::Freivalds { ring, rounds } => write!(f, "Freivalds over {ring}, {rounds} rounds"),
            Self::Sampled { samples, units } => {
                write!(f, "{samples} of {units} units recomputed")
            }
            Self::Replication => {
                f.write_str("no algebraic check (custom kernel); replication is the guarantee")
            }
        }
    }
}

/// The probability that a wrong output passes the check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FalseAccept {
    /// At most `2^log2` for every wrong output, however it is wrong.
    AnyWrongOutput {
        /// Base-2 logarithm of the bound, e.g. -32.
        log2: f64,
    },
    /// At most `probability` for an output of which at least `fraction` of the units are
    /// wrong; an output with fewer wrong units may pass more often.
    WrongFraction {
        /// The fraction of wrong units the bound is stated at.
        fraction: f64,
        /// `(1 − fraction)^samples`.
        probability: f64,
    },
    /// Never: every unit was recomputed.
    Never,
    /// Not bounded by this check (nothing was checked).
    Unbounded,
}

impl fmt::Display for FalseAccept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnyWrongOutput { log2 } => write!(f, "<= 2^{log2:.0} for any wrong output"),
            Self::WrongFraction {
                fraction,
                probability,
            } => write!(
                f,
                "<= {:.2} % for >= {:.0} % wrong units",
                probability * 100.0,
                fraction * 100.0
            ),
            Self::Never => f.write_str("0 (every unit recomputed)"),
            Self::Unbounded => f.write_str("not bounded here"),
        }
    }
}

/// A unit of output, named where a check found it wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum Unit {
    /// Matrix element `C[row][col]`.
    Element {
        /// Row index.
        row: u32,
        /// Column index.
        col: u32,
    },
    /// The digest of message `index`.
    Message {
        /// Message index in the input.
        index: u32,
    },
    /// Pixel (`x`, `y`).
    Pixel {
        /// Column.
        x: u32,
        /// Row.
        y: u32,
    },
    /// Every output of sample `index` of a model job's batch.
    Sample {
        /// Sample index in the batch.
        index: u32,
    },
    /// The output has the wrong length for its input.
    Length {
        /// Bytes the input implies.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Element { row, col } => write!(f, "element C[{row}][{col}]"),
            Self::Message { index } => write!(f, "digest of message {index}"),
            Self::Pixel { x, y } => write!(f, "pixel ({x}, {y})"),
            Self::Sample { index } => write!(f, "the outputs of sample {index}"),
            Self::Length { expected, actual } => {
                write!(f, "output length {actual} bytes, expected {expected}")
            }
        }
    }
}

/// Pass, fail, or nothing checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The output passed.
    Pass,
    /// The output is wrong; `unit` is the first wrong unit found.
    Fail {
        /// The first unit found wrong.
        unit: Unit,
    },
    /// No check was made (custom kernel).
    NotChecked,
}

/// The receipt of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Kernel name (`matmul-u32`, or `custom`).
    pub kernel: &'static str,
    /// What was checked.
    #[serde(flatten)]
    pub method: Method,
    /// The false-accept bound of the check.
    pub false_accept: FalseAccept,
    /// Pass or fail.
    pub outcome: Outcome,
    /// Time the check took.
    #[serde(rename = "seconds", serialize_with = "as_seconds")]
    pub elapsed: Duration,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Verdict {
    /// Whether the output passed (a custom kernel's unchecked output does not).
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_secs_f64() * 1e3;
        match self.outcome {
            Outcome::Pass => write!(
                f,
                "{}: pass; {}; false accept {}; {ms:.2} ms",
                self.kernel, self.method, self.false_accept
            ),
            Outcome::Fail { unit } => write!(
                f,
                "{}: FAIL at {unit}; {}; {ms:.2} ms",
                self.kernel, self.method
            ),
            Outcome::NotChecked => write!(f, "{}: {}", self.kernel, self.method),
        }
    }
}

/// What a check found, before it is timed into a [`Verdict`].
pub(crate) struct Checked {
    pub(crate) method: Method,
    pub(crate) false_accept: FalseAccept,
    pub(crate) outcome: Outcome,
}

fn timed(kernel: &'static str, check: impl FnOnce() -> Result<Checked>) -> Result<Verdict> {
    let start = Instant::now();
    let c = check()?;
    Ok(Verdict {
        kernel,
        method: c.method,
        false_accept: c.false_accept,
        outcome: c.outcome,
        elapsed: start.elapsed(),
    })
}

/// Checks `output` of the job `(kernel, input)` with the kernel's check (table above),
/// using random choices derived from `seed`. Fails only if the input itself is invalid
/// for the kernel (or a custom envelope does not match its id); a wrong output, including
/// one of the wrong length, is a [`Outcome::Fail`] verdict.
pub fn verify(
    kernel: &KernelId,
    input: &[u8],
    output: &[u8],
    options: &Options,
    seed: &Seed,
) -> Result<Verdict> {
    let samples = options.samples.get();
    if let Some(job) = kernels::model_job(kernel, input) {
        let job = job?;
        return timed("model", || {
            sampled::check_model(&job, output, samples, seed)
        });
    }
    let Some(def) = kernels::builtin(kernel) else {
        kernels::custom_job(kernel, input)?;
        return Ok(Verdict {
            kernel: "custom",
            method: Method::Replication,
            false_accept: FalseAccept::Unbounded,
            outcome: Outcome::NotChecked,
            elapsed: Duration::ZERO,
        });
    };
    timed(def.name, || match def.builtin {
        Builtin::MatmulU32 => freivalds::check_u32(input, output, seed),
        Builtin::MatmulI8 => freivalds::check_i8(input, output, seed),
        Builtin::Sha256Batch => sampled::check_sha256(input, output, samples, seed),
        Builtin::Mandelbrot => sampled::check_mandelbrot(input, output, samples, seed),
    })
}

/// A [`Outcome::Fail`] for an output of the wrong length, if it is.
pub(crate) fn length_mismatch(expected: u64, output: &[u8]) -> Option<Outcome> {
    let actual = output.len() as u64;
    (actual != expected).then_some(Outcome::Fail {
        unit: Unit::Length { expected, actual },
    })
}
