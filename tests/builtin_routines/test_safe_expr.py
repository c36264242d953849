"""The safe expression evaluator: what it computes and what it refuses."""

from __future__ import annotations

import builtins
import pickle
import time

import cloudpickle
import pytest

from routilux.builtin_routines import (
    ExpressionEvaluationError,
    SafeExpression,
    UnsafeExpressionError,
    compile_expression,
    safe_eval,
)
from routilux.builtin_routines._safe_expr import MAX_INT_BITS, MAX_SEQUENCE_LENGTH
from routilux.exceptions import ConfigurationError

NAMES = {
    "x": 5,
    "name": "alice",
    "tags": ["a", "b"],
    "user": {"age": 30, "roles": ["admin"]},
    "n": None,
}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("x > 3", True),
        ("x > 3 and name == 'alice'", True),
        ("x < 3 or 'b' in tags", True),
        ("not x", False),
        ("1 < x <= 5", True),
        ("1 < x < 5", False),
        ("x * 2 + 1", 11),
        ("x ** 2", 25),
        ("x // 2, x % 2", (2, 1)),
        ("-x", -5),
        ("x / 2", 2.5),
        ("user.age >= 18", True),
        ("user['roles'][0]", "admin"),
        ("'admin' in user.roles", True),
        ("tags[-1]", "b"),
        ("name[1:3]", "li"),
        ("len(tags) == 2", True),
        ("str(x) + '!'", "5!"),
        ("int('12') + float('0.5')", 12.5),
        ("abs(-3) + min(1, 2) + max([4, 9])", 13),
        ("bool(n)", False),
        ("n is None", True),
        ("n is not None", False),
        ("'yes' if x > 1 else 'no'", "yes"),
        ("{'a': 1, 'b': [1, 2]}['b']", [1, 2]),
        ("{1, 2} == {2, 1}", True),
        ("name * 2", "alicealice"),
        ("x in (1, 5)", True),
        ("name not in tags", True),
        ("2 ** -1", 0.5),
        ("b'ab' + b'c'", b"abc"),
        ("0 or ''", ""),
        ("x and 0", 0),
    ],
)
def test_evaluates_allowed_expressions(source, expected):
    assert safe_eval(source, NAMES) == expected


def test_names_only_from_the_mapping():
    with pytest.raises(ExpressionEvaluationError, match="name 'missing' is not defined"):
        safe_eval("missing > 1", NAMES)


def test_builtin_function_names_are_not_values():
    # ``len`` may be called, but it is not a value that can be passed around
    with pytest.raises(UnsafeExpressionError, match="'len' is a function or type name"):
        safe_eval("len", {})


def test_data_may_not_shadow_a_function_name_nor_replace_the_call():
    # a field called ``len`` is reached through ``data``, never as a bare name
    with pytest.raises(UnsafeExpressionError, match="'len' is a function or type name"):
        safe_eval("len(len)", {"len": [1, 2, 3]})
    assert safe_eval("len(data['len'])", {"data": {"len": [1, 2, 3]}}) == 3


