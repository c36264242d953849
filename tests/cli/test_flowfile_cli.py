"""Flow files on the command line: validate, schema, and run/graph/resume of a file,
always through a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

from helpers import interrupt_run

from routilux.flowfile import flow_file_schema

ROUTINES = '''\
import os
import sys
import time

from routilux import Routine


class Numbers(Routine):
    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("number", ["n"])
        self.define_event("done", ["count"])

    def go(self, **params):
        count = params.get("count", 3)
        for n in range(1, count + 1):
            self.emit("number", n=n)
        self.emit("done", count=count)


class Total(Routine):
    def __init__(self):
        super().__init__()
        self.total = 0
        self.seen = 0
        self.define_slot("number", handler=self.add)

    def add(self, n):
        if self.get_config("delay"):
            time.sleep(self.get_config("delay"))  # the workload: a slow step
        self.total += n
        self.seen += 1
        print(f"progress {self.seen}", file=sys.stderr, flush=True)
        self.send_output("total", total=self.total)
'''

FLOW = """\
flow_id: {flow_id}
entry: numbers.trigger
routines:
  numbers: {{class: 'cli_routines:Numbers'}}
  total:
    class: 'cli_routines:Total'
    config: {{delay: {delay}}}
connections:
  - {{from: numbers.number, to: total.number}}
"""


def routilux(*args, cwd, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "routilux", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
    )


def write_flow(tmp_path, name="flow.yaml", flow_id="cli-file", delay=0, extra=""):
    (tmp_path / "cli_routines.py").write_text(ROUTINES)
    path = tmp_path / name
    path.write_text(FLOW.format(flow_id=flow_id, delay=delay) + extra)
    return path


def test_help_of_the_new_commands(tmp_path):
    for command in (["validate"], ["schema"]):
        result = routilux(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Usage:" in result.stdout


def test_validate_a_good_file(tmp_path):
    path = write_flow(tmp_path)
    result = routilux("validate", str(path), "--allow", "cli_routines", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        f"{path}: OK, flow 'cli-file': 2 routine(s), 1 connection(s), entry numbers.trigger\n"
    )
    assert not (tmp_path / "cli_routines.cpython").exists()


def test_validate_reports_every_problem_with_its_position_and_fails(tmp_path):
    good = write_flow(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({
        "execution_strategy": "fast",
        "routines": {"a": {"class": "os:system"}, "b": {"class": "Mapper", "workers": 0}},
    }, indent=1))
    result = routilux("validate", str(good), str(bad), "--allow", "cli_routines", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{good}: OK")
    assert [line.split(": error: ")[0] for line in lines[1:4]] == [
        f"{bad}:2:24", f"{bad}:5:13", f"{bad}:9:15",
    ]
    assert "module 'os' is not in the allow-list" in lines[2]
    assert lines[4] == f"{bad}: 3 error(s), 0 warning(s)"
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_strict_fails_on_warnings(tmp_path):
    path = write_flow(tmp_path, extra="  - {from: numbers.number, to: total.number}\n")
    loose = routilux("validate", str(path), "--allow", "cli_routines", cwd=tmp_path)
    assert loose.returncode == 0
    warning = f"{path}:10:5: warning: numbers.number -> total.number is connected twice"
    assert warning in loose.stdout
    strict = routilux("validate", "--strict", str(path), "--allow", "cli_routines", cwd=tmp_path)
    assert strict.returncode == 1


def test_schema_prints_the_json_schema(tmp_path):
    result = routilux("schema", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout) == flow_file_schema()


def test_run_a_flow_file_prints_outputs_and_final_events(tmp_path):
    path = write_flow(tmp_path)
    result = routilux("run", str(path), "--allow", "cli_routines", "--params", '{"count": 3}',
                      "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    job_id = re.match(r"job (\S+) started \(flow 'cli-file', entry numbers.trigger\)",
                      lines[0]).group(1)
    assert lines[1:] == [
        "outputs (3):",
        '  total [total] {"total": 1}',
        '  total [total] {"total": 3}',
        '  total [total] {"total": 6}',
        "final events (1):",
        '  numbers.done {"count": 3}',
        f"job {job_id} completed",
    ]


def test_run_refuses_a_module_outside_the_allow_list_in_one_line(tmp_path):
    path = write_flow(tmp_path)
    result = routilux("run", str(path), "--no-progress", cwd=tmp_path)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}:4:")
    assert "module 'cli_routines' is not in the allow-list" in lines[0]
    assert not (tmp_path / ".routilux").exists()  # refused before any store was made


def test_a_store_named_in_the_file_is_used_unless_store_is_given(tmp_path):
    path = write_flow(tmp_path, extra="checkpoint: {store: state/flow.sqlite3}\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    result = routilux("run", str(path), "--allow", "cli_routines", "--no-progress",
                      cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "flow.sqlite3").exists()  # next to the file
    assert not (elsewhere / ".routilux").exists()
    given = routilux("run", str(path), "--allow", "cli_routines", "--no-progress",
                     "--store", "mine.sqlite3", cwd=elsewhere)
    assert given.returncode == 0, given.stderr
    assert (elsewhere / "mine.sqlite3").exists()


def test_graph_of_a_flow_file(tmp_path):
    path = write_flow(tmp_path)
    result = routilux("graph", str(path), "--allow", "cli_routines", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "numbers -->|\"number → number\"| total" in result.stdout


def test_resume_a_flow_file_job_needs_neither_flow_nor_allow(tmp_path):
    path = write_flow(tmp_path, flow_id="cli-resume", delay=0.02)
    started, out, returncode = interrupt_run(
        [str(path), "--allow", "cli_routines", "--params", '{"count": 150}', "--no-progress"],
        tmp_path,
        env={**os.environ},
    )
    job_id = re.search(r"job ([0-9a-f-]+) started", started).group(1)
    assert returncode == 130, out
    resumed = routilux("resume", job_id, "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"job {job_id} completed" in resumed.stdout
    assert '{"total": 11325}' in resumed.stdout  # 1 + ... + 150, each counted once


def test_a_flow_file_target_in_another_directory_finds_its_modules(tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    path = write_flow(flows)
    result = routilux("run", os.path.relpath(path, tmp_path), "--allow", "cli_routines",
                      "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert textwrap.dedent('  numbers.done {"count": 3}') in result.stdout
