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
    """Runs a PASSIVE WAL checkpoint on its own thread about every
    :data:`EVERY_PAGES` pages logged (some 80 small commits).

    The thread waits for the next request and ends after :data:`IDLE_SECONDS`
    without one, so an idle store holds no thread; starting one makes the caller
    wait for it to run (a GIL hand-over), so a busy store keeps the same one. A
    checkpoint that fails (the connection cannot be opened, the file is busy) is
    logged and the next request tries again: the writer's own autocheckpoint
    (:data:`SAFETY_PAGES`) still bounds the log.
    """

    def __init__(self, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self.name = name  #: the thread's name
        self.connect = connect  #: opens the thread's own connection (on first use)
        self.thread: threading.Thread | None = None  #: the running thread, if any
        self.db: sqlite3.Connection | None = None  #: the thread's connection, once opened
        self.runs = 0  #: checkpoints tried (for tests and benchmarks)
        self._pages = 0  # about how many pages were logged since the last request
        self._due = False
        self._closed = False
        self._cond = threading.Condition()

    def committed(self, size: int = 0) -> None:
        """Count a commit of about ``size`` bytes of data; ask for a checkpoint once
        about :data:`EVERY_PAGES` pages were logged."""
        self._pages += COMMIT_PAGES + size // 4096
        if self._pages < EVERY_PAGES:
            return
        self._pages = 0
        with self._cond:
            if self._closed:
                return
            self._due = True
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self.thread.start()
            else:
                self._cond.notify()

    def _run(self) -> None:
        try:
            while self._next_request():
                self._checkpoint()
        finally:
            with self._cond:  # ended by surprise: a later request starts another
                if self.thread is threading.current_thread():
                    self.thread = None

    def _next_request(self) -> bool:
        """Wait for a request; False when idle for :data:`IDLE_SECONDS` or closing."""
        with self._cond:
            if not self._due and not self._closed:
                self._cond.wait(IDLE_SECONDS)
            if self._closed or not self._due:
                self.thread = None  # with the check: a request after it starts another
                return False
            self._due = False
            return True

    def _checkpoint(self) -> None:
        try:
            if self.db is None:
                self.db = self.connect()
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:  # any failure: the writer's autocheckpoint bounds the log
            logger.debug("background WAL checkpoint of %s failed: %s", self.name, exc)
        self.runs += 1

    def close(self) -> None:
        """Stop the thread (after a checkpoint it is running) and close its connection."""
        with self._cond:
            self._closed = True
            thread = self.thread
            self._cond.notify()
        if thread is not None:
            thread.join()
        if self.db is not None:
            self.db.close()
            self.db = None
