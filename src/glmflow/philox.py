"""Philox4x64-10 (Salmon et al. 2011, Random123) compiled with numba: the study's random
stream, drawn inside the kernels that fit it.

The stream of replicate r of a study cell (``glmflow.simulate``), so that another
implementation can reproduce it:

- key: the two 64-bit words of ``Cell.key(seed)`` (sha256 of the seed and the cell's
  parameters, glmflow.study);
- block j = 0, 1, 2, ... of substream c is Philox4x64-10 of the counter (j + 1, r, c, 0) under
  that key: four 64-bit words, used in order. These are exactly the words numpy's
  ``np.random.Philox(key=key, counter=[0, r, c, 0]).random_raw()`` returns (tested);
- a uniform is (word >> 11) * 2^-53, in [0, 1) (numpy's ``random()``);
- substream 0 (counter (j + 1, r, 0, 0)) gives x_1..x_n by Marsaglia's polar method: each
  block's four words are two candidate pairs (u1, u2), v = 2 u - 1, s = v1^2 + v2^2, a pair
  with s >= 1 or s = 0 is skipped, otherwise v1 f and v2 f with f = sqrt(-2 log(s) / s) are
  the next two normals (the second unused when n is odd);
- substream 1 (counter (j + 1, r, 1, 0)) gives one uniform u_i per response: y_i = 1 if
  u_i < p_i, else 0, with p_i = 1 / (1 + a) for eta_i >= 0 and a / (1 + a) otherwise,
  eta_i = b0 + b1 x_i and a = exp(-min(|eta_i|, 30)) computed as glmflow.fastexp.exp_neg
  (exp(-t / 64) by its Taylor polynomial to degree 13, Horner from 1/13!, squared six times).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from glmflow.families import LOGIT_THRESHOLD
from glmflow.fastexp import exp_neg

_M0 = np.uint64(0xD2E7470EE14C6C93)
_M1 = np.uint64(0xCA5A826395121157)
_W0 = np.uint64(0x9E3779B97F4A7C15)
_W1 = np.uint64(0xBB67AE8584CAA73B)
_11 = np.uint64(11)
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


_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


@numba.njit(inline="always", **_KERNEL)
def _unit(word):
    return float(word >> _11) * _TO_UNIT


@numba.njit(**_KERNEL)
def uniforms(k0, k1, replicate, count, out):
    """The first ``count`` uniforms of replicate ``replicate``'s stream (substream 0), into ``out``."""
    r = np.uint64(replicate)
    zero = np.uint64(0)
    for start in range(0, count, 4):
        words = philox4(np.uint64(start // 4 + 1), r, zero, zero, k0, k1)
        for w in range(min(4, count - start)):
            out[start + w] = _unit(words[w])


@numba.njit(inline="always", **_KERNEL)
def _polar(v1, v2, x, i, n):
    """One candidate pair of the polar method: writes x[i] (and x[i + 1]); returns how many."""
    s = v1 * v1 + v2 * v2
    if s >= 1.0 or s == 0.0:
        return 0
    factor = math.sqrt(-2.0 * math.log(s) / s)
    x[i] = v1 * factor
    if i + 1 < n:
        x[i + 1] = v2 * factor
    return 2


@numba.njit(inline="always", **_KERNEL)
def _response(u, eta):
    a = exp_neg(min(abs(eta), LOGIT_THRESHOLD))
    p = 1.0 / (1.0 + a) if eta >= 0.0 else a / (1.0 + a)
    return 1.0 if u < p else 0.0


@numba.njit(**_KERNEL)
def draw_logistic(k0, k1, replicate, b0, b1, x, y):
    """Replicate ``replicate``'s x ~ N(0, 1) and y ~ Bernoulli(expit(b0 + b1 x)) (module doc)."""
    n = x.shape[0]
    r = np.uint64(replicate)
    zero, one = np.uint64(0), np.uint64(1)
    counter = 0
    i = 0
    while i < n:  # substream 0: each block is two candidate pairs
        counter += 1
        w0, w1, w2, w3 = philox4(np.uint64(counter), r, zero, zero, k0, k1)
        i += _polar(2.0 * _unit(w0) - 1.0, 2.0 * _unit(w1) - 1.0, x, i, n)
        if i < n:
            i += _polar(2.0 * _unit(w2) - 1.0, 2.0 * _unit(w3) - 1.0, x, i, n)
    for start in range(0, n, 4):  # substream 1: one uniform per response
        words = philox4(np.uint64(start // 4 + 1), r, one, zero, k0, k1)
        for w in range(min(4, n - start)):
            y[start + w] = _response(_unit(words[w]), b0 + b1 * x[start + w])


def cell_key(key: list[int]) -> tuple[np.uint64, np.uint64]:
    return np.uint64(key[0]), np.uint64(key[1])
