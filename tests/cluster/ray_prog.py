"""Host programs for the Ray tests that kill a driver or remove a node.

    python ray_prog.py run STORE N       start job ``ray-job`` (N messages), print
                                         ``progress K`` as steps finish; the test
                                         SIGKILLs this driver mid-job
    python ray_prog.py recover STORE     recover the flow, wait, print ``result <json>``
    python ray_prog.py twonode N         a two-node ``Cluster``: the ray routine is
                                         placed on the second node by a custom
                                         resource; that node is removed mid-job (and a
                                         replacement joins); print ``result <json>``

``run`` and ``recover`` connect through ``RAY_ADDRESS`` (the test session's Ray),
``twonode`` through ``Flow(ray_address=...)``.
The flow is the kill-loop flow of ``tests/faults`` with its work on Ray.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "faults"), str(HERE.parent)]

from fault_helpers import Fan, Sink, Work, job_result, make_store, value  # noqa: E402

from routilux import Flow, RestartPolicy  # noqa: E402

FLOW_ID = "ray-driver-kill"
JOB = "ray-job"


def say(*parts: object) -> None:
    print(*parts, flush=True)


def build(store=None, ray_options=None, flow_id=FLOW_ID, ray_address=None) -> Flow:
    flow = Flow(
        flow_id, "concurrent", max_workers=4, checkpoint_store=store,
        checkpoint_interval=0.05, ray_address=ray_address,
        restart=RestartPolicy(max_restarts=5, within=60.0, backoff=0.01, backoff_max=0.05),
    )
    flow.add_routine(Fan(), "fan")
    flow.add_routine(Work(), "work", execution="ray",
                     ray_options=ray_options or {"num_cpus": 0.25})
    flow.add_routine(Sink(), "sink")
    flow.connect("fan", "out", "work", "inp")
    flow.connect("work", "out", "sink", "inp")
    return flow


def expected(n: int) -> dict:
    """The exact result of the job and the work routine's counters."""
    return {
        "job": {
            "status": "completed",
            "outputs": [[i, value(7, i)] for i in range(n)],
            "processed": {"fan": 1, "sink": n, "work": n},
            "failed": 0,
        },
        "work": [n, sum(value(7, i) for i in range(n))],
    }


def report(flow: Flow, job) -> None:
    work = flow.routines["work"]
    say("result", json.dumps({
        "job": job_result(job),
        "work": [work.count, work.total],
        "crashes": [c["reason"] for c in job.crashes],
    }))


def progress(flow: Flow, every: int = 5) -> None:
    """Print ``progress K`` as the work routine's processed count passes K."""
    sub = flow.subscribe(kinds=["step.finished"])
    done = 0
    for event in sub:
        if event.data.get("routine") == "work":
            done += 1
            if done % every == 0:
                say("progress", done)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    mode = sys.argv[1]
    if mode == "run":
        flow = build(make_store("sqlite", sys.argv[2]))
        threading.Thread(target=progress, args=(flow,), daemon=True).start()
        flow.execute("fan", {"job": 7, "n": int(sys.argv[3])}, wait=False, job_id=JOB)
        say("submitted", JOB)
        threading.Event().wait()  # the test kills this driver
    elif mode == "recover":
        flow = build(make_store("sqlite", sys.argv[2]))
        (job,) = [j for j in flow.recover() if j.job_id == JOB]
        say("recovered", job.status)
        job.wait(60)
        report(flow, job)
        flow.shutdown()
    elif mode == "twonode":
        two_nodes(int(sys.argv[2]))


def two_nodes(n: int) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False})
    side = cluster.add_node(num_cpus=1, resources={"side": 1})
    cluster.wait_for_nodes()
    flow = build(ray_options={"num_cpus": 0.5, "resources": {"side": 0.5}}, flow_id="two-node",
                 ray_address=cluster.address)  # the flow connects this driver
    first_step = threading.Event()

    def on_step(event) -> None:
        if event.data.get("routine") == "work":
            first_step.set()

    sub = flow.subscribe(on_step, kinds=["step.finished"])
    job = flow.execute("fan", {"job": 7, "n": n}, wait=False, job_id=JOB)
    first_step.wait(60)
    cluster.remove_node(side)  # Cluster wants its nodes added and removed on this thread
    say("removed", job.status)
    cluster.add_node(num_cpus=1, resources={"side": 1})  # a replacement machine joins
    job.wait(90)
    sub.close()
    report(flow, job)
    flow.shutdown()
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
