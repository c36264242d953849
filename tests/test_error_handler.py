"""ErrorHandler and ErrorStrategy, and how a handler is chosen for a routine."""

from __future__ import annotations

import pytest
from helpers import Sink

from routilux import ErrorHandler, ErrorStrategy, Routine


def test_strategies_exist_with_string_values():
    assert {s.name for s in ErrorStrategy} == {"STOP", "CONTINUE", "RETRY", "SKIP"}
    assert ErrorStrategy("retry") is ErrorStrategy.RETRY
    assert ErrorStrategy.SKIP == "skip"


def test_defaults():
    h = ErrorHandler()
    assert h.strategy is ErrorStrategy.STOP
    assert (h.max_retries, h.retry_delay, h.retry_backoff) == (3, 1.0, 2.0)
    assert h.is_critical is False
    assert h.retryable_exceptions == (Exception,)


def test_positional_arguments_follow_the_documented_order():
    h = ErrorHandler(ErrorStrategy.RETRY, 5, 0.25, 3.0, (KeyError,), True)
    assert h.strategy is ErrorStrategy.RETRY
    assert (h.max_retries, h.retry_delay, h.retry_backoff) == (5, 0.25, 3.0)
    assert h.retryable_exceptions == (KeyError,)
    assert h.is_critical is True


def test_strategy_accepts_strings():
    assert ErrorHandler("continue").strategy is ErrorStrategy.CONTINUE


def test_unknown_strategy_is_a_value_error_listing_strategies():
    with pytest.raises(ValueError, match="stop"):
        ErrorHandler("explode")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"retry_delay": -0.1}, {"retry_backoff": 0}],
)
def test_invalid_retry_settings_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        ErrorHandler(ErrorStrategy.RETRY, **kwargs)


def test_delay_grows_with_backoff():
    h = ErrorHandler(ErrorStrategy.RETRY, retry_delay=0.5, retry_backoff=2.0)
    assert [h.delay_for(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    flat = ErrorHandler(ErrorStrategy.RETRY, retry_delay=0.3, retry_backoff=1.0)
    assert flat.delay_for(5) == pytest.approx(0.3)


def test_retryable_exceptions():
    h = ErrorHandler(ErrorStrategy.RETRY, retryable_exceptions=[ConnectionError, KeyError])
    assert h.is_retryable(ConnectionRefusedError())  # subclass
    assert h.is_retryable(KeyError("k"))
    assert not h.is_retryable(ValueError())
    assert ErrorHandler(ErrorStrategy.RETRY).is_retryable(ValueError())


def test_to_dict_is_json_compatible():
    import json

    h = ErrorHandler("retry", 2, 0.1, 1.5, (KeyError,), True)
    d = h.to_dict()
    json.dumps(d)
    assert d["strategy"] == "retry" and d["max_retries"] == 2 and d["is_critical"] is True
    assert d["retryable_exceptions"] == ["builtins.KeyError"]


# ---------------------------------------------------------------- resolution
class Boom(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out")

    def go(self):
        self.emit("out", x=1)
        raise RuntimeError("boom")


def build(make_flow):
    flow = make_flow()
    boom, after = Boom(), Sink()
    flow.add_routine(boom, "boom")
    flow.add_routine(after, "after")
    flow.connect("boom", "out", "after", "in")
    return flow, boom, after


def test_default_strategy_is_stop(make_flow):
    flow, _, after = build(make_flow)
    assert flow.get_error_handler() is None
    job = flow.execute("boom")
    assert job.status == "failed"
    assert after.calls == []  # the message the failing step emitted is dropped


def test_flow_handler_applies_when_routine_has_none(make_flow):
    flow, _, after = build(make_flow)
    handler = ErrorHandler(ErrorStrategy.CONTINUE)
    flow.set_error_handler(handler)
    assert flow.get_error_handler() is handler
    job = flow.execute("boom")
    assert job.status == "completed"
    assert after.values("x") == [1]


def test_routine_handler_wins_over_flow_handler(make_flow):
    flow, boom, _ = build(make_flow)
    flow.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    boom.set_error_handler(ErrorHandler(ErrorStrategy.STOP))
    assert flow.execute("boom").status == "failed"
    boom.set_error_handler(ErrorHandler(ErrorStrategy.SKIP))
    flow.set_error_handler(ErrorHandler(ErrorStrategy.STOP))
    job = flow.execute("boom")
    assert job.status == "completed"
    assert job.routine_states["boom"]["status"] == "skipped"
