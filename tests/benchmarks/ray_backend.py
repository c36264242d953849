"""Ray routines against process routines and raw Ray actor calls, in one run.

    python tests/benchmarks/ray_backend.py [--cycles 400] [--messages 2000] [--kills 5]

Needs the ray extra. Starts a local Ray (``num_cpus=2``, no dashboard; or uses the
one ``RAY_ADDRESS`` names) and prints:

- ping-pong: a thread routine and an echo routine (ray / process) bounce a message;
  the time per round trip against a raw synchronous Ray actor call
  (``ray.get(actor.echo.remote(i))``) — the per-step overhead ratio (best of three,
  alternated: the machine is shared);
- messages/s: a source emits N messages through the echo routine (concurrent
  strategy) against raw Ray calls kept two in flight (our credit) and all in flight;
- kill -> redelivered: SIGKILL the actor's process mid-step; the time until the
  redelivered step starts in the replacement actor (median of ``--kills``; each kill
  once the routine's warm standby actor runs).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import ray
from chain_routines import Source  # this directory: run as a script
from light_routines import Echo, Pinger

from routilux import Flow, RestartPolicy, Routine

OPTIONS = {"num_cpus": 0.5}


@ray.remote
class RawEcho:
    def echo(self, i):
        return i


class Count(Routine):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.define_slot("pong", handler=self.take)

    def take(self, i):
        self.count += 1


def _echo(flow: Flow, kind: str) -> None:
    extra = {"ray_options": OPTIONS} if kind == "ray" else {}
    flow.add_routine(Echo(), "echo", execution=kind, **extra)


def ping_pong(kind: str, cycles: int) -> float:
    """Seconds per round trip through an echo routine of ``kind``."""
    flow = Flow(f"bench-pp-{kind}", record_history=False)
    flow.add_routine(Pinger(), "pinger")
    _echo(flow, kind)
    flow.connect("pinger", "ping", "echo", "ping")
    flow.connect("echo", "pong", "pinger", "pong")
    flow.execute("pinger", {"cycles": 20}, timeout=120)  # warm up
    started = time.perf_counter()
    job = flow.execute("pinger", {"cycles": cycles}, timeout=300)
    elapsed = time.perf_counter() - started
    assert job.status == "completed", job.error
    flow.shutdown()
    return elapsed / cycles


def throughput(kind: str, messages: int) -> float:
    """Messages per second through an echo routine of ``kind``."""
    flow = Flow(f"bench-tp-{kind}", "concurrent", max_workers=4, record_history=False)
    flow.add_routine(Source(), "src")
    _echo(flow, kind)
    sink = Count()
    flow.add_routine(sink, "sink")
    flow.connect("src", "out", "echo", "ping")
    flow.connect("echo", "pong", "sink", "pong")
    flow.execute("src", {"n": 50}, timeout=120)
    started = time.perf_counter()
    job = flow.execute("src", {"n": messages}, timeout=300)
    elapsed = time.perf_counter() - started
    assert job.status == "completed" and sink.count == messages + 50, job.error
    flow.shutdown()
    return messages / elapsed


def raw_call(cycles: int) -> float:
    actor = RawEcho.options(**OPTIONS).remote()
    for i in range(20):
        ray.get(actor.echo.remote(i))
    started = time.perf_counter()
    for i in range(cycles):
        ray.get(actor.echo.remote(i))
    elapsed = time.perf_counter() - started
    ray.kill(actor)
    return elapsed / cycles


def raw_throughput(messages: int, window: int | None) -> float:
    actor = RawEcho.options(**OPTIONS).remote()
    ray.get(actor.echo.remote(0))
    started = time.perf_counter()
    if window is None:
        ray.get([actor.echo.remote(i) for i in range(messages)])
    else:
        pending = []
        for i in range(messages):
            pending.append(actor.echo.remote(i))
            if len(pending) >= window:
                ray.get(pending.pop(0))
        ray.get(pending)
    elapsed = time.perf_counter() - started
    ray.kill(actor)
    return messages / elapsed


class Victim(Routine):
    """Writes ``pid time`` when a step starts; the first attempt of each message
    then waits to be killed."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder
        self.define_slot("in", handler=self.work)

    def work(self, i):
        now = time.time()
        marker = Path(self.folder) / f"attempt-{i}"
        if marker.exists():
            (Path(self.folder) / f"redelivered-{i}").write_text(str(now))
            return
        marker.write_text(str(os.getpid()))
        time.sleep(60)


def spares_ready() -> None:
    """Wait until every standby actor of the routilux namespace runs."""
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] == "routilux" and ":standby-" in actor["name"]:
            ray.get(ray.get_actor(actor["name"], namespace="routilux").ready.remote())


def kill_to_redelivered(kills: int) -> list[float]:
    """Seconds from SIGKILL of the actor to the redelivered step's start."""
    folder = tempfile.mkdtemp(prefix="ray-bench-")
    policy = RestartPolicy(
        max_restarts=kills + 1, within=600, backoff=0.0, backoff_max=0.0, warm_spare=True
    )
    flow = Flow("bench-kill", restart=policy)
    flow.add_routine(Victim(folder), "victim", execution="ray", ray_options=OPTIONS)
    figures = []
    for i in range(kills):
        spares_ready()  # crashes spaced out, as in life: the spare has started
        job = flow.execute("victim", {"i": i}, entry_slot="in", wait=False, timeout=120)
        marker = Path(folder) / f"attempt-{i}"
        while not (marker.exists() and marker.read_text()):
            time.sleep(0.001)
        killed = time.time()
        os.kill(int(marker.read_text()), signal.SIGKILL)
        assert job.wait(120) and job.status == "completed", job.error
        figures.append(float((Path(folder) / f"redelivered-{i}").read_text()) - killed)
    flow.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=400)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    if os.environ.get("RAY_ADDRESS"):  # an existing Ray (the tests' smoke run)
        ray.init(log_to_driver=False)
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    # Alternate the ping-pongs, keep each one's best of three (the machine is shared).
    raws, rays, procs = [], [], []
    for _ in range(3):
        raws.append(raw_call(args.cycles))
        rays.append(ping_pong("ray", args.cycles))
        procs.append(ping_pong("process", args.cycles))
    raw, pp_ray, pp_proc = min(raws), min(rays), min(procs)
    raw2 = raw_throughput(args.messages, 2)
    raw_all = raw_throughput(args.messages, None)
    tp_ray = throughput("ray", args.messages)
    tp_proc = throughput("process", args.messages)
    kills = kill_to_redelivered(args.kills)
    ray.shutdown()
    print(f"round trip: raw ray call {raw * 1e3:.3f} ms, ray routine {pp_ray * 1e3:.3f} ms "
          f"({pp_ray / raw:.2f}x raw), process routine {pp_proc * 1e3:.3f} ms")
    print(f"messages/s: ray routine {tp_ray:,.0f}, process routine {tp_proc:,.0f}, "
          f"raw ray 2 in flight {raw2:,.0f} ({tp_ray / raw2:.2f}x), "
          f"raw ray all in flight {raw_all:,.0f} ({tp_ray / raw_all:.2f}x)")
    print(f"kill -> redelivered: median {statistics.median(kills) * 1e3:.0f} ms "
          f"(min {min(kills) * 1e3:.0f}, max {max(kills) * 1e3:.0f}, n={len(kills)})")


if __name__ == "__main__":
    main()
