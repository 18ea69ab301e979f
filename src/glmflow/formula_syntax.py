"""R model formulas as text: tokens, the response and right-hand side, cbind() and offset()
parts, random-effect terms ``(expr | g)``, and the allow-list that keeps a formula data, not
code. Nothing here builds a matrix (that is ``glmflow.formula``, through formulaic), so that
Snakemake can plan the workflow from the config without importing formulaic.
"""

# formulaic's import: 0.21 s of every snakemake start (python -X importtime)

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from glmflow.errors import GlmflowError
from glmflow.filters import expression_columns

# Functions a formula may call, as R names them.
FORMULA_FUNCTIONS = {
    "log": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "log1p": np.log1p,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
}

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)"
    r"|(?P<name>[A-Za-z.][A-Za-z0-9._]*|`[^`]+`)"
    r"|(?P<op>%in%|==|!=|<=|>=|&&|\|\||[-+*/:^~|<>()&,!])"
    r"|(?P<string>\"[^\"]*\"|'[^']*'))"
)


def tokenize(formula: str) -> list[str]:
    tokens, position = [], 0
    text = formula.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise GlmflowError(f"formula {formula!r}: cannot read it at {text[position:]!r}")
        tokens.append(match.group(match.lastgroup))
        position = match.end()
    return tokens


_TIGHT = {":", "^", "/", "("}


def _render(tokens: list[str]) -> str:
    """Tokens as formulaic reads them (R's spacing, which ``glmflow.rdeparse`` writes exactly)."""
    out: list[str] = []
    for i, token in enumerate(tokens):
        previous = tokens[i - 1] if i else None
        unary = token in ("+", "-", "!") and (previous is None or previous in _BEFORE_UNARY)
        if token == ",":
            out.append(", ")
        elif token == ")":
            out.append(")")
        elif token in _TIGHT or (previous in _TIGHT - {"("} and token not in "()"):
            out.append(token)
        elif unary:
            out.append(token if previous in {None, "(", *_TIGHT} else " " + token)
        elif _is_operator(token):
            out.append(f" {token} ")
        else:
            out.append(token)
    return "".join(out).replace("  ", " ").strip()


# After these a + - or ! is unary (``-x``, ``a * -b``, ``x^-1``).
_BEFORE_UNARY = {"~", "(", ",", "+", "-", "*", "/", "^", ":", "==", "!=", "<", ">", "<=", ">=", "&", "|", "!"}


def _is_operator(token: str) -> bool:
    return not (token[0].isalnum() or token[0] in "._`\"'")


def split_formula(formula: str, where: str) -> tuple[str, str]:
    if formula.count("~") != 1:
        raise GlmflowError(f"{where}: formula {formula!r} needs exactly one '~' (response ~ terms)")
    response, rhs = (part.strip() for part in formula.split("~"))
    if not response:
        raise GlmflowError(f"{where}: formula {formula!r} has no response left of '~'")
    if not re.fullmatch(r"[A-Za-z.][A-Za-z0-9._]*", response) and cbind_parts(response) is None:
        raise GlmflowError(
            f"{where}: formula {formula!r}: the response must be a column name or cbind(successes, failures), "
            f"not {response!r}"
        )
    if not rhs:
        raise GlmflowError(f"{where}: formula {formula!r} has no terms right of '~'")
    return response, rhs


# Calls a formula may make besides FORMULA_FUNCTIONS: R's factor() (formulaic's C), I(),
# offset() and cbind() for a binomial response.
_CALLS = set(FORMULA_FUNCTIONS) | {"factor", "C", "I", "offset", "cbind"}


