"""A durable flow run in a subprocess by the recovery tests (and killed with SIGKILL).

    python durable_prog.py MODE STORE_KIND STORE_PATH [--messages N] [--strategy S]
                           [--interval SECONDS] [--pause-at K] [--work ROUNDS]

The flow is a chain::

    source --out--> square (thread) --out--> scale (PROCESS) --out--> sink (thread)
       ^--more--'                                             `--out--> collect (thread)

``source`` emits its messages in batches, re-triggering itself through the ``more``
event, so the run is spread over time. ``square`` and ``scale`` keep exact counters
(attributes and ``_stats``); ``sink`` accumulates a sum; ``collect`` has an ``append``
slot, so the job's slot data holds every value it received. Every routine does a
little CPU work per message so that a run lasts long enough to be killed at many points.

Modes (every line the program prints is flushed at once; the tests read them):

``run``      submit one job with ``execute(wait=False)``, print ``submitted <job_id>``,
             wait for it and print ``result <json>``.
``recover``  ``flow.recover()``; print ``recovered <json [[job_id, status], ...]>``,
             wait for every job and print ``result <json>`` of the (single) job.
``submit``   like ``run`` but the source blocks forever in its first step (and the
             checkpoint interval is long): the only durable trace of the job is its
             intent. The test kills the program after ``submitted``.
``pause``    run until the sink has seen ``--pause-at`` messages, ``flow.pause(job)``,
             print ``pause <json>`` and leave with ``os._exit(0)`` (no shutdown hook:
             whatever is durable was made so by ``pause``).
``shutdown`` like ``pause`` but calls ``flow.shutdown()`` instead (the job is saved
             as it is and marked paused here); prints ``shutdown <json>``.
``resume``   ``flow.recover()``, print ``recovered ...``; the job must be paused;
             ``flow.resume(job)``, wait, print ``result <json>``.

``--no-wait`` makes ``recover`` print ``result`` at once, without waiting for the job.
``--say-progress K`` makes the sink print ``progress <count>`` every K messages (a
test kills the host at a point of the job's progress, whatever the machine's load).
``--say-checkpoints`` prints ``checkpoint <number of unfinished jobs>`` after each cut
(from the flow's event bus), so that a test can kill the host at a known point.
``--hard-exit`` leaves ``run`` with ``os._exit(0)`` right after ``result`` (no shutdown).
Once the flow's routine processes are up, the program prints ``children <json pids>``.

``result`` holds the sink's sum and count, every routine's counters and ``stats()``,
the JobState's per-routine ``processed``/``failed`` counts, the job status and the
pids of the process routine (to show that it ran in a new process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading

import psutil

from routilux import Flow, Routine
from routilux.checkpoint import DirectoryStore, SQLiteStore

# The tests count this host's child processes: routine processes start as fresh
# interpreters here, direct children of the host (forking them from the worker
# template is tested in tests/runtime/test_process_speed.py).
os.environ["ROUTILUX_WORKER_TEMPLATE"] = "0"

FLOW_ID = "durable-test-flow"
BATCH = 10
KEY = b"durable-prog-test-key-0123456789"

_sink_progress = threading.Condition()  # module level: routine state stays picklable


WORK = 300  # rounds of spin() per message and routine (--work)
SAY_EVERY = 0  # the sink prints ``progress <count>`` every SAY_EVERY messages (--say-progress)


def spin(i: int) -> int:
    """A little deterministic CPU work (``WORK`` rounds)."""
    acc = i
    for k in range(WORK):
        acc = (acc * 31 + k) % 1_000_003
    return acc


class Source(Routine):
    """Emits ``n`` messages in batches of ``BATCH``; loops through its own ``more`` slot."""

    def __init__(self, block_first_step: bool = False):
        super().__init__()
        self.block_first_step = block_first_step
        self.batches = 0
        self.define_slot("trigger", handler=self.start)
        self.define_slot("more", handler=self.more)
        self.define_event("out", ["i"])
        self.define_event("next", ["start", "n"])

    def start(self, n):
        if self.block_first_step:
            threading.Event().wait()  # never returns; the test kills the process
        self.more(0, n)

    def more(self, start, n):
        self.batches += 1
        self._stats["batches"] = self._stats.get("batches", 0) + 1
        end = min(start + BATCH, n)
        for i in range(start, end):
            spin(i)
            self.emit("out", i=i)
        if end < n:
            self.emit("next", start=end, n=n)


class Square(Routine):
    """Thread routine with exact counters."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.total = 0
        self.define_slot("inp", handler=self.take)
        self.define_event("out", ["i", "v"])

    def take(self, i):
        self.count += 1
        self.total += i
        self._stats["seen"] = self._stats.get("seen", 0) + 1
        self._stats["sum_in"] = self._stats.get("sum_in", 0) + i
        v = spin(i) % 1000 + i * i
        self.emit("out", i=i, v=v)


