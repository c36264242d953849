"""The runtime's timer thread (routilux.runtime.timers): retries, restarts and
timeouts are scheduled on it."""

from __future__ import annotations

import threading

from routilux.runtime.timers import Timers


def test_a_failing_timer_callback_does_not_stop_the_timer_thread():
    timers = Timers()
    fired = threading.Event()
    timers.call_later(0, lambda: 1 / 0)
    timers.call_later(0.01, fired.set)
    try:
        assert fired.wait(5)
    finally:
        timers.stop()
