"""Checkpoint stores: where a flow's checkpoints and job intents live.

Two stores with one interface:

- :class:`SQLiteStore` — one file (WAL); every checkpoint is one transaction.
- :class:`DirectoryStore` — one file per checkpoint, written to a temporary file,
  fsynced and renamed into place.

Both keep the previous good checkpoint until a new one is complete, prune old ones
(``keep``), create their files with mode 0600, and list flows and jobs.

A *job intent* is written when a job is submitted, before the next full checkpoint
includes it, so that a job is durable from the moment ``execute`` returns.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from routilux.checkpoint.format import read_header
from routilux.exceptions import CheckpointError, ConfigurationError

KEY_ENV = "ROUTILUX_CHECKPOINT_KEY"


def _resolve_key(key: bytes | str | None, key_file: Path, create: bool = True) -> bytes:
    """The HMAC key: argument, else environment, else a 0600 key file (created once,
    unless ``create`` is False: then a missing key file is an error)."""
    if key is None:
        key = os.environ.get(KEY_ENV) or None
    if key is not None:
        key = key.encode() if isinstance(key, str) else bytes(key)
        if len(key) < 16:
            raise ConfigurationError("a checkpoint key must be at least 16 bytes long")
        return key
    if not create and not key_file.exists():
        raise CheckpointError(
            f"no key file at {key_file}: pass the store's key (key= or {KEY_ENV}) to read it"
        )
    if not key_file.exists():
        # Write the new key aside, then link it into place: atomic, and if two
        # processes race, exactly one key wins and both read it.
        temp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32).hex().encode())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, key_file)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    info = key_file.lstat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o077 or not key_file.is_file():
        raise CheckpointError(
            f"key file {key_file} must be a regular file owned by this user with mode 0600 "
            "(anyone else who can read or replace it could make this process run code)"
        )
    data = key_file.read_bytes().strip()
    if len(data) < 32:
        raise CheckpointError(f"key file {key_file} is damaged (too short)")
    return data


class CheckpointStore:
    """Interface of a checkpoint store (see the module docstring)."""

    key: bytes
    location: str
    path: Path
    keep: int
    retention: float

    def _settings(self, path: str | os.PathLike[str], keep: int, retention: float) -> None:
        if keep < 1:
            raise ConfigurationError(f"keep must be >= 1, got {keep}")
        if retention < 0:
            raise ConfigurationError(f"retention must be >= 0 seconds, got {retention}")
        self.path = Path(path)
        self.location = str(self.path)
        self.keep = keep
        self.retention = retention

    def save(self, flow_id: str, blob: bytes, jobs: list[dict[str, Any]]) -> None:
        """Store a complete checkpoint of ``flow_id`` and the summary of its jobs."""
        raise NotImplementedError

    def load_latest(self, flow_id: str) -> bytes | None:
        """The newest checkpoint of ``flow_id`` (bytes, unverified), or None."""
        raise NotImplementedError

    def add_intent(self, flow_id: str, job_id: str, blob: bytes) -> None:
        """Record a submitted job until a checkpoint includes it."""
        raise NotImplementedError

    def intents(self, flow_id: str) -> list[bytes]:
        """Job intents of ``flow_id`` not yet covered by a checkpoint, oldest first."""
        raise NotImplementedError

    def flows(self) -> list[str]:
        """Ids of the flows that have checkpoints."""
        raise NotImplementedError

    def list_flows(self) -> list[dict[str, Any]]:
        """``{"flow_id", "checkpoints", "latest_at"}`` per flow."""
        raise NotImplementedError

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Jobs known to the store: ``job_id, flow_id, status, error, updated_at``."""
        raise NotImplementedError

    def set_meta(self, key: str, value: str) -> None:
        """Remember a small string (e.g. how to rebuild a flow, for ``routilux resume``).

        The value is signed with the store's key: ``routilux resume`` imports the
        code it names, so it must not be forgeable by whoever can write the store.
        """
        self._put_meta(key, f"{self._meta_mac(key, value)}:{value}")

    def get_meta(self, key: str) -> str | None:
        """A string stored with :meth:`set_meta` (verified), or None."""
        raw = self._fetch_meta(key)
        if raw is None:
            return None
        mac, _, value = raw.partition(":")
        if not hmac.compare_digest(mac, self._meta_mac(key, value)):
            raise CheckpointError(
                f"{self.location}: the stored value of {key!r} failed its integrity check"
            )
        return value

    def _meta_mac(self, key: str, value: str) -> str:
        return hmac.new(self.key, f"meta\0{key}\0{value}".encode(), hashlib.sha256).hexdigest()

    def _put_meta(self, key: str, raw: str) -> None:
        raise NotImplementedError

    def _fetch_meta(self, key: str) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the store's resources."""


