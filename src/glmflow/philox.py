"""Philox4x64-10 (Salmon et al. 2011, Random123) compiled with numba: the study's random
stream, drawn inside the kernels that fit it.

The stream of replicate r of a study cell (``glmflow.simulate``), so that another
implementation can reproduce it:

- key: the two 64-bit words of ``Cell.key(seed)`` (sha256 of the seed and the cell's
  parameters, glmflow.study);
- block j = 0, 1, 2, ... is Philox4x64-10 of the counter (j + 1, r, 0, 0) under that key: four
  64-bit words, used in order. These are exactly the words numpy's
  ``np.random.Philox(key=key, counter=[0, r, 0, 0]).random_raw()`` returns (tested);
- a uniform is (word >> 11) * 2^-53, in [0, 1) (numpy's ``random()``);
- x_1..x_n: Box-Muller on consecutive pairs of uniforms (u1, u2):
  sqrt(-2 log(1 - u1)) * (cos(2 pi u2), sin(2 pi u2)), the second of the last pair unused
  when n is odd; then the response y_i = 1 if the next uniform is below
  1 / (1 + exp(-(b0 + b1 x_i))), else 0, for i = 1..n.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)
_LOW32 = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)
_11 = np.uint64(11)
_KERNEL = {"cache": True, "error_model": "numpy"}


@numba.njit(inline="always", **_KERNEL)
def _mulhilo(a, b):
    """The high and low 64 bits of the 128-bit product a * b (from 32-bit halves)."""
    a_lo, a_hi = a & _LOW32, a >> _32
    b_lo, b_hi = b & _LOW32, b >> _32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    middle = (lo_lo >> _32) + (hi_lo & _LOW32) + (lo_hi & _LOW32)
    high = hi_hi + (hi_lo >> _32) + (lo_hi >> _32) + (middle >> _32)
    return high, a * b


@numba.njit(**_KERNEL)
def philox_block(c0, c1, c2, c3, k0, k1, out):
    """Philox4x64-10 of counter (c0, c1, c2, c3) under key (k0, k1), into out[0:4]."""
    for round_ in range(10):
        if round_ > 0:
            k0 = k0 + _W0
            k1 = k1 + _W1
        high0, low0 = _mulhilo(_M0, c0)
        high1, low1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = high1 ^ c1 ^ k0, low1, high0 ^ c3 ^ k1, low0
    out[0] = c0
    out[1] = c1
    out[2] = c2
    out[3] = c3


@numba.njit(**_KERNEL)
def uniforms(k0, k1, replicate, count, out):
    """The first ``count`` uniforms of replicate ``replicate``'s stream, into ``out``."""
    block = np.empty(4, dtype=np.uint64)
    r = np.uint64(replicate)
    zero = np.uint64(0)
    for start in range(0, count, 4):
        philox_block(np.uint64(start // 4 + 1), r, zero, zero, k0, k1, block)
        for w in range(min(4, count - start)):
            out[start + w] = float(block[w] >> _11) * (1.0 / 9007199254740992.0)


@numba.njit(**_KERNEL)
def draw_logistic(k0, k1, replicate, b0, b1, x, y, scratch):
    """Replicate ``replicate``'s x ~ N(0, 1) and y ~ Bernoulli(expit(b0 + b1 x)) (module doc);
    ``scratch`` holds at least 2 * ceil(n / 2) + n uniforms."""
    n = x.shape[0]
    pairs = (n + 1) // 2
    uniforms(k0, k1, replicate, 2 * pairs + n, scratch)
    for p in range(pairs):
        radius = math.sqrt(-2.0 * math.log(1.0 - scratch[2 * p]))
        angle = 2.0 * math.pi * scratch[2 * p + 1]
        x[2 * p] = radius * math.cos(angle)
        if 2 * p + 1 < n:
            x[2 * p + 1] = radius * math.sin(angle)
    offset = 2 * pairs
    for i in range(n):
        y[i] = 1.0 if scratch[offset + i] < 1.0 / (1.0 + math.exp(-(b0 + b1 * x[i]))) else 0.0


def cell_key(key: list[int]) -> tuple[np.uint64, np.uint64]:
    return np.uint64(key[0]), np.uint64(key[1])
