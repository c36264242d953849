"""Writes checkpoints to a store and gets SIGKILLed in the middle of one (test helper).

    python store_writer.py KIND PATH

Saves checkpoint ``"first"`` (complete), prints ``saved first``, then starts saving
checkpoint ``"second"`` and stops in the middle of writing it, printing ``mid-write``:

- ``dir``: ``os.write`` writes half of the data to the temporary file and blocks;
- ``sqlite``: the jobs list blocks while it is iterated, inside the transaction,
  after the new checkpoint row was inserted.

The test then kills the process and checks that ``"first"`` is what loads.
"""

from __future__ import annotations

import os
import sys
import threading

from routilux.checkpoint import DirectoryStore, SQLiteStore
from routilux.checkpoint.format import encode
from routilux.runtime.wire import dumps

KEY = b"store-writer-test-key-0123456789"
FLOW = "writer-flow"


def block(what: str) -> None:
    print(what, flush=True)
    threading.Event().wait()  # until SIGKILL


class BlockingJobs(list):
    """A jobs list that blocks when the store iterates it."""

    def __iter__(self):
        block("mid-write")
        return super().__iter__()


def main() -> None:
    kind, path = sys.argv[1], sys.argv[2]
    store = SQLiteStore(path, key=KEY) if kind == "sqlite" else DirectoryStore(path, key=KEY)
    store.save(FLOW, encode(FLOW, dumps("first"), KEY), [{"job_id": "j1", "status": "running"}])
    print("saved first", flush=True)
    second = encode(FLOW, dumps("second" + "x" * 200_000), KEY)
    jobs: list = [{"job_id": "j1", "status": "completed"}]
    if kind == "sqlite":
        jobs = BlockingJobs(jobs)
    else:
        real_write = os.write

        def half_write(fd: int, data) -> int:
            if len(data) >= len(second) // 2:
                real_write(fd, bytes(data[: len(data) // 2]))
                block("mid-write")
            return real_write(fd, data)

        os.write = half_write
    store.save(FLOW, second, jobs)
    print("saved second", flush=True)  # never reached


if __name__ == "__main__":
    main()
