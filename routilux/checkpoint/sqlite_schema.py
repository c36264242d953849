"""The tables of an SQLiteStore file, and bringing an older file's up to date.

A file made by an older routilux is migrated when a store opens it for writing
(never when it is opened read-only): columns are added, never dropped, so an older
routilux can still write to a migrated file.
"""

from __future__ import annotations

import sqlite3

TABLES = """
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id TEXT NOT NULL, created_at REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS checkpoints_flow ON checkpoints(flow_id, id);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, updated_at REAL NOT NULL, created_at REAL, finished_at REAL);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, flow_id TEXT NOT NULL,
    job_id TEXT NOT NULL, data BLOB NOT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS finished_jobs (
    flow_id TEXT NOT NULL, job_id TEXT NOT NULL, finished_at REAL NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (flow_id, job_id));
CREATE INDEX IF NOT EXISTS finished_jobs_age ON finished_jobs(flow_id, finished_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS parts (
    flow_id TEXT NOT NULL, digest TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (flow_id, digest));
"""
#: The statuses a job ends in, as an SQL list.
TERMINAL = "('completed', 'failed', 'cancelled')"
# Listing 100,000 jobs by page and filter stays fast with these (see job_query.py);
# the last one serves the retention delete of every checkpoint.
JOB_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_flow ON jobs(flow_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_retention ON jobs(status, updated_at);
"""
# An intent lists its job as running in the same statement (SQLiteStore writes an
# intent as one INSERT). An intent without a time, from an older routilux, is
# listed as of now. A job submitted again keeps the creation time listed first.
INTENT_LISTED = """CREATE TRIGGER intent_listed AFTER INSERT ON intents BEGIN
    INSERT INTO jobs (job_id, flow_id, status, error, updated_at, created_at, finished_at)
    VALUES (NEW.job_id, NEW.flow_id, 'running', NULL,
            COALESCE(NEW.created_at, (julianday('now') - 2440587.5) * 86400.0),
            COALESCE(NEW.created_at, (julianday('now') - 2440587.5) * 86400.0), NULL)
    ON CONFLICT(job_id) DO UPDATE SET flow_id = excluded.flow_id, status = 'running',
        error = NULL, updated_at = excluded.updated_at, finished_at = NULL;
END"""
#: A checkpoint's listing row. One that knows the job's creation time (from its
#: JobState) sets it; one that does not (an older caller) keeps the time listed.
UPSERT_JOB = (
    "INSERT INTO jobs (job_id, flow_id, status, error, updated_at, created_at, finished_at) "
    "VALUES (?, ?, ?, ?, ?, COALESCE(?, ?), ?) ON CONFLICT(job_id) DO UPDATE SET "
    "flow_id = excluded.flow_id, status = excluded.status, error = excluded.error, "
    "updated_at = excluded.updated_at, finished_at = excluded.finished_at, "
    "created_at = COALESCE(?, jobs.created_at)"
)


def prepare(db: sqlite3.Connection) -> None:
    """Create the tables of a new file, or bring an older file's up to date: the
    jobs table's time columns and indexes, the intents table's time column, and
    the listing trigger as this release writes it."""
    db.executescript(TABLES)
    db.execute("BEGIN IMMEDIATE")  # two processes opening an old file: one migrates
    try:
        jobs = _columns(db, "jobs")
        for name in ("created_at", "finished_at"):
            if name not in jobs:
                db.execute(f"ALTER TABLE jobs ADD COLUMN {name} REAL")
        if "created_at" not in jobs:
            db.execute("UPDATE jobs SET created_at = updated_at")
        if "created_at" not in _columns(db, "intents"):
            db.execute("ALTER TABLE intents ADD COLUMN created_at REAL")
        row = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'intent_listed'"
        ).fetchone()
        if row is None or row[0] != INTENT_LISTED:  # missing, or another release's
            db.execute("DROP TRIGGER IF EXISTS intent_listed")
            db.execute(INTENT_LISTED)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.executescript(JOB_INDEXES)


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
