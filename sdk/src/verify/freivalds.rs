//! Freivalds' check of `C = A·B` in O(n²) instead of O(n³): for a random vector `r`,
//! compare `C·r` with `A·(B·r)`. An honest `C` always passes.
//!
//! ## `matmul-u32`: ℤ/2³², 32 rounds of 0/1 vectors, false accept ≤ 2⁻³²
//!
//! The kernel's output is `C = A·B mod 2³²`; the exact integer product is not in the
//! output, so the check has to work in ℤ/2³², which is not a field: Schwartz–Zippel does
//! not apply, and with one vector of uniform u32 entries an error of 2³¹ in one element
//! passes with probability exactly 1/2 (it is invisible whenever the matching entry is
//! even). We use [`U32_ROUNDS`] = 32 independent vectors with entries uniform in {0, 1},
//! as the 32 columns of an N-by-32 matrix `R`, and compare `C'·R` with `A·(B·R)`.
//!
//! *Claim.* For every wrong output `C' ≠ C`, with `R` uniform in {0, 1}^(N×t),
//! `P[C'·R = A·(B·R) (mod 2³²)] ≤ 2⁻ᵗ`; with t = 32 that is ≤ 2⁻³².
//!
//! *Proof.* `C'·R − A·(B·R) = E·R (mod 2³²)` with `E = C' − C ≠ 0`. Take `i, j` with
//! `E[i][j] ≠ 0`. For one column `ρ` of `R`, condition on every entry but `ρ[j]`; then
//! `(E·ρ)[i]` is `c` or `c + E[i][j]` for a fixed `c`, two different elements of ℤ/2³²,
//! so at most one of the two equally likely values of `ρ[j]` makes it 0: the column
//! passes with probability at most 1/2, whatever `E` is (this needs no inverse, only
//! `E[i][j] ≠ 0`). The t columns are independent, so all pass with probability at most
//! 2⁻ᵗ. The bound is tight: one element off by 2³¹ (or by 1) passes exactly when the 32
//! entries `R[j][·]` are all 0.
//!
//! Why 0/1 and not uniform u32 entries: those catch errors with low set bits faster
//! (2^−(32−v) per vector for an error of 2-adic valuation v) but give the same 1/2 for
//! the worst error, and no vector does better there: for `E = 2³¹·F` with `F` a 0/1
//! matrix, `E·ρ` only reveals the one bit `F·ρ mod 2`, so 2⁻³² takes 32 vectors either
//! way. With 0/1 entries `B·R` and `C'·R` are masked additions, about four times cheaper
//! than 32-bit multiplications; only `A·(B·R)` multiplies. The cost is 3·32·n² word
//! operations against the n³ multiply-adds of the product.
//!
//! ## `matmul-i8`: 𝔽ₚ with p = 2⁶¹ − 1, 1 round, false accept ≤ 1/p
//!
//! Every entry of the true product satisfies `|C[i][j]| ≤ K·128² ≤ 2²⁸` (K ≤ 16,384), so
//! the kernel's i32 output is the exact integer product. For a wrong output read as i32,
//! `E = C' − C` has integer entries with `0 < |E[i][j]| < 2³² < p` wherever it is nonzero,
//! so `E mod p ≠ 0`. Over the field 𝔽ₚ, a nonzero row `E[i]` makes `E[i]·r` a nonzero
//! linear form, which vanishes on exactly `p^(N−1)` of the `p^N` vectors: one vector with
//! entries uniform in 𝔽ₚ gives a false accept with probability ≤ 1/p = 1/(2⁶¹ − 1), far
//! below 2⁻³². Sums are accumulated exactly in i128 (|terms| < 2⁹², at most 2²⁸ of them)
//! and reduced once.
//!
//! On a failing row, the row of the true product is recomputed (O(K·N)) to name the first
//! wrong element.

use super::{Checked, FalseAccept, Method, Outcome, Ring, Seed, Unit, length_mismatch};
use crate::kernels::{Result, matmul_i8, matmul_u32};

/// Random vectors of the `matmul-u32` check (2⁻³² false accept, see the module doc).
pub const U32_ROUNDS: usize = 32;

/// Random vectors of the `matmul-i8` check (1/p false accept).
pub const I8_ROUNDS: usize = 1;

/// The Mersenne prime 2⁶¹ − 1 of the `matmul-i8` check.
pub const P61: u64 = (1 << 61) - 1;

/// One row of `X·R` with R having [`U32_ROUNDS`] columns (also one row of the 0/1 matrix
/// `R` itself, each entry 0 or `u32::MAX`, a mask).
type Lanes = [u32; U32_ROUNDS];

