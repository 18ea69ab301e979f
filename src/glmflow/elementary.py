"""exp, log, cos and sin as branch-free polynomials, for compiled loops that must run on SIMD lanes.

libm's functions are calls that stop LLVM from vectorising a loop (exp, log, cos: 10-13 ns a
value here); these inline to a few dozen multiply-adds and selects and cost about 1 ns a value
on 8 lanes (measured on this 2-core EPYC: log 1.0 ns, cos and sin together 1.1 ns, against
13.4 ns for libm's log, sqrt and cos of one Box-Muller normal).
"""

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# Multiply-adds may be fused; nothing is reassociated, so each value is the same whatever
# loop it is inlined into (the study's draws must be bit for bit the same in every kernel).
_FLAGS = {"cache": True, "fastmath": {"contract"}, "error_model": "numpy"}

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


@intrinsic
def float_bits(typingctx, value):
    """The 64 bits of a double, as uint64 (a bitcast, which vectorises)."""
    signature = types.uint64(types.float64)

    def codegen(context, builder, signature, arguments):
        return builder.bitcast(arguments[0], ir.IntType(64))

    return signature, codegen


@intrinsic
def bits_float(typingctx, bits):
    """The double whose 64 bits are ``bits``."""
    signature = types.float64(types.uint64)

    def codegen(context, builder, signature, arguments):
        return builder.bitcast(arguments[0], ir.DoubleType())

    return signature, codegen


# ln 2 in two parts (fdlibm's): e * LN2_HI is exact for |e| < 2^11.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
SQRT2 = math.sqrt(2.0)
# log m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^21/21), s = (m - 1) / (m + 1), |s| <= 0.1716:
# the first term left out, 2 s^23 / 23, is below 5e-17 of the sum.
ATANH_SERIES_21_TO_1 = tuple(2.0 / (2 * k + 1) for k in range(10, -1, -1))
_MANTISSA = np.uint64((1 << 52) - 1)
_EXPONENT_OF_ONE = np.uint64(1023 << 52)
_52 = np.uint64(52)


@numba.njit(inline="always", **_FLAGS)
def log_positive(u):
    """ln(u) for a positive normal double (within 3 ulp of libm's log, tested): u = m 2^e
    with m in [sqrt(1/2), sqrt(2)), ln u = e ln 2 + 2 atanh((m - 1) / (m + 1))."""
    bits = float_bits(u)
    e = float(np.int64(bits >> _52) - 1023)
    m = bits_float((bits & _MANTISSA) | _EXPONENT_OF_ONE)
    big = m > SQRT2
    m = m * 0.5 if big else m
    e = e + 1.0 if big else e
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = ATANH_SERIES_21_TO_1[0]
    for coefficient in ATANH_SERIES_21_TO_1[1:]:
        p = p * z + coefficient
    return e * LN2_HI + (e * LN2_LO + s * p)


# Taylor series on |x| <= pi/4: sin to x^17, cos to x^16; the first terms left out are below
# 1e-19 and 3e-18.
SIN_SERIES_17_TO_3 = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(8, 0, -1))
COS_SERIES_16_TO_2 = tuple((-1) ** k / math.factorial(2 * k) for k in range(8, 0, -1))
TURN_OVER_2_32 = 2.0 * math.pi / 4294967296.0
_0, _1, _2, _3 = np.uint64(0), np.uint64(1), np.uint64(2), np.uint64(3)
_HALF_QUADRANT = np.uint64(1 << 29)
_30 = np.uint64(30)
_LOW_30 = np.uint64((1 << 30) - 1)


@numba.njit(inline="always", **_FLAGS)
def cos_sin_turn(j):
    """cos and sin of 2 pi j / 2^32 for an integer 0 <= j < 2^32 (a uint64), within 1.5e-15 of libm's.
    The reduction is exact, on j's bits: the nearest quadrant q = round(j / 2^30) mod 4 and the
    remainder x = 2 pi (j - q 2^30) / 2^32 in [-pi/4, pi/4); then cos(q pi/2 + x), sin(q pi/2 + x)
    from cos x and sin x by swapping and signs."""
    t = j + _HALF_QUADRANT
    q = (t >> _30) & _3
    x = float(np.int64(t & _LOW_30) - (1 << 29)) * TURN_OVER_2_32
    z = x * x
    p = SIN_SERIES_17_TO_3[0]
    for coefficient in SIN_SERIES_17_TO_3[1:]:
        p = p * z + coefficient
    sine = x + x * z * p
    p = COS_SERIES_16_TO_2[0]
    for coefficient in COS_SERIES_16_TO_2[1:]:
        p = p * z + coefficient
    cosine = 1.0 + z * p
    odd = (q & _1) != _0
    cos_sign = 1.0 - float((q + _1) & _2)  # q = 1, 2: -1
    sin_sign = 1.0 - float(q & _2)  # q = 2, 3: -1
    return cos_sign * (sine if odd else cosine), sin_sign * (cosine if odd else sine)