HOSTILE = [
    "__import__('os')",
    "__import__('os').system('echo pwned')",
    "().__class__.__bases__[0].__subclasses__()",
    "''.__class__.__mro__[1].__subclasses__()",
    "x.__class__",
    "user.__getitem__",
    "tags.__len__()",
    "open('/etc/passwd')",
    "open('/etc/passwd').read()",
    "eval('1')",
    "exec('x = 1')",
    "compile('1', 'f', 'eval')",
    "getattr(x, '__class__')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "type(x)",
    "breakpoint()",
    "import os",
    "from os import system",
    "lambda: 1",
    "(lambda: 1)()",
    "[c for c in ()]",
    "{c: 1 for c in ()}",
    "(c for c in ())",
    "{c for c in ()}",
    "(y := 1)",
    "f'{x}'",
    "f'{x:>{10**9}}'",
    "len(*tags)",
    "max(tags, key=len)",
    "str.join('', tags)",
    "name.upper().format()",
    "tags.pop()",
    "_private",
    "__builtins__",
    "__builtins__['open']",
    "x.gi_frame",
    "x.f_globals",
    "x.func_globals",
    "x.tb_frame",
    "x.co_code",
    "x.cr_frame",
    "x.mro",
    "name.format",
    "name.format_map",
    "{**user}",
    "...",
    "1j",
    "x = 1",
    "1; 2",
    "await x",
    "yield x",
    "1 << 100",
    "1 | 2",
    "~x",
    "x @ x",
    "",
    "   ",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_expressions_are_refused_at_compile_time(source):
    with pytest.raises(UnsafeExpressionError):
        compile_expression(source)


def test_refusal_is_a_configuration_error():
    assert issubclass(UnsafeExpressionError, ConfigurationError)
    with pytest.raises(ConfigurationError, match="not allowed"):
        compile_expression("__import__('os')")


def test_refused_call_names_what_may_be_called():
    with pytest.raises(UnsafeExpressionError, match=r"calling 'open' is not allowed.*len"):
        compile_expression("open('x')")


def test_non_string_expression_is_refused():
    with pytest.raises(UnsafeExpressionError, match="must be a str"):
        SafeExpression(42)  # type: ignore[arg-type]


def test_no_builtin_is_reachable_even_from_data_objects():
    class Thing:
        visible = 1
        _hidden = 2

    assert safe_eval("thing.visible", {"thing": Thing()}) == 1
    with pytest.raises(UnsafeExpressionError):
        compile_expression("thing._hidden")


def test_introspection_values_reached_through_data_are_refused():
    def gen():
        yield 1

    g = gen()
    # gi_frame is refused at compile time; a generator object reached as a value is too
    with pytest.raises(ExpressionEvaluationError, match="not allowed"):
        safe_eval("box.g", {"box": {"g": g}})
    with pytest.raises(ExpressionEvaluationError, match="not allowed"):
        safe_eval("mods[0]", {"mods": [builtins]})
    with pytest.raises(ExpressionEvaluationError, match="not allowed"):
        safe_eval("holder.mod", {"holder": type("H", (), {"mod": builtins})()})


@pytest.mark.parametrize(
    "source",
    [
        "10**10**10",
        "9**9**9",
        "2**(MAX)",
        "(10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000)",
        "'a' * 10**10",
        "'ab' * (MAX_SEQ)",
        "[0] * 10**9",
        "(1,) * 10**9",
        "10**9 * [0]",
        "fmt % (10**9, 1)",
        "fmt % x",
        "int('9' * 100000)",
    ],
)
def test_resource_exhaustion_is_refused_quickly(source):
    names = {"MAX": MAX_INT_BITS + 1, "MAX_SEQ": MAX_SEQUENCE_LENGTH, "x": 1, "fmt": "%*d"}
    started = time.perf_counter()
    with pytest.raises(ExpressionEvaluationError):
        safe_eval(source, names)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("source", ["'%*d' % (10**9, 1)", "'%s' % x", "b'%s' % x"])
def test_formatting_a_literal_string_is_refused_at_compile_time(source):
    with pytest.raises(UnsafeExpressionError, match="%-formatting"):
        compile_expression(source)


def test_large_but_bounded_arithmetic_still_works():
    assert safe_eval("2 ** 1000", {}) == 2**1000
    assert safe_eval("'ab' * 1000", {}) == "ab" * 1000


def test_source_length_and_nesting_are_bounded():
    with pytest.raises(UnsafeExpressionError, match="too long"):
        compile_expression("1 + " * 1000 + "1")
    with pytest.raises(UnsafeExpressionError):
        compile_expression("(" * 100 + "1" + ")" * 100 + " + " + "-" * 100 + "1")
    with pytest.raises(UnsafeExpressionError, match="too"):
        compile_expression("+".join(["x"] * 500))


def test_runtime_errors_name_the_expression():
    with pytest.raises(ExpressionEvaluationError, match=r"'name > 1'.*TypeError"):
        safe_eval("name > 1", NAMES)
    with pytest.raises(ExpressionEvaluationError, match="ZeroDivisionError"):
        safe_eval("x / 0", NAMES)
    with pytest.raises(ExpressionEvaluationError, match="key 'missing' not found"):
        safe_eval("user.missing", NAMES)
    assert issubclass(ExpressionEvaluationError, ValueError)


def test_short_circuit_avoids_evaluating_the_right_side():
    assert safe_eval("'age' in data and data.age > 1", {"data": {}}) is False


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_expressions_pickle_as_source(dumps):
    expr = compile_expression("x + 1")
    copy = pickle.loads(dumps(expr))
    assert copy == expr and copy.evaluate({"x": 1}) == 2


def test_tampered_pickle_is_revalidated():
    expr = compile_expression("x + 1")
    data = pickle.dumps(expr).replace(b"x + 1", b"_x+ 1")
    with pytest.raises(UnsafeExpressionError):
        pickle.loads(data)
