"""Raw baselines' child side: a bare worker loop over a multiprocessing Connection.

Importable (``echo_loop`` is a multiprocessing target) and runnable as a script
with the file descriptor of a socket (``python raw_worker.py FD``), so that a
respawn pays for a fresh interpreter and nothing else: this file imports only the
standard library.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def echo_loop(inbox: Connection, outbox: Connection) -> None:
    """Send back every message until None."""
    while True:
        message = inbox.recv()
        if message is None:
            return
        outbox.send(message)


def job_loop(conn: Connection) -> None:
    """Answer ``("job", x, spin)`` with ``("done", x)``; with ``spin``, first say
    ``("busy",)`` and spin forever (the parent kills us)."""
    conn.send(("ready",))
    while True:
        message = conn.recv()
        if message is None:
            return
        _, x, spin = message
        if spin:
            conn.send(("busy",))
            while True:  # busy: a pure Python CPU loop, like the routine's
                pass
        conn.send(("done", x))


if __name__ == "__main__":
    job_loop(Connection(int(sys.argv[1])))
