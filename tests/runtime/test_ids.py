"""Deterministic, compact message ids (routilux.runtime.ids)."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import Node

from routilux.runtime.ids import delivery_id, emit_id, root_id

LIMIT = 1 << 63


def test_root_id_is_deterministic_and_depends_on_job_and_salt():
    assert root_id("job-1") == root_id("job-1")
    assert root_id("job-1") != root_id("job-2")
    assert root_id("job-1", "deferred/1/0") != root_id("job-1")
    assert 0 <= root_id("job-1") < LIMIT


def test_emit_id_is_derived_from_parent_and_index():
    parent = root_id("job")
    children = [emit_id(parent, n) for n in range(1000)]
    assert children == [emit_id(parent, n) for n in range(1000)]
    assert len(set(children)) == 1000
    assert emit_id(root_id("other"), 0) != emit_id(parent, 0)
    assert all(0 <= c < LIMIT for c in children)


def test_delivery_ids_differ_per_connection():
    eid = emit_id(root_id("job"), 0)
    ids = {delivery_id(eid, k) for k in range(1, 50)}
    assert len(ids) == 49 and eid not in ids


def test_ids_do_not_grow_along_a_chain_or_a_cycle():
    current = root_id("job")
    seen = set()
    for _ in range(100_000):
        current = emit_id(current, 0)
        assert 0 <= current < LIMIT
        seen.add(current)
    assert len(seen) == 100_000  # no short cycles in practice


def test_ids_are_the_same_in_another_process_with_another_hash_seed():
    code = (
        "from routilux.runtime.ids import root_id, emit_id, delivery_id\n"
        "r = root_id('job-x')\n"
        "print(r, emit_id(r, 3), delivery_id(emit_id(r, 3), 2))\n"
    )
    outputs = set()
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=20,
            check=True,
        )
        outputs.add(out.stdout.strip())
    r = root_id("job-x")
    local = f"{r} {emit_id(r, 3)} {delivery_id(emit_id(r, 3), 2)}"
    assert outputs == {local}


def test_pending_message_ids_are_derived_from_the_job_id(make_flow, gates):
    """A paused job's queued messages carry ids computed from (parent id, emit index)."""
    release, entered = gates(), gates()

    def src(node, data):
        entered.set()
        assert release.wait(10)
        node.emit("out", v=0)
        node.emit("out", v=1)

    flow = make_flow()
    flow.add_routine(Node(src), "src")
    flow.add_routine(Node(), "a")
    flow.add_routine(Node(), "b")
    flow.connect("src", "out", "a", "in")
    flow.connect("src", "out", "b", "in")
    job = flow.execute("src", wait=False)
    assert entered.wait(5)
    flow.pause(job, wait=False)
    release.set()
    assert job.wait(10) and job.status == "paused"
    pending = [(t["routine_id"], t["data"]["v"], t["id"]) for t in job.pending_tasks]
    root = root_id(job.job_id)
    e0, e1 = emit_id(root, 0), emit_id(root, 1)
    assert pending == [
        ("a", 0, e0), ("b", 0, delivery_id(e0, 1)),
        ("a", 1, e1), ("b", 1, delivery_id(e1, 1)),
    ]
    assert len({p[2] for p in pending}) == 4
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
