"""One downstream routine per error strategy: STOP, CONTINUE, SKIP, RETRY.

Each scenario is its own flow: ``source -> worker -> sink``. The source emits three
items; the worker's error handler decides what a failure does to the job. The script
prints the job status, what reached the sink and the failures recorded in the
JobState.

    python examples/error_handling.py
    routilux run examples/error_handling.py:skip_flow --params '{"items": ["1", "bad", "3"]}'
    routilux run examples/error_handling.yaml --allow error_handling \
        --params '{"items": ["1", "2", "3"]}'
"""

from routilux import ErrorHandler, ErrorStrategy, Flow, Routine


class Source(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.run)
        self.define_event("item", ["item"])

    def run(self, items):
        for item in items:
            self.emit("item", item=item)


class Parser(Routine):
    """Fails on the item "bad"; passes the others on as integers."""

    def __init__(self):
        super().__init__()
        self.define_slot("input", handler=self.parse)
        self.define_event("parsed", ["value"])

    def parse(self, item):
        if item == "bad":
            raise ValueError(f"cannot parse {item!r}")
        self.emit("parsed", value=int(item))


class FlakyParser(Parser):
    """Fails twice on the item "2" (say, a timing-out service), then succeeds."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def parse(self, item):
        if item == "2":
            self.calls += 1
            if self.calls <= 2:
                raise ConnectionError(f"service unavailable (call {self.calls})")
        self.emit("parsed", value=int(item))


class Sink(Routine):
    def __init__(self):
        super().__init__()
        self.values = []
        self.define_slot("input", handler=self.store)

    def store(self, value):
        self.values.append(value)
        self.send_output("value", value=value)


def build_flow(title, worker):
    """``source -> worker -> sink``; ``worker`` carries the error handler."""
    flow = Flow(flow_id=f"errors-{title.replace(' ', '-')}")
    flow.add_routine(Source(), "source")
    flow.add_routine(worker, "worker")
    flow.add_routine(Sink(), "sink")
    flow.connect("source", "item", "worker", "input")
    flow.connect("worker", "parsed", "sink", "input")
    return flow


def with_handler(worker, handler):
    worker.set_error_handler(handler)
    return worker


# One flow per strategy, for `routilux run examples/error_handling.py:<name>_flow`.
def stop_flow():
    return build_flow("STOP", with_handler(Parser(), ErrorHandler(ErrorStrategy.STOP)))


def continue_flow():
    return build_flow("CONTINUE", with_handler(Parser(), ErrorHandler(ErrorStrategy.CONTINUE)))


def skip_flow():
    return build_flow("SKIP", with_handler(Parser(), ErrorHandler(ErrorStrategy.SKIP)))


def retry_flow():
    handler = ErrorHandler(ErrorStrategy.RETRY, max_retries=3, retry_delay=0.02, retry_backoff=2.0)
    return build_flow("RETRY", with_handler(FlakyParser(), handler))


def critical_flow():
    """A critical routine whose retries run out fails the job."""
    worker = Parser()
    worker.set_as_critical(max_retries=2, retry_delay=0.01)
    return build_flow("RETRY critical", worker)


def run(title, flow, items):
    sink = flow.routines["sink"]
    try:
        job = flow.execute("source", {"items": items}, timeout=30)
    finally:
        flow.shutdown()
    state = job.routine_states["worker"]
    print(f"{title}: job {job.status}; sink received {sink.values}")
    print(f"  worker: processed={state['processed']} failed={state['failed']} "
          f"skipped={state.get('skipped', 0)}")
    for failure in job.failures:
        print(f"  failure: attempt {failure['attempt']} {failure['exception_type']}: "
              f"{failure['message']} (strategy {failure['strategy']})")
    if job.error:
        print(f"  job.error: {job.error}")
        # The job runs breadth-first, so item 1 was still queued for the sink when the
        # failure stopped the job; the last failure lists what was dropped.
        dropped = [f"{d['routine_id']}.{d['slot']} {d['data']}"
                   for d in job.failures[-1].get("dropped", [])]
        print(f"  dropped {job.dropped_messages} messages: {dropped}")
    return job


def main():
    items = ["1", "bad", "3"]
    run("STOP", stop_flow(), items)
    run("CONTINUE", continue_flow(), items)
    run("SKIP", skip_flow(), items)
    run("RETRY", retry_flow(), ["1", "2", "3"])
    run("RETRY critical", critical_flow(), items)


if __name__ == "__main__":
    main()
