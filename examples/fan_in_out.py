"""Fan-out to three analysers, fan-in with ``merge_strategy="append"``.

One ``text`` event feeds three analyser routines (fan-out). Each analyser emits one
``(metric, value)`` pair into the same slot of a report routine (fan-in). That slot
uses the ``"append"`` merge strategy, so every key accumulates a list; the report is
complete once three metrics have arrived. Accumulated slot data belongs to the job:
the second job starts with empty lists.

    python examples/fan_in_out.py
    routilux run examples/fan_in_out.py:flow --params '{"text": "fan out and fan in"}'
    routilux run examples/fan_in_out.yaml --allow fan_in_out --params '{"text": "a b"}'
"""

from routilux import Flow, Routine


class Document(Routine):
    """Entry routine: sends the text it is triggered with to every analyser."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.publish)
        self.define_event("text", ["text"])

    def publish(self, text):
        self.emit("text", text=text)


class Analyser(Routine):
    """Base class: measure the text, emit ``metric`` and ``value``."""

    metric = "?"

    def __init__(self):
        super().__init__()
        self.define_slot("input", handler=self.analyse)
        self.define_event("result", ["metric", "value"])

    def analyse(self, text):
        self.emit("result", metric=self.metric, value=self.measure(text))

    def measure(self, text):
        raise NotImplementedError


class WordCount(Analyser):
    metric = "words"

    def measure(self, text):
        return len(text.split())


class LineCount(Analyser):
    metric = "lines"

    def measure(self, text):
        return len(text.splitlines())


class LongestWord(Analyser):
    metric = "longest"

    def measure(self, text):
        return max(text.split(), key=len)


class Report(Routine):
    """Fan-in: collects one result per analyser, then records the full report."""

    expected = 3

    def __init__(self):
        super().__init__()
        self.reports = []
        self.define_slot("result", handler=self.collect, merge_strategy="append")

    def collect(self, metric, value):
        # With "append", metric and value are the lists accumulated so far in this job.
        print(f"  report slot now holds metric={metric} value={value}")
        if len(metric) == self.expected:
            report = dict(zip(metric, value, strict=True))
            self.reports.append(report)
            self.send_output("report", **report)


def build_flow():
    flow = Flow(flow_id="fan-in-out")  # sequential: fan-out follows connection order
    report = Report()
    flow.add_routine(Document(), "document")
    flow.add_routine(report, "report")
    for rid, analyser in (("words", WordCount()), ("lines", LineCount()),
                          ("longest", LongestWord())):
        flow.add_routine(analyser, rid)
        flow.connect("document", "text", rid, "input")  # fan-out
        flow.connect(rid, "result", "report", "result")  # fan-in
    return flow, report


def flow():
    """The flow alone, for `routilux run examples/fan_in_out.py:flow`."""
    return build_flow()[0]


def main():
    flow, report = build_flow()
    texts = [
        "actors handle one message at a time\nthe supervisor routes them",
        "fan out\nfan in\nappend",
    ]
    try:
        for text in texts:
            print(f"job for {text.splitlines()[0]!r}:")
            job = flow.execute("document", {"text": text})
            print(f"  job {job.status}; report steps: "
                  f"{job.routine_states['report']['processed']}")
        print("reports:")
        for entry in report.reports:
            print("  " + ", ".join(f"{k}={v}" for k, v in entry.items()))
        print("processed per routine:",
              {rid: m["processed"] for rid, m in sorted(flow.metrics().items())})
    finally:
        flow.shutdown()


if __name__ == "__main__":
    main()
