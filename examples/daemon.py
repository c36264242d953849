"""A small job service: drop JSON files in a directory, get results in another.

    python examples/daemon.py [--dir ./daemon-data] [--http PORT]
    routilux run examples/daemon.py:build_flow --params '{"numbers": 10}'   (one job)

Put files like ``inbox/job-1.json`` containing ``{"numbers": 30}`` (optionally
``"delay": 0.05`` seconds per number, to watch it work); the service
computes the sum of squares 1..N (the squaring stage runs in its own process) and
writes ``outbox/job-1.json``. Every accepted job is durable: kill the service with
``kill -9`` at any moment and start it again — unfinished jobs continue from their
last checkpoint and no job is lost or counted twice. SIGTERM or Ctrl-C stops it
gracefully (running steps finish, jobs are checkpointed, exit status 0).

The file name is the job id, so a file is never run twice even if the service dies
between accepting it and moving it out of the inbox. With ``--http PORT`` (and
``pip install 'routilux[web]'``) the live web monitor runs inside the service.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from routilux import Flow, Routine, Runtime, SQLiteStore
from routilux.exceptions import RoutiluxError

log = logging.getLogger("daemon")


class Numbers(Routine):
    """Emits 1..N, each with N so the total knows when it has everything."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("number", ["n", "of"])

    def go(self, numbers, delay=0.0):
        if not isinstance(numbers, int) or numbers < 1:
            raise ValueError(f"'numbers' must be a positive integer, got {numbers!r}")
        for n in range(1, numbers + 1):
            self.emit("number", n=n, of=numbers, delay=delay)


class Square(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("number", handler=self.square)
        self.define_event("square", ["square", "of"])

    def square(self, n, of, delay=0.0):
        if delay:
            time.sleep(delay)  # pretend squaring is expensive
        self.emit("square", square=n * n, of=of)


class Total(Routine):
    """Sums one job's squares: the slot accumulates per job ("append")."""

    def __init__(self):
        super().__init__()
        self.define_slot("square", handler=self.add, merge_strategy="append")

    def add(self, square, of):
        if len(square) == of[0]:
            self.send_output("result", sum_of_squares=sum(square), numbers=of[0])


def build_flow() -> Flow:
    flow = Flow(flow_id="sum-of-squares", execution_strategy="concurrent",
                checkpoint_interval=0.5)
    flow.add_routine(Numbers(), "numbers")
    flow.add_routine(Square(), "square", execution="process")
    flow.add_routine(Total(), "total")
    flow.connect("numbers", "number", "square", "number")
    flow.connect("square", "square", "total", "square")
    return flow


def write_atomic(path: Path, payload: dict) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(payload, indent=2))
    os.replace(temp, path)


class Service:
    def __init__(self, root: Path):
        self.inbox = root / "inbox"
        self.outbox = root / "outbox"
        self.accepted = self.inbox / "accepted"
        for directory in (self.inbox, self.outbox, self.accepted):
            directory.mkdir(parents=True, exist_ok=True)
        self.runtime = Runtime(SQLiteStore(root / "state.sqlite3"))
        recovered = self.runtime.add_flow(build_flow())
        unfinished = [j for j in recovered if not j.is_terminal]
        log.info("started; %d unfinished job(s) recovered", len(unfinished))
        self.stop = threading.Event()

    def accept_new_jobs(self) -> None:
        for path in sorted(self.inbox.glob("*.json")):
            job_id = path.stem
            try:
                params = json.loads(path.read_text())
                self.runtime.submit("sum-of-squares", "numbers", params, job_id=job_id)
            except (ValueError, RoutiluxError) as exc:
                if "already recorded" not in str(exc):
                    write_atomic(self.outbox / path.name, {"job": job_id, "error": str(exc)})
            os.replace(path, self.accepted / path.name)
            log.info("accepted %s", job_id)

    def publish_results(self) -> None:
        for job in self.runtime.jobs():
            target = self.outbox / f"{job.job_id}.json"
            if not job.is_terminal or target.exists():
                continue
            results = [o["data"] for o in job.output_log if o["output_type"] == "result"]
            write_atomic(target, {
                "job": job.job_id, "status": job.status, "error": job.error,
                **(results[-1] if results else {}),
            })
            log.info("finished %s: %s", job.job_id, job.status)

    def serve(self) -> None:
        def on_signal(signum, frame):
            log.info("%s: stopping", signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not self.stop.wait(0.1):  # a service's scan loop
            self.accept_new_jobs()
            self.publish_results()
        self.runtime.shutdown(timeout=20)
        self.publish_results()
        log.info("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="daemon-data", type=Path)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve the web monitor")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    service = Service(args.dir)
    if args.http is not None:  # stopped by runtime.shutdown() with the rest
        log.info("web monitor at %s", service.runtime.serve_http("127.0.0.1", args.http))
    service.serve()


if __name__ == "__main__":
    main()
