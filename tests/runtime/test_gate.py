"""The backpressure gate wakes a waiting step only when it may go on."""

from __future__ import annotations

import threading

import pytest
from helpers import wait_until

from routilux.runtime.backpressure import Gate


class RecordingCondition(threading.Condition):
    """Counts wake-ups sent and records what each wait returned (True: notified,
    False: the gate's safety-net timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.wakeups = 0
        self.waits: list[bool] = []

    def notify_all(self) -> None:
        self.wakeups += 1
        super().notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        result = super().wait(timeout)
        self.waits.append(result)
        return result


@pytest.fixture
def inbox() -> list:
    return []


@pytest.fixture
def gate(inbox):
    gate = Gate(4, inbox.__len__)
    gate._condition = RecordingCondition()
    yield gate
    gate.close()  # no waiter outlives the test


def start_waiter(gate: Gate, targets: tuple[str, ...]) -> threading.Thread:
    waiter = threading.Thread(target=gate.wait, args=(targets, "producer"), daemon=True)
    waiter.start()
    assert wait_until(lambda: _waiting(gate))
    return waiter


def _waiting(gate: Gate) -> bool:
    """True once the waiter waits (it holds the lock from its check until then)."""
    with gate._condition:
        return gate.waiters == 1


def test_a_waiter_on_a_full_routine_is_woken_by_room_only(gate):
    gate.mark_full("consumer")
    waiter = start_waiter(gate, ("consumer",))
    for _ in range(5):  # the supervisor handled messages, nothing changed for it
        gate.notify()
    assert gate._condition.wakeups == 0
    gate.mark_room("consumer")
    gate.notify()
    waiter.join(10)
    assert not waiter.is_alive()
    assert gate._condition.wakeups == 1
    assert gate._condition.waits[-1] is True  # woken, not timed out


def test_a_waiter_on_a_long_inbox_is_woken_once_it_is_short(gate, inbox):
    inbox.extend(range(10))  # above the limit of 4
    waiter = start_waiter(gate, ("consumer",))
    gate.notify()
    assert gate._condition.wakeups == 0  # still long
    inbox.clear()
    gate.notify()
    waiter.join(10)
    assert not waiter.is_alive()
    assert gate._condition.waits[-1] is True


def test_a_raised_limit_wakes_a_waiter(gate, inbox):
    inbox.extend(range(6))
    waiter = start_waiter(gate, ())
    gate.inbox_waits = False  # only the limit changes below
    gate.limit = 100
    gate.notify()
    waiter.join(10)
    assert not waiter.is_alive()
    assert gate._condition.waits[-1] is True


def test_an_escape_wakes_a_waiter_of_a_blocked_cycle(gate):
    class Replica:
        suspended = 1
        waiting_on = ("a",)

    class Entry:
        routine_id = "a"
        actors = [Replica()]

        def all_suspended(self) -> bool:
            return True

    gate.mark_full("a")
    waiter = threading.Thread(target=gate.wait, args=(("a",), "a"), daemon=True)
    waiter.start()
    assert wait_until(lambda: _waiting(gate))
    gate.open_escape(Entry(), {"a": Entry()})  # "a" feeds itself: its emits go through
    gate.notify()
    waiter.join(10)
    assert not waiter.is_alive()
    assert gate._condition.waits[-1] is True
