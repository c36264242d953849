"""Every example runs through the CLI, with the very commands the README lists."""

from __future__ import annotations

import importlib.util
import re

import pytest
from helpers import EXAMPLES, ROOT, run_example, run_readme_command


def readme_commands() -> list[str]:
    """The `routilux ...` lines of the code blocks in the README's Examples section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Examples\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("routilux ")]


COMMANDS = readme_commands()

# What each command must print (besides a completed job), keyed by its target.
EXPECTED = {
    "basic_example.py:flow": ['collector [letters] {"word": "actors", "letters": 6}'],
    "basic_example.yaml": ['collector [letters] {"word": "one", "letters": 3}'],
    "builtin_routines_demo.py:flow": ["alerts [received]", "rejected [received]"],
    "builtin_routines_demo.yaml": ["validate.invalid", "render.output", "batch.output"],
    "compat_010.py:build_flow": ["urgent_desk [ticket] {\"id\": 1}",
                                 "general_desk [ticket] {\"id\": 4}"],
    "cpu_pipeline.py:flow": ['total [total] {"primes": 17984, "chunks": 8}'],
    "daemon.py:build_flow": ['total [result] {"sum_of_squares": 385, "numbers": 10}'],
    "durable_job.py:flow": ['total [total] {"total": 210, "numbers": 20}'],
    "error_handling.py:skip_flow": ['sink [value] {"value": 3}', "ValueError: cannot parse"],
    "error_handling.yaml": ['sink [value] {"value": 2}', "ConnectionError"],
    "fan_in_out.py:flow": ['report [report] {"words": 5, "lines": 1, "longest": "fan"}'],
    "fan_in_out.yaml": ['report [report] {"words": 5, "lines": 3, "longest": "append"}'],
    "ray_cluster.py:flow": ['total [total] {"primes": 6057, "chunks": 8}'],
    "self_healing.py:flow": ['summer [sum] {"sum_of_squares": 2870, "numbers": 20}'],
    "self_healing.yaml": ['summer [sum] {"sum_of_squares": 2870, "numbers": 20}'],
}
SLOW = ("cpu_pipeline", "self_healing", "ray_cluster")
NEEDS_RAY = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="needs the ray extra"
)


def target_of(command: str) -> str:
    return command.split()[2].removeprefix("examples/")


def test_every_example_is_run_by_a_readme_command():
    named = " ".join(COMMANDS)
    examples = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".yaml"))
    missing = [name for name in examples if f"examples/{name}" not in named]
    assert not missing, f"examples without a README command: {missing}"
    runs = [target_of(c) for c in COMMANDS if c.startswith("routilux run ")]
    assert sorted(runs) == sorted(EXPECTED)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            c,
            marks=([pytest.mark.slow] if any(s in c for s in SLOW) else [])
            + ([pytest.mark.ray, NEEDS_RAY] if "ray_cluster" in c else []),
        )
        for c in COMMANDS
    ],
    ids=lambda c: target_of(c) if c.startswith("routilux run ") else c.split()[1],
)
def test_readme_command(command, tmp_path):
    running = command.startswith("routilux run ")
    if running:
        command += " --no-progress"
    result = run_readme_command(command, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    if running:
        assert re.search(r"^job \S+ completed$", result.stdout, re.M), result.stdout
        for expected in EXPECTED[target_of(command)]:
            assert expected in result.stdout, result.stdout
    else:
        ok = [line for line in result.stdout.splitlines() if ": OK, flow " in line]
        assert len(ok) == len(list(EXAMPLES.glob("*.yaml"))), result.stdout


def test_readme_main_command_runs_the_cpu_pipeline(tmp_path):
    """The README's first command, with live progress and the default store."""
    out = run_example("cpu_pipeline.py:flow", cwd=tmp_path, cli=True)
    assert out.returncode == 0, out.stderr
    assert "completed" in out.stdout and "counter" in out.stdout
    assert (tmp_path / ".routilux" / "routilux.sqlite3").exists()
