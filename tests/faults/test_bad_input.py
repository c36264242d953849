"""Bad input, across the API and the command line, gives one clear line.

API: the right exception class, raised where the argument is passed, and a one-line
message that names the parameter (or path) and shows the value. CLI: a non-zero exit
code, exactly one line on stderr, no traceback, and nothing left behind.
"""

from __future__ import annotations

import ctypes
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from routilux import (
    CheckpointError,
    ConfigurationError,
    ErrorHandler,
    Flow,
    RestartPolicy,
    Routine,
    Runtime,
)
from routilux.checkpoint import DirectoryStore, SQLiteStore, open_store

KEY = "bad-input-suite-checkpoint-key-0123456789"
SAMPLE = Path(__file__).resolve().parents[1] / "cli" / "sample_flows.py"


class Echo(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["x"])

    def go(self, x=0):
        self.emit("out", x=x)


def flow_with_echo(**kwargs) -> Flow:
    flow = Flow(flow_id="bad-input", **kwargs)
    flow.add_routine(Echo(), "r")
    return flow


def add(**kwargs):
    return lambda tmp: Flow().add_routine(Echo(), "r", **kwargs)


def execute(*args, **kwargs):
    return lambda tmp: flow_with_echo().execute(*args, **kwargs)


def a_file(tmp: Path) -> Path:
    path = tmp / "plain.txt"
    path.write_text("not a store\n")
    return path


