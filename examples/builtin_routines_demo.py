"""Built-in routines working together: triage a batch of JSON log lines.

    python examples/builtin_routines_demo.py
    routilux run examples/builtin_routines_demo.py:flow --entry split --slot input \
        --params "$(cat examples/log_lines.json)"
    routilux run examples/builtin_routines_demo.yaml --params "$(cat examples/log_lines.json)"

The flow::

    Splitter -> ResultExtractor -> DataValidator -valid-> ConditionalRouter
                                                 -invalid-> rejected
    ConditionalRouter -error-> TextRenderer -> alerts
                      -slow--> Batcher -> slow_batches
                      -normal-> normal
                      -debug--> (not connected: dropped)

A second job sends a message to the Batcher's ``flush`` slot so that the last,
incomplete batch comes out; a third asks a TimeProvider for the report time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from routilux import Flow, Routine
from routilux.builtin_routines import (
    Batcher,
    ConditionalRouter,
    DataValidator,
    ResultExtractor,
    Splitter,
    TextRenderer,
    TimeProvider,
)

# The log lines, also used as `--params "$(cat examples/log_lines.json)"` on the CLI.
LINES = json.loads((Path(__file__).parent / "log_lines.json").read_text())["lines"]


class Collector(Routine):
    """Keeps every message it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.define_slot("input", handler=self.collect)

    def collect(self, **message: Any) -> None:
        self.received.append(message)
        self.send_output("received", **message)


def build_flow() -> tuple[Flow, dict[str, Collector]]:
    flow = Flow(flow_id="log-triage")
    flow.add_routine(Splitter(input_key="lines"), "split")
    flow.add_routine(ResultExtractor(), "extract")
    flow.add_routine(
        DataValidator(
            # "value": a line that is not a JSON object reaches the validator as a str
            rules={
                "level": "is_string",
                "msg": "not_empty",
                "ms": ["integer", "non_negative"],
                "value": "is_dict",
            },
            required_fields=["level", "msg", "ms"],
        ),
        "validate",
    )
    flow.add_routine(
        ConditionalRouter(
            routes=[
                ("error", {"level": "error"}),
                ("slow", "ms > 500"),
                ("debug", "level == 'debug'"),
            ],
            default_route="normal",
        ),
        "route",
    )
    flow.add_routine(TextRenderer(tag_format="markdown"), "render")
    flow.add_routine(Batcher(batch_size=10, input_key="data"), "batch")
    flow.add_routine(TimeProvider(format="iso", timezone="utc"), "clock")

    sinks = {name: Collector() for name in ("rejected", "alerts", "slow_batches", "normal", "time")}
    for name, sink in sinks.items():
        flow.add_routine(sink, name)

    flow.connect("split", "output", "extract", "input", param_mapping={"item": "data"})
    flow.connect("extract", "output", "validate", "input",
                 param_mapping={"extracted_result": "data"})
    flow.connect("validate", "valid", "route", "input", param_mapping={"validated_data": "data"})
    flow.connect("validate", "invalid", "rejected", "input")
    flow.connect("route", "error", "render", "input")
    flow.connect("render", "output", "alerts", "input")
    flow.connect("route", "slow", "batch", "input")
    flow.connect("batch", "output", "slow_batches", "input")
    flow.connect("route", "normal", "normal", "input")
    flow.connect("clock", "output", "time", "input")
    return flow, sinks


def flow() -> Flow:
    """The flow alone, for `routilux run examples/builtin_routines_demo.py:flow`."""
    return build_flow()[0]


def main() -> None:
    flow, sinks = build_flow()
    try:
        job = flow.execute("split", {"lines": LINES}, entry_slot="input", timeout=30)
        print(f"triage job: {job.status}")
        flush = flow.execute("batch", {}, entry_slot="flush", timeout=30)
        print(f"flush job: {flush.status}")
        report = flow.execute("clock", {}, entry_slot="request", timeout=30)
        print(f"clock job: {report.status}")
        if {job.status, flush.status, report.status} != {"completed"}:
            raise SystemExit(f"a job did not complete: {job.error or flush.error or report.error}")

        print(f"\nreport time: {sinks['time'].received[0]['time_string']}")
        print(f"\nnormal entries ({len(sinks['normal'].received)}):")
        for message in sinks["normal"].received:
            print(f"  - {message['data']['msg']} ({message['data']['ms']} ms)")
        print(f"\nrejected lines ({len(sinks['rejected'].received)}):")
        for message in sinks["rejected"].received:
            print(f"  - {message['data']!r}: {message['errors']}")
        print(f"\nalerts ({len(sinks['alerts'].received)}):")
        for message in sinks["alerts"].received:
            print("  " + message["rendered_text"].replace("\n", "\n  "))
        print("\nslow requests, batched:")
        for message in sinks["slow_batches"].received:
            names = [entry["msg"] for entry in message["batch"]]
            print(f"  batch of {message['count']} ({message['reason']}): {names}")
        print("\nrouter stats:", flow.routines["route"].stats())
        print("validator stats:", flow.routines["validate"].stats())
    finally:
        flow.shutdown()


if __name__ == "__main__":
    main()
