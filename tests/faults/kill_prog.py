"""A host of the kill-loop flow, run (and SIGKILLed) by ``test_kill_loop.py``.

    python kill_prog.py MODE SURFACE KIND STORE LEDGER [--jobs N] [--per-life P] [--live M]

SURFACE ``flow`` recovers with ``flow.recover(store)`` and submits with
``flow.execute(job_id=...)``; ``runtime`` uses ``Runtime(store=...).add_flow(flow)``
and ``Runtime.submit(job_id=...)``. KIND is ``sqlite`` or ``dir``.

LEDGER is a file of the job ids this host (or an earlier one) submitted: an id is
appended once ``execute``/``submit`` returned, i.e. once the job is durable (or when
a recovery returns a job the ledger lacks: its host died before writing the line).
Every job in it must come back from every later recovery.

Every mode first recovers and prints ``recovered <json>``:
``{"jobs": {id: status}, "lost": [ledger ids not recovered], "blocked": [finished
jobs whose wait(0) is False], "wrong": [finished jobs whose result is not exact]}``.

``life``    submit up to P jobs not submitted yet (at most M live at once; each
            ``submitted <id>``), wait for every live job, print ``idle`` and block
            (the test kills it at a random point of all this).
``finish``  like ``life`` without the limit P, then shut down cleanly and exit 0.
``verify``  submit nothing; print ``verify <json>`` with every job's result, the
            routines' counters and the store's job list, and exit 0.

``--die-before-job-index`` makes the host die at one exact point (see
``die_before_job_index``) rather than where the test kills it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from datetime import datetime

import psutil
from fault_helpers import (
    KILL_FLOW,
    build_kill_flow,
    expected_job,
    job_id,
    job_result,
    job_size,
    make_store,
    totals,
)

from routilux import Runtime
from routilux.checkpoint import DirectoryStore

STARTED = datetime.now()  # JobState.finished_at is a naive local datetime too
WAIT = 30.0  # seconds a live job may take in one life before the host gives up


def say(*parts: str) -> None:
    print(*parts, flush=True)


def read_ledger(path: str) -> list[str]:
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def append_ledger(path: str, jid: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{jid}\n".encode())
    finally:
        os.close(fd)


def index_of(jid: str) -> int:
    return int(jid.split("-")[1])


class Host:
    """One life of the host: the flow (or the Runtime hosting it) and its jobs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.store = make_store(args.kind, args.store)
        self.runtime = None
        if args.surface == "flow":
            self.flow = build_kill_flow(self.store)
            self.recovered = self.flow.recover()
        else:
            self.flow = build_kill_flow(None)
            self.runtime = Runtime(store=self.store, keep_finished_jobs=1000)
            self.recovered = self.runtime.add_flow(self.flow)
        self.jobs = {job.job_id: job for job in self.recovered}
        # A job recovered but not in the ledger was durable when its host died
        # between execute() returning and the ledger line: it was submitted.
        ledger = set(read_ledger(args.ledger))
        for jid in sorted(set(self.jobs) - ledger):
            if jid.startswith("job-"):
                append_ledger(args.ledger, jid)

    def report(self) -> dict:
        ledger = read_ledger(self.args.ledger)
        # Judged: jobs that had finished before this host started. A recovered job
        # that finishes here is terminal a moment before its waiters are woken
        # (its end is made durable first), so wait(0) may be False for it.
        finished = [j for j in self.recovered if j.is_terminal and j.finished_at < STARTED]
        return {
            "jobs": {j.job_id: j.status for j in self.recovered},
            "lost": [jid for jid in ledger if jid not in self.jobs],
            "blocked": [j.job_id for j in finished if not j.wait(0)],
            "wrong": [
                j.job_id for j in finished
                if j.job_id.startswith("job-") and job_result(j) != expected_job(index_of(j.job_id))
            ],
        }

    def submit(self, index: int):
        jid = job_id(index)
        params = {"job": index, "n": job_size(index)}
        if self.runtime is None:
            job = self.flow.execute("fan", params, wait=False, job_id=jid)
        else:
            job = self.runtime.submit(KILL_FLOW, "fan", params, job_id=jid)
        append_ledger(self.args.ledger, jid)
        say("submitted", jid)
        self.jobs[jid] = job
        return job

    def run(self, limit: int | None) -> None:
        """Submit what is left (up to ``limit``), ``live`` at a time; wait for all."""
        known = set(self.jobs) | set(read_ledger(self.args.ledger))
        live = [j for j in self.recovered if not j.is_terminal]
        submitted = 0
        for index in range(self.args.jobs):
            if job_id(index) in known:
                continue
            if limit is not None and submitted >= limit:
                break
            while len(live) >= self.args.live:
                self.wait_for(live.pop(0))
                live = [j for j in live if not j.is_terminal]
            live.append(self.submit(index))
            submitted += 1
        for job in live:
            self.wait_for(job)

    def wait_for(self, job) -> None:
        settled = job.wait(WAIT) if self.runtime is None else self.runtime.wait(job, WAIT)
        if not settled:
            say("timeout", f"job {job.job_id} still {job.status} after {WAIT} s")
            os._exit(2)

    def verify(self) -> dict:
        ledger = read_ledger(self.args.ledger)
        listed = self.store.list_jobs(KILL_FLOW)
        listed_here = None
        if self.runtime is not None:
            listed_here = {j.job_id: j.status for j in self.runtime.jobs()}
        return {
            "ledger": ledger,
            "results": {jid: job_result(self.jobs[jid]) for jid in ledger if jid in self.jobs},
            "recovered": {j.job_id: j.status for j in self.recovered},
            "settled": {
                j.job_id: j.wait(0)
                for j in self.recovered
                if j.finished_at is not None and j.finished_at < STARTED
            },
            "store_jobs": {row["job_id"]: row["status"] for row in listed},
            "runtime_jobs": listed_here,
            "totals": totals(self.flow),
        }

    def shutdown(self) -> None:
        if self.runtime is not None:
            self.runtime.shutdown()
        else:
            self.flow.shutdown()


