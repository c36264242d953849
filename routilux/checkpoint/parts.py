"""Stored parts: pieces of a cut written once and named by their SHA-256.

A cut refers to the parts it needs (a job's history chunks, see
:mod:`routilux.runtime.job_pickle`) and lists their digests in its signed header.
A store adds the parts it is given unless it has them, refuses a cut naming a part
it does not have, and keeps exactly the parts its kept checkpoints name. Parts are
checked against their digest when loaded, before anything is unpickled.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from routilux.checkpoint.format import peek_parts
from routilux.exceptions import CheckpointError


def missing_parts(location: str, needed: list[str], stored: set[str]) -> None:
    """Refuse a checkpoint naming parts the store does not hold (it could not be
    loaded); the writer then sends every part with its next checkpoint."""
    missing = [d for d in needed if d not in stored]
    if missing:
        raise CheckpointError(
            f"{location}: cannot save a checkpoint: {len(missing)} part(s) it names are "
            f"not stored (first: {missing[0][:16]})"
        )


# -- SQLite: a ``parts`` table, inside the checkpoint's transaction --------------------
def sqlite_add(cur: sqlite3.Cursor, flow_id: str, parts: dict[str, bytes]) -> None:
    """Add the parts not stored yet."""
    if not parts:
        return  # most checkpoints: no statement at all
    cur.executemany(
        "INSERT OR IGNORE INTO parts (flow_id, digest, data) VALUES (?, ?, ?)",
        [(flow_id, digest, sqlite3.Binary(data)) for digest, data in parts.items()],
    )


def sqlite_prune(cur: sqlite3.Cursor, location: str, flow_id: str, blob: bytes) -> None:
    """Refuse ``blob`` if it names a missing part; then keep exactly the parts the
    flow's kept checkpoints (``blob`` among them) name."""
    rows = cur.execute("SELECT digest FROM parts WHERE flow_id = ?", (flow_id,))
    stored = [digest for (digest,) in rows]
    missing_parts(location, peek_parts(blob), set(stored))
    if not stored:
        return
    named: set[str] = set()
    for (data,) in cur.execute("SELECT data FROM checkpoints WHERE flow_id = ?", (flow_id,)):
        named.update(peek_parts(bytes(data)))
    cur.executemany(
        "DELETE FROM parts WHERE flow_id = ? AND digest = ?",
        [(flow_id, d) for d in stored if d not in named],
    )


def sqlite_load(db: sqlite3.Connection, flow_id: str, digests: list[str]) -> dict[str, bytes]:
    """The stored parts among ``digests`` (none from a store older than parts)."""
    found: dict[str, bytes] = {}
    for digest in digests:
        try:
            row = db.execute(
                "SELECT data FROM parts WHERE flow_id = ? AND digest = ?", (flow_id, digest)
            ).fetchone()
        except sqlite3.OperationalError:  # read-only view of a store from 0.11
            return found
        if row is not None:
            found[digest] = bytes(row[0])
    return found


# -- a directory: one file per part under <flow>/parts/ --------------------------------
def _file(folder: Path, digest: str) -> Path:
    # A digest is hex; anything else (a damaged header) must never make a path.
    name = digest if digest.isalnum() and digest.isascii() else digest.encode().hex()
    return folder / f"{name}.part"


def files_add(
    folder: Path,
    location: str,
    parts: dict[str, bytes],
    blob: bytes,
    write: Callable[[Path, bytes], None],
) -> None:
    """Write the parts not stored yet (``write``: atomically), then refuse ``blob``
    if it names a part that is not there. Call before writing ``blob`` itself."""
    if parts:
        folder.mkdir(exist_ok=True, mode=0o700)
        for digest, data in parts.items():
            target = _file(folder, digest)
            if not target.exists():
                write(target, data)
    needed = peek_parts(blob)
    if needed:
        present = {d for d in needed if _file(folder, d).exists()}
        missing_parts(location, needed, present)


def files_prune(folder: Path, kept_checkpoints: Iterable[Path]) -> None:
    """Keep exactly the parts the kept checkpoints name."""
    if not folder.is_dir():
        return
    named = {_file(folder, d).name for c in kept_checkpoints for d in peek_parts(c.read_bytes())}
    for part in folder.glob("*.part"):
        if part.name not in named:
            part.unlink(missing_ok=True)


def files_load(folder: Path, digests: list[str]) -> dict[str, bytes]:
    """The stored parts among ``digests``."""
    found = {}
    for digest in digests:
        part = _file(folder, digest)
        if part.is_file():
            found[digest] = part.read_bytes()
    return found
