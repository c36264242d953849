from __future__ import annotations

from datetime import datetime, timedelta, timezone

import cloudpickle
import pytest

from routilux.builtin_routines import TimeProvider
from routilux.exceptions import ConfigurationError

T = 1_700_000_000.25  # 2023-11-14T22:13:20.250000+00:00
KEYS = {"time_string", "timestamp", "datetime", "formatted"}


def ask(collect, routine, **request):
    got = collect(routine)["output"]
    routine.get_slot("request").receive(request)
    assert len(got) == 1 and set(got[0]) == KEYS
    return got[0]


def fixed(**config):
    return TimeProvider(clock=lambda: T, timezone="utc", **config)


def test_iso(collect):
    out = ask(collect, fixed())
    assert out["time_string"] == "2023-11-14T22:13:20.250000+00:00"
    assert out["timestamp"] == T
    assert out["datetime"] == datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=timezone.utc)
    assert out["formatted"] == "2023-11-14 22:13:20"


def test_timestamp(collect):
    assert ask(collect, fixed(format="timestamp"))["time_string"] == "1700000000.25"


def test_formatted(collect):
    out = ask(collect, fixed(format="formatted", formatted_format="%d/%m/%Y"))
    assert out["time_string"] == "14/11/2023" == out["formatted"]


def test_custom(collect):
    out = ask(collect, fixed(format="custom", custom_format="%H:%M"))
    assert out["time_string"] == "22:13"


def test_custom_without_pattern_is_a_clear_error(collect):
    with pytest.raises(ConfigurationError, match="needs custom_format"):
        ask(collect, fixed(format="custom"))


def test_request_overrides_format(collect):
    routine = fixed()
    got = collect(routine)["output"]
    routine.get_slot("request").receive({"format": "custom", "custom_format": "%Y"})
    routine.get_slot("request").receive({})
    assert [o["time_string"] for o in got] == ["2023", "2023-11-14T22:13:20.250000+00:00"]


def test_request_with_unknown_format_is_a_value_error(collect):
    with pytest.raises(ValueError, match="format must be one of"):
        ask(collect, fixed(), format="nope")


def test_named_timezone(collect):
    out = ask(collect, TimeProvider(clock=lambda: T, timezone="Asia/Tokyo"))
    assert out["time_string"] == "2023-11-15T07:13:20.250000+09:00"


def test_tzinfo_object(collect):
    zone = timezone(timedelta(hours=-5))
    out = ask(collect, TimeProvider(clock=lambda: T, timezone=zone))
    assert out["time_string"].endswith("-05:00")


def test_local_time_is_aware(collect):
    out = ask(collect, TimeProvider(clock=lambda: T))
    assert out["datetime"].tzinfo is not None
    assert out["datetime"].timestamp() == T


def test_default_clock_is_now(collect):
    before = datetime.now(timezone.utc).timestamp()
    out = ask(collect, TimeProvider())
    after = datetime.now(timezone.utc).timestamp()
    assert before <= out["timestamp"] <= after


def test_clock_returning_junk_is_a_type_error(collect):
    with pytest.raises(TypeError, match="clock must return epoch seconds"):
        ask(collect, TimeProvider(clock=lambda: "noon"))


def test_configured_clock_survives_cloudpickle(collect):
    offset = 10.0
    routine = TimeProvider(clock=lambda: T + offset, timezone="utc", format="timestamp")
    copy = cloudpickle.loads(cloudpickle.dumps(routine))
    assert ask(collect, copy)["time_string"] == "1700000010.25"


def test_in_a_flow(flow_runner):
    run = flow_runner.run(fixed(), {}, slot="request")
    [out] = run.events["output"]
    assert out["time_string"] == "2023-11-14T22:13:20.250000+00:00"
    assert out["datetime"].tzinfo is not None
