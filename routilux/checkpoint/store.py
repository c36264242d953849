"""The checkpoint store interface, its key, and the rules every store enforces.

A store keeps, per flow: the newest ``keep`` checkpoints (consistent cuts of the
flow's unfinished jobs and routine states), one row per *finished job* (written once,
when the job's end is first checkpointed, and never rewritten), *job intents*
(written when a job is submitted, until a checkpoint includes it), and a summary row
per job for listing. Everything it holds is signed with the store's key.

Durability rules enforced here (see ``docs/guarantees.rst``):

- **Key check.** The first write of a process verifies that the store was written
  with the same key; with another key nothing is written (the newest checkpoints
  would become unreadable to their owner).
- **Atomic cuts.** A checkpoint, the finished jobs it covers and the intents it
  settles are written together: all or nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any, NamedTuple

from routilux._validate import check_int, check_number
from routilux.checkpoint.boundary import as_path, os_error
from routilux.checkpoint.format import read_header
from routilux.checkpoint.job_query import JobQuery, filter_rows, normalize
from routilux.exceptions import CheckpointError, ConfigurationError

KEY_ENV = "ROUTILUX_CHECKPOINT_KEY"
UNFINISHED_STATUSES = ("pending", "running", "paused")
_KEY_CHECK = "routilux.key_check"


class FinishedJob(NamedTuple):
    """One finished job, as written with the checkpoint that first covers its end."""

    job_id: str
    finished_at: float  #: epoch seconds; the newest ``keep_finished`` are kept
    blob: bytes  #: signed (``format.encode``) pickle of the job's JobState


def resolve_key(key: bytes | str | None, key_file: Path, create: bool = True) -> bytes:
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


def store_key(key: bytes | str | None, key_file: Path, create: bool) -> bytes:
    """:func:`resolve_key`, with a key file that cannot be made or read named (no Errno)."""
    try:
        return resolve_key(key, key_file, create)
    except OSError as exc:
        raise os_error(key_file, exc, "create or read the key file") from None


class CheckpointStore:
    """Interface of a checkpoint store (see the module docstring)."""

    #: Whether the store keeps *parts* (pieces of a cut stored once, named by their
    #: SHA-256, that later cuts refer to without writing them again).
    keeps_parts = False
    _intent_seq = 0  # see intent_mark()
    key: bytes
    location: str
    path: Path
    keep: int
    retention: float
    _key_checked: bool = False

    def _settings(self, path: str | os.PathLike[str], keep: int, retention: float) -> None:
        check_int("keep", keep, 1)
        check_number("retention", retention, positive=False, allow_inf=True)
        self.path = as_path(path)
        self.location = str(self.path)
        self.keep = keep
        self.retention = retention

    # -- writing ---------------------------------------------------------------------
    def save(
        self,
        flow_id: str,
        blob: bytes,
        jobs: list[dict[str, Any]],
        finished: list[FinishedJob] = (),  # type: ignore[assignment]
        keep_finished: int | None = None,
        *,
        parts: dict[str, bytes] | None = None,
        intents_upto: int | None = None,
    ) -> None:
        """Store a checkpoint of ``flow_id``, the jobs that finished since the last
        one, and the summary of its jobs, atomically. Finished jobs beyond the newest
        ``keep_finished`` are dropped (None: all are kept).

        ``parts`` (digest: bytes) are added unless already stored; afterwards the
        store keeps exactly the parts its kept checkpoints name in their headers.
        ``intents_upto``: the :meth:`intent_mark` when the checkpoint was taken; an
        intent written after it (the same job id submitted again) is not settled by
        this checkpoint, even though the checkpoint names that job.
        """
        self.check_key()
        if parts and not self.keeps_parts:
            raise CheckpointError(f"{self.location}: this store does not keep parts")
        self._save(flow_id, blob, jobs, list(finished), keep_finished, parts or {}, intents_upto)

    def intent_mark(self) -> int:
        """A number that grows with every intent this store object writes."""
        return self._intent_seq

    def load_parts(self, flow_id: str, digests: list[str]) -> dict[str, bytes]:
        """The stored parts of ``flow_id`` among ``digests`` (unverified)."""
        return {}

    def add_intent(self, flow_id: str, job_id: str, blob: bytes) -> None:
        """Record a submitted job until a checkpoint includes it."""
        self.check_key()
        self._add_intent(flow_id, job_id, blob)

    def set_meta(self, key: str, value: str) -> None:
        """Remember a small string (e.g. how to rebuild a flow, for ``routilux resume``).

        The value is signed with the store's key: ``routilux resume`` imports the
        code it names, so it must not be forgeable by whoever can write the store.
        """
        self.check_key()
        self._put_meta(key, f"{self._meta_mac(key, value)}:{value}")

    def check_key(self) -> None:
        """Refuse to write with a key other than the one the store was written with."""
        if self._key_checked:
            return
        self._fetch_meta(_KEY_CHECK)  # a store that cannot be read says so, not "wrong key"
        try:
            marker = self.get_meta(_KEY_CHECK)
        except CheckpointError:
            marker = None
            self._wrong_key()
        if marker is None:
            # A store from before the marker: its newest checkpoint must verify.
            for flow_id in self.flows():
                blob = self.load_latest(flow_id)
                if blob is not None:
                    try:
                        read_header(blob, self.key, self.location)
                    except CheckpointError:
                        self._wrong_key()
            self._put_meta(_KEY_CHECK, f"{self._meta_mac(_KEY_CHECK, 'ok')}:ok")
        self._key_checked = True

    def _wrong_key(self) -> None:
        raise CheckpointError(
            f"{self.location} was written with a different checkpoint key; refusing to "
            f"write to it (use the key it was written with: key=, {KEY_ENV} or its key file)"
        )

    # -- reading ---------------------------------------------------------------------
    def load_latest(self, flow_id: str) -> bytes | None:
        """The newest checkpoint of ``flow_id`` (bytes, unverified), or None."""
        raise NotImplementedError

    def load_finished(self, flow_id: str, limit: int | None = None) -> list[bytes]:
        """The newest ``limit`` finished jobs of ``flow_id`` (unverified), oldest first."""
        raise NotImplementedError

    def intents(self, flow_id: str) -> list[bytes]:
        """Job intents of ``flow_id`` not yet covered by a checkpoint, oldest first."""
        raise NotImplementedError

    def flows(self) -> list[str]:
        """Ids of the flows that have checkpoints or intents."""
        raise NotImplementedError

    def list_flows(self) -> list[dict[str, Any]]:
        """``{"flow_id", "checkpoints", "latest_at"}`` per flow."""
        raise NotImplementedError

    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Jobs known to the store: ``job_id, flow_id, status, error, updated_at``."""
        raise NotImplementedError

    def query_jobs(self, query: JobQuery) -> tuple[list[dict[str, Any]], int]:
        """A page of the jobs matching ``query``, newest first, and how many match.

        Rows have the columns of :data:`~routilux.checkpoint.job_query.COLUMNS`.
        """
        return filter_rows(self._listing_rows(), query)

    def job_row(self, job_id: str) -> dict[str, Any] | None:
        """The listing row of ``job_id`` (see :meth:`query_jobs`), or None."""
        row = next((r for r in self._listing_rows() if r["job_id"] == job_id), None)
        return None if row is None else normalize(row)

    def count_jobs(self) -> dict[str, int]:
        """How many jobs the store lists, per status."""
        counts: dict[str, int] = {}
        for row in self.list_jobs():
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts

    def load_finished_job(self, flow_id: str, job_id: str) -> bytes | None:
        """The finished-job record of ``job_id`` (verified header, not unpickled), or None."""
        for blob in self.load_finished(flow_id):
            header, _ = read_header(blob, self.key, self.location)
            if any(job.get("job_id") == job_id for job in header.get("jobs", [])):
                return blob
        return None

    def _listing_rows(self) -> list[dict[str, Any]]:
        """Every listing row, with ``created_at``/``finished_at`` where known."""
        return self.list_jobs()

    def unfinished_jobs(self, flow_id: str) -> list[str]:
        """Ids of the jobs of ``flow_id`` the store holds as not finished."""
        return [
            row["job_id"] for row in self.list_jobs(flow_id) if row["status"] in UNFINISHED_STATUSES
        ]

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

    # -- implemented by each store -----------------------------------------------------
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
        raise NotImplementedError

    def _add_intent(self, flow_id: str, job_id: str, blob: bytes) -> None:
        raise NotImplementedError

    def _put_meta(self, key: str, raw: str) -> None:
        raise NotImplementedError

    def _fetch_meta(self, key: str) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the store's resources."""


def verify_blob(store: CheckpointStore, blob: bytes, where: str) -> dict[str, Any]:
    """Verify a checkpoint's integrity and return its header (nothing is unpickled)."""
    header, _ = read_header(blob, store.key, where)
    return header