class Scale(Routine):
    """Process routine with exact counters."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.total = 0
        self.define_slot("inp", handler=self.take)
        self.define_event("out", ["w"])

    def take(self, i, v):
        self.count += 1
        self.total += v
        self._stats["seen"] = self._stats.get("seen", 0) + 1
        self._stats["pid"] = os.getpid()
        w = 3 * v + spin(v) % 7
        self.emit("out", w=w)


class Sink(Routine):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.total = 0
        self.define_slot("inp", handler=self.take)

    def take(self, w):
        self.count += 1
        self.total += w
        self._stats["seen"] = self._stats.get("seen", 0) + 1
        spin(w)
        if SAY_EVERY and self.count % SAY_EVERY == 0:
            say("progress", str(self.count))
        with _sink_progress:
            _sink_progress.notify_all()


class Collect(Routine):
    """Thread routine with an ``append`` slot: the job's slot data accumulates every ``w``."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.last_len = 0
        self.total = 0
        self.define_slot("inp", handler=self.take, merge_strategy="append")

    def take(self, w):
        self.count += 1
        self.last_len = len(w)  # every w of the job so far, each exactly once
        self.total = max(self.total, sum(w))


def make_store(kind: str, path: str):
    if kind == "sqlite":
        return SQLiteStore(path, key=KEY)
    if kind == "dir":
        return DirectoryStore(path, key=KEY)
    raise SystemExit(f"unknown store kind {kind!r}")


def build(args, block_first_step: bool = False):
    flow = Flow(
        FLOW_ID, args.strategy, max_workers=4,
        checkpoint_store=make_store(args.store_kind, args.store_path),
        checkpoint_interval=args.interval,
    )
    routines = {
        "source": Source(block_first_step),
        "square": Square(),
        "scale": Scale(),
        "sink": Sink(),
        "collect": Collect(),
    }
    flow.add_routine(routines["source"], "source")
    flow.add_routine(routines["square"], "square")
    flow.add_routine(routines["scale"], "scale", execution="process")
    flow.add_routine(routines["sink"], "sink")
    flow.add_routine(routines["collect"], "collect")
    flow.connect("source", "out", "square", "inp")
    flow.connect("source", "next", "source", "more")
    flow.connect("square", "out", "scale", "inp")
    flow.connect("scale", "out", "sink", "inp")
    flow.connect("scale", "out", "collect", "inp")
    return flow


def result(flow, job) -> dict:
    routines = flow.routines
    return {
        "status": job.status,
        "error": job.error,
        "sink_total": routines["sink"].total,
        "sink_count": routines["sink"].count,
        "counters": {
            rid: {name: getattr(r, name) for name in ("count", "total", "batches", "last_len")
                  if hasattr(r, name)}
            for rid, r in routines.items()
        },
        "stats": {
            rid: {k: v for k, v in r.stats().items() if k != "pid"}
            for rid, r in routines.items()
        },
        "processed": {
            rid: (st["processed"], st["failed"]) for rid, st in sorted(job.routine_states.items())
        },
        "scale_pid": routines["scale"].stats().get("pid"),
    }


def say(*parts: str) -> None:
    # One write per line: checkpoint lines come from the bus's subscriber thread.
    sys.stdout.write(" ".join(parts) + "\n")
    sys.stdout.flush()


def say_children() -> None:
    say("children", json.dumps(sorted(p.pid for p in psutil.Process().children())))


def main() -> None:
    global WORK, SAY_EVERY
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "mode", choices=["run", "recover", "submit", "pause", "shutdown", "resume"]
    )
    parser.add_argument("store_kind", choices=["sqlite", "dir"])
    parser.add_argument("store_path")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--strategy", default="concurrent")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--pause-at", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--work", type=int, default=300)
    parser.add_argument("--hard-exit", action="store_true")
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument("--say-checkpoints", action="store_true")
    parser.add_argument("--say-progress", type=int, default=0)
    args = parser.parse_args()
    WORK = args.work
    SAY_EVERY = args.say_progress
    if args.mode == "submit":
        args.interval = 3600.0
    flow = build(args, block_first_step=args.mode == "submit")
    say("pid", str(os.getpid()))
    if args.say_checkpoints:
        flow.subscribe(
            lambda event: say("checkpoint", json.dumps(event.data["jobs"])),
            kinds=["checkpoint.written"],
        )

    if args.mode in ("run", "submit", "pause", "shutdown"):
        job = flow.execute("source", {"n": args.messages}, wait=False)
        say("submitted", job.job_id)
        say_children()
        if args.mode in ("pause", "shutdown"):
            sink = flow.routines["sink"]
            with _sink_progress:
                ok = _sink_progress.wait_for(
                    lambda: sink.count >= args.pause_at or job.is_terminal, args.timeout
                )
            assert ok, "the sink made no progress"
            if args.mode == "pause":
                flow.pause(job, "test pause", timeout=args.timeout)
            else:
                flow.shutdown()
            say(args.mode, json.dumps({"status": job.status, "sink_count": sink.count}))
            os._exit(0)
        if not job.wait(args.timeout):
            say("timeout")
            sys.exit(2)
        say("result", json.dumps(result(flow, job), sort_keys=True))
        if args.hard_exit:
            os._exit(0)
        flow.shutdown()
        return

    jobs = flow.recover()
    say("recovered", json.dumps([[j.job_id, j.status] for j in jobs]))
    say_children()
    if len(jobs) != 1:
        say("error", f"expected one job, recovered {len(jobs)}")
        sys.exit(3)
    job = jobs[0]
    if args.mode == "resume":
        if job.status != "paused":
            say("error", f"expected a paused job, got {job.status}")
            sys.exit(4)
        flow.resume(job)
    if not args.no_wait and not job.wait(args.timeout):
        say("timeout")
        sys.exit(2)
    say("result", json.dumps(result(flow, job), sort_keys=True))
    flow.shutdown()


if __name__ == "__main__":
    main()
