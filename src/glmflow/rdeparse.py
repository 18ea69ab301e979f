"""R's ``deparse()`` of formulas and calls: spacing, numbers and line breaks as R writes them.

An expression (a formula, a term such as ``exp(breaks/70)``) is parsed with R's operator
precedence, then written as R's deparse.c writes it: a space either side of ``+ - * ~``,
comparisons, ``&``, ``|`` and ``%in%``, none around ``/ ^ :`` or after a unary sign, ``", "``
between arguments, numbers with 15 significant digits. A call breaks its line as R does: after
a spaced binary operator or an argument's comma once the line is past the cutoff (60 bytes), the
continuation indented four spaces more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from glmflow.errors import GlmflowError
from glmflow.formula_syntax import is_name, tokenize

# Binary operators and their precedence (R's ?Syntax, higher binds tighter); ^ is right-assoc.
_BINARY = {"~": 1, "||": 2, "|": 2, "&&": 3, "&": 3, "==": 5, "!=": 5, "<": 5, ">": 5, "<=": 5, ">=": 5,
           "+": 6, "-": 6, "*": 7, "/": 7, "%in%": 8, ":": 9, "^": 11}  # fmt: skip
_UNARY = {"-": 10, "+": 10, "!": 4}
_TIGHT = {"/", ":", "^"}  # R's BINARY2: written without spaces, no line break after them
_NUMBER = re.compile(r"\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+")


@dataclass
class _Node:
    kind: str  # "atom", "call", "paren", "unary", "binary"
    text: str  # the atom, the function's name or the operator
    children: list[_Node]


class _Parser:
    def __init__(self, tokens: list[str], source: str):
        self.tokens, self.position, self.source = tokens, 0, source

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise GlmflowError(f"{self.source!r}: the expression ends too early")
        self.position += 1
        return token

    def expression(self, least: int = 0) -> _Node:
        left = self.prefix()
        while (op := self.peek()) in _BINARY and _BINARY[op] >= least:
            self.take()
            right = self.expression(_BINARY[op] + (op != "^"))
            left = _Node("binary", op, [left, right])
        return left

    def prefix(self) -> _Node:
        token = self.take()
        if token in _UNARY:
            return _Node("unary", token, [self.expression(_UNARY[token])])
        if token == "(":
            inner = self.expression()
            self.expect(")")
            return _Node("paren", "(", [inner])
        if is_name(token) and self.peek() == "(":
            self.take()
            arguments = []
            while self.peek() != ")":
                arguments.append(self.expression())
                if self.peek() == ",":
                    self.take()
            self.expect(")")
            return _Node("call", token, arguments)
        return _Node("atom", token, [])

    def expect(self, token: str) -> None:
        if self.take() != token:
            raise GlmflowError(f"{self.source!r}: expected {token!r}")


def parse(text: str) -> _Node:
    """An R expression's tree (Python's ``**`` read as R's ``^``)."""
    parser = _Parser(tokenize(text.replace("**", "^")), text)
    node = parser.expression()
    if parser.peek() is not None:
        raise GlmflowError(f"{text!r}: cannot read it at {parser.peek()!r}")
    return node


class Deparser:
    """deparse.c's buffer: lines, the current line's length and the indent of continuations."""

    def __init__(self, cutoff: float = 60):
        self.cutoff, self.lines, self.line, self.indent, self.start = cutoff, [], "", 0, True

    def write(self, text: str) -> None:
        if self.start:
            self.start = False
            self.line += "".join("    " if i <= 4 else "  " for i in range(1, self.indent + 1))
        self.line += text

    def linebreak(self, broken: bool) -> bool:
        """A new line once this one is past the cutoff; the first break of a construct indents
        its continuations (returned: whether this construct has broken)."""
        if len(self.line.encode()) > self.cutoff:
            if not broken:
                self.indent += 1
            self.lines.append(self.line)
            self.line, self.start = "", True
            return True
        return broken

    def node(self, node: _Node) -> None:
        if node.kind == "atom":
            self.write(_r_number(node.text))
        elif node.kind == "paren":
            self.write("(")
            self.node(node.children[0])
            self.write(")")
        elif node.kind == "unary":
            self.write(node.text)
            self.node(node.children[0])
        elif node.kind == "call":
            self.write(node.text + "(")
            self.arguments([(None, child) for child in node.children])
            self.write(")")
        elif node.text in _TIGHT:
            self.node(node.children[0])
            self.write(node.text)
            self.node(node.children[1])
        else:
            self.node(node.children[0])
            self.write(f" {node.text} ")
            broken = self.linebreak(False)
            self.node(node.children[1])
            self.indent -= broken

    def arguments(self, arguments: list[tuple[str | None, _Node | str]]) -> None:
        """args2buff: ``name = value`` (a value given as text is written as it is)."""
        broken = False
        for i, (name, value) in enumerate(arguments):
            if name:
                self.write(f"{name} = ")
            if isinstance(value, str):
                self.write(value)
            else:
                self.node(value)
            if i < len(arguments) - 1:
                self.write(", ")
                broken = self.linebreak(broken)
        self.indent -= broken

    def text(self) -> str:
        return "\n".join(self.lines + [self.line])


def _r_number(token: str) -> str:
    """A numeric literal as R deparses the double it reads: 15 significant digits, R's choice
    of fixed or scientific notation (``1e5`` is ``1e+05``, ``2.50`` is ``2.5``)."""
    if not _NUMBER.fullmatch(token):
        return token
    from glmflow.rformat import format_number  # imported here: rformat imports this module

    return format_number(float(token), 15).strip()


def r_deparse(expression: str) -> str:
    """An expression on one line as R's ``deparse()`` writes it: ``exp(breaks/70)``, ``I(x^2)``,
    ``log(x + 1)``, ``I(x * 1e+05)``, ``survived ~ 1 + sex * fare``."""
    deparser = Deparser(cutoff=float("inf"))
    deparser.node(parse(expression))
    return deparser.text()


def deparse_formula(formula: str) -> str:
    """A formula on one line as R's ``deparse()`` writes it: ``survived ~ 1 + sex * fare``."""
    return r_deparse(formula)


def deparse_call(function: str, arguments: list[tuple[str, str]], cutoff: int = 60) -> str:
    """R's ``deparse()`` of a call, as print() shows it: ``glm(formula = ..., data = d)``.
    Argument values that are R expressions are deparsed (with their line breaks); others, such
    as ``binomial(link = "probit")``, are written as given."""
    deparser = Deparser(cutoff)
    deparser.write(function + "(")
    parsed: list[tuple[str | None, _Node | str]] = []
    for name, value in arguments:
        try:
            parsed.append((name, parse(value)))
        except GlmflowError:
            parsed.append((name, value))
    deparser.arguments(parsed)
    deparser.write(")")
    return deparser.text()
