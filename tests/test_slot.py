"""Slot: handler call rules by signature, merge strategies, per-job slot data."""

from __future__ import annotations

import pytest

from routilux import ConfigurationError, Routine, Slot


class Recorder:
    """Collects what handlers were called with."""

    def __init__(self):
        self.calls = []


# ---------------------------------------------------------------- call rules
def test_kwargs_handler_gets_the_dict_as_keywords():
    rec = Recorder()

    def handler(**kwargs):
        rec.calls.append(kwargs)

    Slot("s", handler=handler).receive({"a": 1, "b": 2})
    assert rec.calls == [{"a": 1, "b": 2}]


def test_named_params_plus_kwargs_get_keywords():
    rec = Recorder()

    def handler(a, **rest):
        rec.calls.append((a, rest))

    Slot("s", handler=handler).receive({"a": 1, "b": 2})
    assert rec.calls == [(1, {"b": 2})]


def test_single_param_named_data_gets_whole_dict():
    rec = Recorder()

    def handler(data):
        rec.calls.append(data)

    Slot("s", handler=handler).receive({"data": "inner", "x": 1})
    assert rec.calls == [{"data": "inner", "x": 1}]


def test_single_other_param_gets_its_key_when_present():
    rec = Recorder()

    def handler(value):
        rec.calls.append(value)

    Slot("s", handler=handler).receive({"value": 42, "other": 1})
    assert rec.calls == [42]


def test_single_other_param_gets_whole_dict_when_key_absent():
    rec = Recorder()

    def handler(value):
        rec.calls.append(value)

    Slot("s", handler=handler).receive({"x": 1, "y": 2})
    assert rec.calls == [{"x": 1, "y": 2}]


def test_several_params_get_matching_keys_only():
    rec = Recorder()

    def handler(a, b, c="default"):
        rec.calls.append((a, b, c))

    slot = Slot("s", handler=handler)
    slot.receive({"a": 1, "b": 2, "unrelated": 3})
    slot.receive({"a": 4, "b": 5, "c": 6})
    assert rec.calls == [(1, 2, "default"), (4, 5, 6)]


def test_bound_method_self_is_not_a_parameter():
    class R(Routine):
        def __init__(self):
            super().__init__()
            self.got = []
            self.define_slot("in", handler=self.on_in)

        def on_in(self, value):
            self.got.append(value)

    r = R()
    r.get_slot("in").receive({"value": 7})
    assert r.got == [7]


def test_handler_without_parameters_is_called_with_nothing():
    rec = Recorder()

    def handler():
        rec.calls.append("called")

    Slot("s", handler=handler).receive({"a": 1})
    assert rec.calls == ["called"]


def test_slot_without_handler_keeps_data():
    slot = Slot("s")
    assert slot.receive({"a": 1}) is None
    assert slot.data == {"a": 1}


def test_receive_returns_handler_result():
    assert Slot("s", handler=lambda x: x * 2).receive({"x": 21}) == 42


# ---------------------------------------------------------------- merge strategies
def test_override_passes_only_the_new_data():
    rec = Recorder()
    slot = Slot("s", handler=lambda **kw: rec.calls.append(kw), merge_strategy="override")
    slot.receive({"a": 1})
    slot.receive({"b": 2})
    assert rec.calls == [{"a": 1}, {"b": 2}]
    assert slot.data == {"b": 2}


def test_append_accumulates_lists_and_passes_keys_of_this_message():
    rec = Recorder()
    slot = Slot("s", handler=lambda **kw: rec.calls.append(kw), merge_strategy="append")
    slot.receive({"a": 1})
    slot.receive({"a": 2, "b": 3})
    slot.receive({"b": 4})
    assert rec.calls == [
        {"a": [1]},
        {"a": [1, 2], "b": [3]},
        {"b": [3, 4]},
    ]
    assert slot.data == {"a": [1, 2], "b": [3, 4]}


def test_append_handler_gets_a_copy_it_cannot_corrupt():
    def handler(a):
        a.append("garbage")

    slot = Slot("s", handler=handler, merge_strategy="append")
    slot.receive({"a": 1})
    slot.receive({"a": 2})
    assert slot.data == {"a": [1, 2]}


def test_callable_merge_strategy():
    seen = []

    def merge(old, new):
        seen.append((dict(old), dict(new)))
        return {"total": old.get("total", 0) + new["n"]}

    rec = Recorder()
    slot = Slot("s", handler=lambda total: rec.calls.append(total), merge_strategy=merge)
    slot.receive({"n": 1})
    slot.receive({"n": 2})
    slot.receive({"n": 3})
    assert rec.calls == [1, 3, 6]
    assert seen[0] == ({}, {"n": 1})
    assert seen[1] == ({"total": 1}, {"n": 2})


def test_callable_merge_returning_non_dict_raises_type_error():
    slot = Slot("s", handler=lambda **kw: None, merge_strategy=lambda old, new: [1])
    with pytest.raises(TypeError, match="must return a dict"):
        slot.receive({"a": 1})


