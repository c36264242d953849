"""The floor of a ping-pong through a supervisor: raw threads and a raw pipe wired
the way routilux must wire them, with none of routilux's work.

A ping-pong between a thread routine and a process routine crosses, per cycle, the
pipe twice (as the raw round trip does) and three thread hand-offs the raw round
trip does not have, because the supervisor routes every event (DESIGN) and each
routine is its own actor:

    pinger thread -> supervisor -> (pipe) child -> (pipe) reader thread
                  -> supervisor -> pinger thread

:func:`floor_cycle` runs exactly that with ``queue.SimpleQueue`` hand-offs (the
inbox routilux's actors use) and the raw child of the baseline, doing nothing else.
Its ratio to the raw round trip is the best ratio any implementation of this design
can reach on this machine, now.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import time

from raw_worker import echo_loop

SPAWN = mp.get_context("spawn")
PING, PONG = 0, 1


def floor_cycle(cycles: int) -> float:
    """Seconds per ping-pong cycle of the bare pinger/supervisor/reader/child wiring."""
    child_in, to_child = mp.Pipe(duplex=False)
    from_child, child_out = mp.Pipe(duplex=False)
    child = SPAWN.Process(target=echo_loop, args=(child_in, child_out), daemon=True)
    child.start()
    child_in.close()
    child_out.close()
    supervisor_inbox: queue.SimpleQueue = queue.SimpleQueue()
    pinger_inbox: queue.SimpleQueue = queue.SimpleQueue()
    done = threading.Event()

    def reader() -> None:
        while True:
            try:
                message = from_child.recv()
            except EOFError:
                return
            supervisor_inbox.put((PONG, message))

    def supervisor() -> None:
        while True:
            item = supervisor_inbox.get()
            if item is None:
                return
            kind, message = item
            if kind is PING:
                to_child.send(message)
            else:
                pinger_inbox.put(message)

    def pinger(total: int) -> None:
        remaining = total
        supervisor_inbox.put((PING, {"i": 0}))
        while True:
            message = pinger_inbox.get()
            remaining -= 1
            if remaining <= 0:
                done.set()
                return
            supervisor_inbox.put((PING, {"i": message["i"] + 1}))

    threads = [
        threading.Thread(target=reader, daemon=True),
        threading.Thread(target=supervisor, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        warm = threading.Thread(target=pinger, args=(50,))
        warm.start()
        warm.join()
        done.clear()
        run = threading.Thread(target=pinger, args=(cycles,))
        started = time.perf_counter()
        run.start()
        done.wait()
        elapsed = time.perf_counter() - started
        run.join()
    finally:
        supervisor_inbox.put(None)
        to_child.send(None)
        child.join(10)
        to_child.close()
        from_child.close()
    return elapsed / cycles


if __name__ == "__main__":
    print(f"{floor_cycle(5000) * 1e6:.1f} us per cycle")