# (id, call(tmp_path), exception class, text the message must contain)
API_CASES = [
    # Flow(...)
    ("flow-restart-str", lambda t: Flow(restart="x"), ConfigurationError, ["restart", "'x'"]),
    (
        "flow-restart-dict",
        lambda t: Flow(restart={"max_restarts": 1}),
        ConfigurationError,
        ["restart", "RestartPolicy(max_restarts=1)"],
    ),
    ("flow-keep-neg", lambda t: Flow(keep_finished_jobs=-1), ConfigurationError,
     ["keep_finished_jobs", "-1", ">= 0"]),
    ("flow-keep-str", lambda t: Flow(keep_finished_jobs="3"), ConfigurationError,
     ["keep_finished_jobs", "'3'", "a str"]),
    ("flow-keep-float", lambda t: Flow(keep_finished_jobs=1.5), ConfigurationError,
     ["keep_finished_jobs", "1.5"]),
    ("flow-store-str", lambda t: Flow(checkpoint_store="x.sqlite3"), ConfigurationError,
     ["checkpoint_store", "SQLiteStore('x.sqlite3')", "open_store"]),
    ("flow-store-path", lambda t: Flow(checkpoint_store=t / "x"), ConfigurationError,
     ["checkpoint_store", "SQLiteStore("]),
    ("flow-store-int", lambda t: Flow(checkpoint_store=42), ConfigurationError,
     ["checkpoint_store", "42"]),
    ("flow-timeout-str", lambda t: Flow(execution_timeout="3"), ConfigurationError,
     ["execution_timeout", "'3'"]),
    ("flow-timeout-zero", lambda t: Flow(execution_timeout=0), ConfigurationError,
     ["execution_timeout", "> 0"]),
    ("flow-timeout-nan", lambda t: Flow(execution_timeout=math.nan), ConfigurationError,
     ["execution_timeout", "nan"]),
    ("flow-interval-str", lambda t: Flow(checkpoint_interval="1"), ConfigurationError,
     ["checkpoint_interval", "'1'"]),
    ("flow-interval-neg", lambda t: Flow(checkpoint_interval=-1), ConfigurationError,
     ["checkpoint_interval", "-1"]),
    ("flow-workers-str", lambda t: Flow(max_workers="5"), ConfigurationError,
     ["max_workers", "'5'"]),
    ("flow-workers-bool", lambda t: Flow(max_workers=True), ConfigurationError,
     ["max_workers", "True", "a bool"]),
    ("flow-workers-zero", lambda t: Flow(max_workers=0), ConfigurationError,
     ["max_workers", ">= 1"]),
    ("flow-queued-str", lambda t: Flow(max_queued_per_routine="10"), ConfigurationError,
     ["max_queued_per_routine", "'10'"]),
    ("flow-queued-float", lambda t: Flow(max_queued_per_routine=1.5), ConfigurationError,
     ["max_queued_per_routine", "1.5"]),
    ("flow-strategy", lambda t: Flow(execution_strategy="parallel"), ConfigurationError,
     ["execution_strategy", "'parallel'", "'sequential'"]),
    ("flow-id-int", lambda t: Flow(flow_id=3), ConfigurationError, ["flow_id", "3", "an int"]),
    ("flow-history-str", lambda t: Flow(record_history="no"), ConfigurationError,
     ["record_history", "'no'"]),
    ("flow-recover-path", lambda t: Flow(flow_id="f").recover(str(t / "x.db")),
     ConfigurationError, ["store", "SQLiteStore("]),
    # add_routine(...)
    ("add-restart-dict", add(restart={"max_restarts": 1}), ConfigurationError,
     ["restart", "RestartPolicy(max_restarts=1)"]),
    ("add-restart-str", add(restart="always"), ConfigurationError, ["restart", "'always'"]),
    ("add-timeout-str", add(execution="process", timeout="1"), ConfigurationError,
     ["timeout", "'1'"]),
    ("add-timeout-zero", add(execution="process", timeout=0), ConfigurationError,
     ["timeout", "> 0"]),
    ("add-workers-str", add(workers="2"), ConfigurationError, ["workers", "'2'"]),
    ("add-workers-zero", add(workers=0), ConfigurationError, ["workers", ">= 1"]),
    ("add-execution", add(execution="fork"), ConfigurationError,
     ["execution", "'fork'", "'process'"]),
    ("add-execution-int", add(execution=3), ConfigurationError, ["execution", "3"]),
    ("add-not-a-routine", lambda t: Flow().add_routine("echo"), ConfigurationError,
     ["Routine", "str"]),
    ("add-empty-id", lambda t: Flow().add_routine(Echo(), ""), ConfigurationError,
     ["routine_id", "''"]),
    # execute(...)
    ("exec-timeout-str", execute("r", timeout="1"), ConfigurationError, ["timeout", "'1'"]),
    ("exec-timeout-neg", execute("r", timeout=-5), ConfigurationError, ["timeout", "-5"]),
    ("exec-params-list", execute("r", [1, 2]), ConfigurationError, ["entry_params", "list"]),
    ("exec-entry-list", execute(["r"]), ConfigurationError, ["entry_routine_id", "['r']"]),
    ("exec-slot-none", execute("r", entry_slot=None), ConfigurationError,
     ["entry_slot", "None"]),
    ("exec-job-id-int", execute("r", job_id=5), ConfigurationError, ["job_id", "5"]),
    ("exec-unknown-entry", execute("ghost"), ConfigurationError, ["'ghost'", "'r'"]),
    ("exec-unknown-slot", execute("r", entry_slot="ghost"), ConfigurationError,
     ["'ghost'", "trigger"]),
    # RestartPolicy(...)
    ("policy-max-str", lambda t: RestartPolicy(max_restarts="3"), ConfigurationError,
     ["max_restarts", "'3'"]),
    ("policy-max-neg", lambda t: RestartPolicy(max_restarts=-1), ConfigurationError,
     ["max_restarts", ">= 0"]),
    ("policy-max-float", lambda t: RestartPolicy(max_restarts=1.5), ConfigurationError,
     ["max_restarts", "1.5"]),
    ("policy-within-none", lambda t: RestartPolicy(within=None), ConfigurationError,
     ["within", "None"]),
    ("policy-within-zero", lambda t: RestartPolicy(within=0), ConfigurationError,
     ["within", "> 0"]),
    ("policy-backoff-neg", lambda t: RestartPolicy(backoff=-1), ConfigurationError,
     ["backoff", "-1"]),
    ("policy-backoff-max-str", lambda t: RestartPolicy(backoff_max="5"), ConfigurationError,
     ["backoff_max", "'5'"]),
    # ErrorHandler(...)
    ("handler-retries-str", lambda t: ErrorHandler(max_retries="3"), ConfigurationError,
     ["max_retries", "'3'"]),
    ("handler-delay-neg", lambda t: ErrorHandler(retry_delay=-1), ConfigurationError,
     ["retry_delay", "-1"]),
    ("handler-backoff-zero", lambda t: ErrorHandler(retry_backoff=0), ConfigurationError,
     ["retry_backoff", "> 0"]),
    ("handler-strategy", lambda t: ErrorHandler("explode"), ConfigurationError,
     ["'explode'", "retry"]),
    # stores
    ("sqlite-on-a-directory", lambda t: SQLiteStore(t, key=KEY), CheckpointError,
     ["is a directory", "DirectoryStore"]),
    ("directory-on-a-file", lambda t: DirectoryStore(a_file(t), key=KEY), CheckpointError,
     ["plain.txt", "not a directory"]),
    ("sqlite-on-a-text-file", lambda t: SQLiteStore(a_file(t), key=KEY), CheckpointError,
     ["plain.txt", "not an SQLite file"]),
    ("sqlite-under-a-file", lambda t: SQLiteStore(a_file(t) / "x.db", key=KEY),
     CheckpointError, ["plain.txt"]),
    ("sqlite-on-dev-null", lambda t: SQLiteStore("/dev/null"), CheckpointError,
     ["/dev/null", "not a regular file"]),
    ("sqlite-keep-zero", lambda t: SQLiteStore(t / "x.db", keep=0), ConfigurationError,
     ["keep", ">= 1"]),
    ("sqlite-keep-str", lambda t: SQLiteStore(t / "x.db", keep="2"), ConfigurationError,
     ["keep", "'2'"]),
    ("directory-retention-neg", lambda t: DirectoryStore(t / "d", retention=-1),
     ConfigurationError, ["retention", "-1"]),
    ("store-path-int", lambda t: SQLiteStore(42), CheckpointError, ["path", "42"]),
    ("open-store-empty", lambda t: open_store(""), CheckpointError, ["path", "''"]),
    # Runtime(...)
    ("runtime-store-int", lambda t: Runtime(store=3), ConfigurationError, ["store", "3"]),
    ("runtime-keep-neg", lambda t: Runtime(store=t / "rt.db", keep_finished_jobs=-1),
     ConfigurationError, ["keep_finished_jobs", "-1"]),
    ("runtime-interval-str", lambda t: Runtime(store=t / "rt.db", checkpoint_interval="1"),
     ConfigurationError, ["checkpoint_interval", "'1'"]),
]


