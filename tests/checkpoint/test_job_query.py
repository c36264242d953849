"""Listing jobs by page and filter (the web monitor's job list), in both stores.

The SQLite store answers with one indexed query; the directory store filters in
Python; both must give the same rows in the same order. Old SQLite files gain the
new columns and indexes when opened for writing.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from routilux import ConfigurationError
from routilux.checkpoint import DirectoryStore, SQLiteStore
from routilux.checkpoint.format import encode
from routilux.checkpoint.job_query import JobQuery
from routilux.checkpoint.sqlite_schema import INTENT_LISTED
from routilux.checkpoint.store import FinishedJob

KEY = b"job-query-test-key-0123456789abc"
T = time.time() - 3600  # within the stores' retention of finished jobs


@pytest.fixture(params=["sqlite", "dir"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = SQLiteStore(tmp_path / "jobs.db", key=KEY)
    else:
        made = DirectoryStore(tmp_path / "jobs", key=KEY)
    yield made
    made.close()


def _fill(store) -> None:
    """Jobs j00..j29 of flows a/b, created at T+i, statuses in turn."""
    statuses = ["completed", "failed", "running", "cancelled", "paused"]
    for flow in ("a", "b"):
        rows = []
        for i in range(30):
            if (i % 2 == 0) != (flow == "a"):
                continue
            status = statuses[i % 5]
            row = {"job_id": f"j{i:02d}", "status": status, "created_at": T + i}
            if status == "failed":
                row["error"] = f"ValueError: bad_value {i}%"
            if status in ("completed", "failed", "cancelled"):
                row["updated_at"] = row["finished_at"] = T + 100 + i
            rows.append(row)
        store.save(flow, encode(flow, b"cut", store.key), rows)


def ids(rows):
    return [r["job_id"] for r in rows]


def test_newest_first_paging_and_total(store):
    _fill(store)
    page, total = store.query_jobs(JobQuery(limit=7))
    assert total == 30
    assert ids(page) == [f"j{i:02d}" for i in range(29, 22, -1)]
    page2, _ = store.query_jobs(JobQuery(limit=7, offset=7))
    assert ids(page2) == [f"j{i:02d}" for i in range(22, 15, -1)], "pages do not overlap"
    last, total = store.query_jobs(JobQuery(limit=7, offset=28))
    assert ids(last) == ["j01", "j00"] and total == 30
    beyond, total = store.query_jobs(JobQuery(offset=100))
    assert beyond == [] and total == 30


def test_filters_combine(store):
    _fill(store)
    failed, total = store.query_jobs(JobQuery(status=("failed",)))
    assert ids(failed) == ["j26", "j21", "j16", "j11", "j06", "j01"] and total == 6
    assert failed[0]["error"] == "ValueError: bad_value 26%"
    assert failed[0]["finished_at"] == T + 126 and failed[0]["created_at"] == T + 26
    two, total = store.query_jobs(JobQuery(status=("failed", "cancelled"), flow_id="a"))
    assert all(r["flow_id"] == "a" and r["status"] in ("failed", "cancelled") for r in two)
    assert ids(two) == ["j28", "j26", "j18", "j16", "j08", "j06"] and total == 6
    window, total = store.query_jobs(JobQuery(since=T + 10, until=T + 13))
    assert ids(window) == ["j12", "j11", "j10"], "since inclusive, until exclusive"
    running = store.query_jobs(JobQuery(status=("running",)))[0]
    assert running[0]["finished_at"] is None


def test_search_matches_ids_flows_and_errors_literally(store):
    _fill(store)
    assert ids(store.query_jobs(JobQuery(q="j1"))[0]) == [f"j{i}" for i in range(19, 9, -1)]
    hits, total = store.query_jobs(JobQuery(q="BAD_VALUE 1"))
    assert ids(hits) == ["j16", "j11", "j01"] and total == 3, "case-insensitive substring of errors"
    # LIKE wildcards in the search text are plain characters
    assert ids(store.query_jobs(JobQuery(q="1%"))[0]) == ["j21", "j11", "j01"]
    assert store.query_jobs(JobQuery(q="_"))[1] == 6, "only the errors hold an underscore"


def test_a_later_checkpoint_keeps_the_creation_time(store):
    store.add_intent("f", "x", encode("f", b"intent", store.key))
    created = store.job_row("x")["created_at"]
    assert store.job_row("x")["status"] == "running" and created is not None
    store.save("f", encode("f", b"cut", store.key), [{"job_id": "x", "status": "completed"}])
    row = store.job_row("x")
    assert row["status"] == "completed" and row["created_at"] == created
    assert store.job_row("nope") is None
    assert store.count_jobs() == {"completed": 1}


def test_finished_job_record_by_id(store):
    blob = encode("f", b"state-of-j1", store.key, [{"job_id": "j1", "status": "completed"}])
    other = encode("f", b"state-of-j2", store.key, [{"job_id": "j2", "status": "failed"}])
    store.save(
        "f",
        encode("f", b"cut", store.key),
        [],
        [FinishedJob("j1", 10.0, blob), FinishedJob("j2", 11.0, other)],
    )
    assert store.load_finished_job("f", "j1") == blob
    assert store.load_finished_job("f", "j2") == other
    assert store.load_finished_job("f", "j3") is None
    assert store.load_finished_job("g", "j1") is None


def test_bad_queries_are_refused():
    with pytest.raises(ConfigurationError, match="unknown status 'done'"):
        JobQuery(status=("done",))
    with pytest.raises(ConfigurationError, match=r"limit must be 1\.\.500"):
        JobQuery(limit=0)
    with pytest.raises(ConfigurationError, match="offset must be >= 0"):
        JobQuery(offset=-1)


def test_an_old_sqlite_file_is_migrated_on_open(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(  # the tables of 0.11.0
        "CREATE TABLE checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "flow_id TEXT NOT NULL, created_at REAL NOT NULL, data BLOB NOT NULL);"
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, "
        "status TEXT NOT NULL, error TEXT, updated_at REAL NOT NULL);"
        "CREATE TABLE intents (id INTEGER PRIMARY KEY AUTOINCREMENT, flow_id TEXT NOT NULL, "
        "job_id TEXT NOT NULL, data BLOB NOT NULL);"
        "INSERT INTO jobs VALUES ('old', 'f', 'completed', NULL, 123.0);"
    )
    db.commit()
    db.close()
    reader = SQLiteStore(path, key=KEY, create=False)  # read-only: not migrated
    assert ids(reader.query_jobs(JobQuery())[0]) == ["old"]
    assert reader.job_row("old")["created_at"] == 123.0
    reader.close()
    store = SQLiteStore(path, key=KEY)
    page, total = store.query_jobs(JobQuery())
    assert total == 1 and page[0]["created_at"] == 123.0, "backfilled from updated_at"
    indexes = {row[1] for row in store._read("PRAGMA index_list(jobs)")}
    assert {"jobs_created", "jobs_status", "jobs_flow", "jobs_retention"} <= indexes
    plan = " ".join(
        str(row)
        for row in store._read(
            "EXPLAIN QUERY PLAN SELECT job_id FROM jobs WHERE status = 'failed' "
            "ORDER BY created_at DESC LIMIT 50"
        )
    )
    assert "jobs_status" in plan and "TEMP B-TREE" not in plan, plan
    before = time.time()
    store.add_intent("f", "new", encode("f", b"intent", KEY))  # the intents table migrated
    row = store.job_row("new")
    assert row["status"] == "running" and row["created_at"] >= before
    store.close()


def test_an_intent_lists_its_job_in_the_same_statement(tmp_path):
    """The intent is one INSERT (one GIL hand-over in a busy flow); a trigger lists
    the job. A job submitted again is listed as running again, created when first."""
    store = SQLiteStore(tmp_path / "jobs.db", key=KEY)
    store.check_key()  # its own statements, once
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.add_intent("f", "x", encode("f", b"intent", KEY))
    store._db.set_trace_callback(None)
    assert {s.split(" (")[0] for s in statements} == {"INSERT INTO intents"}, statements
    first = store.job_row("x")
    assert first["status"] == "running" and first["finished_at"] is None
    store.save("f", encode("f", b"cut", KEY), [{"job_id": "x", "status": "failed", "error": "e"}])
    store.add_intent("f", "x", encode("f", b"again", KEY))
    row = store.job_row("x")
    assert (row["status"], row["error"], row["finished_at"]) == ("running", None, None)
    assert row["created_at"] == first["created_at"]
    assert row["updated_at"] >= first["updated_at"]
    # An intent written by an older routilux (no time column): listed as of now.
    before = time.time() - 1
    store._db.execute("INSERT INTO intents (flow_id, job_id, data) VALUES ('f', 'y', x'00')")
    assert store.job_row("y")["created_at"] >= before
    store.close()


def test_a_file_with_another_releases_listing_trigger_gets_this_ones(tmp_path):
    path = tmp_path / "jobs.db"
    SQLiteStore(path, key=KEY).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER intent_listed")
    db.execute(  # another release's trigger: lists nothing
        "CREATE TRIGGER intent_listed AFTER INSERT ON intents BEGIN SELECT 1; END"
    )
    db.close()
    store = SQLiteStore(path, key=KEY)
    (sql,) = store._read("SELECT sql FROM sqlite_master WHERE name = 'intent_listed'")[0]
    assert sql == INTENT_LISTED
    store.add_intent("f", "x", encode("f", b"intent", KEY))
    assert store.job_row("x")["status"] == "running"
    store.close()
