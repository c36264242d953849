"""DirectoryStore: one file per checkpoint, written aside, fsynced and renamed."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import psutil

from routilux.checkpoint import parts as parts_files
from routilux.checkpoint.boundary import check_directory_path, store_errors
from routilux.checkpoint.format import peek_jobs
from routilux.checkpoint.store import CheckpointStore, FinishedJob, store_key

_TERMINAL = ("completed", "failed", "cancelled")
_LISTED = ("job_id", "flow_id", "status", "error", "updated_at")


class DirectoryStore(CheckpointStore):
    """One file per checkpoint under ``path/<flow_id>/``; finished jobs one file each
    under ``path/<flow_id>/finished/``, parts one file each under
    ``path/<flow_id>/parts/``.

    Each file is written to a temporary name, fsynced and renamed, so a crash while
    writing leaves the previous checkpoint in place. The key comes from ``key``,
    ``ROUTILUX_CHECKPOINT_KEY`` or ``path/checkpoint.key`` (0600).
    """

    SUFFIX = ".ckpt"
    keeps_parts = True

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
        check_directory_path(self.path, create)
        self.key = store_key(key, self.path / "checkpoint.key", create)
        self._lock = threading.Lock()
        self._intent_marks: dict[tuple[str, str], int] = {}  # intent file: its mark
        if create:
            self._remove_stale_temp_files()

    def _remove_stale_temp_files(self) -> None:
        """Delete temp files of writers that died mid-write (their pid is gone)."""
        for temp in [
            *self.path.glob("*/.*.tmp"),
            *self.path.glob("*/finished/.*.tmp"),
            *self.path.glob("*/parts/.*.tmp"),
        ]:
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
        # Unique per write: two store objects of one process may write the same file.
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.{os.getpid()}.tmp")
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

    def _finished_files(self, directory: Path) -> list[Path]:
        """Finished-job files of committed checkpoints, oldest end first.

        A file is named ``<checkpoint number>-<end time>-<job>.job``; it counts only
        once the checkpoint with that number is on disk (the commit point), so a
        save that died half-way leaves nothing that recovery would believe.
        """
        folder = directory / "finished"
        if not folder.is_dir():
            return []
        latest = self._latest_number(directory)
        files = [
            p
            for p in folder.glob("*.job")
            if not p.name.startswith(".") and _cut_number(p) <= latest
        ]
        return sorted(files, key=_end_stamp)

    def _latest_number(self, directory: Path) -> int:
        existing = self._checkpoints(directory) if directory.is_dir() else []
        return int(existing[-1].stem) if existing else 0

    @store_errors("save a checkpoint")
    def _save(
        self,
        flow_id: str,
        blob: bytes,
        jobs: list[dict[str, Any]],
        finished: list[FinishedJob],
        keep_finished: int | None,
        parts: dict[str, bytes],
        intents_upto: int | None,
    ) -> None:
        with self._lock:
            directory = self._flow_dir(flow_id)
            number = self._latest_number(directory) + 1
            # Parts before the checkpoint that names them.
            parts_files.files_add(
                directory / "parts", self.location, parts, blob, self._write_atomic
            )
            folder = directory / "finished"
            # Leftovers of a save that died before its checkpoint: never committed.
            if folder.is_dir():
                for stale in folder.glob("*.job"):
                    if _cut_number(stale) >= number:
                        stale.unlink(missing_ok=True)
            # Finished jobs first, tagged with this cut's number: they count once
            # the checkpoint below (the commit point) is on disk.
            if finished:
                folder.mkdir(exist_ok=True, mode=0o700)
                for job in finished:
                    stamp = int(job.finished_at * 1_000_000)
                    name = f"{number:012d}-{stamp:020d}-{_dir_name(job.job_id)}.job"
                    self._write_atomic(folder / name, job.blob)
            self._write_atomic(directory / f"{number:012d}{self.SUFFIX}", blob)
            if finished:
                self._prune_finished(directory, finished, keep_finished)
            for old in self._checkpoints(directory)[: -self.keep]:
                old.unlink(missing_ok=True)
            parts_files.files_prune(directory / "parts", self._checkpoints(directory))
            covered_names = {f"{_dir_name(j['job_id'])}.intent" for j in jobs}
            ended = {
                _job_part(f)[: -len(".job")]: _end_stamp(f) for f in self._finished_files(directory)
            }
            for intent in directory.glob("*.intent"):
                name = intent.name[: -len(".intent")]
                # Covered now, or left behind by a kill after an earlier cut covered it.
                stale = name in ended and ended[name] >= intent.stat().st_mtime * 1_000_000
                # Not one written after the cut was taken (the id submitted again).
                later = intents_upto is not None and (
                    self._intent_marks.get((flow_id, intent.name), 0) > intents_upto
                )
                if (intent.name in covered_names or stale) and not later:
                    intent.unlink(missing_ok=True)
            self._record_jobs(directory, flow_id, jobs)

    @store_errors("read stored parts")
    def load_parts(self, flow_id: str, digests: list[str]) -> dict[str, bytes]:
        return parts_files.files_load(self._flow_dir(flow_id, create=False) / "parts", digests)

    def _prune_finished(
        self, directory: Path, finished: list[FinishedJob], keep_finished: int | None
    ) -> None:
        """Drop older records of ids used again, then all but the newest ``keep``."""
        files = self._finished_files(directory)
        newest: dict[str, Path] = {}
        for path in files:  # oldest end first: the last one of an id wins
            older = newest.get(_job_part(path))
            if older is not None:
                older.unlink(missing_ok=True)
            newest[_job_part(path)] = path
        kept = sorted(newest.values(), key=_end_stamp)
        if keep_finished is not None:
            for old in kept[: max(len(kept) - keep_finished, 0)]:
                old.unlink(missing_ok=True)

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
            before = known.get(job["job_id"], {})
            known[job["job_id"]] = {
                "job_id": job["job_id"],
                "flow_id": flow_id,
                "status": job["status"],
                "error": job.get("error"),
                "updated_at": job.get("updated_at", now),
                "created_at": job.get("created_at") or before.get("created_at") or now,
                "finished_at": job.get("finished_at"),
            }
        known = {
            k: v
            for k, v in known.items()
            if v["status"] not in _TERMINAL or v["updated_at"] >= now - self.retention
        }
        self._write_atomic(index, json.dumps(known).encode())

    @store_errors("read the latest checkpoint")
    def load_latest(self, flow_id: str) -> bytes | None:
        with self._lock:
            directory = self._flow_dir(flow_id, create=False)
            files = self._checkpoints(directory) if directory.is_dir() else []
        return files[-1].read_bytes() if files else None

    @store_errors("read finished jobs")
    def load_finished(self, flow_id: str, limit: int | None = None) -> list[bytes]:
        with self._lock:
            files = self._finished_files(self._flow_dir(flow_id, create=False))
        if limit is not None:
            files = files[max(len(files) - limit, 0) :]
        return [f.read_bytes() for f in files]

    @store_errors("record a job intent")
    def _add_intent(self, flow_id: str, job_id: str, blob: bytes) -> None:
        with self._lock:
            directory = self._flow_dir(flow_id)
            name = f"{_dir_name(job_id)}.intent"
            self._write_atomic(directory / name, blob)
            self._intent_seq += 1
            self._intent_marks[flow_id, name] = self._intent_seq
            self._record_jobs(directory, flow_id, [{"job_id": job_id, "status": "running"}])

    @store_errors("read job intents")
    def intents(self, flow_id: str) -> list[bytes]:
        with self._lock:
            directory = self._flow_dir(flow_id, create=False)
            if not directory.is_dir():
                return []
            files = sorted(directory.glob("*.intent"), key=lambda p: p.stat().st_mtime)
        return [f.read_bytes() for f in files]

    @store_errors("list flows")
    def flows(self) -> list[str]:
        return sorted(_flow_id(d.name) for d in self.path.iterdir() if d.is_dir())

    @store_errors("list flows")
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

    @store_errors("list jobs")
    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        rows = [
            {key: row[key] for key in _LISTED}
            for row in self._listing_rows()
            if (flow_id is None or row["flow_id"] == flow_id)
            and (status is None or row["status"] == status)
        ]
        return sorted(rows, key=lambda r: r["updated_at"])

    def _listing_rows(self) -> list[dict[str, Any]]:
        rows = []
        for directory in sorted(d for d in self.path.iterdir() if d.is_dir()):
            rows.extend(self._job_rows(directory).values())
        return rows

    @store_errors("read finished jobs")
    def load_finished_job(self, flow_id: str, job_id: str) -> bytes | None:
        with self._lock:
            files = self._finished_files(self._flow_dir(flow_id, create=False))
        name = f"{_dir_name(job_id)}.job"
        mine = [f for f in files if _job_part(f) == name]
        return mine[-1].read_bytes() if mine else None

    def _job_rows(self, directory: Path) -> dict[str, dict[str, Any]]:
        """The job list of one flow: ``jobs.json``, corrected by what is newer than
        it could be. ``jobs.json`` is written last in a save, so after a kill before
        it, the truth for the jobs they name is (in this order): the latest
        checkpoint's header, the committed finished-job records of jobs it no longer
        names, and the intents on disk."""
        index = directory / "jobs.json"
        rows: dict[str, dict[str, Any]] = json.loads(index.read_text()) if index.exists() else {}
        flow_id = _flow_id(directory.name)
        checkpoints = self._checkpoints(directory)
        named: set[str] = set()
        if checkpoints:
            mtime = checkpoints[-1].stat().st_mtime
            for job in peek_jobs(checkpoints[-1].read_bytes()):
                named.add(job.get("job_id"))
                row = rows.get(job.get("job_id"))
                if row is None or row["status"] != job.get("status"):
                    rows[job["job_id"]] = _row(flow_id, job, mtime, row)
        # A job that ended in a cut whose save was killed before jobs.json, and that
        # later cuts no longer name: its finished record says how it ended.
        unsettled = {
            job_id
            for job_id, row in rows.items()
            if row["status"] not in _TERMINAL and job_id not in named
        }
        if unsettled:
            for path in self._finished_files(directory):
                job_id = _flow_id(_job_part(path)[: -len(".job")])
                row = rows.get(job_id)
                if job_id in unsettled and _end_stamp(path) >= row["updated_at"] * 1_000_000:
                    for job in peek_jobs(path.read_bytes()):
                        rows[job_id] = _row(flow_id, job, row["updated_at"], row)
        for intent in directory.glob("*.intent"):
            job_id = _flow_id(intent.name[: -len(".intent")])
            row = rows.get(job_id)
            mtime = intent.stat().st_mtime
            # An intent a kill left behind after its job ended is stale; one written
            # after the job's end is the same id submitted again.
            if row is None or (row["status"] in _TERMINAL and mtime > row["updated_at"]):
                rows[job_id] = {
                    "job_id": job_id,
                    "flow_id": flow_id,
                    "status": "running",
                    "error": None,
                    "updated_at": mtime,
                    "created_at": mtime,
                }
        return rows

    @store_errors("write metadata")
    def _put_meta(self, key: str, value: str) -> None:
        with self._lock:
            path = self.path / "meta.json"
            meta = json.loads(path.read_text()) if path.exists() else {}
            meta[key] = value
            self._write_atomic(path, json.dumps(meta).encode())

    @store_errors("read metadata")
    def _fetch_meta(self, key: str) -> str | None:
        path = self.path / "meta.json"
        return json.loads(path.read_text()).get(key) if path.exists() else None

    def __repr__(self) -> str:
        return f"DirectoryStore({self.location!r})"


def _row(
    flow_id: str, job: dict[str, Any], stamp: float, before: dict[str, Any] | None
) -> dict[str, Any]:
    """A listing row from a stored job summary (``stamp`` if it has no time)."""
    return {
        "job_id": job["job_id"],
        "flow_id": flow_id,
        "status": job.get("status"),
        "error": job.get("error"),
        "updated_at": job.get("updated_at", stamp),
        "created_at": job.get("created_at") or (before or {}).get("created_at"),
        "finished_at": job.get("finished_at"),
    }


def _name_parts(path: Path) -> tuple[int, int, str]:
    """``(checkpoint number, end time in µs, job part)`` of a finished-job file."""
    number, stamp, job = path.name.split("-", 2)
    return int(number), int(stamp), job


def _cut_number(path: Path) -> int:
    return _name_parts(path)[0]


def _end_stamp(path: Path) -> int:
    return _name_parts(path)[1]


def _job_part(path: Path) -> str:
    return _name_parts(path)[2]


def _dir_name(flow_id: str) -> str:
    """A file name for a flow or job id: reversible, one path component, never hidden."""
    name = quote(flow_id, safe="-_.")
    if name.startswith(".") or not name:
        name = "%2E" + name[1:] if name else "%00"
    return name


def _flow_id(directory_name: str) -> str:
    return "" if directory_name == "%00" else unquote(directory_name)