@pytest.mark.parametrize(
    "call, error, expected", [pytest.param(*case[1:], id=case[0]) for case in API_CASES]
)
def test_bad_api_input_is_one_clear_line(tmp_path, call, error, expected):
    dev_null_key = os.path.exists("/dev/null.key")
    with pytest.raises(error) as raised:
        call(tmp_path)
    message = str(raised.value)
    assert "\n" not in message and message.strip() == message, repr(message)
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    assert "[Errno" not in message
    assert os.path.exists("/dev/null.key") == dev_null_key, "a key file was made for /dev/null"
    assert not (tmp_path / "rt.db").exists(), "a refused Runtime created its store"


def test_the_table_is_large_enough():
    assert len(API_CASES) + len(CLI_CASES) >= 50


# ------------------------------------------------------------------ the command line
def _drop_file_capabilities() -> None:
    """As root, lose the right to ignore file permissions (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH) so a read-only file is read-only, as for any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            os._exit(99)


def routilux(*args: str, cwd: Path, unprivileged: bool = False):
    drop = unprivileged and os.geteuid() == 0 and sys.platform.startswith("linux")
    return subprocess.run(
        [sys.executable, "-m", "routilux", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROUTILUX_CHECKPOINT_KEY": KEY},
        preexec_fn=_drop_file_capabilities if drop else None,
    )


def prepare(tmp: Path) -> None:
    """The files the CLI cases point at."""
    (tmp / "ro.sqlite3").write_bytes(b"")
    (tmp / "ro.sqlite3").chmod(0o444)
    (tmp / "locked").mkdir(mode=0o500)
    (tmp / "locked").chmod(0o500)
    (tmp / "ro-store").mkdir(mode=0o500)
    (tmp / "ro-store").chmod(0o500)
    (tmp / "unreadable").mkdir(mode=0o000)
    (tmp / "unreadable").chmod(0o000)
    (tmp / "text.sqlite3").write_text("hello, not SQLite\n" * 10)
    (tmp / "plain.txt").write_text("a file\n")


FLOW = f"{SAMPLE}:flow"
RUN = ("run", FLOW, "--no-progress")

# (id, arguments, run as a user without file-permission override, text the line must contain)
CLI_CASES = [
    ("store-read-only-file", (*RUN, "--store", "ro.sqlite3"), True,
     ["ro.sqlite3", "permission denied"]),
    ("store-dev-null", (*RUN, "--store", "/dev/null"), False, ["/dev/null", "regular file"]),
    ("store-locked-directory", (*RUN, "--store", "locked/x.sqlite3"), True,
     ["locked", "permission denied"]),
    ("store-read-only-directory-store", (*RUN, "--store", "ro-store/"), True,
     ["ro-store", "permission denied"]),
    ("store-under-a-file", (*RUN, "--store", "plain.txt/x.sqlite3"), False, ["plain.txt"]),
    ("store-not-sqlite", (*RUN, "--store", "text.sqlite3"), False,
     ["text.sqlite3", "not an SQLite file"]),
    ("params-not-json", (*RUN, "--params", "{oops"), False, ["--params", "JSON"]),
    ("params-not-object", (*RUN, "--params", "[1, 2]"), False, ["JSON object"]),
    ("timeout-not-a-number", (*RUN, "--timeout", "abc"), False, ["--timeout", "'abc'"]),
    ("timeout-negative", (*RUN, "--timeout", "-1"), False, ["timeout", "-1"]),
    ("timeout-zero", (*RUN, "--timeout", "0"), False, ["timeout", "> 0"]),
    ("target-missing-file", ("run", "missing.py:flow"), False, ["no such file"]),
    ("target-no-attribute", ("run", f"{SAMPLE}:nope"), False, ["'nope'"]),
    ("target-not-a-flow", ("run", f"{SAMPLE}:not_a_flow"), False, ["is an int", "not a Flow"]),
    ("target-no-name", ("run", str(SAMPLE)), False, ["FILE.py:NAME"]),
    ("target-no-module", ("run", "no_such_module_xyz:flow"), False, ["cannot import module"]),
    ("entry-unknown", (*RUN, "--entry", "ghost"), False, ["ghost"]),
    ("slot-unknown", (*RUN, "--slot", "ghost"), False, ["ghost"]),
    ("run-no-target", ("run",), False, ["TARGET", "routilux run --help"]),
    ("unknown-command", ("bogus",), False, ["bogus"]),
    ("unknown-option", ("--bogus",), False, ["--bogus"]),
    ("jobs-no-store", ("jobs", "--store", "nowhere.sqlite3"), False, ["no checkpoint store"]),
    ("jobs-not-sqlite", ("jobs", "--store", "text.sqlite3"), False, ["text.sqlite3"]),
    ("jobs-dev-null", ("jobs", "--store", "/dev/null"), False, ["/dev/null"]),
    ("jobs-bad-status", ("jobs", "--status", "lost"), False, ["--status", "'lost'"]),
    ("jobs-unreadable-directory", ("jobs", "--store", "unreadable"), True,
     ["unreadable", "permission denied"]),
    ("resume-no-store", ("resume", "0000", "--store", "nowhere.sqlite3"), False,
     ["no checkpoint store"]),
    ("resume-not-sqlite", ("resume", "0000", "--store", "text.sqlite3"), False,
     ["text.sqlite3"]),
    ("inspect-nothing", ("inspect", "nowhere"), False, ["no such file"]),
    ("inspect-text-file", ("inspect", "plain.txt"), False, ["plain.txt"]),
    ("graph-missing-file", ("graph", "missing.py:flow"), False, ["no such file"]),
    ("graph-bad-format", ("graph", FLOW, "--format", "svg"), False, ["--format", "'svg'"]),
]


@pytest.mark.parametrize(
    "args, unprivileged, expected", [pytest.param(*case[1:], id=case[0]) for case in CLI_CASES]
)
def test_bad_cli_input_is_one_line_without_traceback(tmp_path, args, unprivileged, expected):
    prepare(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    dev_null = sorted(str(p) for p in Path("/dev").glob("null?*"))
    result = routilux(*args, cwd=tmp_path, unprivileged=unprivileged)
    assert result.returncode not in (0, 99), (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    assert "[Errno" not in lines[0]
    after = sorted(p.name for p in tmp_path.iterdir())
    assert after == before, f"the refused command left files behind: {set(after) - set(before)}"
    assert sorted(str(p) for p in Path("/dev").glob("null?*")) == dev_null
