//! Freivalds' check of `C = A·B` in O(n²) instead of O(n³): for a random vector `r`,
//! compare `C·r` with `A·(B·r)`. An honest `C` always passes.
//!
//! ## `matmul-u32`: ℤ/2³², 32 rounds, false accept ≤ 2⁻³²
//!
//! The kernel's output is `C = A·B mod 2³²`; the exact integer product is not in the
//! output, so the check has to work in ℤ/2³², which is not a field: with one random
//! vector an error of 2³¹ in one element passes with probability exactly 1/2 (it is
//! invisible whenever the matching entry of `r` is even). We use [`U32_ROUNDS`] = 32
//! independent vectors with entries uniform in ℤ/2³² (a K-by-32 and an M-by-32 product
//! whose lanes vectorize).
//!
//! *Claim.* Let `C' ≠ C` and `E = C' − C mod 2³²`. With `R` uniform in (ℤ/2³²)^(N×t),
//! `P[C'·R = A·(B·R)] ≤ 2^(−t·(32−v)) ≤ 2⁻ᵗ`, where `v ≤ 31` is the least 2-adic
//! valuation of the entries of a nonzero row of `E`.
//!
//! *Proof.* `C'·R − A·(B·R) = E·R` (mod 2³²). Take a row `i` with `E[i] ≠ 0` and a column
//! `j` where `E[i][j] = 2ᵛ·u`, `u` odd, has the least valuation `v` of that row. For one
//! column `ρ` of `R`, condition on every entry but `ρ[j]`; then `(E·ρ)[i] = E[i][j]·ρ[j] + c`
//! for a fixed `c`. The map `x ↦ E[i][j]·x` is a group homomorphism of ℤ/2³² whose kernel
//! `{x : 2^(32−v) | x}` has 2ᵛ elements, so every value, `−c` included, has at most 2ᵛ
//! preimages among the 2³² equally likely `ρ[j]`: the row passes with probability at most
//! 2^(−(32−v)) ≤ 1/2. The t columns are independent, so all pass with probability at
//! most 2^(−t·(32−v)). With t = 32 that is ≤ 2⁻³² for every wrong output, and the bound is
//! tight for the worst error (one element off by 2³¹). Errors that touch the low bits are
//! caught far more surely: an odd error passes with probability 2⁻¹⁰²⁴.
//!
//! No linear test over ℤ/2³² does better per vector: for `E = 2³¹·F`, `F` a 0/1 matrix,
//! `E·ρ` only reveals the one bit `F·ρ mod 2`, so reaching 2⁻³² takes 32 vectors.
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

/// One row of `X·R` with R having [`U32_ROUNDS`] columns.
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

/// Freivalds over ℤ/2³² with 32 rounds.
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
    let mut bytes = [0u8; U32_ROUNDS * 4];
    let r: Vec<Lanes> = (0..n)
        .map(|_| {
            stream.fill(&mut bytes);
            std::array::from_fn(|t| word(&bytes[t * 4..]))
        })
        .collect();
    let br: Vec<Lanes> = b
        .chunks_exact(n * 4)
        .map(|row| row_times(row, &r))
        .collect();
    for i in 0..m {
        let c_row = &output[i * n * 4..(i + 1) * n * 4];
        if row_times(&a[i * k * 4..(i + 1) * k * 4], &br) != row_times(c_row, &r) {
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
