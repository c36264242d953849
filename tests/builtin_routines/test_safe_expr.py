"""The safe expression evaluator: what it computes and what it refuses."""

from __future__ import annotations

import builtins
import pickle
import tracemalloc

import cloudpickle
import pytest

from routilux.builtin_routines import (
    ExpressionEvaluationError,
    SafeExpression,
    UnsafeExpressionError,
    compile_expression,
    safe_eval,
)
from routilux.exceptions import ConfigurationError
from routilux.expressions.evaluator import MAX_INT_BITS, MAX_SEQUENCE_LENGTH

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
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionEvaluationError):
            safe_eval(source, names)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Refused before the value is built: the evaluation never holds anything near
    # the size of a refused value ('ab' * MAX_SEQ alone would be 200 kB). Memory,
    # not time: a time bound depends on how busy the machine is.
    assert peak < 150_000, peak


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


# -- the routilux 0.10 condition forms ---------------------------------------------------

COND_NAMES = {
    "data": {"priority": "high", "value": 15, "name": "Ann", "tags": ["x"], "items": [1, 2, 3],
             "a": 0, "b": 2, "get": "a key named get", "s": " a,b "},
    "config": {"threshold": 10},
    "stats": {},
}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("data.get('priority') == 'high'", True),
        ("isinstance(data, dict) and data.get('value', 0) > config.get('threshold', 0)", True),
        ("stats.get('count', 0) < 10", True),
        ("data.get('name', '').lower().startswith('a') and 'x' in data.get('tags', [])", True),
        ("len(data.get('items', [])) >= 3 and data['items'][0] is not None", True),
        ("any([data.get('a'), data.get('b')]) or hasattr(data, 'keys')", True),
        ("hasattr(data, 'keys') and not hasattr(data, 'nope')", True),
        ("getattr(data['items'], 'missing', 'dflt')", "dflt"),
        ("data.get('get')", "a key named get"),  # in call position get is the method
        ("data.get", "a key named get"),  # not a call: the key, as before
        ("list(data.keys())[:2]", ["priority", "value"]),
        ("data.items()[0]", ("priority", "high")),  # views come back as lists
        ("config.values()", [10]),
        ("isinstance(data['items'], (list, tuple)) and isinstance(1, int)", True),
        ("isinstance(True, int) and not isinstance('1', (int, float, bytes, frozenset))", True),
        ("dict(a=1, b=2)", {"a": 1, "b": 2}),
        ("list('ab') + list((1,))", ["a", "b", 1]),
        ("tuple(data['items']) == (1, 2, 3) and set([1, 1]) == {1}", True),
        ("all([1, 2]) and not any([])", True),
        ("max([], default=0) + min(3, 4) + int('ff', base=16)", 258),
        ("data['s'].strip().split(',')", ["a", "b"]),
        ("' '.join(['a', 'b']).upper().title().removeprefix('A')", " B"),
        ("'abc'.find('c') + 'abc'.count('a') + 'a\\nb'.splitlines().index('b')", 4),
        ("'ab'.partition('a')[2].isalpha() and '12'.isdigit()", True),
        ("b'ab'.startswith(b'a') and b'ab'.decode() == 'ab'", True),
        ("{1}.issubset({1, 2}) and frozenset([1]).isdisjoint({2})", True),
        ("(255).bit_length() == 8 and (2.0).is_integer()", True),
        ("[1, 2, 2].count(2) + (1, 2).index(2)", 3),
    ],
)
def test_0_10_condition_forms(source, expected):
    assert safe_eval(source, COND_NAMES) == expected


@pytest.mark.parametrize(
    "source, construct",
    [
        ("data.__class__", "'__class__'"),
        ("data.get.__self__", "'__self__'"),
        ("'{0.__class__}'.format(data)", "'format'"),
        ("data.pop('x')", "changes its receiver"),
        ("data.update({})", "changes its receiver"),
        ("data['items'].append(1)", "changes its receiver"),
        ("data['items'].sort()", "changes its receiver"),
        ("'a'.replace('a', 'bb')", "not bounded"),
        ("'a'.center(10**9)", "not bounded"),
        ("data.copy()", "'copy'"),
        ("[x for x in data]", "ListComp"),
        ("(lambda: 1)()", "lambda"),
        ("str.join(',', data)", "'str' is a function or type name"),
        ("dict.fromkeys([1])", "'fromkeys'"),
        ("data['fn']()", "calling \"data['fn']\""),
        ("data.get('f')()", "is not allowed"),
        ("getattr(data, '__dict__')", "'__dict__'"),
        ("getattr(data, 'mro')", "'mro'"),
        ("hasattr(data)", "hasattr() takes"),
        ("isinstance(data, type)", "type argument of isinstance"),
        ("isinstance(data, data)", "type argument of isinstance"),
        ("isinstance(data, dict, x=1)", "no keyword arguments"),
        ("len(data, **kw)", "keyword unpacking"),
        ("max(data, key=len)", "'key'"),
        ("len(data, x=1)", "keyword argument"),
        ("isinstance", "function or type name"),
        ("dict", "function or type name"),
        ("'%d' % 1", "%-formatting"),
        ("f'{data}'", "JoinedStr"),
        ("(x := 1)", "NamedExpr"),
        ("print(data)", "calling 'print'"),
    ],
)
def test_refused_condition_forms_name_the_construct(source, construct):
    with pytest.raises(UnsafeExpressionError) as info:
        compile_expression(source)
    assert construct in str(info.value)


def test_methods_run_the_builtin_implementation_only():
    class Sneaky(dict):
        def get(self, *args):  # must never run
            raise AssertionError("user code ran")

    class NotBuiltin:
        def startswith(self, prefix):
            raise AssertionError("user code ran")

    assert safe_eval("d.get('a')", {"d": Sneaky(a=1)}) == 1
    with pytest.raises(ExpressionEvaluationError, match="cannot be called on a NotBuiltin"):
        safe_eval("o.startswith('x')", {"o": NotBuiltin()})
    with pytest.raises(ExpressionEvaluationError, match="cannot be called on a list"):
        safe_eval("x.get('a')", {"x": [1]})


def test_run_time_attribute_checks():
    with pytest.raises(ExpressionEvaluationError, match="attribute '__class__' is not allowed"):
        safe_eval("getattr(data, name)", {"data": {}, "name": "__class__"})
    with pytest.raises(ExpressionEvaluationError, match="attributes of type objects"):
        safe_eval("data['t'].fromkeys", {"data": {"t": dict}})
    with pytest.raises(ExpressionEvaluationError, match="attributes of type objects"):
        safe_eval("getattr(data['t'], 'fromkeys')", {"data": {"t": dict}})
    with pytest.raises(ExpressionEvaluationError, match="separator"):
        safe_eval("('x' * 1000).join(['a'] * 1000)", {})
    with pytest.raises(ExpressionEvaluationError, match=str(MAX_SEQUENCE_LENGTH)):
        safe_eval("''.join(['a'] * 10**7)", {})