def _top_level_split(text: str, separator: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [part.strip() for part in parts + [current]]


def cbind_parts(response: str) -> tuple[str, str] | None:
    """``cbind(successes, failures)``: the two expressions, or None for a plain response."""
    match = re.fullmatch(r"\s*cbind\s*\((.*)\)\s*", response)
    if not match:
        return None
    parts = _top_level_split(match.group(1), ",")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def split_offsets(rhs: str) -> tuple[str, list[str]]:
    """The right-hand side without its ``offset(expr)`` terms, and their expressions."""
    terms = _top_level_split(rhs, "+")
    offsets = [t[len("offset(") : -1] for t in terms if re.fullmatch(r"offset\s*\(.*\)", t)]
    kept = [t for t in terms if not re.fullmatch(r"offset\s*\(.*\)", t)]
    if any("offset" in t for t in kept):
        raise GlmflowError(f"offset() must be a term of its own (`+ offset(log(n))`), in {rhs!r}")
    return " + ".join(kept) if kept else "1", offsets


def check_formula_text(formula: str, where: str) -> None:
    """Refuse what would make a formula code rather than data (formulaic evaluates its terms
    as Python): strings, backticks, dotted names (attribute access), names that start with
    '_', and calls of anything but the formula language's functions. Every remaining name
    must then be a column of the data (checked where the columns are known)."""
    if "`" in formula:
        raise GlmflowError(f"{where}: formula {formula!r}: backticks are not allowed; use the column's cleaned name")
    if "_" in formula and re.search(r"(?<![A-Za-z0-9._])_", formula):
        raise GlmflowError(f"{where}: formula {formula!r}: names may not start with '_'")
    tokens = tokenize(formula)
    _check_powers(formula, tokens, where)
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if token[0] in "\"'":
            raise GlmflowError(f"{where}: formula {formula!r}: text {token} is not allowed in a formula")
        previous = tokens[i - 1] if i else "~"
        if token == "(" and (previous == ")" or not (_is_operator(previous) or is_name(previous))):
            # `(poly)(x)`, `I(x)(2)`, `2(x)`: a call of an expression, whose callee the name check
            # below never sees (formulaic would look `poly` up and call it)
            raise GlmflowError(
                f"{where}: formula {formula!r}: a call of {_callee(tokens, i)!r} is not allowed: call a formula "
                f"function by its bare name (allowed: {', '.join(sorted(_CALLS))})"
            )
        if not is_name(token):
            continue
        if "." in token:
            raise GlmflowError(
                f"{where}: formula {formula!r}: {token!r}: names with '.' are not allowed "
                "(clean_names: true turns IQ.verb into iq_verb)"
            )
        if following == "(" and token not in _CALLS:
            raise GlmflowError(
                f"{where}: formula {formula!r}: {token}() is not a formula function "
                f"(allowed: {', '.join(sorted(_CALLS))})"
            )


MAX_EXPONENT = 1024  # beyond it every number but 0 and +-1 overflows a double (R: Inf or 0)


def _operand_end(tokens: list[str], start: int) -> int:
    """Where the operand starting at ``start`` ends (exclusive): a sign, then a number, a name,
    a call or a parenthesised group; a power's exponent runs on through further powers (R's
    ``a^b^c`` is ``a^(b^c)``)."""
    i = start
    while i < len(tokens) and tokens[i] in ("-", "+"):
        i += 1
    if i < len(tokens) and is_name(tokens[i]) and i + 1 < len(tokens) and tokens[i + 1] == "(":
        i += 1
    if i < len(tokens) and tokens[i] == "(":
        depth = 0
        for j in range(i, len(tokens)):
            depth += {"(": 1, ")": -1}.get(tokens[j], 0)
            if depth == 0:
                i = j
                break
    i += 1
    power = _power_at(tokens, i)
    return _operand_end(tokens, i + power) if power else i


def _power_at(tokens: list[str], i: int) -> int:
    """The length of a power operator at ``i`` (``^``, or ``**`` as two tokens), else 0."""
    if tokens[i : i + 1] == ["^"]:
        return 1
    return 2 if tokens[i : i + 2] == ["*", "*"] else 0


def _operand_start(tokens: list[str], end: int) -> int:
    """Where the operand ending just before ``end`` starts: a number, a name, or a group with
    its call's name."""
    i = end - 1
    if tokens[i] == ")":
        depth = 0
        for j in range(i, -1, -1):
            depth += {")": 1, "(": -1}.get(tokens[j], 0)
            if depth == 0:
                i = j
                break
        if i and is_name(tokens[i - 1]):
            i -= 1
    return i


def _check_powers(formula: str, tokens: list[str], where: str) -> None:
    """A power of numbers alone is computed exactly by Python (formulaic evaluates ``I()`` as
    Python): ``I(9^9^9^9)`` would run for ever. Such a power must be one number to a number of
    at most MAX_EXPONENT; a power with a column in it is computed on doubles, quickly. Outside a
    call, a power is of terms (``(a + b)^2``): see ``_check_term_power``."""
    in_call, depths = [], []
    for k, token in enumerate(tokens):
        if token == "(":
            depths.append(k > 0 and is_name(tokens[k - 1]))
        elif token == ")" and depths:
            depths.pop()
        in_call.append(any(depths))
    i = 0
    while i < len(tokens):
        length = _power_at(tokens, i)
        if not length or i == 0:
            i += 1
            continue
        base = tokens[_operand_start(tokens, i) : i]
        exponent = tokens[i + length : _operand_end(tokens, i + length)]
        numbers_only = not any(is_name(t) for t in base + exponent)
        single = len(base) == 1 and [t for t in exponent if t not in "+-"][:1] == exponent[-1:] and len(exponent) <= 2
        if not in_call[i]:
            _check_term_power(formula, base, exponent, where)
        elif numbers_only and not (single and _is_number(exponent[-1]) and float(exponent[-1]) <= MAX_EXPONENT):
            text = _render(base + ["^"] + exponent).replace("* *", "^")
            raise GlmflowError(
                f"{where}: formula {formula!r}: the power {text} of numbers alone is refused: it is computed "
                f"exactly, and can take for ever; write the number out, or use one number to an exponent of "
                f"at most {MAX_EXPONENT}"
            )
        i += length


SMALL_POWER = 8  # a power this small is taken whatever the number of terms (R: a^2 is a)
MAX_TERM_PRODUCTS = 50_000  # formulaic multiplies the terms out: (a + b + c + d)^10 took minutes


def _check_term_power(formula: str, base: list[str], exponent: list[str], where: str) -> None:
    """A power of terms, ``(a + b + c)^k``: all interactions up to order k. R gives the same for
    every k beyond the number of terms; formulaic multiplies the sum out k times, terms^k
    products, so k is at most the number of terms (or SMALL_POWER) and terms^k at most
    MAX_TERM_PRODUCTS."""
    inner = base[1:-1] if base[:1] == ["("] else base
    depth, terms = 0, 1
    for token in inner:
        depth += {"(": 1, ")": -1}.get(token, 0)
        terms += token == "+" and depth == 0
    text = _render(base + ["^"] + exponent).replace("* *", "^")
    if len(exponent) != 1 or not exponent[0].isdigit():
        raise GlmflowError(f"{where}: formula {formula!r}: the power {text} of terms needs a whole number exponent")
    if int(exponent[0]) > max(terms, SMALL_POWER):
        raise GlmflowError(
            f"{where}: formula {formula!r}: {text}: a power of {terms} term(s) beyond {terms} gives the same "
            f"model in R; write ^{terms}"
        )
    if terms ** int(exponent[0]) > MAX_TERM_PRODUCTS:
        raise GlmflowError(
            f"{where}: formula {formula!r}: {text} expands to {terms}^{exponent[0]} products of terms, more than "
            f"{MAX_TERM_PRODUCTS}: write the interactions you mean out, or use a smaller power"
        )


def _is_number(token: str) -> bool:
    return bool(re.fullmatch(r"\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+", token))


def _callee(tokens: list[str], call: int) -> str:
    """The expression called by the ``(`` at ``tokens[call]``: a number, or a parenthesised
    expression (with the call it may itself be)."""
    start, depth = call - 1, 0
    while start >= 0:
        depth += (tokens[start] == ")") - (tokens[start] == "(")
        if depth == 0 and not (start and tokens[start] == "(" and is_name(tokens[start - 1])):
            break
        start -= 1
    return _render(tokens[max(start, 0) : call])


@dataclass(frozen=True)
class RandomTerm:
    """A random-effect term as written: ``(expression | group)``, or ``(expression || group)``
    (uncorrelated). ``group`` is a column, an interaction ``a:b`` or a nesting ``a/b``."""

    expression: str
    group: str
    uncorrelated: bool = False

    @property
    def group_columns(self) -> list[str]:
        return [name.strip() for name in re.split(r"[/:]", self.group)]

    def __str__(self) -> str:
        return f"({self.expression} {'||' if self.uncorrelated else '|'} {self.group})"


def _random_spans(rhs: str) -> list[tuple[int, int, RandomTerm]]:
    """Where the random-effect terms are: each top-level ``( ... | ... )`` group (a parenthesis
    that opens a call, such as ``I(...)``, is not one)."""
    spans, depth, start = [], 0, None
    for position, char in enumerate(rhs):
        if char == "(":
            before = rhs[:position].rstrip()
            if depth == 0 and not (before and (before[-1].isalnum() or before[-1] in "._")):
                start = position
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and start is not None:
                inner = rhs[start + 1 : position]
                parts = _top_level_split(inner, "|")
                if len(parts) == 2:
                    spans.append((start, position + 1, RandomTerm(parts[0], parts[1])))
                elif len(parts) == 3 and parts[1] == "":
                    spans.append((start, position + 1, RandomTerm(parts[0], parts[2], uncorrelated=True)))
                start = None
    return spans


def random_effect_terms(formula: str) -> list[RandomTerm]:
    """The random-effect terms of a mixed-model formula, in the order written."""
    return [term for _, _, term in _random_spans(formula)]


def check_random_terms(formula: str, where: str) -> list[RandomTerm]:
    """lme4's random-effect syntax: ``(expr | g)``, ``(expr || g)``, ``g`` one column, ``a:b``
    or ``a/b`` (any depth); ``expr`` in the fixed-effect language. Anything else refused."""
    terms = random_effect_terms(formula)
    for term in terms:
        if not term.expression:
            raise GlmflowError(f"{where}: formula {formula!r}: random term {term} has no terms left of the bar")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*(\s*[/:]\s*[A-Za-z][A-Za-z0-9_]*)*", term.group):
            raise GlmflowError(
                f"{where}: formula {formula!r}: random term {term}: the grouping must be a column, "
                "a:b (interaction) or a/b (b nested in a), not " + repr(term.group)
            )
        if "|" in term.expression or any(p.strip().startswith("(") for p in _top_level_split(term.expression, "+")):
            raise GlmflowError(f"{where}: formula {formula!r}: random term {term} cannot be nested in another")
        check_formula_text(f"y ~ {term.expression}", f"{where}: random term {term}")
    return terms


def fixed_part(rhs: str) -> str:
    """The right-hand side without its random-effect terms."""
    text = rhs
    for start, end, _ in reversed(_random_spans(rhs)):
        text = text[:start] + text[end:]
    kept = [part for part in _top_level_split(text, "+") if part]
    return " + ".join(kept) or "1"


def to_formulaic(rhs: str) -> str:
    """Translate R-only syntax: ``factor(x)`` to ``C(x)``, ``^`` inside calls to ``**``."""
    tokens = tokenize(rhs)
    out, call_depth, depth_stack = [], 0, []
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if token == "(":
            is_call = bool(out) and is_name(out[-1])
            depth_stack.append(is_call)
            call_depth += is_call
        elif token == ")" and depth_stack:
            call_depth -= depth_stack.pop()
        if token == "factor" and following == "(":
            token = "C"
        elif token == "^" and call_depth:
            token = "**"
        out.append(token)
    return _render(out)


def is_name(token: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z.][A-Za-z0-9._]*", token))


def response_columns(response: str) -> list[str]:
    """The columns a response reads: itself, or those of cbind()'s two expressions."""
    parts = cbind_parts(response)
    if parts is None:
        return [response]
    return list(dict.fromkeys(c for part in parts for c in expression_columns(part)))


def factor_call_variables(formula: str) -> set[str]:
    """Variables wrapped in ``factor()`` or ``C()`` in a formula."""
    tokens = tokenize(formula)
    return {tokens[i + 2] for i in range(len(tokens) - 2) if tokens[i] in ("factor", "C") and tokens[i + 1] == "("}
