"""R's rules for printing numbers, ported so that summaries read exactly as R prints them.

No Python library reproduces R's ``format()``/``formatReal``, ``format.pval``,
or ``printCoefmat``, so they are written here by hand from
R 4.2's sources (src/main/format.c, src/library/stats/R/lm.R, base/R/format.R).
R's ``options(digits = 7)`` and ``scipen = 0`` are assumed throughout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from glmflow.constants import DOUBLE_EPS

_MAX_DIGITS = 22


def _scientific(x: float, digits: int) -> tuple[int, int, int, bool]:
    """R's ``scientific()``: (negative, kpower, nsig, rounding_widens) of ``x``."""
    if x == 0.0:
        return 0, 0, 1, False
    neg = 1 if x < 0 else 0
    r = abs(x)
    kp = math.floor(math.log10(r)) - digits + 1
    # R scales in long double; exact decimal arithmetic keeps 0.60835 (really 0.608349999...)
    # from rounding up the way a double product (6083.5) would.
    r_prec = Decimal(r).scaleb(-kp)
    if r_prec < 10 ** (digits - 1):
        r_prec = r_prec.scaleb(1)
        kp -= 1
    alpha = float(r_prec.to_integral_value(rounding=ROUND_HALF_EVEN))
    nsig = digits
    for _ in range(digits):
        alpha /= 10.0
        if alpha == math.floor(alpha):
            nsig -= 1
        else:
            break
    if nsig == 0 and digits > 0:
        nsig = 1
        kp += 1
    kpower = kp + digits - 1
    rgt = min(max(digits - kpower, 0), _MAX_DIGITS)
    fuzz = 0.5 / 10.0**rgt
    rounding_widens = 0 < kpower <= _MAX_DIGITS and r < 10.0**kpower - fuzz
    return neg, kpower, nsig, rounding_widens


