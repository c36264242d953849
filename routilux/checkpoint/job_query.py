"""Filtering and paging the job listing of a store (``routilux serve``'s job list).

:class:`JobQuery` holds validated filters. The SQLite store turns it into one
indexed query (:func:`sql_where`); other stores filter their rows in Python with
:func:`filter_rows`. Both give the same rows in the same order: newest submitted
first (``created_at`` descending, then ``job_id`` descending).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routilux.exceptions import ConfigurationError

STATUSES = ("pending", "running", "paused", "completed", "failed", "cancelled")
MAX_LIMIT = 500
#: The columns of a listed job (``finished_at`` is None until it ends).
COLUMNS = ("job_id", "flow_id", "status", "error", "created_at", "updated_at", "finished_at")


@dataclass(frozen=True)
class JobQuery:
    """Which jobs to list: every filter is optional and they combine with AND.

    ``status``: statuses to keep; ``flow_id``: one flow; ``since``/``until``: the
    submission time range (epoch seconds, ``until`` exclusive); ``q``: a substring
    of the job id, flow id or error (case-insensitive); ``limit``/``offset``: the page.
    """

    status: tuple[str, ...] = ()
    flow_id: str | None = None
    since: float | None = None
    until: float | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        unknown = [s for s in self.status if s not in STATUSES]
        if unknown:
            raise ConfigurationError(f"unknown status {unknown[0]!r}; statuses: {list(STATUSES)}")
        if not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise ConfigurationError(f"limit must be 1..{MAX_LIMIT}, got {self.limit!r}")
        if not isinstance(self.offset, int) or self.offset < 0:
            raise ConfigurationError(f"offset must be >= 0, got {self.offset!r}")


def sql_where(query: JobQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (or "") and its arguments for ``query`` over the jobs table."""
    clauses: list[str] = []
    args: list[Any] = []
    if query.status:
        clauses.append(f"status IN ({', '.join('?' * len(query.status))})")
        args.extend(query.status)
    if query.flow_id is not None:
        clauses.append("flow_id = ?")
        args.append(query.flow_id)
    if query.since is not None:
        clauses.append("created_at >= ?")
        args.append(query.since)
    if query.until is not None:
        clauses.append("created_at < ?")
        args.append(query.until)
    if query.q:
        pattern = "%" + _escape_like(query.q) + "%"
        clauses.append(
            "(job_id LIKE ? ESCAPE '\\' OR flow_id LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\')"
        )
        args.extend((pattern, pattern, pattern))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_rows(rows: list[dict[str, Any]], query: JobQuery) -> tuple[list[dict[str, Any]], int]:
    """Apply ``query`` to listing rows in Python: ``(page, total)``."""
    needle = query.q.lower() if query.q else None
    kept = []
    for row in rows:
        created = row.get("created_at") or row["updated_at"]
        if query.status and row["status"] not in query.status:
            continue
        if query.flow_id is not None and row["flow_id"] != query.flow_id:
            continue
        if query.since is not None and created < query.since:
            continue
        if query.until is not None and created >= query.until:
            continue
        if needle is not None and not any(
            needle in (row.get(key) or "").lower() for key in ("job_id", "flow_id", "error")
        ):
            continue
        kept.append(normalize(row))
    kept.sort(key=lambda r: (r["created_at"], r["job_id"]), reverse=True)
    return kept[query.offset : query.offset + query.limit], len(kept)


def normalize(row: dict[str, Any]) -> dict[str, Any]:
    """A listing row with every column (a row without ``created_at`` uses
    ``updated_at``)."""
    return {key: row.get(key) for key in COLUMNS} | {
        "created_at": row.get("created_at") or row["updated_at"]
    }
