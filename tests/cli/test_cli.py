"""The `routilux` command, always through a real subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import interrupt_run

HERE = Path(__file__).resolve().parent
FLOWS = HERE / "sample_flows.py"
ROOT = HERE.parents[1]


def routilux(*args, cwd, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "routilux", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_help_everywhere(tmp_path):
    for command in ([], ["run"], ["graph"], ["jobs"], ["resume"], ["inspect"]):
        result = routilux(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout


def test_run_completes_and_records_the_job(tmp_path):
    result_file = tmp_path / "result.txt"
    result = routilux("run", f"{FLOWS}:flow", "--params", '{"count": 5}', "--no-progress",
                      cwd=tmp_path, env={"RESULT_FILE": str(result_file)})
    assert result.returncode == 0, result.stderr
    assert re.search(r"job [0-9a-f-]+ completed", result.stdout)
    assert result_file.read_text().split() == ["5", "15"]
    store = tmp_path / ".routilux" / "routilux.sqlite3"
    assert store.exists() and (store.stat().st_mode & 0o777) == 0o600
    jobs = routilux("jobs", cwd=tmp_path)
    assert jobs.returncode == 0 and " completed " in jobs.stdout and "numbers" in jobs.stdout


def test_run_with_live_progress_draws_the_table(tmp_path):
    result = routilux("run", f"{FLOWS}:flow", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for column in ("routine", "queued", "failed", "restarts"):
        assert column in result.stdout
    assert "acc" in result.stdout


def test_run_of_a_failing_job_exits_non_zero(tmp_path):
    result = routilux("run", f"{FLOWS}:flow", "--params", '{"count": 3, "fail_at": 2}',
                      "--no-progress", cwd=tmp_path)
    assert result.returncode == 1
    assert "failed" in result.stdout and "refusing 2" in result.stdout


def test_run_accepts_a_function_and_a_module_target(tmp_path):
    result = routilux("run", f"{FLOWS}:slow_flow", "--params", '{"count": 2}', "--no-progress",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = routilux("run", "sample_flows:flow", "--no-progress", cwd=tmp_path,
                      env={"PYTHONPATH": str(HERE)})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("args, expected", [
    (["run", "missing.py:flow"], "no such file"),
    (["run", f"{FLOWS}:nope"], "has no attribute 'nope'"),
    (["run", f"{FLOWS}:not_a_flow"], "not a Flow"),
    (["run", f"{FLOWS}"], "FILE.py:NAME"),
    (["run", f"{FLOWS}:flow", "--params", "{oops"], "not valid JSON"),
    (["run", f"{FLOWS}:flow", "--params", "[1, 2]"], "JSON object"),
    (["run", f"{FLOWS}:flow", "--entry", "ghost"], "ghost"),
    (["run", f"{FLOWS}:flow", "--slot", "ghost"], "ghost"),
    (["run", "no_such_module_xyz:flow"], "cannot import module"),
    (["graph", "missing.py:flow"], "no such file"),
    (["jobs", "--store", "nowhere.sqlite3"], "no checkpoint store"),
    (["resume", "0000", "--store", "nowhere.sqlite3"], "no checkpoint store"),
    (["inspect", "nowhere"], "no such file"),
])
def test_bad_input_is_one_line_and_no_traceback(tmp_path, args, expected):
    line = assert_one_line_error(routilux(*args, cwd=tmp_path))
    assert expected in line


def test_unknown_job_is_one_line(tmp_path):
    assert routilux("run", f"{FLOWS}:flow", "--no-progress", cwd=tmp_path).returncode == 0
    line = assert_one_line_error(routilux("resume", "no-such-job", cwd=tmp_path))
    assert "no-such-job" in line


MERMAID_NODE = re.compile(r'^    [A-Za-z_][\w]*(\["[^"\n]*"\]|\[\["[^"\n]*"\]\])$')
MERMAID_EDGE = re.compile(r'^    [A-Za-z_]\w* -->\|"[^"\n]*"\| [A-Za-z_]\w*$')


def test_graph_mermaid_is_valid_syntax(tmp_path):
    result = routilux("graph", f"{ROOT}/examples/cpu_pipeline.py:flow", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    nodes = [line for line in lines[1:] if "-->" not in line]
    edges = [line for line in lines[1:] if "-->" in line]
    assert len(nodes) == 3 and len(edges) == 2
    assert all(MERMAID_NODE.match(line) for line in nodes), nodes
    assert all(MERMAID_EDGE.match(line) for line in edges), edges
    assert "process x2" in result.stdout  # execution mode shown
    assert "chunk → chunk" in result.stdout


def test_graph_dot(tmp_path):
    result = routilux("graph", f"{FLOWS}:flow", "--format", "dot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('digraph "numbers" {')
    assert '"numbers" -> "acc" [label="number → number"];' in result.stdout
    assert result.stdout.rstrip().endswith("}")


def test_inspect_verifies_and_refuses_tampering(tmp_path):
    assert routilux("run", f"{FLOWS}:flow", "--no-progress", cwd=tmp_path).returncode == 0
    store = tmp_path / ".routilux" / "routilux.sqlite3"
    result = routilux("inspect", str(store), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "integrity OK" in result.stdout and "completed" in result.stdout
    # flip a byte inside the stored checkpoint
    import sqlite3

    db = sqlite3.connect(store)
    (row_id, data), = db.execute("SELECT id, data FROM checkpoints ORDER BY id DESC LIMIT 1")
    data = bytearray(data)
    data[len(data) // 2] ^= 0x01
    db.execute("UPDATE checkpoints SET data = ? WHERE id = ?", (bytes(data), row_id))
    db.commit()
    db.close()
    line = assert_one_line_error(routilux("inspect", str(store), cwd=tmp_path))
    assert "integrity check failed" in line


def test_resume_after_kill_9_of_run(tmp_path):
    result_file = tmp_path / "result.txt"
    env = {**os.environ, "RESULT_FILE": str(result_file)}
    run = subprocess.Popen(
        [sys.executable, "-m", "routilux", "run", f"{FLOWS}:slow_flow", "--params",
         '{"count": 60}', "--no-progress"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        started = run.stdout.readline()
        job_id = re.search(r"job ([0-9a-f-]+) started", started).group(1)
        for line in run.stderr:  # wait until the job is well under way
            if line.startswith("progress 10"):
                break
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    finally:
        run.kill()
        run.wait()
    jobs = routilux("jobs", "--status", "running", cwd=tmp_path)
    assert job_id in jobs.stdout, jobs.stdout + jobs.stderr
    resumed = routilux("resume", job_id, "--no-progress", cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"job {job_id} completed" in resumed.stdout
    assert result_file.read_text().split() == ["60", str(sum(range(1, 61)))]


def test_ctrl_c_checkpoints_and_says_how_to_resume(tmp_path):
    started, out, returncode = interrupt_run(
        [f"{FLOWS}:slow_flow", "--params", '{"count": 200}', "--no-progress"], tmp_path
    )
    job_id = re.search(r"job ([0-9a-f-]+) started", started).group(1)
    assert returncode == 130
    assert f"routilux resume {job_id}" in out
    resumed = routilux("resume", job_id, "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    listing = routilux("jobs", "--status", "completed", cwd=tmp_path)
    assert job_id in listing.stdout


def test_a_flow_without_flow_id_interrupted_is_resumable(tmp_path):
    """Regression: such a flow got a new id per process, so an interrupted job stayed
    'running' in `routilux jobs` for good and could not be resumed."""
    started, out, returncode = interrupt_run(
        [f"{FLOWS}:slow_anonymous_flow", "--params", '{"count": 200}', "--no-progress"],
        tmp_path,
    )
    job_id = re.search(r"job ([0-9a-f-]+) started", started).group(1)
    assert "slow_anonymous_flow@" in started, started  # the id it was given
    assert returncode == 130
    assert f"routilux resume {job_id}" in out
    resumed = routilux("resume", job_id, "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    listing = routilux("jobs", cwd=tmp_path)
    assert f"{job_id}  completed" in listing.stdout, listing.stdout


def test_version_and_python_dash_m(tmp_path):
    result = routilux("--version", cwd=tmp_path)
    assert result.returncode == 0 and "0.11" in result.stdout
    console = subprocess.run(["routilux", "--help"], capture_output=True, text=True,
                             timeout=30) if _on_path("routilux") else None
    if console is not None:
        assert console.returncode == 0


def _on_path(name):
    return any(Path(p, name).exists() for p in os.environ.get("PATH", "").split(os.pathsep))


def test_jobs_filters_by_status(tmp_path):
    assert routilux("run", f"{FLOWS}:flow", "--no-progress", cwd=tmp_path).returncode == 0
    result = routilux("jobs", "--status", "failed", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "no jobs"
    result = routilux("jobs", "--status", "completed", cwd=tmp_path)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 1


def test_a_completed_job_lists_its_retried_failures_before_the_status_line(tmp_path):
    result = routilux("run", f"{FLOWS}:flaky_flow", "--params", '{"count": 2}', "--no-progress",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"job [0-9a-f-]+ completed", lines[-1]), lines
    assert lines[-4] == "recovered from 2 failure(s) (retried or skipped):"
    assert lines[-3:-1] == ["  acc.number: RuntimeError: flaky on 1",
                            "  acc.number: RuntimeError: flaky on 2"]


def test_progress_fits_a_narrow_terminal_and_ends_with_a_summary(tmp_path):
    result = routilux("run", f"{FLOWS}:flow", "--params", '{"count": 7}', cwd=tmp_path,
                      env={"COLUMNS": "40"})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert all(len(line) <= 40 for line in result.stdout.splitlines()[1:-1]), result.stdout
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()
            if line.strip().startswith(("numbers ", "acc "))}
    assert rows["acc"][0] == "7" and rows["numbers"][0] == "1", result.stdout  # done, whole
    words = " ".join(result.stdout.split())  # the summary may wrap at 40 columns
    assert re.search(r"job [0-9a-f]{8} completed in [0-9.]+ s: 8 steps, 0 failed", words)


NAMED_ENTRY = '''
from routilux import Flow, Routine


class Count(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)

    def go(self, count, step=1):
        self.total = count * step


flow = Flow(flow_id="named-entry")
flow.add_routine(Count(), "count")
'''


@pytest.mark.parametrize("params, expected", [
    ('{"count": 2, "cout": 5}',
     "warning: ignoring --params key 'cout': count.trigger takes only count, step"),
    ('{"count": 2, "b": 1, "a": 0}',
     "warning: ignoring --params keys 'a', 'b': count.trigger takes only count, step"),
    ('{"cout": 5}',
     "warning: --params key 'cout' matches no parameter of count.trigger (it takes count, step); "
     "its first parameter gets the whole dict"),
])
def test_unknown_params_keys_are_named_with_what_the_slot_takes(tmp_path, params, expected):
    (tmp_path / "named.py").write_text(NAMED_ENTRY)
    result = routilux("run", "named.py:flow", "--params", params, "--no-progress", cwd=tmp_path)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [expected], result.stderr


def test_no_params_warning_when_the_entry_takes_any_keys(tmp_path):
    result = routilux("run", f"{FLOWS}:flow", "--params", '{"count": 2, "cout": 5}',
                      "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr


def test_jobs_into_a_closed_pipe_stops_quietly(tmp_path):
    from routilux.checkpoint import SQLiteStore

    store = SQLiteStore(tmp_path / "many.sqlite3")
    for i in range(3000):  # far more than a pipe buffer holds
        store.add_intent("f", f"job-{i:05d}", b"x")
    store.close()
    jobs = subprocess.Popen([sys.executable, "-m", "routilux", "jobs", "--store", "many.sqlite3"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert jobs.stdout.readline().startswith(b"job-00000")
    jobs.stdout.close()  # like `| head -1`
    stderr = jobs.stderr.read().decode()
    jobs.wait(30)
    assert stderr == "", stderr


NOT_DURABLE = '''
import threading
from routilux import Flow, Routine


class Grab(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)

    def go(self):
        self.lock = threading.Lock()  # state no checkpoint can hold


flow = Flow(flow_id="not-durable")
flow.add_routine(Grab(), "grab")
'''


def test_run_exits_non_zero_when_the_job_was_not_made_durable(tmp_path):
    (tmp_path / "nd.py").write_text(NOT_DURABLE)
    result = routilux("run", "nd.py:flow", "--no-progress", cwd=tmp_path)
    assert result.returncode == 1
    assert re.search(r"job [0-9a-f-]+ completed$", result.stdout.strip())
    assert re.search(r"^Error: job [0-9a-f-]+ was not made durable: .*'lock'", result.stderr,
                     re.MULTILINE), result.stderr


def test_a_store_path_ending_in_a_slash_is_a_directory_store(tmp_path):
    result = routilux("run", f"{FLOWS}:flow", "--no-progress", "--store", "ckdir/", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ckdir").is_dir() and (tmp_path / "ckdir" / "checkpoint.key").is_file()
