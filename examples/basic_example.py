"""A three-stage chain: read words, count their letters, collect the totals.

    python examples/basic_example.py
    routilux run examples/basic_example.py:flow --params '{"text": "one job at a time"}'
    routilux run examples/basic_example.yaml --allow basic_example --params '{"text": "hi"}'
"""

from routilux import Flow, JobState, Routine


class WordSource(Routine):
    """Emits one message per word of the text it is triggered with."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.split)
        self.define_event("word", ["word"])

    def split(self, text):
        for word in text.split():
            self.emit("word", word=word)


class LetterCounter(Routine):
    """Counts letters of each word; keeps a running total in its stats."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", handler=self.count)
        self.define_event("counted", ["word", "letters"])

    def count(self, word):
        letters = sum(ch.isalpha() for ch in word)
        self._stats["words"] = self._stats.get("words", 0) + 1
        self.emit("counted", word=word, letters=letters)


class Collector(Routine):
    """Keeps every result it receives, and sends it out as the job's output."""

    def __init__(self):
        super().__init__()
        self.results = []
        self.define_slot("input", handler=self.collect)

    def collect(self, word, letters):
        self.results.append((word, letters))
        self.send_output("letters", word=word, letters=letters)


def build_flow() -> tuple[Flow, Collector]:
    flow = Flow(flow_id="basic")
    collector = Collector()
    flow.add_routine(WordSource(), "source")
    flow.add_routine(LetterCounter(), "counter")
    flow.add_routine(collector, "collector")
    flow.connect("source", "word", "counter", "input")
    flow.connect("counter", "counted", "collector", "input")
    return flow, collector


def flow() -> Flow:
    """The flow alone, for `routilux run examples/basic_example.py:flow`."""
    return build_flow()[0]


def main() -> None:
    flow, collector = build_flow()
    job = flow.execute("source", {"text": "actors route every message exactly once"})
    JobState.wait_for_completion(flow, job, timeout=10)
    print(f"job {job.job_id[:8]} {job.status}")
    for word, letters in collector.results:
        print(f"  {word:10s} {letters}")
    print("counter stats:", flow.routines["counter"].stats())
    print("metrics:", {rid: m["processed"] for rid, m in flow.metrics().items()})
    flow.shutdown()


if __name__ == "__main__":
    main()
