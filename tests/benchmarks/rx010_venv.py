"""The routilux 0.10 baseline: a virtual environment of its own, made once and reused.

The environment lives under ``$ROUTILUX_BENCH_CACHE`` (default
``~/.cache/routilux-bench``) in ``rx010``. When it cannot be made (no network, no
``venv`` module), the baseline is reported unavailable with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("routilux==0.10.0", "serilux==0.3.1")
VERSION_CHECK = (
    "from importlib.metadata import version; import routilux; "
    "assert version('routilux') == '0.10.0', version('routilux')"
)


class BaselineUnavailable(Exception):
    """The 0.10 environment could not be made or run; the message says why."""


def venv_dir() -> Path:
    cache = os.environ.get("ROUTILUX_BENCH_CACHE") or Path.home() / ".cache" / "routilux-bench"
    return Path(cache) / "rx010"


def _clean_env() -> dict[str, str]:
    # Nothing from our environment may put today's routilux on the 0.10 path.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_clean_env(),
        cwd=tempfile.gettempdir(),
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


_python: Path | None = None
_failure: str | None = None


def ensure_python() -> Path:
    """The 0.10 environment's interpreter, making the environment on first use."""
    global _python, _failure
    if _python is not None:
        return _python
    if _failure is not None:
        raise BaselineUnavailable(_failure)
    directory = venv_dir()
    python = directory / "bin" / "python"
    try:
        if python.exists() and _run([str(python), "-c", VERSION_CHECK], 60).returncode == 0:
            _python = python
            return python
        print(f"making the routilux 0.10 environment in {directory} ...", file=sys.stderr)
        made = _run([sys.executable, "-m", "venv", "--clear", str(directory)], 120)
        if made.returncode != 0:
            raise BaselineUnavailable(f"python -m venv failed: {_last_line(made.stderr)}")
        pip = [str(python), "-m", "pip", "install", "--quiet", *PACKAGES]
        installed = _run(pip, 600)
        if installed.returncode != 0:
            raise BaselineUnavailable(f"pip install failed: {_last_line(installed.stderr)}")
        checked = _run([str(python), "-c", VERSION_CHECK], 60)
        if checked.returncode != 0:
            raise BaselineUnavailable(f"0.10 not importable: {_last_line(checked.stderr)}")
    except (OSError, subprocess.TimeoutExpired) as error:
        _failure = f"{type(error).__name__}: {error}"
        raise BaselineUnavailable(_failure) from None
    except BaselineUnavailable as error:
        _failure = str(error)
        raise
    _python = python
    return python


def run_chain(messages: int) -> float:
    """msg/s of the 10-routine chain on routilux 0.10's sequential strategy."""
    python = ensure_python()
    script = HERE / "rx010_chain.py"
    try:
        done = _run([str(python), str(script), "--messages", str(messages)], 900)
    except subprocess.TimeoutExpired:
        raise BaselineUnavailable("the 0.10 chain did not finish within 900 s") from None
    if done.returncode != 0:
        raise BaselineUnavailable(f"the 0.10 chain failed: {_last_line(done.stderr)}")
    return float(json.loads(_last_line(done.stdout))["msg_per_s"])
