import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_basic_example_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "basic_example.py")],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "completed" in out.stdout
    assert "'words': 6" in out.stdout


def test_readme_main_command_runs_the_cpu_pipeline(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "routilux", "run", f"{ROOT}/examples/cpu_pipeline.py:flow"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "completed" in out.stdout and "counter" in out.stdout
    assert (tmp_path / ".routilux" / "routilux.sqlite3").exists()
