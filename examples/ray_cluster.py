"""A CPU-heavy stage on a Ray cluster (a local Ray here), supervised by routilux.

    pip install 'routilux[ray]'
    python examples/ray_cluster.py
    routilux run examples/ray_cluster.py:flow --params '{"limit": 60000}'
    RAY_ADDRESS=ray://head:10001 python examples/ray_cluster.py   # an existing cluster

``PrimeCounter`` runs as two Ray actors (``workers=2``), placed by Ray wherever the
cluster has a free CPU; ``Chunks`` and ``Total`` stay threads of this process, as
does the supervisor with its ledger and restart policy. The first chunk kills its
own actor process once per job (as the OOM killer would): routilux notices the death from
Ray, hands the chunk to the routine's warm standby actor, and the total is still
exact. Without ``RAY_ADDRESS`` (or ``Flow(ray_address=...)``) a local Ray starts.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile

from routilux import Flow, RestartPolicy, Routine


class Chunks(Routine):
    """Splits ``[2, limit)`` into ``chunks`` ranges."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.split)
        self.define_event("chunk", ["start", "stop", "of"])

    def split(self, limit, chunks=8):
        step = -(-limit // chunks)
        for start in range(0, limit, step):
            self.emit("chunk", start=max(start, 2), stop=min(start + step, limit), of=chunks)


class PrimeCounter(Routine):
    """Counts primes in a range (trial division: deliberately CPU-bound)."""

    def __init__(self):
        super().__init__()
        self.define_slot("chunk", handler=self.count)
        self.define_event("counted", ["primes", "start", "of"])

    def count(self, start, stop, of):
        if start == 2 and _first_time(self):
            self.emit("counted", primes=0, start=-1, of=of)  # dropped: the step never ends
            os.kill(os.getpid(), signal.SIGKILL)
        primes = sum(
            1 for n in range(start, stop) if all(n % d for d in range(2, int(n**0.5) + 1))
        )
        self.emit("counted", primes=primes, start=start, of=of)


def _first_time(routine: Routine) -> bool:
    """True once per job (and machine): a marker file outside the actor remembers,
    since a step that dies reports no state."""
    _, job, _ = routine.get_execution_context()
    marker = os.path.join(tempfile.gettempdir(), f"routilux-ray-example-{job.job_id}")
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


class Total(Routine):
    def __init__(self):
        super().__init__()
        self.primes = 0
        self.chunks = 0
        self.define_slot("counted", handler=self.add)

    def add(self, primes, start, of):
        assert start >= 0, "an emit of a crashed step was routed"
        self.primes += primes
        self.chunks += 1
        if self.chunks == of:
            self.send_output("total", primes=self.primes, chunks=self.chunks)


def flow() -> Flow:
    """The flow, also for `routilux run examples/ray_cluster.py:flow`."""
    flow = Flow(flow_id="ray-cluster", execution_strategy="concurrent")
    flow.add_routine(Chunks(), "chunks")
    flow.add_routine(
        PrimeCounter(), "primes", execution="ray", workers=2,
        ray_options={"num_cpus": 0.5},  # two replicas (and a standby) fit a 2-core laptop
        restart=RestartPolicy(max_restarts=3, within=60.0, backoff=0.01, warm_spare=True),
    )
    flow.add_routine(Total(), "total")
    flow.connect("chunks", "chunk", "primes", "chunk")
    flow.connect("primes", "counted", "total", "counted")
    return flow


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="  log: %(name)s: %(message)s")
    logging.getLogger("ray").setLevel(logging.WARNING)
    f = flow()
    job = f.execute("chunks", {"limit": 60000}, timeout=300)
    print("job", job.status)
    for entry in job.output_log:
        print("total", entry["data"])
    print("restarts of primes:", f.metrics()["primes"]["restarts"])
    for crash in job.crashes:
        print("crash:", crash["reason"])
    f.shutdown()


if __name__ == "__main__":
    main()
