"""The Ray benchmark runs end to end at smoke sizes, so it cannot rot (no timing
is asserted: the sizes are too small to mean anything)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.slow]
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ray_backend.py"


def test_ray_benchmark_smoke(ray_address, tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--cycles", "20", "--messages", "50", "--kills", "1"],
        capture_output=True, text=True, timeout=55, cwd=tmp_path,
        env={**os.environ, "RAY_ADDRESS": ray_address},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    heads = [line.split(":")[0] for line in out.stdout.splitlines()]  # Ray prints too
    mine = [h for h in heads if h in ("round trip", "messages/s", "kill -> redelivered")]
    assert mine == ["round trip", "messages/s", "kill -> redelivered"], out.stdout