def format_real(values: Sequence[float], digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(x, digits = digits)`` of a numeric vector: common width and decimals."""
    xs = [float(v) for v in values]
    finite = [v for v in xs if math.isfinite(v)]
    if not finite:
        return _pad([_non_finite(v) for v in xs])
    rgt = mxsl = mxns = mxl = -(10**9)
    mnl, neg = 10**9, 0
    for v in finite:
        neg_i, kpower, nsig, widens = _scientific(v, digits)
        left = kpower + 1 - (1 if widens else 0)
        sleft = neg_i + (1 if left <= 0 else left)
        right = nsig - left
        neg = max(neg, neg_i)
        rgt, mxl, mnl = max(rgt, right), max(mxl, left), min(mnl, left)
        mxsl, mxns = max(mxsl, sleft), max(mxns, nsig)
    if mxl < 0:
        mxsl = 1 + neg
    rgt = max(rgt, 0)
    width_fixed = mxsl + rgt + (rgt != 0)
    exp_digits = 2 if (mxl > 100 or mnl <= -99) else 1
    decimals = mxns - 1
    width_sci = neg + (decimals > 0) + decimals + 4 + exp_digits
    if width_fixed <= width_sci:
        rgt = max(rgt, nsmall)
        out = [f"{v:.{rgt}f}" if math.isfinite(v) else _non_finite(v) for v in xs]
    else:
        out = [_sci(v, decimals) if math.isfinite(v) else _non_finite(v) for v in xs]
    return _pad(out)


def _sci(v: float, decimals: int) -> str:
    text = f"{v:.{decimals}e}"
    mantissa, exponent = text.split("e")
    sign, power = exponent[0], exponent[1:].lstrip("0")
    return f"{mantissa}e{sign}{power.rjust(2, '0')}"


def _non_finite(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    return "Inf" if v > 0 else "-Inf"


def _pad(strings: list[str], right: bool = True) -> list[str]:
    width = max((len(s) for s in strings), default=0)
    return [s.rjust(width) if right else s.ljust(width) for s in strings]


def format_number(value: float, digits: int = 7) -> str:
    """R's ``format(x, digits)`` of one number."""
    return format_real([value], digits)[0]


def format_c(value: float, digits: int) -> str:
    """R's ``formatC(x, digits = d)``: C's ``%g`` with d significant digits, at least d + 1 wide."""
    return f"{value:{digits + 1}.{digits}g}"


def r_round(values, digits: float) -> np.ndarray:
    """R 4's ``round(x, digits)``: the decimal nearest to the double's exact value, ties to even.

    ``digits`` is rounded to a whole number first, as R does.
    """
    places = math.floor(digits + 0.5)
    quantum = Decimal(1).scaleb(-places)

    def one(v: float) -> float:
        if not math.isfinite(v):
            return v
        return float(Decimal(v).quantize(quantum, rounding=ROUND_HALF_EVEN))

    x = np.asarray(values, dtype=float)
    return np.vectorize(one, otypes=[float])(x) if x.size else x


def zapsmall(values, digits: int) -> np.ndarray:
    """R's ``zapsmall(x, digits)``: round to ``digits - log10(max |x|)`` places."""
    x = np.asarray(values, dtype=float)
    mx = float(np.nanmax(np.abs(x))) if x.size else 0.0
    return r_round(x, max(0.0, digits - math.log10(mx)) if mx > 0 else digits)


def format_pval(pvalues: Sequence[float], digits: int, eps: float = DOUBLE_EPS) -> list[str]:
    """R's ``format.pval()``: '< 2e-16' for tiny values, fixed or scientific otherwise."""
    pv = np.asarray(pvalues, dtype=float)
    out = [""] * len(pv)
    is0 = pv < eps
    nonzero = [i for i in range(len(pv)) if not is0[i]]
    formatted: dict[int, str] = {}
    if nonzero:
        expo = {i: math.floor(math.log10(pv[i] if pv[i] > 0 else 1e-50)) for i in nonzero}
        fixp = [i for i in nonzero if expo[i] >= -3 or (expo[i] == -4 and digits > 1)]
        sci = [i for i in nonzero if i not in fixp]
        for group in (fixp, sci):
            if group:
                formatted.update(zip(group, format_real([pv[i] for i in group], digits), strict=True))
        for i in nonzero:
            out[i] = formatted[i]
    if is0.any():
        eps_digits = max(1, digits - 2)
        if nonzero:
            nc = max(len(s) for s in formatted.values())
            if eps_digits > 1 and eps_digits + 6 > nc:
                eps_digits = max(1, nc - 7)
            sep = "" if (eps_digits == 1 and nc <= 6) else " "
        else:
            sep = "" if eps_digits == 1 else " "
        text = "<" + sep + format_number(eps, eps_digits)
        for i in np.flatnonzero(is0):
            out[i] = text
    return out


def signif_stars(p: float) -> str:
    """R's significance codes (symnum cut points 0.001, 0.01, 0.05, 0.1)."""
    for cut, star in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p <= cut:
            return star
    return " "


SIGNIF_LEGEND = "---\nSignif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1\n"


def print_matrix(cells: list[list[str]], colnames: list[str], rownames: list[str], right: bool = True) -> str:
    """R's ``print.default`` of a character matrix with ``quote = FALSE``: columns right-justified
    (``right = TRUE``, as printCoefmat asks) or left-justified (R's default for strings)."""

    def justify(text: str, width: int) -> str:
        return text.rjust(width) if right else text.ljust(width)

    row_width = max(len(r) for r in rownames)
    widths = [max([len(colnames[j])] + [len(row[j]) for row in cells]) for j in range(len(colnames))]
    lines = [" " * row_width + "".join(" " + justify(c, w) for c, w in zip(colnames, widths, strict=True))]
    for name, row in zip(rownames, cells, strict=True):
        lines.append(name.ljust(row_width) + "".join(" " + justify(c, w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines) + "\n"


def print_named_vector(values, names: list[str], digits: int = 7, gap: int = 1) -> str:
    """R's ``print()`` of a short named vector: one common width, each entry right-justified and
    followed by the gap. Numbers are formatted together (``format``); strings are printed as they are."""
    formatted = format_real(values, digits) if not isinstance(values[0], str) else list(values)
    width = max(max(len(n) for n in names), max(len(v) for v in formatted))
    head = "".join(n.rjust(width) + " " * gap for n in names)
    body = "".join(v.rjust(width) + " " * gap for v in formatted)
    return head + "\n" + body + "\n"


def abbreviate(name: str, minlength: int) -> str:
    """R's ``abbreviate(name, minlength)`` (method "left.kept", one word): drop lower-case vowels,
    then lower-case letters, then any character, from the right, never the first character,
    until ``minlength`` characters are left."""
    chars = list(name)

    def drop_where(keep_dropping) -> bool:
        i = len(chars) - 1
        while i > 0:
            if len(chars) <= minlength:
                return True
            if keep_dropping(i):
                del chars[i]
            i -= 1
        return len(chars) <= minlength

    if len(chars) <= minlength:
        return name
    last = lambda i: i == len(chars) - 1  # noqa: E731
    for rule in (
        lambda i: chars[i] in "aeiou" and last(i),
        lambda i: chars[i] in "aeiou",
        lambda i: chars[i].islower() and last(i),
        lambda i: chars[i].islower(),
        lambda i: True,
    ):
        if drop_where(rule):
            break
    return "".join(chars)


def strwrap(text: str, width: int, exdent: int = 0) -> list[str]:
    """R's ``strwrap()`` for one paragraph: greedy, lines shorter than ``width``."""
    lines, line = [], ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if len(candidate) < width or not line:
            line = candidate
        else:
            lines.append(line)
            line = " " * exdent + word
    return lines + [line]


def coefficient_table(
    estimate,
    std_error,
    statistic,
    p_value,
    terms: list[str],
    stat_name: str,
    digits: int = 4,
    p_name: str | None = None,
    df=None,
) -> str:
    """R's ``printCoefmat()`` as called by ``summary.glm``/``summary.lm`` (with the legend);
    ``p_name`` where the p-value's column differs (glmer with a dispersion: "t value", "Pr(>|z|)");
    ``df`` a column of degrees of freedom before the statistic (lmerTest's), formatted with the
    estimates and SEs (printCoefmat's default cs.ind is every column before the statistic)."""
    coef_se = np.column_stack([estimate, std_error] + ([] if df is None else [df])).astype(float)
    acs = np.abs(coef_se[np.isfinite(coef_se) & (coef_se != 0)])
    digmin = 1 + (np.floor(np.log10([acs.min(), acs.max()])) if acs.size else np.zeros(2))
    rounded = r_round(coef_se, max(1, int(np.max(digits - digmin))))
    cs = np.array(format_real(rounded.ravel(), digits)).reshape(rounded.shape)
    # A value that prints as 0 but is not (or the reverse) is shown with one digit less.
    for idx in np.ndindex(cs.shape):
        if (coef_se[idx] == 0) != (float(cs[idx]) == 0):
            cs[idx] = format_number(coef_se[idx], max(1, digits - 1))
    dig_tst = max(1, min(5, digits - 1))
    tst = format_real(r_round(statistic, dig_tst), digits)
    pvals = format_pval(p_value, dig_tst)
    # an aliased coefficient (NA in R) prints NA in every column, as printCoefmat
    cells = [[c.replace("NaN", " NA") for c in (*cs[i], tst[i], pvals[i])] for i in range(len(terms))]
    colnames = ["Estimate", "Std. Error", *([] if df is None else ["df"]), f"{stat_name} value",
                f"Pr(>|{p_name or stat_name}|)"]  # fmt: skip
    show_stars = bool(np.any(np.asarray(p_value) < 0.1))
    if show_stars:
        stars = _pad([signif_stars(p) if np.isfinite(p) else "" for p in p_value], right=False)
        cells = [row + [s] for row, s in zip(cells, stars, strict=True)]
        colnames = colnames + [""]
    text = print_matrix(cells, colnames, list(terms))
    return text + (SIGNIF_LEGEND if show_stars else "")


def r_label(value) -> str:
    """A value as R's ``factor()`` labels it (``as.character``): 2 -> "2", 2.5 -> "2.5", TRUE."""
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return format_number(float(value), 15).strip()
    return str(value)
