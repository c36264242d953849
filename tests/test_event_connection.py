"""Event and Connection: wiring, param mapping with pass-through."""

from __future__ import annotations

import pytest

from routilux import Connection, Event, Routine, Slot


def make_pair():
    got = []
    src = Routine()
    src.define_event("out", ["a"])
    dst = Routine()
    dst.define_slot("in", handler=lambda **kw: got.append(kw))
    return src, dst, got


def test_event_attributes():
    r = Routine()
    params = ["a", "b"]
    event = Event("e", r, params)
    params.append("c")
    assert event.name == "e" and event.routine is r
    assert event.output_params == ["a", "b"]  # a copy
    assert Event("f").output_params == []
    assert Event("").name == "" and Event().name == ""  # 0.10: built before deserialize
    with pytest.raises(ValueError):
        Event(3)


def test_connection_registers_on_both_ends_and_disconnects():
    src, dst, _ = make_pair()
    event, slot = src.get_event("out"), dst.get_slot("in")
    conn = Connection(event, slot)
    assert event.connections == [conn] and slot.connections == [conn]
    assert event.connected_slots == [slot]
    assert conn.source_event is event and conn.target_slot is slot
    assert conn.param_mapping == {}  # 0.10's default
    conn.disconnect()
    assert event.connections == [] and slot.connections == []
    conn.disconnect()  # idempotent


def test_event_connect_and_disconnect():
    src, dst, got = make_pair()
    other = Slot("other", handler=lambda **kw: got.append(("other", kw)))
    event = src.get_event("out")
    event.connect(dst.get_slot("in"))
    event.connect(other)
    assert event.connected_slots == [dst.get_slot("in"), other]
    event.disconnect(dst.get_slot("in"))
    assert event.connected_slots == [other]
    src.emit("out", a=1)
    assert got == [("other", {"a": 1})]


def test_event_emit_goes_through_its_routine():
    src, dst, got = make_pair()
    src.get_event("out").connect(dst.get_slot("in"))
    src.get_event("out").emit(a=2)
    assert got == [{"a": 2}]
    Event("orphan").emit(a=1)  # 0.10: an event without routine and links does nothing
    orphan = Event("orphan")
    orphan.connect(dst.get_slot("in"))
    orphan.emit(a=3)  # ... and delivers to its links synchronously
    assert got == [{"a": 2}, {"a": 3}]


def test_param_mapping_renames_and_passes_mapped_keys_through():
    src, dst, got = make_pair()
    Connection(src.get_event("out"), dst.get_slot("in"), {"a": "x"})
    src.emit("out", a=1, b=2)
    assert got == [{"x": 1, "a": 1, "b": 2}]


def test_apply_mapping_does_not_mutate_and_ignores_missing_keys():
    src, dst, _ = make_pair()
    conn = Connection(src.get_event("out"), dst.get_slot("in"), {"a": "x", "missing": "y"})
    data = {"a": 1}
    assert conn.apply_mapping(data) == {"a": 1, "x": 1}
    assert data == {"a": 1}
    assert conn.param_mapping == {"a": "x", "missing": "y"}


def test_mapping_feeds_a_single_named_parameter():
    got = []
    src = Routine()
    src.define_event("out")
    dst = Routine()
    dst.define_slot("in", handler=lambda number: got.append(number))
    Connection(src.get_event("out"), dst.get_slot("in"), {"value": "number"})
    src.emit("out", value=5)
    assert got == [5]


def test_param_mapping_must_be_a_dict():
    src, dst, _ = make_pair()
    with pytest.raises(ValueError, match="param_mapping"):
        Connection(src.get_event("out"), dst.get_slot("in"), [("a", "x")])


def test_repr_names_both_ends():
    src, dst, _ = make_pair()
    conn = Connection(src.get_event("out"), dst.get_slot("in"), {"a": "x"})
    text = repr(conn)
    assert "out" in text and "in" in text and "'a': 'x'" in text


def test_flow_connect_applies_param_mapping(make_flow):
    class Src(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=lambda: self.emit("out", a=1, b=2))
            self.define_event("out")

    got = []
    dst = Routine()
    dst.define_slot("kw", handler=lambda **kw: got.append(("kw", kw)))
    dst.define_slot("x", handler=lambda x: got.append(("x", x)))
    flow = make_flow()
    flow.add_routine(Src(), "src")
    flow.add_routine(dst, "dst")
    conn = flow.connect("src", "out", "dst", "kw", param_mapping={"a": "x"})
    flow.connect("src", "out", "dst", "x", {"b": "x"})
    assert isinstance(conn, Connection) and conn.param_mapping == {"a": "x"}
    assert flow.execute("src").status == "completed"
    assert got == [("kw", {"a": 1, "b": 2, "x": 1}), ("x", 2)]


def test_same_event_to_two_slots_gets_independent_dicts(make_flow):
    class Src(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=lambda: self.emit("out", a=1))
            self.define_event("out")

    got = []

    def mutate(data):
        data["mutated"] = True
        got.append(("first", dict(data)))

    dst = Routine()
    dst.define_slot("first", handler=mutate)
    dst.define_slot("second", handler=lambda data: got.append(("second", dict(data))))
    flow = make_flow()
    flow.add_routine(Src(), "src")
    flow.add_routine(dst, "dst")
    flow.connect("src", "out", "dst", "first")
    flow.connect("src", "out", "dst", "second")
    assert flow.execute("src").status == "completed"
    assert got == [("first", {"a": 1, "mutated": True}), ("second", {"a": 1})]
