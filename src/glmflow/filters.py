"""Row filters from config, parsed into an allow-listed expression tree and evaluated here.

A filter such as ``fare >= 0 and sex == "male"`` is data, never code: pandas' ``query``
would resolve ``@name`` to module globals and call attributes (``@pd.io.common.os.system``
ran a shell command), so the text is parsed by Python's parser (which executes nothing)
and only these nodes are accepted: column names, numbers, strings, ``True``/``False``,
comparisons (``== != < <= > >=``, ``in``/``not in`` a list of literals), ``and``/``or``/
``not`` (and pandas' ``& | ~``), arithmetic (``+ - * / // % **``) and the calls
``isna(column)``/``notna(column)``. Everything else is refused with the offending token.

Evaluation follows R's ``subset()``: a comparison with a missing value is NA, and NA
propagates through ``not``/``and``/``or`` as in R's three-valued logic (``NA & FALSE`` is
FALSE); rows whose result is NA are dropped. ``x in [...]`` is R's ``%in%`` (a missing value
is in no list). A factor (a declared column) compares by its labels, as R's ``Ops.factor``:
``race != 3`` keeps the rows whose label is not "3"; ordering and arithmetic are refused for
factors (R gives NA for every row, with a warning).
"""

from __future__ import annotations

import ast
import operator

import numpy as np
import pandas as pd

from glmflow.errors import GlmflowError
from glmflow.rformat import r_label

_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
_FUNCTIONS = {"isna": pd.isna, "notna": pd.notna}


class FilterError(GlmflowError):
    pass


def parse_filter(text: str) -> ast.Expression:
    """The filter's expression tree, every node allow-listed; FilterError naming what is refused."""
    if "@" in text:
        raise FilterError("'@' (a reference to a Python variable) is not allowed; write the value itself")
    if "`" in text:
        raise FilterError("backticks are not allowed; refer to columns by their (cleaned) names")
    if "\\" in text:
        raise FilterError("backslashes (string escapes) are not allowed")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise FilterError(f"not a valid expression at character {error.offset}: {error.msg}") from None
    _check(tree.body)
    return tree


def filter_columns(text: str) -> list[str]:
    """The column names a filter reads, in order of appearance."""
    tree = parse_filter(text)
    names = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id not in _FUNCTIONS]
    return list(dict.fromkeys(names))


def _refuse(node: ast.AST, what: str | None = None) -> None:
    token = ast.unparse(node) if not isinstance(node, ast.expr_context) else type(node).__name__
    raise FilterError(f"{what or type(node).__name__} is not allowed in a filter: {token!r}")


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.Name):
        if node.id.startswith("__"):
            _refuse(node, "a dunder name")
        return
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, int | float | str | bool):
            _refuse(node, "this constant")
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.Not | ast.Invert | ast.USub | ast.UAdd):
            _refuse(node)
        _check(node.operand)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITHMETIC:
            _refuse(node, "this operator")
        _check(node.left)
        _check(node.right)
        _check_constant_arithmetic(node)
        return
    if isinstance(node, ast.Compare):
        _check(node.left)
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, ast.List | ast.Tuple):
                    _refuse(right, "the right side of 'in' must be a list of values, not")
                for element in right.elts:
                    if not isinstance(element, ast.Constant):
                        _refuse(element, "a list for 'in' holds literal values only, not")
                    _check(element)
            elif type(op) in _COMPARE:
                _check(right)
            else:
                _refuse(node, "this comparison")
        return
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
            _refuse(node, f"a call (only {', '.join(_FUNCTIONS)} may be called)")
        if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
            _refuse(node, f"{node.func.id}() takes one column name;")
        _check(node.args[0])
        return
    if isinstance(node, ast.Attribute):
        _refuse(node, "attribute access")
    if isinstance(node, ast.Lambda):
        _refuse(node, "a lambda")
    _refuse(node)