class SQLiteStore(CheckpointStore):
    """Checkpoints in one SQLite file (WAL mode; each checkpoint one transaction).

    ``keep`` checkpoints are kept per flow; finished jobs stay listed for
    ``retention`` seconds. The HMAC key comes from ``key``, the
    ``ROUTILUX_CHECKPOINT_KEY`` environment variable, or ``<path>.key`` (0600).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        keep: int = 2,
        retention: float = 7 * 24 * 3600.0,
        create: bool = True,
    ) -> None:
        self._settings(path, keep, retention)
        if not create:
            _check_sqlite_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.key = _resolve_key(key, self.path.with_name(self.path.name + ".key"), create)
        self._lock = threading.Lock()
        if not create:  # reading only (routilux inspect/jobs): never change the file
            self._db = sqlite3.connect(
                f"file:{self.path}?mode=ro",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
            )
            return
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript("""
                CREATE TABLE IF NOT EXISTS checkpoints (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    flow_id TEXT NOT NULL, created_at REAL NOT NULL, data BLOB NOT NULL);
                CREATE INDEX IF NOT EXISTS checkpoints_flow ON checkpoints(flow_id, id);
                CREATE TABLE IF NOT EXISTS jobs (
                    job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, status TEXT NOT NULL,
                    error TEXT, updated_at REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS intents (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, flow_id TEXT NOT NULL,
                    job_id TEXT NOT NULL, data BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise CheckpointError(
                f"{self.path}: not a usable SQLite checkpoint store: {exc}"
            ) from None
        for suffix in ("-wal", "-shm"):
            extra = Path(str(self.path) + suffix)
            if extra.exists():
                os.chmod(extra, 0o600)

    def save(self, flow_id: str, blob: bytes, jobs: list[dict[str, Any]]) -> None:
        now = time.time()
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(
                    "INSERT INTO checkpoints (flow_id, created_at, data) VALUES (?, ?, ?)",
                    (flow_id, now, sqlite3.Binary(blob)),
                )
                cur.executemany(
                    "INSERT OR REPLACE INTO jobs (job_id, flow_id, status, error, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            j["job_id"],
                            flow_id,
                            j["status"],
                            j.get("error"),
                            j.get("updated_at", now),
                        )
                        for j in jobs
                    ],
                )
                covered = [(flow_id, j["job_id"]) for j in jobs]
                cur.executemany("DELETE FROM intents WHERE flow_id = ? AND job_id = ?", covered)
                cur.execute(
                    "DELETE FROM checkpoints WHERE flow_id = ? AND id NOT IN (SELECT id FROM "
                    "checkpoints WHERE flow_id = ? ORDER BY id DESC LIMIT ?)",
                    (flow_id, flow_id, self.keep),
                )
                cur.execute(
                    "DELETE FROM jobs WHERE status IN ('completed', 'failed', 'cancelled') "
                    "AND updated_at < ?",
                    (now - self.retention,),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def load_latest(self, flow_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM checkpoints WHERE flow_id = ? ORDER BY id DESC LIMIT 1",
                (flow_id,),
            ).fetchone()
        return bytes(row[0]) if row else None

    def add_intent(self, flow_id: str, job_id: str, blob: bytes) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO intents (flow_id, job_id, data) VALUES (?, ?, ?)",
                    (flow_id, job_id, sqlite3.Binary(blob)),
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO jobs (job_id, flow_id, status, error, updated_at) "
                    "VALUES (?, ?, 'running', NULL, ?)",
                    (job_id, flow_id, time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def intents(self, flow_id: str) -> list[bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM intents WHERE flow_id = ? ORDER BY id", (flow_id,)
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def flows(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT flow_id FROM checkpoints "
                "UNION SELECT DISTINCT flow_id FROM intents"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def list_flows(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT flow_id, COUNT(*), MAX(created_at) FROM checkpoints GROUP BY flow_id"
            ).fetchall()
        return [{"flow_id": f, "checkpoints": n, "latest_at": t} for f, n, t in sorted(rows)]

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        query = "SELECT job_id, flow_id, status, error, updated_at FROM jobs"
        clauses, args = [], []
        if flow_id is not None:
            clauses.append("flow_id = ?")
            args.append(flow_id)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY updated_at", args).fetchall()
        keys = ("job_id", "flow_id", "status", "error", "updated_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def _put_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _fetch_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.location!r})"


class DirectoryStore(CheckpointStore):
    """One file per checkpoint under ``path/<flow_id>/``.

    Each file is written to a temporary name, fsynced and renamed, so a crash while
    writing leaves the previous checkpoint in place. The key comes from ``key``,
    ``ROUTILUX_CHECKPOINT_KEY`` or ``path/checkpoint.key`` (0600).
    """

    SUFFIX = ".ckpt"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        keep: int = 2,
        retention: float = 7 * 24 * 3600.0,
        create: bool = True,
    ) -> None:
        self._settings(path, keep, retention)
        if not create and not self.path.is_dir():
            raise CheckpointError(f"{self.path} is not a checkpoint directory")
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.key = _resolve_key(key, self.path / "checkpoint.key", create)
        self._lock = threading.Lock()
        if create:
            self._remove_stale_temp_files()

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files of writers that died mid-write (their pid is gone)."""
        import psutil

        for temp in self.path.glob("*/.*.tmp"):
            try:
                pid = int(temp.name.rsplit(".", 2)[-2])
            except (ValueError, IndexError):
                continue
            if not psutil.pid_exists(pid):
                temp.unlink(missing_ok=True)

    def _flow_dir(self, flow_id: str, create: bool = True) -> Path:
        directory = self.path / _dir_name(flow_id)
        if create:
            directory.mkdir(exist_ok=True, mode=0o700)
        return directory

    def _write_atomic(self, target: Path, data: bytes) -> None:
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.unlink(missing_ok=True)  # a leftover of ours; unlink never follows links
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _checkpoints(self, directory: Path) -> list[Path]:
        return sorted(p for p in directory.glob(f"*{self.SUFFIX}") if not p.name.startswith("."))

    def save(self, flow_id: str, blob: bytes, jobs: list[dict[str, Any]]) -> None:
        with self._lock:
            directory = self._flow_dir(flow_id)
            existing = self._checkpoints(directory)
            number = int(existing[-1].stem) + 1 if existing else 1
            self._write_atomic(directory / f"{number:012d}{self.SUFFIX}", blob)
            for old in self._checkpoints(directory)[: -self.keep]:
                old.unlink(missing_ok=True)
            covered = {j["job_id"] for j in jobs}
            covered_names = {f"{_dir_name(job_id)}.intent" for job_id in covered}
            for intent in directory.glob("*.intent"):
                if intent.name in covered_names:
                    intent.unlink(missing_ok=True)
            self._record_jobs(directory, flow_id, jobs)

    def _record_jobs(self, directory: Path, flow_id: str, jobs: list[dict[str, Any]]) -> None:
        index = directory / "jobs.json"
        known: dict[str, Any] = {}
        if index.exists():
            try:
                known = json.loads(index.read_text())
            except ValueError:
                known = {}
        now = time.time()
        for job in jobs:
            known[job["job_id"]] = {
                "job_id": job["job_id"],
                "flow_id": flow_id,
                "status": job["status"],
                "error": job.get("error"),
                "updated_at": job.get("updated_at", now),
            }
        known = {
            k: v
            for k, v in known.items()
            if v["status"] not in ("completed", "failed", "cancelled")
            or v["updated_at"] >= now - self.retention
        }
        self._write_atomic(index, json.dumps(known).encode())

    def load_latest(self, flow_id: str) -> bytes | None:
        with self._lock:
            directory = self._flow_dir(flow_id, create=False)
            files = self._checkpoints(directory) if directory.is_dir() else []
        return files[-1].read_bytes() if files else None

    def add_intent(self, flow_id: str, job_id: str, blob: bytes) -> None:
        with self._lock:
            directory = self._flow_dir(flow_id)
            self._write_atomic(directory / f"{_dir_name(job_id)}.intent", blob)
            self._record_jobs(directory, flow_id, [{"job_id": job_id, "status": "running"}])

    def intents(self, flow_id: str) -> list[bytes]:
        with self._lock:
            directory = self._flow_dir(flow_id, create=False)
            if not directory.is_dir():
                return []
            files = sorted(directory.glob("*.intent"), key=lambda p: p.stat().st_mtime)
        return [f.read_bytes() for f in files]

    def flows(self) -> list[str]:
        return sorted(_flow_id(d.name) for d in self.path.iterdir() if d.is_dir())

    def list_flows(self) -> list[dict[str, Any]]:
        result = []
        for directory in sorted(d for d in self.path.iterdir() if d.is_dir()):
            files = self._checkpoints(directory)
            if files:
                result.append(
                    {
                        "flow_id": _flow_id(directory.name),
                        "checkpoints": len(files),
                        "latest_at": files[-1].stat().st_mtime,
                    }
                )
        return result

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        rows = []
        for directory in sorted(d for d in self.path.iterdir() if d.is_dir()):
            index = directory / "jobs.json"
            if not index.exists():
                continue
            for row in json.loads(index.read_text()).values():
                if (flow_id is None or row["flow_id"] == flow_id) and (
                    status is None or row["status"] == status
                ):
                    rows.append(row)
        return sorted(rows, key=lambda r: r["updated_at"])

    def _put_meta(self, key: str, value: str) -> None:
        with self._lock:
            path = self.path / "meta.json"
            meta = json.loads(path.read_text()) if path.exists() else {}
            meta[key] = value
            self._write_atomic(path, json.dumps(meta).encode())

    def _fetch_meta(self, key: str) -> str | None:
        path = self.path / "meta.json"
        return json.loads(path.read_text()).get(key) if path.exists() else None

    def __repr__(self) -> str:
        return f"DirectoryStore({self.location!r})"


def _check_sqlite_file(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint store at {path}")
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise CheckpointError(f"{path} is not an SQLite checkpoint store")


def _dir_name(flow_id: str) -> str:
    """A directory name for a flow id: reversible, one path component, never hidden."""
    from urllib.parse import quote

    name = quote(flow_id, safe="-_.")
    if name.startswith(".") or not name:
        name = "%2E" + name[1:] if name else "%00"
    return name


def _flow_id(directory_name: str) -> str:
    from urllib.parse import unquote

    return "" if directory_name == "%00" else unquote(directory_name)


def open_store(path: str | os.PathLike[str], **kwargs: Any) -> CheckpointStore:
    """A store for ``path``: a directory (or a path ending in ``/``) becomes a
    DirectoryStore, anything else an SQLite file."""
    target = Path(path)
    if target.is_dir() or str(path).endswith(os.sep):
        return DirectoryStore(target, **kwargs)
    return SQLiteStore(target, **kwargs)


def verify_blob(store: CheckpointStore, blob: bytes, where: str) -> dict[str, Any]:
    """Verify a checkpoint's integrity and return its header (nothing is unpickled)."""
    header, _ = read_header(blob, store.key, where)
    return header


__all__ = [
    "CheckpointStore",
    "DirectoryStore",
    "SQLiteStore",
    "open_store",
    "verify_blob",
]
