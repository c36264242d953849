"""Damaged, tampered and foreign checkpoint stores, through the API and the CLI.

Every case must end in one CheckpointError (API) or one ``Error:`` line with a
non-zero exit (CLI) that names the store; never an ``sqlite3`` traceback, never
"integrity OK" for a damaged file, and a store refused for writing is left as it was.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from routilux import CheckpointError
from routilux.checkpoint import DirectoryStore, SQLiteStore, open_store

KEY = "corrupt-store-suite-checkpoint-key-0123456789"
OTHER_KEY = "someone-else-s-checkpoint-key-9876543210"
SAMPLE = Path(__file__).resolve().parents[1] / "cli" / "sample_flows.py"
sys.path.insert(0, str(SAMPLE.parent))  # sample_flows builds the flow for the API cases

import sample_flows  # noqa: E402  (needs the path above)


def routilux(*args: str, cwd: Path, key: str = KEY) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "routilux", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROUTILUX_CHECKPOINT_KEY": key},
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single ``Error:`` line of a refused command (asserting there is just one)."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert "integrity OK" not in result.stdout, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, object]:
    """A good SQLite store and a good directory store, each with a completed job
    (written by `routilux run`, so `resume` knows the flow)."""
    base = tmp_path_factory.mktemp("pristine")
    made: dict[str, object] = {}
    for kind, store in (("sqlite", "good.sqlite3"), ("dir", "good-dir/")):
        result = routilux("run", f"{SAMPLE}:flow", "--no-progress", "--store", store, cwd=base)
        assert result.returncode == 0, result.stderr
        made[f"{kind}_job"] = re.search(r"job (\S+) completed", result.stdout).group(1)
    db = sqlite3.connect(base / "good.sqlite3")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    db.close()
    made["base"] = base
    return made


def copy_sqlite(pristine, tmp: Path) -> Path:
    target = tmp / "store.sqlite3"
    shutil.copyfile(pristine["base"] / "good.sqlite3", target)
    return target


def copy_directory(pristine, tmp: Path) -> Path:
    target = tmp / "store"
    shutil.copytree(pristine["base"] / "good-dir", target)
    return target


def copy_store(kind: str, pristine, tmp: Path) -> Path:
    return copy_sqlite(pristine, tmp) if kind == "sqlite" else copy_directory(pristine, tmp)


# ------------------------------------------------------------------ damaged SQLite files
def truncate_half(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def truncate_header(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(50)


def garbage_pages(path: Path) -> None:
    noise = random.Random(7).randbytes(4096 * 3)
    with open(path, "r+b") as f:
        f.seek(4096)  # keep the header page: the file still looks like SQLite
        f.write(noise)


def not_sqlite(path: Path) -> None:
    path.write_text("these are not the checkpoints you are looking for\n" * 50)


def foreign_database(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    db.commit()
    db.close()


DAMAGE = {
    "truncated-half": truncate_half,
    "truncated-header": truncate_header,
    "garbage-pages": garbage_pages,
    "not-sqlite": not_sqlite,
    "foreign-database": foreign_database,
}


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, pristine, tmp_path) -> Path:
    path = copy_sqlite(pristine, tmp_path)
    DAMAGE[request.param](path)
    return path


@pytest.mark.parametrize("create", [True, False], ids=["write", "read"])
def test_api_refuses_a_damaged_sqlite_store(damaged, create):
    before = damaged.read_bytes()
    with pytest.raises(CheckpointError) as raised:
        SQLiteStore(damaged, key=KEY, create=create)
    assert str(damaged) in str(raised.value) and "\n" not in str(raised.value)
    assert damaged.read_bytes() == before, "a refused store was written to"


def test_api_recover_never_starts_on_a_damaged_store(damaged):
    flow = sample_flows.build()
    with pytest.raises(CheckpointError, match=re.escape(str(damaged))):
        flow.recover(open_store(damaged, key=KEY))
    flow.shutdown()


@pytest.mark.parametrize("command", ["jobs", "inspect", "resume"])
def test_cli_reports_a_damaged_sqlite_store_in_one_line(damaged, pristine, command):
    args = {
        "jobs": ("jobs", "--store", damaged.name),
        "inspect": ("inspect", damaged.name),
        "resume": ("resume", pristine["sqlite_job"], "--store", damaged.name, "--no-progress"),
    }[command]
    line = one_error_line(routilux(*args, cwd=damaged.parent))
    assert damaged.name in line


def test_cli_run_refuses_a_damaged_store_and_leaves_it_alone(damaged):
    before = damaged.read_bytes()
    result = routilux(
        "run", f"{SAMPLE}:flow", "--no-progress", "--store", damaged.name, cwd=damaged.parent
    )
    line = one_error_line(result)
    assert damaged.name in line and "started" not in result.stdout
    assert damaged.read_bytes() == before


def test_an_empty_file_is_a_new_store_for_writing_but_no_store_for_reading(tmp_path):
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    for command in (("jobs", "--store", empty.name), ("inspect", empty.name)):
        assert "not a routilux checkpoint store" in one_error_line(routilux(*command, cwd=tmp_path))
    store = SQLiteStore(empty, key=KEY)  # opened for writing: a fresh store
    assert store.list_jobs() == []
    store.close()


# ------------------------------------------------------------------ tampered and foreign
def tamper_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    ((row, data),) = db.execute("SELECT id, data FROM checkpoints ORDER BY id DESC LIMIT 1")
    data = bytearray(data)
    data[len(data) // 2] ^= 0x20
    db.execute("UPDATE checkpoints SET data = ? WHERE id = ?", (bytes(data), row))
    db.commit()
    db.close()


def latest_checkpoint(directory: Path) -> Path:
    return sorted(directory.glob("*/*.ckpt"))[-1]


def tamper_directory(path: Path) -> None:
    target = latest_checkpoint(path)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x20
    target.write_bytes(bytes(data))


def truncate_directory_checkpoint(path: Path) -> None:
    target = latest_checkpoint(path)
    target.write_bytes(target.read_bytes()[:100])


def garbage_directory_checkpoint(path: Path) -> None:
    latest_checkpoint(path).write_bytes(random.Random(3).randbytes(2000))


BREAK_CHECKPOINT = {
    "sqlite-tampered": ("sqlite", tamper_sqlite),
    "dir-tampered": ("dir", tamper_directory),
    "dir-truncated": ("dir", truncate_directory_checkpoint),
    "dir-garbage": ("dir", garbage_directory_checkpoint),
}


@pytest.fixture(params=sorted(BREAK_CHECKPOINT))
def broken_checkpoint(request, pristine, tmp_path) -> tuple[str, Path]:
    kind, damage = BREAK_CHECKPOINT[request.param]
    path = copy_store(kind, pristine, tmp_path)
    damage(path)
    return kind, path


def test_api_recover_refuses_a_tampered_or_broken_checkpoint(broken_checkpoint):
    _, path = broken_checkpoint
    store = open_store(path, key=KEY)
    flow = sample_flows.build()
    with pytest.raises(CheckpointError) as raised:
        flow.recover(store)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
    flow.shutdown()
    store.close()


@pytest.mark.parametrize("command", ["inspect", "resume"])
def test_cli_refuses_a_tampered_or_broken_checkpoint(broken_checkpoint, pristine, command):
    kind, path = broken_checkpoint
    store = path.name + ("/" if kind == "dir" else "")
    args = {
        "inspect": ("inspect", path.name),
        "resume": ("resume", pristine[f"{kind}_job"], "--store", store, "--no-progress"),
    }[command]
    line = one_error_line(routilux(*args, cwd=path.parent))
    assert path.name in line


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_a_store_read_with_the_wrong_key_is_refused(pristine, tmp_path, kind):
    path = copy_store(kind, pristine, tmp_path)
    flow = sample_flows.build()
    with pytest.raises(CheckpointError, match="integrity check failed"):
        flow.recover(open_store(path, key=OTHER_KEY))
    flow.shutdown()
    line = one_error_line(routilux("inspect", path.name, cwd=tmp_path, key=OTHER_KEY))
    assert "integrity check failed" in line
    store = path.name + ("/" if kind == "dir" else "")
    job = pristine[f"{kind}_job"]
    line = one_error_line(routilux("resume", job, "--store", store, cwd=tmp_path, key=OTHER_KEY))
    assert "integrity check" in line


# ------------------------------------------------------------------ damaged directory indexes
@pytest.mark.parametrize("index", ["jobs.json", "meta.json"])
def test_a_damaged_directory_index_is_one_line(pristine, tmp_path, index):
    path = copy_directory(pristine, tmp_path)
    target = next(path.rglob(index))
    target.write_text('{"half a json')
    if index == "jobs.json":
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            DirectoryStore(path, key=KEY).list_jobs()
        line = one_error_line(routilux("jobs", "--store", "store/", cwd=tmp_path))
    else:
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            DirectoryStore(path, key=KEY).get_meta("flow:numbers")
        job = pristine["dir_job"]
        line = one_error_line(routilux("resume", job, "--store", "store/", cwd=tmp_path))
    assert "store" in line and "not valid JSON" in line


def test_inspect_of_a_sound_store_still_says_integrity_ok(pristine, tmp_path):
    path = copy_sqlite(pristine, tmp_path)
    result = routilux("inspect", path.name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "integrity OK" in result.stdout
