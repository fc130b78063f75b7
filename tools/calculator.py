"""``calculator``: exact arithmetic on an expression string, parsed with ``ast``, never eval'd.

Numbers are held as ``fractions.Fraction``, so ``0.1 + 0.2`` is ``0.3`` and ``1/3*3`` is ``1``.
Irrational results (``sqrt(2)``, ``pi``, fractional powers) are computed to 40 digits and
shown to 12 significant digits.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from fractions import Fraction

from agentkit import ToolError, tool

__all__ = ["calculator"]

MAX_EXPRESSION_CHARS = 500
# A bound on the size of every intermediate number. 10,000 bits is about 3,000 decimal
# digits: far beyond any sensible arithmetic, yet well under Python's 4,300-digit
# int-to-str limit, and cheap to compute with.
MAX_BITS = 10_000
_WORKING_DIGITS = 40  # precision of irrational approximations
_SHOWN_DIGITS = 12  # significant digits of an approximate result
_MAX_EXACT_DIGITS = 40  # longer exact integers / decimals are shown in scientific form

_SUPPORTED = (
    "numbers, + - * / // % ** (or ^), parentheses, the functions "
    "sqrt, abs, round, floor, ceil, min, max, and the constants pi and e"
)


@dataclass(frozen=True)
class _Num:
    """A value: a fraction, and whether it is exact (False once an irrational entered)."""

    value: Fraction
    exact: bool = True


def _approx(d: Decimal) -> _Num:
    return _Num(Fraction(d), exact=False)


def _decimal(x: Fraction) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _WORKING_DIGITS
        return Decimal(x.numerator) / Decimal(x.denominator)


_E = Decimal(1).exp(Context(prec=_WORKING_DIGITS))
_PI = Decimal("3.141592653589793238462643383279502884197")
_CONSTANTS = {"pi": _approx(_PI), "e": _approx(_E)}


@tool(idempotent=True)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly. Use it for every calculation instead of
    doing arithmetic in your head, and pass only numbers, no words or units.

    Supports + - * / // % ** (or ^), parentheses, sqrt, abs, round, floor, ceil, min,
    max, pi and e.

    Args:
        expression: the arithmetic to evaluate, written with the numbers of the problem
    """
    # No worked example with numbers in the description: small models copy them into
    # their calls instead of the numbers of the problem (seen with Qwen 0.5B).
    text = expression.strip()
    if not text:
        raise ToolError("the expression is empty; pass arithmetic such as '2 * (3 + 4)'")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolError(
            f"the expression is {len(text)} characters long; the limit is "
            f"{MAX_EXPRESSION_CHARS}. Split the calculation into smaller steps."
        )
    # Small models write powers as ^ and copy typographic operators from prose.
    text = text.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")
    equation = _equation(text)
    if equation is not None:
        return _check_equation(*equation)
    result = _evaluate(text, expression)
    return format_number(result.value, exact=result.exact)


_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")


def _equation(text: str) -> tuple[str, str] | None:
    """``(left, right)`` when ``text`` is one equation, ``a = b``; None otherwise.

    Small models reason through the calculator: they write each step with the value they
    expect (``15 - 7 = 8``), or name it (``total = 15 * 4``). Refusing those as syntax
    errors leaves them retrying the same steps; checking them gives each step its value.
    Comparisons (``==``, ``<=``, ``>=``, ``!=``) are not equations.
    """
    cuts, depth = [], 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        alone = text[i - 1 : i] not in ("=", "<", ">", "!") and text[i + 1 : i + 2] != "="
        if ch == "=" and depth == 0 and alone:
            cuts.append(i)
    if len(cuts) != 1:
        return None  # no '=', or a chain of them: left to the parser's own error
    return text[: cuts[0]].strip(), text[cuts[0] + 1 :].strip()


def _check_equation(left: str, right: str) -> str:
    """The value of an equation's computed side, and whether the written value was right."""
    if _LABEL.fullmatch(left) and left not in _CONSTANTS and right:
        left, right = right, ""  # "total = 15 * 4": the right side is the arithmetic
    if not left:
        raise ToolError(
            f"nothing to compute before '=' in {_short(left + ' = ' + right)!r}; pass "
            "the arithmetic itself, such as '15 - 7'"
        )
    value = _evaluate(left, left)
    shown = format_number(value.value, exact=value.exact)
    if not right or _LABEL.fullmatch(right):
        return shown
    try:
        claimed = _evaluate(right, right)
    except ToolError:
        return shown
    if _agrees(claimed.value, value.value, right):
        return shown
    # The computed value comes last: a reader taking the last number takes the right one.
    return f"{right} is wrong: {left} = {shown}"


def _agrees(claimed: Fraction, value: Fraction, written: str) -> bool:
    """Whether the written value is the computed one, or it rounded to the digits written."""
    if claimed == value:
        return True
    decimals = re.fullmatch(r"-?\d*\.(\d+)", written.strip())
    places = len(decimals.group(1)) if decimals else 0
    return abs(claimed - value) <= Fraction(1, 2 * 10**places) if decimals else False


