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
