"""§7 and §8 of the 0.10 compatibility spec: the standalone wiring API, and
``Event.connect``/``Slot.connect`` links inside a flow."""

from __future__ import annotations

import logging

import pytest

from routilux import Connection, Event, Routine, Slot
from tests.compat.compat_helpers import EXECUTIONS, Collector, Producer, Worker, pipeline, run


def recorder():
    got = []
    return got, Slot("in", handler=lambda **kw: got.append(kw))


# ---------------------------------------------------------------- §7 standalone
def test_event_connect_twice_is_one_link():
    got, slot = recorder()
    event = Event("out")
    first = event.connect(slot)
    again = event.connect(slot, {"a": "x"})
    assert again is first and first.param_mapping == {"a": "x"}  # the new mapping
    assert event.connect(slot) is first and first.param_mapping == {"a": "x"}
    assert event.connected_slots == [slot] and slot.connected_events == [event]
    event.emit(a=1)
    assert got == [{"x": 1, "a": 1}]
    event.disconnect(slot)
    event.disconnect(slot)  # harmless
    assert event.connected_slots == [] and slot.connected_events == []


def test_slot_connect_and_disconnect_from_the_other_end():
    src = Producer()
    dst = Collector()
    event = src.get_event("output")
    link = dst.input_slot.connect(event)
    assert isinstance(link, Connection)
    assert event in dst.input_slot.connected_events
    assert dst.input_slot in event.connected_slots
    src.trigger_slot.receive({"values": [3]})
    assert dst.results == [{"value": 3}]
    dst.input_slot.disconnect(event)
    dst.input_slot.disconnect(event)
    src.trigger_slot.receive({"values": [4]})
    assert dst.results == [{"value": 3}]


def test_event_and_slot_without_arguments():
    event, slot = Event(), Slot()
    assert (event.name, event.routine, slot.name, slot.routine) == ("", None, "", None)
    Event("lonely").emit(a=1)  # no links: a no-op


def test_connection_ends_are_optional_and_activate_delivers():
    empty = Connection()
    assert (empty.source_event, empty.target_slot, empty.param_mapping) == (None, None, {})
    empty.disconnect()
    empty.disconnect()
    assert empty.activate({"a": 1}) is None
    got, slot = recorder()
    event = Event("out")
    link = Connection(event, slot, {"a": "x"})
    link.activate({"a": 1})
    assert got == [{"a": 1, "x": 1}]
    link.disconnect()
    link.disconnect()
    assert event.connections == [] and slot.connections == []


def test_mapping_follows_0_10():
    link = Connection(param_mapping={"a": "x"})
    assert link._apply_mapping({"a": 1}) == {"a": 1, "x": 1}
    assert link.apply_mapping({"x": 5, "b": 1}) == {"b": 1}  # a target key is dropped
    assert link.apply_mapping({"a": 1, "x": 5}) == {"x": 1, "a": 1}
    assert Connection().apply_mapping({"q": 1}) == {"q": 1}


def test_handler_with_several_parameters_none_matching_gets_the_dict():
    got = []
    slot = Slot("s", handler=lambda first, second=None: got.append((first, second)))
    slot.receive({"other": 1})
    assert got == [({"other": 1}, None)]
    none = Slot("n", handler=lambda: got.append("called"))
    none.receive({"x": 1})  # 0.10 raised TypeError here; we call it
    assert got[-1] == "called"


# ---------------------------------------------------------------- §8 in a flow
@pytest.mark.parametrize("execution", EXECUTIONS)
@pytest.mark.parametrize("when", ["before add_routine", "after add_routine"])
def test_event_connect_links_are_routed(make_flow, execution, when):
    producer, worker, collector = Producer(), Worker(), Collector()
    flow = make_flow()

    def wire():
        producer.get_event("output").connect(worker.get_slot("input"))
        collector.input_slot.connect(worker.output_event)

    if when == "before add_routine":
        wire()
    flow.add_routine(producer, "producer")
    flow.add_routine(worker, "worker", execution=execution)
    flow.add_routine(collector, "collector")
    if when == "after add_routine":
        wire()
    job = run(flow, params={"values": [1, 2]})
    assert job.status == "completed"
    assert collector.results == [{"value": 2}, {"value": 4}]
    assert flow.connections == []  # not listed nor serialized, as in 0.10
    assert flow.serialize()["connections"] == []