def _check_constant_arithmetic(node: ast.BinOp) -> None:
    """Arithmetic on text is refused (R: 'non-numeric argument'; Python would repeat it,
    ``'a' * 10**12`` a terabyte); arithmetic of numbers alone is computed here as R's doubles,
    and refused where it overflows: Python's exact integers make ``9**9**9`` run for ever."""
    for side in (node.left, node.right):
        if isinstance(side, ast.Constant) and isinstance(side.value, str):
            raise FilterError(f"{ast.unparse(node)!r}: arithmetic on text is not allowed (R: non-numeric argument)")
    if any(isinstance(inner, ast.Name) for inner in ast.walk(node)):
        return  # a column's values: numpy's doubles, as quick for any size of number
    with np.errstate(all="ignore"):
        value = _constant_value(node)
    if not np.isfinite(value):
        raise FilterError(
            f"{ast.unparse(node)!r} is {value} as a double (R gives {'NaN' if np.isnan(value) else 'Inf'}): "
            "write the number out, within +-1.8e308"
        )


def _constant_value(node: ast.AST) -> np.float64:
    """A numbers-only expression (``_check`` allowed each node) as R computes it, in doubles."""
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.UnaryOp):
        value = _constant_value(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    left, right = _constant_value(node.left), _constant_value(node.right)
    if isinstance(node.op, ast.BitAnd | ast.BitOr):
        return np.float64(_ARITHMETIC[type(node.op)](bool(left), bool(right)))
    return np.float64(_ARITHMETIC[type(node.op)](left, right))


def evaluate_filter(data: pd.DataFrame, text: str) -> pd.Series:
    """The boolean mask of the rows a filter keeps."""
    tree = parse_filter(text)
    unknown = [c for c in filter_columns(text) if c not in data.columns]
    if unknown:
        raise FilterError(f"{', '.join(map(repr, unknown))} not a column (columns: {', '.join(data.columns)})")
    try:
        mask = _evaluate(tree.body, data)
    except FilterError:
        raise
    except (TypeError, ValueError) as error:  # e.g. ordering an unordered factor, text < number
        raise FilterError(f"the filter {text!r} cannot be evaluated on these columns: {error}") from None
    if not isinstance(mask, pd.Series):
        raise FilterError(f"the filter {text!r} does not depend on any column")
    if not pd.api.types.is_bool_dtype(mask.dtype):
        raise FilterError(f"the filter {text!r} gives values, not true/false for each row")
    return mask.fillna(False).astype(bool)


def _evaluate(node: ast.AST, data: pd.DataFrame):
    if isinstance(node, ast.Name):
        return data[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BoolOp):
        values = [_evaluate(v, data) for v in node.values]
        combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
        result = values[0]
        for value in values[1:]:
            result = combine(result, value)
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, data)
        if isinstance(node.op, ast.Not | ast.Invert):
            return ~operand if isinstance(operand, pd.Series) else not operand
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, data), _evaluate(node.right, data)
        if _is_factor(left) or _is_factor(right):
            raise FilterError(f"{ast.unparse(node)!r}: arithmetic is not meaningful for a factor (R gives NA)")
        if any(_is_text(side) for side in (left, right)):
            raise FilterError(f"{ast.unparse(node)!r}: arithmetic on text is not allowed (R: non-numeric argument)")
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left, result = _evaluate(node.left, data), None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                right = [element.value for element in right_node.elts]
                part = _is_in(left, right, isinstance(op, ast.NotIn))
            else:
                right = _evaluate(right_node, data)
                part = _compare(op, left, right, ast.unparse(node))
            result = part if result is None else result & part
            left = right
        return result
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](_evaluate(node.args[0], data))
    raise FilterError(f"cannot evaluate {ast.unparse(node)!r}")  # unreachable: _check refused it


def _is_text(value) -> bool:
    """A string, or a column that is neither numbers nor true/false (pandas would repeat its text)."""
    if isinstance(value, pd.Series):
        return not (pd.api.types.is_numeric_dtype(value.dtype) or pd.api.types.is_bool_dtype(value.dtype))
    return isinstance(value, str)


def _is_factor(value) -> bool:
    return isinstance(value, pd.Series) and isinstance(value.dtype, pd.CategoricalDtype)