def _evaluate(text: str, original: str) -> _Num:
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ToolError(
            f"cannot parse {_short(original)!r} as arithmetic ({_reason(exc)}). "
            f"The calculator understands {_SUPPORTED}."
        ) from exc
    try:
        return _Evaluator(text).eval(tree.body)
    except RecursionError as exc:
        raise ToolError("the expression is nested too deeply; split it into steps") from exc


# Arithmetic has one answer: a repeated calculation is never run again (see
# Tool.deterministic); the model is asked for its answer instead.
calculator.deterministic = True


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.msg:
        return exc.msg
    return type(exc).__name__


class _Evaluator:
    """Walks an ``ast`` expression, allowing only arithmetic nodes."""

    def __init__(self, source: str) -> None:
        self.source = source

    def eval(self, node: ast.expr) -> _Num:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.eval(node.operand)
            if isinstance(node.op, ast.USub):
                return _Num(-operand.value, operand.exact)
            return operand
        if isinstance(node, ast.BinOp):
            return self._binop(node)
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return _CONSTANTS[node.id]
            if node.id in _FUNCTIONS:
                raise ToolError(f"{node.id} is a function: call it like {node.id}(16)")
            raise ToolError(
                f"unknown name {node.id!r}: the calculator works on numbers only, not "
                f"variables or units. It understands {_SUPPORTED}."
            )
        if isinstance(node, ast.Call):
            return self._call(node)
        raise ToolError(
            f"{self._segment(node)!r} is not arithmetic the calculator allows. "
            f"It understands {_SUPPORTED}."
        )

    def _segment(self, node: ast.expr) -> str:
        return _short(ast.get_source_segment(self.source, node) or type(node).__name__)

    def _constant(self, node: ast.Constant) -> _Num:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError(f"{self._segment(node)!r} is not a number")
        if isinstance(value, int):
            return _check(_Num(Fraction(value)))
        # Read the literal as written: Fraction(0.1) is the binary float, not 1/10.
        literal = (ast.get_source_segment(self.source, node) or "").replace("_", "")
        try:
            return _check(_Num(Fraction(literal)))
        except (ValueError, ZeroDivisionError):
            return _check(_Num(Fraction(value)))

    def _binop(self, node: ast.BinOp) -> _Num:
        left, right = self.eval(node.left), self.eval(node.right)
        exact = left.exact and right.exact
        a, b = left.value, right.value
        op = node.op
        if isinstance(op, ast.Pow):
            return _power(left, right)
        if isinstance(op, ast.Add):
            return _check(_Num(a + b, exact))
        if isinstance(op, ast.Sub):
            return _check(_Num(a - b, exact))
        if isinstance(op, ast.Mult):
            return _check(_Num(a * b, exact))
        if isinstance(op, ast.Div | ast.FloorDiv | ast.Mod):
            if b == 0:
                raise ToolError(f"division by zero in {self._segment(node)!r}")
            if isinstance(op, ast.Div):
                return _check(_Num(a / b, exact))
            if isinstance(op, ast.FloorDiv):
                return _check(_Num(Fraction(a // b), exact))
            return _check(_Num(a % b, exact))
        raise ToolError(
            f"the operator in {self._segment(node)!r} is not supported; use + - * / // % **"
        )

    def _call(self, node: ast.Call) -> _Num:
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise ToolError(
                f"{self._segment(node.func)!r} is not a known function; the calculator "
                "has sqrt, abs, round, floor, ceil, min and max"
            )
        if node.keywords:
            raise ToolError(f"{node.func.id}() takes no keyword arguments")
        name = node.func.id
        args = [self.eval(arg) for arg in node.args]
        arity, fn = _FUNCTIONS[name]
        low, high = arity
        if not low <= len(args) <= high:
            wanted = str(low) if low == high else f"{low} to {high}" if high < 99 else f"{low}+"
            raise ToolError(f"{name}() takes {wanted} argument(s), got {len(args)}")
        return _check(fn(args))


def _check(num: _Num) -> _Num:
    """Refuse numbers too large to be useful (and slow to compute with)."""
    v = num.value
    if max(v.numerator.bit_length(), v.denominator.bit_length()) > MAX_BITS:
        raise ToolError(
            f"a number in this calculation has more than {MAX_BITS * 3 // 10} digits; "
            "the calculator refuses numbers that large"
        )
    return num


def _power(base: _Num, exponent: _Num) -> _Num:
    b, x = base.value, exponent.value
    exact = base.exact and exponent.exact
    if x.denominator == 1:
        n = x.numerator
        if b == 0 and n < 0:
            raise ToolError("division by zero: 0 raised to a negative power")
        size = max(b.numerator.bit_length(), b.denominator.bit_length())
        # Estimate the result's size before computing it: 10**10**10 must fail fast.
        if b not in (0, 1, -1) and abs(n) * max(size - 1, 1) > MAX_BITS:
            raise ToolError(
                f"the power is too large (exponent {n}); the calculator refuses results "
                f"over about {MAX_BITS * 3 // 10} digits"
            )
        return _check(_Num(b**n, exact))
    if b < 0:
        raise ToolError("a negative number to a fractional power has no real result")
    if b == 0:
        return _Num(Fraction(0), exact)
    if abs(x) > MAX_BITS:
        raise ToolError(f"the exponent {float(x):g} is too large")
    root = _exact_root(b, x.denominator)
    if root is not None:
        return _power(_Num(root, exact), _Num(Fraction(x.numerator), exact))
    try:
        with localcontext() as ctx:
            ctx.prec = _WORKING_DIGITS
            result = _decimal(b) ** _decimal(x)
    except ArithmeticError as exc:  # decimal.Overflow and friends
        raise ToolError("the power is too large for the calculator") from exc
    if result and abs(result.adjusted()) > MAX_BITS * 3 // 10:
        # Checked before converting: Fraction(Decimal("1E+999999")) is itself slow.
        raise ToolError("the power is too large (or too small) for the calculator")
    return _check(_approx(result))


def _exact_root(x: Fraction, n: int) -> Fraction | None:
    """The n-th root of x when it is rational (sqrt(9/4) = 3/2), else None."""
    if n > 64:
        return None
    roots = []
    for part in (x.numerator, x.denominator):
        r = _int_root(part, n)
        if r**n != part:
            return None
        roots.append(r)
    return Fraction(roots[0], roots[1])


def _int_root(value: int, n: int) -> int:
    """The floor of the n-th root of a non-negative integer (Newton's method on ints)."""
    if value < 2:
        return value
    x = 1 << -(-value.bit_length() // n)  # a power of two at or above the root
    while True:
        y = ((n - 1) * x + value // x ** (n - 1)) // n
        if y >= x:
            return x
        x = y


def _sqrt(args: list[_Num]) -> _Num:
    (arg,) = args
    if arg.value < 0:
        raise ToolError("sqrt of a negative number has no real result")
    return _power(arg, _Num(Fraction(1, 2)))


def _round(args: list[_Num]) -> _Num:
    digits = 0
    if len(args) == 2:
        if args[1].value.denominator != 1 or abs(args[1].value) > 100:
            raise ToolError("round(x, n): n must be a whole number between -100 and 100")
        digits = int(args[1].value)
    # Python's round: halves go to the even neighbour, as in round(2.5) == 2.
    return _Num(Fraction(round(args[0].value, digits)), True)


_FUNCTIONS: dict[str, tuple[tuple[int, int], Callable[[list[_Num]], _Num]]] = {
    "sqrt": ((1, 1), _sqrt),
    "abs": ((1, 1), lambda a: _Num(abs(a[0].value), a[0].exact)),
    "round": ((1, 2), _round),
    "floor": ((1, 1), lambda a: _Num(Fraction(math.floor(a[0].value)))),
    "ceil": ((1, 1), lambda a: _Num(Fraction(math.ceil(a[0].value)))),
    "min": ((1, 99), lambda a: min(a, key=lambda n: n.value)),
    "max": ((1, 99), lambda a: max(a, key=lambda n: n.value)),
}


def format_number(x: Fraction, *, exact: bool = True) -> str:
    """Integers as integers, finite decimals in full, everything else to 12 digits.

    An exact repeating fraction also shows itself, as in ``0.333333333333 (exactly 1/3)``.
    """
    if exact and x.denominator == 1:
        digits = len(str(abs(x.numerator)))
        if digits <= _MAX_EXACT_DIGITS:
            return str(x.numerator)
        return f"{_approximate(x)} (an integer with {digits} digits)"
    if exact:
        places = _decimal_places(x.denominator)
        if places is not None and places <= _MAX_EXACT_DIGITS:
            scaled = abs(x.numerator) * 10**places // x.denominator
            padded = str(scaled).rjust(places + 1, "0")
            return f"{'-' if x < 0 else ''}{padded[:-places]}.{padded[-places:]}"
        if len(str(x.denominator)) <= 12 and len(str(abs(x.numerator))) <= 12:
            return f"{_approximate(x)} (exactly {x.numerator}/{x.denominator})"
    return _approximate(x)


def _approximate(x: Fraction) -> str:
    """12 significant digits; plain notation only where no digit would be made up."""
    with localcontext() as ctx:
        ctx.prec = _SHOWN_DIGITS
        d = (Decimal(x.numerator) / Decimal(x.denominator)).normalize()
    if d == 0:
        return "0"
    if Decimal("1e-6") <= abs(d) < Decimal(10) ** _SHOWN_DIGITS:
        text = format(d, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return format(d, "e")


def _decimal_places(denominator: int) -> int | None:
    """Digits after the point if 1/denominator terminates in decimal, else None."""
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    return max(twos, fives) if denominator == 1 else None