def test_a_link_made_after_a_job_ran_is_routed_by_the_next_job(make_flow):
    flow = make_flow()
    producer, collector, late = Producer(), Collector(), Collector()
    flow.add_routine(producer, "producer")
    flow.add_routine(collector, "collector")
    flow.add_routine(late, "late")
    flow.connect("producer", "output", "collector", "input")
    run(flow)
    producer.output_event.connect(late.input_slot)
    run(flow, params={"values": [9]})
    assert late.results == [{"value": 9}]
    producer.output_event.disconnect(late.input_slot)
    run(flow, params={"values": [10]})
    assert late.results == [{"value": 9}]
    assert collector.results == [{"value": 1}, {"value": 9}, {"value": 10}]


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_the_same_pair_connected_twice_delivers_once_with_the_latest_mapping(
    make_flow, execution
):
    flow = make_flow()
    collector = Collector()
    flow.add_routine(Producer(), "producer")
    flow.add_routine(collector, "collector", execution=execution)
    first = flow.connect("producer", "output", "collector", "input")
    second = flow.connect("producer", "output", "collector", "input", {"value": "v"})
    assert flow.connections == [first, second]
    job = run(flow, params={"values": [1]})
    assert job.status == "completed"
    assert flow.routines["collector"].results == [{"v": 1, "value": 1}]
    # a Flow.connect plus an Event.connect of the same pair: still once
    flow.routines["producer"].output_event.connect(flow.routines["collector"].input_slot, {})
    run(flow, params={"values": [2]})
    assert flow.routines["collector"].results == [{"v": 1, "value": 1}, {"value": 2}]


def test_links_to_routines_outside_the_flow_are_not_routed(make_flow, caplog):
    producer, outside, inside = Producer(), Collector(), Collector()
    producer.output_event.connect(outside.input_slot)
    flow = make_flow()
    flow.add_routine(producer, "producer")
    flow.add_routine(inside, "inside")
    flow.connect("producer", "output", "inside", "input")
    with caplog.at_level(logging.WARNING, logger="routilux.flow"):
        job = run(flow)
    assert job.status == "completed"
    assert inside.results == [{"value": 1}] and outside.results == []
    assert "not in the flow" in caplog.text


def test_get_routine_id_and_find_connection(make_flow):
    flow = make_flow()
    producer, collector = Producer(), Collector()
    flow.add_routine(producer, "p")
    flow.add_routine(collector, "c")
    link = flow.connect("p", "output", "c", "input")
    assert flow._get_routine_id(producer) == "p" and flow._get_routine_id(Routine()) is None
    assert flow._find_connection(producer.output_event, collector.input_slot) is link
    assert flow._find_connection(producer.output_event, Collector().input_slot) is None


@pytest.mark.parametrize("execution", EXECUTIONS)
def test_slot_and_event_attributes_stay_the_routines_own_after_a_job(make_flow, execution):
    # A process routine's state comes back after a job; 0.10-style attributes that
    # hold its slots and events are graph, not state, and must stay the same objects.
    flow, worker, _ = pipeline(make_flow, execution)
    run(flow)
    assert worker.input_slot is worker.get_slot("input")
    assert worker.output_event is worker.get_event("output")
    assert worker.calls == [1]  # the state did come back
    extra = Collector()
    flow.add_routine(extra, "extra")
    worker.output_event.connect(extra.input_slot)
    run(flow, params={"values": [2]})
    assert extra.results == [{"value": 4}]
