"""Philox4x64-10 (Salmon et al. 2011, Random123) compiled with numba: the study's random
stream, drawn inside the kernels that fit it.

The stream of replicate r of a study cell (``glmflow.simulate``), so that another
implementation can reproduce it:

- key: the two 64-bit words of ``Cell.key(seed)`` (sha256 of the seed and the cell's
  parameters, glmflow.study);
- substream c: block j = 0, 1, 2, ... is Philox4x64-10 of the counter (j + 1, r, c, 0) under
  that key, four 64-bit words w_4j .. w_4j+3. These are exactly the words numpy's
  ``np.random.Philox(key=key, counter=[0, r, c, 0]).random_raw()`` returns (tested);
- a word w holds two 32-bit halves, h = w >> 32 and l = w mod 2^32;
- substream 0: word m gives x_2m and x_2m+1 by Box-Muller, with u = (h + 1) 2^-32 in (0, 1]
  and theta = 2 pi l 2^-32: x_2m = sqrt(-2 ln u) cos(theta), x_2m+1 = sqrt(-2 ln u) sin(theta)
  (the last one unused when n is odd). So |x| <= sqrt(64 ln 2) = 6.66; P(|Z| > 6.66) = 3e-11;
- substream 1: word m gives the uniforms of y_2m (h 2^-32) and y_2m+1 (l 2^-32): y_i = 1 if
  u_i < p_i, else 0, with p_i = 1 / (1 + a) for eta_i >= 0 and a / (1 + a) otherwise,
  eta_i = b0 + b1 x_i and a = exp(-min(|eta_i|, 30));
- ln, cos, sin and exp are glmflow.elementary's polynomials (ln within 3 ulp of libm's, cos and
  sin within 1.5e-15, with the quadrant taken exactly from l's bits, exp to 1e-13 relative). With libm's
  functions another implementation gets x to about 1e-15 and the same y, except where a u_i
  lies within about 1e-13 of its p_i.

Why this shape (measured at n = 1000 on this 2-core EPYC): one Philox block costs 9.3 ns
(20 multiplies with 128-bit products; computing two blocks at once gained nothing), so each of its
bits is used once; the draws are one loop with no branch that runs on 8 SIMD lanes. A
replicate's draws took 24 us with the polar method and libm (four words and a log per pair
of normals), and take 5.2 us so.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from glmflow.elementary import cos_sin_turn, exp_neg, log_positive
from glmflow.families import LOGIT_THRESHOLD

_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)
_KERNEL = {"cache": True, "error_model": "numpy"}


@intrinsic
def _multiply_high(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64 (one mulq: LLVM's i128 multiply)."""
    signature = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, signature, arguments):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(arguments[0], wide), builder.zext(arguments[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return signature, codegen


@numba.njit(inline="always", **_KERNEL)
def _mulhilo(a, b):
    """The high and low 64 bits of the 128-bit product a * b."""
    return _multiply_high(a, b), a * b


@numba.njit(inline="always", **_KERNEL)
def philox4(c0, c1, c2, c3, k0, k1):
    """Philox4x64-10 of counter (c0, c1, c2, c3) under key (k0, k1): four uint64 words."""
    for round_ in range(10):
        if round_ > 0:
            k0 = k0 + _W0
            k1 = k1 + _W1
        high0, low0 = _mulhilo(_M0, c0)
        high1, low1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = high1 ^ c1 ^ k0, low1, high0 ^ c3 ^ k1, low0
    return c0, c1, c2, c3


@numba.njit(**_KERNEL)
def philox_block(c0, c1, c2, c3, k0, k1, out):
    """``philox4`` into out[0:4]."""
    out[0], out[1], out[2], out[3] = philox4(c0, c1, c2, c3, k0, k1)


_LOW_32 = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)
_ONE = np.uint64(1)
_TWO_TO_MINUS_32 = 2.0**-32
# the draws' loop: no reassociation (see glmflow.elementary), so it vectorises with the same
# numbers in every kernel it is inlined into
_DRAWS = {"cache": True, "fastmath": {"contract"}, "error_model": "numpy"}


@numba.njit(**_DRAWS)
def scratch_sizes(n):
    """Lengths of the x and y buffers (n rounded up to even) and of each substream's words (a
    whole number of blocks) that ``draw_logistic`` fills for n observations."""
    pairs = (n + 1) // 2
    return 2 * pairs, (pairs + 3) // 4 * 4


@numba.njit(**_DRAWS)
def fill_words(k0, k1, r, substream, words):
    """Substream ``substream`` of replicate r's stream: its first len(words) words (a multiple of 4)."""
    zero = np.uint64(0)
    for j in range(words.shape[0] // 4):
        block = philox4(np.uint64(j + 1), r, substream, zero, k0, k1)
        words[4 * j], words[4 * j + 1], words[4 * j + 2], words[4 * j + 3] = block


@numba.njit(inline="always", **_DRAWS)
def _probability(eta):
    a = exp_neg(min(abs(eta), LOGIT_THRESHOLD))
    return 1.0 / (1.0 + a) if eta >= 0.0 else a / (1.0 + a)


@numba.njit(**_DRAWS)
def draw_logistic(k0, k1, replicate, b0, b1, x, y, normal_words, response_words):
    """Replicate ``replicate``'s x ~ N(0, 1) and y ~ Bernoulli(expit(b0 + b1 x)) (module doc)
    into x and y (their length even, ``scratch_sizes``; x[n], y[n] are spare when n is odd)."""
    r = np.uint64(replicate)
    fill_words(k0, k1, r, np.uint64(0), normal_words)
    fill_words(k0, k1, r, np.uint64(1), response_words)
    for m in range(x.shape[0] // 2):
        word = normal_words[m]
        radius = math.sqrt(-2.0 * log_positive(float((word >> _32) + _ONE) * _TWO_TO_MINUS_32))
        cosine, sine = cos_sin_turn(word & _LOW_32)
        x0 = radius * cosine
        x1 = radius * sine
        x[2 * m] = x0
        x[2 * m + 1] = x1
        word = response_words[m]
        y[2 * m] = 1.0 if float(word >> _32) * _TWO_TO_MINUS_32 < _probability(b0 + b1 * x0) else 0.0
        y[2 * m + 1] = 1.0 if float(word & _LOW_32) * _TWO_TO_MINUS_32 < _probability(b0 + b1 * x1) else 0.0


def cell_key(key: list[int]) -> tuple[np.uint64, np.uint64]:
    return np.uint64(key[0]), np.uint64(key[1])
