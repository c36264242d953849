"""Checking a store's path before anything is created there.

A store refuses a path it cannot use with one :class:`CheckpointError` naming the
path and the reason (no raw ``[Errno N]``), before it creates a file, a directory
or a key file: a wrong ``--store`` must leave nothing behind (no ``/dev/null.key``).
"""

from __future__ import annotations

import os
from pathlib import Path

from routilux._validate import a_type
from routilux.exceptions import CheckpointError

SQLITE_MAGIC = b"SQLite format 3\x00"


def os_error(path: str | os.PathLike[str], exc: OSError, doing: str) -> CheckpointError:
    """``cannot <doing> <path>: permission denied`` from an OSError."""
    reason = exc.strerror or type(exc).__name__
    reason = reason[:1].lower() + reason[1:]
    where = exc.filename if exc.filename is not None else path
    return CheckpointError(f"cannot {doing} {where}: {reason}")


def as_path(path: object) -> Path:
    """The store path as a Path (a str or an os.PathLike)."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise CheckpointError(
            f"a store path must be a non-empty str or Path, got {path!r} ({a_type(path)})"
        )
    return Path(path)


def _make_parent(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CheckpointError(
            f"cannot create directory {directory}: a file is in the way"
        ) from None
    except OSError as exc:
        raise os_error(directory, exc, "create directory") from None


def _writable_dir(directory: Path, why: str) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write in directory {directory}: permission denied ({why})")


def check_sqlite_path(path: Path, create: bool) -> None:
    """Refuse a path an SQLite store cannot use; create the (empty, 0600) file when
    ``create`` and it is missing. Reading (``create=False``) needs an SQLite file."""
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a directory; an SQLite store needs a file path "
            "(use DirectoryStore or open_store() for a directory)"
        )
    if path.exists() and not path.is_file():
        raise CheckpointError(f"{path} is not a regular file; an SQLite store needs a file")
    if not create:
        if not path.is_file():
            raise CheckpointError(f"no checkpoint store at {path}")
        _check_header(path)
        return
    _make_parent(path.parent)
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise CheckpointError(
                f"cannot write to {path}: permission denied (a store opened for writing "
                "must be readable and writable by this user)"
            )
        _check_header(path)
    _writable_dir(path.parent, f"SQLite keeps {path.name}-wal and the key file there")
    if not path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError as exc:
            raise os_error(path, exc, "create") from None


def _check_header(path: Path) -> None:
    """An existing non-empty file must start with SQLite's magic (empty is a new store)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise os_error(path, exc, "read") from None
    if head and head != SQLITE_MAGIC:
        raise CheckpointError(f"{path} is not a usable SQLite checkpoint store: not an SQLite file")


def check_directory_path(path: Path, create: bool) -> None:
    """Refuse a path a directory store cannot use; create the directory (0700)."""
    if path.exists() and not path.is_dir():
        raise CheckpointError(
            f"{path} is a file, not a directory; a DirectoryStore needs a directory "
            "(use SQLiteStore or open_store() for a file)"
        )
    if not create:
        if not path.is_dir():
            raise CheckpointError(f"{path} is not a checkpoint directory")
        if not os.access(path, os.R_OK | os.X_OK):
            raise CheckpointError(f"cannot read directory {path}: permission denied")
        return
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise os_error(path, exc, "create directory") from None
    _writable_dir(path, "a store opened for writing must be writable by this user")


__all__ = ["SQLITE_MAGIC", "as_path", "check_directory_path", "check_sqlite_path", "os_error"]
