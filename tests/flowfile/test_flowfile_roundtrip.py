"""A flow built in Python, written with to_file, loads back to an equal graph."""

from __future__ import annotations

import os

import pytest
from flowfile_routines import Declared, Dotted, Retryable, Scale, Sink, Source

from routilux import ErrorHandler, ErrorStrategy, Flow, RestartPolicy
from routilux.builtin_routines import ConditionalRouter, TextClipper
from routilux.checkpoint.stores import DirectoryStore, SQLiteStore
from routilux.exceptions import ConfigurationError

ALLOW = ["flowfile_routines"]


def handler_graph(handler):
    if handler is None:
        return None
    return (
        handler.strategy,
        handler.max_retries,
        handler.retry_delay,
        handler.retry_backoff,
        tuple(handler.retryable_exceptions),
        handler.is_critical,
    )


def graph(flow: Flow) -> dict:
    """Everything a flow file describes, read from the flow's own objects."""
    store = flow.checkpoint_store
    return {
        "flow_id": flow.flow_id if flow.has_fixed_id else None,
        "strategy": flow.execution_strategy,
        "max_workers": getattr(flow, "_max_workers", flow.max_workers),
        "execution_timeout": flow.execution_timeout,
        "max_queued": flow.max_queued_per_routine,
        "record_history": flow.record_history,
        "keep_finished_jobs": flow.keep_finished_jobs,
        "checkpoint_interval": flow.checkpoint_interval,
        "store": (type(store), os.path.abspath(store.location)) if store else None,
        "restart": flow.restart,
        "error_handler": handler_graph(flow.error_handler),
        "entry": flow.entry,
        "routines": {
            rid: (
                type(plan.routine),
                plan.routine.config(),
                plan.execution,
                plan.workers,
                plan.restart,
                plan.timeout,
                handler_graph(plan.routine.get_error_handler()),
            )
            for rid, plan in flow._plans.items()
        },
        "connections": [
            (src, event, dst, slot, connection.param_mapping)
            for src, event, dst, slot, connection in flow._wiring
        ],
    }


def rich_flow(tmp_path) -> Flow:
    flow = Flow(
        "round-trip",
        "concurrent",
        3,
        30.0,
        restart=RestartPolicy(max_restarts=5, within=10.0, backoff=0.01, backoff_max=1.0),
        checkpoint_store=SQLiteStore(tmp_path / "state" / "store.sqlite3"),
        checkpoint_interval=0.3,
        max_queued_per_routine=50,
        record_history=False,
        keep_finished_jobs=7,
    )
    flow.add_routine(Source(), "source")
    scale = Scale()
    scale.set_config(factor=10, note={"nested": [1, 2, {"deep": None}]})
    scale.set_error_handler(
        ErrorHandler(
            ErrorStrategy.RETRY,
            max_retries=4,
            retry_delay=0.5,
            retry_backoff=3.0,
            retryable_exceptions=(ConnectionError, Retryable),
            is_critical=True,
        )
    )
    flow.add_routine(
        scale,
        "scale",
        execution="process",
        workers=2,
        restart=RestartPolicy(max_restarts=1),
        timeout=5.0,
    )
    router = ConditionalRouter(
        routes=[("big", "value > 50"), ("zero", {"value": 0})], default_route="small"
    )
    flow.add_routine(router, "route")
    flow.add_routine(TextClipper(max_length=7), "clip")
    flow.add_routine(Declared(), "declared")
    flow.add_routine(Sink(), "sink")
    flow.connect("source", "item", "scale", "input")
    flow.connect("scale", "scaled", "route", "input", param_mapping={"value": "value"})
    flow.connect("route", "big", "sink", "input")
    flow.connect("route", "small", "sink", "input")
    flow.connect("scale", "scaled", "clip", "input", param_mapping={"value": "text"})
    flow.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    flow.entry = ("source", "trigger")
    return flow


@pytest.mark.parametrize("name", ["flow.yaml", "flow.yml", "flow.json"])
def test_a_rich_flow_loads_back_equal(tmp_path, name):
    original = rich_flow(tmp_path)
    path = tmp_path / name
    original.to_file(path)
    loaded = Flow.from_file(path, allowed_modules=ALLOW)
    assert graph(loaded) == graph(original)
    # Written again, the file is the same text: nothing was lost or added.
    again = tmp_path / f"again-{name}"
    loaded.to_file(again)
    assert again.read_text() == path.read_text()
    original.checkpoint_store.close()
    loaded.checkpoint_store.close()


