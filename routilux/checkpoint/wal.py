"""Moving an SQLite store's write-ahead log into the database file off the write path.

In WAL mode every commit appends its pages to the ``-wal`` file; now and then those
pages are copied back into the database file and both are synced (a *WAL
checkpoint*). SQLite does that inside whichever commit crosses
``wal_autocheckpoint`` pages, so one job in forty or so waited several
milliseconds for it. A :class:`WalCheckpointer` does it on a short-lived thread of
its own, with a connection of its own, every :data:`EVERY_COMMITS` commits, while
the writer goes on (a PASSIVE checkpoint never blocks a writer). The writer keeps
a large ``wal_autocheckpoint`` (:data:`SAFETY_PAGES`) so that the log stays bounded
even if this thread cannot keep up. Commits are as durable either way: the log is
synced by the commit itself (``synchronous="full"``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

logger = logging.getLogger("routilux.checkpoint")

#: Commits between two background WAL checkpoints (a job commits about 20 pages).
EVERY_COMMITS = 32
#: The writer's own ``wal_autocheckpoint``: a bound, reached only if this lags.
SAFETY_PAGES = 8000


class WalCheckpointer:
    """Runs a PASSIVE WAL checkpoint on its own thread every few commits."""

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self.name = name
        self.connect = connect
        self.commits = 0
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.db: sqlite3.Connection | None = None
        self.closed = False

    def committed(self) -> None:
        """Count a commit; start a checkpoint every :data:`EVERY_COMMITS` of them."""
        self.commits += 1
        if self.commits < EVERY_COMMITS:
            return
        with self.lock:
            if self.closed or (self.thread is not None and self.thread.is_alive()):
                return  # one at a time; the next commit asks again
            self.commits = 0
            # A thread per checkpoint (one in ~30 jobs), so an idle store holds none.
            self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            if self.db is None:
                self.db = self.connect()
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the writer's autocheckpoint still bounds the log
            logger.debug("background WAL checkpoint of %s failed: %s", self.name, exc)

    def close(self) -> None:
        """Wait for a running checkpoint and close its connection."""
        with self.lock:
            self.closed = True
            thread = self.thread
        if thread is not None:
            thread.join()
        if self.db is not None:
            self.db.close()
            self.db = None
