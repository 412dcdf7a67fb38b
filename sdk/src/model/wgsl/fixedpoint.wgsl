// Shared by every model kernel: int8 unpacking, the flat invocation index, and gemmlowp /
// TFLite fixed-point requantization built from 32-bit operations only (WGSL has no i64).

// Sign-extends byte `idx & 3` of `word`: move it to the top, then shift back arithmetically.
fn sext_byte(word: u32, idx: u32) -> i32 {
    let shift = 24u - (idx & 3u) * 8u;
    return bitcast<i32>(word << shift) >> 24u;
}

// Index of this invocation in a dispatch of workgroups of 64 laid out x-major over x, y.
fn flat_id(wg: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> u32 {
    return (wg.y * nwg.x + wg.x) * 64u + lid.x;
}

// The full 64-bit product of two u32 as (low word, high word), from 16-bit halves: each
// partial product of two halves is below 2^32, and the middle column sums three 16-bit
// parts (below 2^18), so nothing overflows.
fn mul_u32_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let lo = (mid << 16u) | (p00 & 0xffffu);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

// The signed 64-bit product of two i32 as (low word, high word) in two's complement: the
// unsigned product of the bit patterns, minus b·2^32 if a < 0 and a·2^32 if b < 0.
fn mul_i32_wide(a: i32, b: i32) -> vec2<u32> {
    let ua = bitcast<u32>(a);
    let ub = bitcast<u32>(b);
    let p = mul_u32_wide(ua, ub);
    var hi = p.y;
    if (a < 0i) {
        hi -= ub;
    }
    if (b < 0i) {
        hi -= ua;
    }
    return vec2<u32>(p.x, hi);
}

// gemmlowp SaturatingRoundingDoublingHighMul. The C++ form, (ab + nudge) / 2^31 truncated
// toward zero with nudge = 2^30 or 1 - 2^30 by the sign of ab, equals floor((ab + 2^30) /
// 2^31) for every product but INT32_MIN * INT32_MIN, which saturates to INT32_MAX: add
// 2^30 to the 64-bit product, then take bits 31..62 (an arithmetic shift by 31).
fn srdhm(a: i32, b: i32) -> i32 {
    if (a == b && bitcast<u32>(a) == 0x80000000u) {
        return 2147483647i;
    }
    let p = mul_i32_wide(a, b);
    let lo = p.x + 0x40000000u;
    let hi = p.y + select(0u, 1u, lo < p.x);
    return bitcast<i32>((hi << 1u) | (lo >> 31u));
}

// gemmlowp RoundingDivideByPOT: x / 2^e rounded to nearest, ties away from zero; e <= 31.
fn rdbpot(x: i32, exponent: u32) -> i32 {
    let e = min(exponent, 31u);
    let mask = (1u << e) - 1u;
    let remainder = bitcast<u32>(x) & mask;
    let threshold = (mask >> 1u) + select(0u, 1u, x < 0i);
    return (x >> e) + select(0i, 1i, remainder > threshold);
}

// TFLite MultiplyByQuantizedMultiplier with a right shift.
fn mbqm(x: i32, multiplier: i32, shift: u32) -> i32 {
    return rdbpot(srdhm(x, multiplier), shift);
}