def test_the_loaded_flow_runs_like_the_original(make_flow, tmp_path):
    def build() -> Flow:
        flow = make_flow("runs")
        flow.add_routine(Source(), "source")
        scale = Scale()
        scale.set_config(factor=3)
        flow.add_routine(scale, "scale")
        flow.add_routine(Sink(), "sink")
        flow.connect("source", "item", "scale", "input")
        flow.connect("scale", "scaled", "sink", "input", param_mapping={"value": "scaled"})
        return flow

    original = build()
    original.to_file(tmp_path / "runs.yaml")
    loaded = Flow.from_file(tmp_path / "runs.yaml", ALLOW)
    results = []
    for flow in (original, loaded):
        job = flow.execute("source", {"items": [1, 2, 3]})
        assert job.status == "completed"
        results.append([o["data"] for o in job.output_log])
        flow.shutdown()
    assert results[0] == results[1] == [
        {"value": v, "scaled": v} for v in (3, 6, 9)
    ]


def test_a_flow_without_an_id_stays_without_one(tmp_path):
    flow = Flow()
    flow.add_routine(Source(), "source")
    flow.to_file(tmp_path / "anonymous.yaml")
    assert "flow_id" not in (tmp_path / "anonymous.yaml").read_text()
    loaded = Flow.from_file(tmp_path / "anonymous.yaml", ALLOW)
    assert not loaded.has_fixed_id and loaded.flow_id != flow.flow_id


def test_only_config_that_differs_from_a_fresh_routine_is_written(tmp_path):
    flow = Flow("config")
    scale = Scale()
    scale.set_config(factor=5)  # label keeps its constructor default
    flow.add_routine(scale, "scale")
    flow.add_routine(TextClipper(), "clip")
    flow.to_file(tmp_path / "config.yaml")
    text = (tmp_path / "config.yaml").read_text()
    assert "factor: 5" in text and "label" not in text and "max_length" not in text
    loaded = Flow.from_file(tmp_path / "config.yaml", ALLOW)
    assert loaded.routines["scale"].config() == scale.config()
    assert loaded.routines["clip"].config() == flow.routines["clip"].config()


def test_names_with_dots_are_written_in_the_object_form(tmp_path):
    flow = Flow("dots")
    flow.add_routine(Dotted(), "a.b")
    flow.add_routine(Dotted(), "c")
    flow.connect("a.b", "out.put", "c", "in.put")
    flow.entry = ("a.b", "in.put")
    flow.to_file(tmp_path / "dots.json")
    loaded = Flow.from_file(tmp_path / "dots.json", ALLOW)
    assert graph(loaded) == graph(flow)


def test_a_directory_store_inside_the_file_directory_is_written_relative(tmp_path):
    store = DirectoryStore(tmp_path / "ckpt")
    flow = Flow("dir-store", checkpoint_store=store)
    flow.add_routine(Source(), "source")
    flow.to_file(tmp_path / "flow.yaml")
    assert "store: ckpt/" in (tmp_path / "flow.yaml").read_text()
    loaded = Flow.from_file(tmp_path / "flow.yaml", ALLOW)
    assert graph(loaded) == graph(flow)


def test_code_in_config_cannot_be_written(tmp_path):
    flow = Flow("code")
    router = ConditionalRouter(routes=[("odd", lambda data: data["value"] % 2)])
    flow.add_routine(router, "route")
    with pytest.raises(ConfigurationError, match=r"routine 'route': config 'routes'\[0\]\[1\] "
                       r"holds a function; a flow file holds data, not code"):
        flow.to_file(tmp_path / "code.yaml")
    assert not (tmp_path / "code.yaml").exists()


def test_a_file_name_without_a_flow_file_suffix_is_refused(tmp_path):
    flow = Flow("suffix")
    with pytest.raises(ConfigurationError, match=r"ends in \.yaml, \.yml or \.json"):
        flow.to_file(tmp_path / "flow.txt")


def test_ray_options_load_back_and_serialize_back(tmp_path):
    """A ray routine's placement options survive a flow file and Flow.serialize."""
    pytest.importorskip("ray")
    options = {"num_cpus": 0.5, "resources": {"gpu_box": 1}}
    flow = Flow(flow_id="ray-options")
    flow.add_routine(TextClipper(), "a", execution="ray", ray_options=options)
    path = tmp_path / "flow.yaml"
    flow.to_file(path)
    assert "ray_options" in path.read_text()
    loaded = Flow.from_file(path, allowed_modules=ALLOW)
    assert dict(loaded._plans["a"].ray_options) == options
    again = Flow.deserialize(flow.serialize())
    assert dict(again._plans["a"].ray_options) == options
