"""Bounded memory on every path: a relay, fan-in, fan-out and a cycle between a fast
producer and slow consumers keep every routine's queue near
``max_queued_per_routine`` and the host's memory flat.

Each scenario runs in its own process (``relay_prog.py``) so that its RSS is its
own. A thread there samples ``flow.metrics()`` every few milliseconds; the highest
``queued`` of every routine must stay within ``QUEUE_BOUND`` and the peak RSS
within ``RSS_GROWTH`` of the RSS after a warm-up job. The ``direct`` scenario (no
routine in between) is the control the others are held to.

``QUEUE_BOUND`` = the limit, plus up to the limit again of emits already in the
supervisor's inbox when a queue fills (an emitting step only waits while the inbox
holds more than the limit), plus a few emitters racing that check.

In the ``cycle`` scenario ``a`` and ``b`` feed each other: when both are full and
blocked, the one escape of the rule *bounded memory* lets the cycle's blocked steps
through (the producer outside keeps waiting) until one of them moves on, so a member
may also take in what the cycle's members hold in their replicas' batches:
``CYCLE_BOUND``. (An escape that stayed open while the producer kept feeding the
cycle let ``a`` reach 525 and ``b`` 1,392.)
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow

LIMIT = 64  # max_queued_per_routine
QUEUE_BOUND = 2 * LIMIT + 8
BATCH = 64  # deliveries a thread replica may hold (routilux.runtime.supervisor.THREAD_BATCH)
CYCLE_MEMBERS = ("a", "b")
CYCLE_BOUND = QUEUE_BOUND + len(CYCLE_MEMBERS) * BATCH
RSS_GROWTH = 64 * 1024 * 1024  # bytes over the warm baseline; history alone is ~15 MB
COUNTS = {  # messages of 1 KiB; sized to take seconds, not minutes
    "direct": 50_000,
    "relay": 200_000,
    "fan_in": 90_000,
    "fan_out": 40_000,
    "cycle": 20_000,
}


def checksum(topology: str, count: int) -> int:
    """The sum of the message numbers a consumer must see (``relay_prog.Consumer``)."""
    if topology != "fan_in":
        return sum(range(count))
    per = count // 3  # three producers, numbering from 0, 10**7 and 2 * 10**7
    return sum(k * 10**7 * per + per * (per - 1) // 2 for k in range(3))


@pytest.mark.parametrize("topology", list(COUNTS))
def test_queues_and_memory_stay_bounded(topology, spawn):
    count = COUNTS[topology]
    program = spawn("relay_prog.py", topology, "--count", str(count), "--limit", str(LIMIT),
                    "--timeout", "45")
    result = json.loads(program.expect("result", timeout=55))
    assert program.wait() == 0, program.describe()
    growth = result["peak_rss"] - result["baseline_rss"]
    print(f"{topology}: {count} x 1 KiB in {result['seconds']} s; peak RSS "
          f"{result['peak_rss'] / 2**20:.1f} MiB, {growth / 2**20:.1f} MiB over the warm "
          f"baseline; highest queued {result['max_queued']} (limit {LIMIT})")

    assert result["status"] == "completed", result
    assert result["samples"] >= 20, f"too few samples to say anything: {result}"
    for rid, received in result["received"].items():
        assert received == count, f"{rid} got {received} of {count} messages"
        assert result["checksums"][rid] == checksum(topology, count), result
    def bound(rid: str) -> int:
        return CYCLE_BOUND if topology == "cycle" and rid in CYCLE_MEMBERS else QUEUE_BOUND

    over = {rid: q for rid, q in result["max_queued"].items() if q > bound(rid)}
    assert not over, (
        f"queues beyond their bound (limit {LIMIT}): {over}; "
        f"peak RSS growth {growth / 2**20:.1f} MiB"
    )
    assert growth <= RSS_GROWTH, (
        f"peak RSS grew by {growth / 2**20:.1f} MiB (bound {RSS_GROWTH / 2**20:.0f} MiB)"
    )
