"""A checkpoint store's boundary: its path checked before use, its errors named.

A store refuses a path it cannot use with one :class:`CheckpointError` naming the
path and the reason (no raw ``[Errno N]``), before it creates a file, a directory
or a key file: a wrong ``--store`` must leave nothing behind (no ``/dev/null.key``).
Every error of a store operation (``sqlite3.Error``, ``OSError``, a damaged JSON
index) leaves the store as a CheckpointError that names the store and what failed.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from routilux._validate import a_type
from routilux.exceptions import CheckpointError

SQLITE_MAGIC = b"SQLite format 3\x00"
DAMAGED_HINT = "the file is damaged; restore it from a backup or use a new store"
_DAMAGED = ("malformed", "not a database", "file is encrypted", "disk i/o error")

F = TypeVar("F", bound=Callable[..., Any])


def os_error(path: str | os.PathLike[str], exc: OSError, doing: str) -> CheckpointError:
    """``cannot <doing> <path>: permission denied`` from an OSError."""
    where = exc.filename if exc.filename is not None else path
    return CheckpointError(f"cannot {doing} {where}: {_reason(exc)}")


def _reason(exc: OSError) -> str:
    """'permission denied': the OS's reason without its errno number."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return reason[:1].lower() + reason[1:]


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


def sqlite_error(location: str, exc: sqlite3.Error, doing: str) -> CheckpointError:
    """``<store>: cannot <doing>: <reason>`` (saying so when the file is damaged)."""
    reason = str(exc) or type(exc).__name__
    if any(mark in reason.lower() for mark in _DAMAGED):
        reason += f" ({DAMAGED_HINT})"
    elif "no such table" in reason:
        reason = f"not a routilux checkpoint store ({reason})"
    return CheckpointError(f"{location}: cannot {doing}: {reason}")


def store_errors(doing: str) -> Callable[[F], F]:
    """Decorate a store method so its errors leave as CheckpointError naming the store."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise sqlite_error(self.location, exc, doing) from exc
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise CheckpointError(
                    f"{self.location}: cannot {doing}: an index file is not valid JSON "
                    f"({exc}; {DAMAGED_HINT})"
                ) from exc
            except OSError as exc:
                reason = _reason(exc)
                if exc.filename is not None and os.fspath(exc.filename) != self.location:
                    reason += f": {exc.filename}"
                raise CheckpointError(f"{self.location}: cannot {doing}: {reason}") from exc

        return guarded  # type: ignore[return-value]

    return decorate


def quick_check(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged SQLite file (``PRAGMA quick_check``), closing ``db``."""
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as exc:
        db.close()
        raise sqlite_error(str(path), exc, "check its integrity") from None
    if rows != [("ok",)]:
        db.close()
        first = str(rows[0][0]) if rows else "no answer"
        more = f" (and {len(rows) - 1} more problem(s))" if len(rows) > 1 else ""
        raise CheckpointError(
            f"{path} failed SQLite's integrity check: {first}{more}; {DAMAGED_HINT}"
        )


def check_ours(db: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite database of some other program (tables, none of ours)."""
    try:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    except sqlite3.Error as exc:
        db.close()
        raise sqlite_error(str(path), exc, "list its tables") from None
    tables = sorted(name for (name,) in rows if not name.startswith("sqlite_"))
    if tables and "checkpoints" not in tables:
        db.close()
        shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise CheckpointError(
            f"{path} is an SQLite database but not a routilux checkpoint store "
            f"(its tables: {shown}); choose another path"
        )


__all__ = [
    "SQLITE_MAGIC",
    "as_path",
    "check_directory_path",
    "check_ours",
    "check_sqlite_path",
    "os_error",
    "quick_check",
    "sqlite_error",
    "store_errors",
]