def die_before_job_index() -> None:
    """Die (exit 9, as if SIGKILLed) when a DirectoryStore, having written a checkpoint
    in which a job finished, is about to update its job list: a kill at that point."""
    record = getattr(DirectoryStore, "_record_jobs", None)
    if record is None:
        say("error", "DirectoryStore._record_jobs is gone: move this injection point")
        sys.exit(3)

    def dying(self, directory, flow_id, jobs):
        if any(job["status"] in ("completed", "failed", "cancelled") for job in jobs):
            os._exit(9)
        return record(self, directory, flow_id, jobs)

    DirectoryStore._record_jobs = dying


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["life", "finish", "verify"])
    parser.add_argument("surface", choices=["flow", "runtime"])
    parser.add_argument("kind", choices=["sqlite", "dir"])
    parser.add_argument("store")
    parser.add_argument("ledger")
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--per-life", type=int, default=4)
    parser.add_argument("--live", type=int, default=2)
    parser.add_argument("--die-before-job-index", action="store_true")
    args = parser.parse_args()
    say("pid", str(os.getpid()))
    if args.die_before_job_index:
        die_before_job_index()
    host = Host(args)
    say("recovered", json.dumps(host.report(), sort_keys=True))
    say("children", json.dumps(sorted(p.pid for p in psutil.Process().children())))
    if args.mode == "verify":
        say("verify", json.dumps(host.verify(), sort_keys=True))
        host.shutdown()
        return
    host.run(args.per_life if args.mode == "life" else None)
    say("idle", json.dumps({jid: job.status for jid, job in sorted(host.jobs.items())}))
    if args.mode == "life":
        threading.Event().wait()  # the test kills this host
    host.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