def _labels(value):
    """A value as R's ``Ops.factor`` compares it with a factor: as text (``3`` as "3")."""
    if isinstance(value, pd.Series):
        return value.astype(object).map(lambda v: v if pd.isna(v) or isinstance(v, str) else r_label(v))
    return value if isinstance(value, str) else r_label(value)


def _missing(value):
    return value.isna().to_numpy() if isinstance(value, pd.Series) else bool(pd.isna(value))


def _compare(op: ast.cmpop, left, right, text: str):
    """One comparison with R's NA: missing on either side gives NA (dropped unless negated
    into a definite value by ``or``)."""
    if _is_factor(left) or _is_factor(right):
        if not isinstance(op, ast.Eq | ast.NotEq):
            raise FilterError(
                f"{text!r}: ordering is not meaningful for a factor (R gives NA for every row); "
                "compare it with ==, != or in, or leave the column undeclared to order its numbers"
            )
        left, right = _labels(left), _labels(right)
    part = _COMPARE[type(op)](left, right)
    if not isinstance(part, pd.Series):
        return part
    missing = _missing(left) | _missing(right)
    part = part.astype("boolean")
    part[missing] = pd.NA
    return part


def _is_in(left, values: list, negate: bool):
    """R's ``%in%``: a missing value is in no list of values (so it is ``not in`` every one)."""
    if not isinstance(left, pd.Series):
        return (left in values) != negate
    if _is_factor(left):
        left, values = _labels(left), [_labels(v) for v in values]
    part = left.isin(values)
    return ~part if negate else part


# --- arithmetic expressions: cbind() parts, offset(), the `offset` config key -------------

_MATH = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
         "abs": np.abs}  # fmt: skip
_EXPRESSION_OPS = {ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow}


def parse_expression(text: str) -> ast.Expression:
    """An arithmetic expression of columns and numbers in R's syntax (``size - incidence``,
    ``log(exposure)``, ``x^2``): names, numbers, + - * / ^ and R's log, exp, sqrt, log2,
    log10, log1p, abs; anything else refused with the offending token."""
    if any(c in text for c in "@`\\'\""):
        raise FilterError(f"{text!r}: only column names, numbers, arithmetic and {', '.join(_MATH)} are allowed")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as error:
        raise FilterError(f"{text!r} is not a valid expression: {error.msg}") from None
    for node in ast.walk(tree):
        allowed = (
            isinstance(node, ast.Expression | ast.Load)
            or (isinstance(node, ast.Name) and not node.id.startswith("_"))
            or (isinstance(node, ast.Constant) and type(node.value) in (int, float))
            or (isinstance(node, ast.BinOp) and type(node.op) in _EXPRESSION_OPS)
            or isinstance(node, ast.operator)
            or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd))
            or isinstance(node, ast.unaryop)
            or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _MATH
                and len(node.args) == 1 and not node.keywords)
        )  # fmt: skip
        if not allowed:
            raise FilterError(f"{text!r}: {ast.unparse(node) if isinstance(node, ast.expr) else node!r} is not allowed")
    return tree


def expression_columns(text: str) -> list[str]:
    tree = parse_expression(text)
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call)}
    names = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id not in calls]
    return list(dict.fromkeys(names))


def evaluate_expression(data: pd.DataFrame, text: str) -> np.ndarray:
    """The values of an arithmetic expression (``parse_expression``) on every row."""
    tree = parse_expression(text)
    unknown = [c for c in expression_columns(text) if c not in data.columns]
    if unknown:
        raise FilterError(f"{text!r}: {', '.join(map(repr, unknown))} not a column")

    def value(node):
        if isinstance(node, ast.Name):
            return data[node.id].to_numpy(dtype=float)
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.UnaryOp):
            return -value(node.operand) if isinstance(node.op, ast.USub) else value(node.operand)
        if isinstance(node, ast.BinOp):
            return _ARITHMETIC[type(node.op)](value(node.left), value(node.right))
        return _MATH[node.func.id](value(node.args[0]))

    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(value(tree.body), dtype=float), (len(data),)).copy()
