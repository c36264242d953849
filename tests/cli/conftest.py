"""Command-line tests run in temporary directories: none may leave a store behind
in the checkout (the default store is ``./.routilux/`` of the working directory)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

LEFTOVER = Path(__file__).resolve().parent / ".routilux"


@pytest.fixture(autouse=True)
def no_store_in_the_checkout():
    existed = LEFTOVER.exists()
    yield
    if not existed and LEFTOVER.exists():
        shutil.rmtree(LEFTOVER)
        pytest.fail(f"the test left {LEFTOVER} in the checkout: run the CLI with cwd=tmp_path")