fn word(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// `row · table` where `row` holds little-endian u32 words and `table` one [`Lanes`] per
/// word: 32 wrapping dot products at once.
fn row_times(row: &[u8], table: &[Lanes]) -> Lanes {
    let mut acc = [0u32; U32_ROUNDS];
    for (w, t) in row.chunks_exact(4).zip(table) {
        let x = word(w);
        for (a, &r) in acc.iter_mut().zip(t) {
            *a = a.wrapping_add(x.wrapping_mul(r));
        }
    }
    acc
}

/// `row · R` for the 0/1 matrix `R` given as masks: 32 masked sums at once.
fn row_times_bits(row: &[u8], masks: &[Lanes]) -> Lanes {
    let mut acc = [0u32; U32_ROUNDS];
    for (w, t) in row.chunks_exact(4).zip(masks) {
        let x = word(w);
        for (a, &m) in acc.iter_mut().zip(t) {
            *a = a.wrapping_add(x & m);
        }
    }
    acc
}

/// Freivalds over ℤ/2³² with 32 rounds of 0/1 vectors.
pub(crate) fn check_u32(input: &[u8], output: &[u8], seed: &Seed) -> Result<Checked> {
    let matmul_u32::Input { shape, a, b } = matmul_u32::parse(input)?;
    let (m, k, n) = (shape.m as usize, shape.k as usize, shape.n as usize);
    let method = Method::Freivalds {
        ring: Ring::Mod2Pow32,
        rounds: U32_ROUNDS as u32,
    };
    let false_accept = FalseAccept::AnyWrongOutput {
        log2: -(U32_ROUNDS as f64),
    };
    let checked = |outcome| Checked {
        method,
        false_accept,
        outcome,
    };
    if let Some(outcome) = length_mismatch(shape.m as u64 * shape.n as u64 * 4, output) {
        return Ok(checked(outcome));
    }
    let mut stream = seed.stream("freivalds matmul-u32");
    // Row j of R: 32 random bits, one per round, spread to masks.
    let mut bits = [0u8; 4];
    let r: Vec<Lanes> = (0..n)
        .map(|_| {
            stream.fill(&mut bits);
            let bits = u32::from_le_bytes(bits);
            std::array::from_fn(|t| 0u32.wrapping_sub((bits >> t) & 1))
        })
        .collect();
    let br: Vec<Lanes> = b
        .chunks_exact(n * 4)
        .map(|row| row_times_bits(row, &r))
        .collect();
    for i in 0..m {
        let c_row = &output[i * n * 4..(i + 1) * n * 4];
        if row_times(&a[i * k * 4..(i + 1) * k * 4], &br) != row_times_bits(c_row, &r) {
            let col = first_wrong_u32(a, b, k, n, i, c_row);
            let unit = Unit::Element {
                row: i as u32,
                col: col as u32,
            };
            return Ok(checked(Outcome::Fail { unit }));
        }
    }
    Ok(checked(Outcome::Pass))
}

/// The first column of row `i` of `C'` that differs from the true product.
fn first_wrong_u32(a: &[u8], b: &[u8], k: usize, n: usize, i: usize, c_row: &[u8]) -> usize {
    let mut truth = vec![0u32; n];
    for kk in 0..k {
        let av = word(&a[(i * k + kk) * 4..]);
        for (t, bw) in truth.iter_mut().zip(b[kk * n * 4..].chunks_exact(4)) {
            *t = t.wrapping_add(av.wrapping_mul(word(bw)));
        }
    }
    // A failing row differs somewhere; column 0 is never reached unless it is wrong.
    truth
        .iter()
        .zip(c_row.chunks_exact(4))
        .position(|(&t, c)| t != word(c))
        .unwrap_or(0)
}

fn mod_p(x: i128) -> u64 {
    x.rem_euclid(P61 as i128) as u64
}

/// `Σ x[j]·r[j]` exactly, for at most 2²⁸ terms with |x| < 2³¹ and r < 2⁶¹.
fn dot(x: impl Iterator<Item = i64>, r: &[u64]) -> i128 {
    x.zip(r).map(|(x, &r)| x as i128 * r as i128).sum()
}

/// Freivalds over 𝔽ₚ, p = 2⁶¹ − 1, one round.
pub(crate) fn check_i8(input: &[u8], output: &[u8], seed: &Seed) -> Result<Checked> {
    let matmul_i8::Input { shape, a, b } = matmul_i8::parse(input)?;
    let (m, k, n) = (shape.m as usize, shape.k as usize, shape.n as usize);
    let method = Method::Freivalds {
        ring: Ring::Mersenne61,
        rounds: I8_ROUNDS as u32,
    };
    let false_accept = FalseAccept::AnyWrongOutput {
        log2: -(P61 as f64).log2() * I8_ROUNDS as f64,
    };
    let checked = |outcome| Checked {
        method,
        false_accept,
        outcome,
    };
    if let Some(outcome) = length_mismatch(shape.m as u64 * shape.n as u64 * 4, output) {
        return Ok(checked(outcome));
    }
    let mut stream = seed.stream("freivalds matmul-i8");
    let r: Vec<u64> = (0..n).map(|_| stream.below(P61)).collect();
    let i8s = |bytes: &[u8]| bytes.iter().map(|&v| v as i8 as i64).collect::<Vec<_>>();
    let br: Vec<u64> = b
        .chunks_exact(n)
        .map(|row| mod_p(dot(row.iter().map(|&v| v as i8 as i64), &r)))
        .collect();
    for i in 0..m {
        let c_row = &output[i * n * 4..(i + 1) * n * 4];
        let a_row = &a[i * k..(i + 1) * k];
        let left = mod_p(dot(
            c_row.chunks_exact(4).map(|c| word(c) as i32 as i64),
            &r,
        ));
        let right = mod_p(dot(a_row.iter().map(|&v| v as i8 as i64), &br));
        if left != right {
            let a_row = i8s(a_row);
            let mut truth = vec![0i64; n];
            for (kk, &av) in a_row.iter().enumerate() {
                for (t, &bv) in truth.iter_mut().zip(&b[kk * n..(kk + 1) * n]) {
                    *t += av * bv as i8 as i64;
                }
            }
            let col = truth
                .iter()
                .zip(c_row.chunks_exact(4))
                .position(|(&t, c)| t != word(c) as i32 as i64)
                .unwrap_or(0);
            let unit = Unit::Element {
                row: i as u32,
                col: col as u32,
            };
            return Ok(checked(Outcome::Fail { unit }));
        }
    }
    Ok(checked(Outcome::Pass))
}