def test_clear_forgets_accumulated_data():
    slot = Slot("s", merge_strategy="append")
    slot.receive({"a": 1})
    slot.clear()
    slot.receive({"a": 2})
    assert slot.data == {"a": [2]}


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("bad", ["merge", "", 3, None])
def test_invalid_merge_strategy_is_a_value_error(bad):
    with pytest.raises(ValueError, match="merge_strategy"):
        Slot("s", merge_strategy=bad)


def test_non_callable_handler_is_a_value_error():
    with pytest.raises(ConfigurationError, match="callable"):
        Slot("s", handler=42)


@pytest.mark.parametrize("name", ["", None, 3])
def test_slot_name_must_be_a_non_empty_string(name):
    if name == "":
        # 0.10 builds Slot() / Slot("") before deserialize; a routine's slot needs a name.
        assert Slot(name).name == "" and Slot().name == ""
        with pytest.raises(ValueError):
            Routine().define_slot(name)
        return
    with pytest.raises(ValueError):
        Slot(name)


# ---------------------------------------------------------------- slot data per job
class Accumulator(Routine):
    def __init__(self):
        super().__init__()
        self.calls = []
        self.define_slot("trigger", handler=self.on_trigger, merge_strategy="append")

    def on_trigger(self, **kwargs):
        self.calls.append(kwargs)


class Feeder(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.feed)
        self.define_event("out")

    def feed(self, values):
        for v in values:
            self.emit("out", v=v)


def test_append_slot_data_is_per_job(make_flow):
    flow = make_flow()
    acc = Accumulator()
    flow.add_routine(Feeder(), "feed")
    flow.add_routine(acc, "acc")
    flow.connect("feed", "out", "acc", "trigger")

    first = flow.execute("feed", {"values": [1, 2, 3]})
    assert first.status == "completed"
    assert acc.calls == [{"v": [1]}, {"v": [1, 2]}, {"v": [1, 2, 3]}]

    acc.calls.clear()
    second = flow.execute("feed", {"values": [10, 20]})
    assert second.status == "completed"
    # A fresh job starts with empty slot data.
    assert acc.calls == [{"v": [10]}, {"v": [10, 20]}]


def test_callable_merge_state_is_per_job(make_flow):
    class Summer(Routine):
        def __init__(self):
            super().__init__()
            self.totals = []
            self.define_slot(
                "trigger", handler=self.on_total,
                merge_strategy=lambda old, new: {"t": old.get("t", 0) + new["v"]},
            )

        def on_total(self, t):
            self.totals.append(t)

    flow = make_flow()
    summer = Summer()
    flow.add_routine(Feeder(), "feed")
    flow.add_routine(summer, "sum")
    flow.connect("feed", "out", "sum", "trigger")
    assert flow.execute("feed", {"values": [1, 2, 3]}).status == "completed"
    assert flow.execute("feed", {"values": [5]}).status == "completed"
    assert summer.totals == [1, 3, 6, 5]


def test_slot_handler_call_rules_apply_inside_a_flow(make_flow):
    class Multi(Routine):
        def __init__(self):
            super().__init__()
            self.got = {}
            self.define_slot("trigger", handler=self.start)
            self.define_slot("kw", handler=lambda **kw: self.got.__setitem__("kw", kw))
            self.define_slot("data", handler=lambda data: self.got.__setitem__("data", data))
            self.define_slot("one", handler=lambda x: self.got.__setitem__("one", x))
            self.define_slot("absent", handler=lambda zz: self.got.__setitem__("absent", zz))
            self.define_slot("many", handler=lambda x, y: self.got.__setitem__("many", (x, y)))
            self.define_event("out")

        def start(self):
            self.emit("out", x=1, y=2, z=3)

    flow = make_flow()
    m = Multi()
    flow.add_routine(m, "m")
    for slot in ("kw", "data", "one", "absent", "many"):
        flow.connect("m", "out", "m", slot)
    assert flow.execute("m").status == "completed"
    full = {"x": 1, "y": 2, "z": 3}
    assert m.got == {"kw": full, "data": full, "one": 1, "absent": full, "many": (1, 2)}


def test_callable_merge_returning_non_dict_fails_the_message_in_a_flow(make_flow):
    class Bad(Routine):
        def __init__(self):
            super().__init__()
            self.called = False
            self.define_slot("trigger", handler=self.on, merge_strategy=lambda o, n: "nope")

        def on(self, **kw):
            self.called = True

    flow = make_flow()
    bad = Bad()
    flow.add_routine(bad, "bad")
    job = flow.execute("bad", {"a": 1})
    assert job.status == "failed"
    assert not bad.called
    assert job.failures and job.failures[0]["exception_type"] == "TypeError"
    assert job.failures[0]["routine_id"] == "bad"
    assert job.failures[0]["slot"] == "trigger"


def test_accepted_keys_are_known_only_for_named_parameters():
    def named(count, fail_at=None):
        pass

    def kwargs(**data):
        pass

    def whole(data):
        pass

    def nothing():
        pass

    assert Slot("a", handler=named).accepted_keys() == ("count", "fail_at")
    assert Slot("b", handler=kwargs).accepted_keys() is None
    assert Slot("c", handler=whole).accepted_keys() is None
    assert Slot("d", handler=nothing).accepted_keys() == ()
    assert Slot("e").accepted_keys() is None
