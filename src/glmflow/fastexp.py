"""exp(-t) as a branch-free polynomial, for compiled loops that must run on SIMD lanes.

libm's exp is a function call that stops LLVM from vectorising a loop (and costs about
10 ns here); this one inlines to 13 fused multiply-adds and six squarings.
"""

import math

import numba

INVERSE_FACTORIALS_12_TO_0 = tuple(1.0 / math.factorial(k) for k in range(12, -1, -1))


@numba.njit(inline="always", cache=True, fastmath=True, error_model="numpy")
def exp_neg(t):
    """exp(-t) for 0 <= t <= 30: exp(-t / 64) by its Taylor polynomial (to r^13, |r| <= 0.47),
    squared six times; relative error below 1e-13."""
    r = -t * (1.0 / 64.0)
    p = 1.0 / 6227020800.0  # 1 / 13!
    for coefficient in INVERSE_FACTORIALS_12_TO_0:
        p = p * r + coefficient
    p *= p
    p *= p
    p *= p
    p *= p
    p *= p
    return p * p
