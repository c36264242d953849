"""The shared argument checks: one line, the parameter, the value, what is accepted."""

from __future__ import annotations

import pytest

from routilux import ConfigurationError, RestartPolicy
from routilux._validate import a_type, check_int, check_number, check_store, shown


@pytest.mark.parametrize(
    "value, phrase",
    [(3, "an int"), ("x", "a str"), ([], "a list"), ({}, "a dict"), (None, "None"),
     (1.5, "a float"), (object(), "an object")],
)
def test_a_type_uses_the_right_article(value, phrase):
    assert a_type(value) == phrase


def test_shown_is_one_bounded_line():
    class Loud:
        def __repr__(self):
            return "line one\nline two " + "x" * 500

    text = shown(Loud())
    assert "\n" not in text and len(text) <= 80 and text.endswith("...")


def test_a_repr_that_raises_still_gives_a_message():
    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    with pytest.raises(ConfigurationError, match="Broken whose repr"):
        check_int("n", Broken(), 0)


def test_bool_is_not_an_int_and_nan_is_not_a_number():
    with pytest.raises(ConfigurationError, match=r"n must be an int >= 0, got False \(a bool\)"):
        check_int("n", False, 0)
    with pytest.raises(ConfigurationError, match="got nan"):
        check_number("t", float("nan"))
    with pytest.raises(ConfigurationError, match="got inf"):
        check_number("t", float("inf"))
    assert check_number("t", float("inf"), allow_inf=True) == float("inf")
    assert check_number("t", 0, positive=False) == 0


def test_a_store_path_is_told_how_to_open_it():
    with pytest.raises(ConfigurationError, match=r"store=SQLiteStore\('a\.db'\)"):
        check_store("store", "a.db")


def test_restart_policy_log_wording():
    policy = RestartPolicy(max_restarts=1, within=30)
    assert policy.describe(1) == "restart 1 of at most 1 within 30 s"
    assert policy.describe(2) == "crash 2 within 30 s exceeds max_restarts=1"
