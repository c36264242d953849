"""Checkpoint stores: where a flow's checkpoints, finished jobs and job intents live.

Two stores with one interface (:class:`~routilux.checkpoint.store.CheckpointStore`):

- :class:`SQLiteStore` — one file (WAL); every checkpoint is one transaction.
- :class:`DirectoryStore` — one file per checkpoint, written to a temporary file,
  fsynced and renamed into place.

Both keep the previous good checkpoint until a new one is complete, prune old ones
(``keep``), create their files with mode 0600, and list flows and jobs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from routilux.checkpoint.boundary import as_path
from routilux.checkpoint.directory_store import DirectoryStore
from routilux.checkpoint.sqlite_store import SQLiteStore
from routilux.checkpoint.store import KEY_ENV, CheckpointStore, FinishedJob, verify_blob

#: Where the ``routilux`` command and :class:`~routilux.Runtime` keep their store by default.
DEFAULT_STORE = Path(".routilux") / "routilux.sqlite3"


def open_store(path: str | os.PathLike[str], **kwargs: Any) -> CheckpointStore:
    """A store for ``path``: a directory (or a path ending in ``/``) becomes a
    DirectoryStore, anything else an SQLite file."""
    target = as_path(path)
    if target.is_dir() or os.fspath(path).endswith(os.sep):
        return DirectoryStore(target, **kwargs)
    return SQLiteStore(target, **kwargs)


__all__ = [
    "DEFAULT_STORE",
    "KEY_ENV",
    "CheckpointStore",
    "DirectoryStore",
    "FinishedJob",
    "SQLiteStore",
    "open_store",
    "verify_blob",
]
