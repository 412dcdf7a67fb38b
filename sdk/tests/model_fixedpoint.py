#!/usr/bin/env python3
"""Known answers for the model's fixed-point requantization, computed independently of the
Rust code with Python's unbounded integers, following gemmlowp / TFLite literally:

  SaturatingRoundingDoublingHighMul(a, b):
      a == b == INT32_MIN -> INT32_MAX
      ab = a * b; nudge = 2**30 if ab >= 0 else 1 - 2**30
      result = (ab + nudge) / 2**31, truncated toward zero (C++ integer division)
  RoundingDivideByPOT(x, e):
      mask = 2**e - 1; remainder = x & mask; threshold = (mask >> 1) + (1 if x < 0 else 0)
      result = (x >> e) + (1 if remainder > threshold else 0)      (arithmetic shift)
  MultiplyByQuantizedMultiplier(x, m, shift) = RoundingDivideByPOT(SRDHM(x, m), shift)

Prints Rust constants pasted into sdk/tests/model_fixedpoint.rs (`KNOWN_SRDHM`, `KNOWN_MBQM`).
Run: python3 sdk/tests/model_fixedpoint.py
"""

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def trunc_div(n, d):
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def srdhm(a, b):
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    r = trunc_div(ab + nudge, 2**31)
    assert INT32_MIN <= r <= INT32_MAX
    return r


def rdbpot(x, e):
    assert 0 <= e <= 31
    mask = 2**e - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def mbqm(x, m, shift):
    return rdbpot(srdhm(x, m), shift)


SRDHM_CASES = [
    (0, 0), (1, 1), (-1, 1), (INT32_MIN, INT32_MIN), (INT32_MIN, INT32_MAX),
    (INT32_MAX, INT32_MAX), (INT32_MIN, 1), (INT32_MIN, -1), (INT32_MAX, -1),
    # exact halves: ab = +-2**30 and +-3 * 2**30 (ties)
    (2**15, 2**15), (-(2**15), 2**15), (3 * 2**15, 2**15), (-3 * 2**15, 2**15),
    (2**30, 1), (-(2**30), 1), (2**30, 3), (-(2**30), 3),
    (123456789, 1518500250), (-123456789, 1518500250), (65535, 65537), (-65536, 65536),
    (0x12345678, 0x7FFFFFFF), (-0x12345678, 0x40000000), (1000000, -2000000),
]

MBQM_CASES = [
    (x, m, s)
    for x in (0, 1, -1, 2, -2, 3, -3, 12345, -12345, 1 << 20, -(1 << 20), INT32_MAX, INT32_MIN, 1073741824, -1073741825)
    for m in (1 << 30, 1518500250, INT32_MAX)
    for s in (0, 1, 2, 7, 31)
]

if __name__ == "__main__":
    print("/// (a, b, SaturatingRoundingDoublingHighMul(a, b)) from sdk/tests/model_fixedpoint.py.")
    print("const KNOWN_SRDHM: &[(i32, i32, i32)] = &[")
    for a, b in SRDHM_CASES:
        print(f"    ({a}, {b}, {srdhm(a, b)}),")
    print("];")
    print("/// (x, multiplier, shift, MultiplyByQuantizedMultiplier) from sdk/tests/model_fixedpoint.py.")
    print("const KNOWN_MBQM: &[(i32, i32, u32, i32)] = &[")
    for x, m, s in MBQM_CASES:
        print(f"    ({x}, {m}, {s}, {mbqm(x, m, s)}),")
    print("];")
    # Ties of RoundingDivideByPOT alone (SRDHM with m = INT32_MAX is not the identity).
    print("/// (x, exponent, RoundingDivideByPOT) from sdk/tests/model_fixedpoint.py.")
    print("const KNOWN_RDBPOT: &[(i32, u32, i32)] = &[")
    for x in (5, -5, 6, -6, 7, -7, 1, -1, 0, INT32_MAX, INT32_MIN, 1 << 30, -(1 << 30)):
        for e in (0, 1, 2, 31):
            print(f"    ({x}, {e}, {rdbpot(x, e)}),")
    print("];")
