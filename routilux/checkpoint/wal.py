"""Moving an SQLite store's write-ahead log into the database file off the write path.

In WAL mode every commit appends its pages to the ``-wal`` file; now and then those
pages are copied back into the database file and both are synced (a *WAL
checkpoint*). SQLite does that inside whichever commit crosses
``wal_autocheckpoint`` pages, so one job in forty or so waited several
milliseconds for it. A :class:`WalCheckpointer` does it on a thread of its own
(which ends while the store is idle), with a connection of its own, about every
:data:`EVERY_PAGES` pages, while the writer goes on (a PASSIVE checkpoint never
blocks a writer). The writer keeps
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

#: Pages of the log between two background WAL checkpoints: SQLite's own default
#: (checkpointing more often syncs the database file more often; letting the log
#: grow makes each synced commit extend the file, which costs more).
EVERY_PAGES = 1000
#: Pages a commit is counted for besides its data (rows, indexes: a tiny job's
#: intent writes about 8, its checkpoint about 15).
COMMIT_PAGES = 12
#: A checkpoint thread with no request for this long ends.
IDLE_SECONDS = 2.0
#: The writer's own ``wal_autocheckpoint``: a bound, reached only if this lags.
SAFETY_PAGES = 8000


class WalCheckpointer:
    """Runs a PASSIVE WAL checkpoint on its own thread every few hundred commits.

    The thread waits for the next request and ends after :data:`IDLE_SECONDS`
    without one, so an idle store holds no thread; starting one makes the caller
    wait for it to run (a GIL hand-over), so a busy store keeps the same one.
    """

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self.name = name
        self.connect = connect
        self.pages = 0  # about how many pages were logged since the last request
        self.due = False
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.db: sqlite3.Connection | None = None
        self.closed = False
        self.runs = 0  #: checkpoints tried (for tests and benchmarks)

    def committed(self, size: int = 0) -> None:
        """Count a commit of about ``size`` bytes of data; ask for a checkpoint once
        about :data:`EVERY_PAGES` pages were logged."""
        self.pages += COMMIT_PAGES + size // 4096
        if self.pages < EVERY_PAGES:
            return
        self.pages = 0
        with self.cond:
            if self.closed:
                return
            self.due = True
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self.thread.start()
            else:
                self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                if not self.due and not self.closed:
                    self.cond.wait(IDLE_SECONDS)
                if self.closed or not self.due:
                    self.thread = None  # idle (or closing): a later request starts another
                    return
                self.due = False
            try:
                if self.db is None:
                    self.db = self.connect()
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # the writer's autocheckpoint still bounds the log
                logger.debug("background WAL checkpoint of %s failed: %s", self.name, exc)
            self.runs += 1

    def close(self) -> None:
        """Stop the thread (after a checkpoint it is running) and close its connection."""
        with self.cond:
            self.closed = True
            thread = self.thread
            self.cond.notify()
        if thread is not None:
            thread.join()
        if self.db is not None:
            self.db.close()
            self.db = None
