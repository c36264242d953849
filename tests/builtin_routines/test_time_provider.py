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
    assert out["datetime"] == "2023-11-14T22:13:20.250000+00:00"  # a str, as in 0.10
    assert out["formatted"] == "2023-11-14 22:13:20"


def test_timestamp(collect):
    assert ask(collect, fixed(format="timestamp"))["time_string"] == "1700000000.25"


def test_formatted(collect):
    # 2023-11-14 is a Tuesday; zh_CN is the 0.10 default locale
    out = ask(collect, fixed(format="formatted"))
    assert out["time_string"] == "2023年11月14日\uff0c星期二\uff0c22:13:20"
    out = ask(collect, fixed(format="formatted", locale="en_US"))
    assert out["time_string"] == "Tuesday, November 14, 2023 22:13:20"
    out = ask(collect, fixed(format="formatted", include_weekday=False))
    assert out["time_string"] == "2023-11-14 22:13:20"
    out = ask(collect, fixed(format="formatted", custom_format="%d/%m/%Y"))
    assert out["formatted"] == "14/11/2023"


def test_custom(collect):
    out = ask(collect, fixed(format="custom", custom_format="%H:%M"))
    assert out["time_string"] == "22:13"


def test_custom_uses_the_default_pattern(collect):
    assert ask(collect, fixed(format="custom"))["time_string"] == "2023-11-14 22:13:20"
    with pytest.raises(ConfigurationError, match="custom_format"):
        fixed(custom_format=None)


def test_request_overrides_format(collect):
    routine = fixed(custom_format="%Y")
    got = collect(routine)["output"]
    routine.get_slot("request").receive({"format": "custom"})
    routine.get_slot("request").receive({"data": {"format": "timestamp"}})
    routine.get_slot("request").receive({})
    assert [o["time_string"] for o in got] == [
        "2023", "1700000000.25", "2023-11-14T22:13:20.250000+00:00"
    ]


def test_request_with_unknown_format_gives_iso(collect):
    out = ask(collect, fixed(), format="nope")
    assert out["time_string"] == "2023-11-14T22:13:20.250000+00:00"


def test_named_timezone(collect):
    out = ask(collect, TimeProvider(clock=lambda: T, timezone="Asia/Tokyo"))
    assert out["time_string"] == "2023-11-15T07:13:20.250000+09:00"


def test_tzinfo_object(collect):
    zone = timezone(timedelta(hours=-5))
    out = ask(collect, TimeProvider(clock=lambda: T, timezone=zone))
    assert out["time_string"].endswith("-05:00")


def test_local_time_is_naive_as_in_0_10(collect):
    out = ask(collect, TimeProvider(clock=lambda: T))
    moment = datetime.fromisoformat(out["datetime"])
    assert moment.tzinfo is None
    assert moment == datetime.fromtimestamp(T)
    assert out["time_string"] == out["datetime"]


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
    assert datetime.fromisoformat(out["datetime"]).tzinfo is not None  # timezone="utc"
