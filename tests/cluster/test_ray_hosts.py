"""Ray routines survive what a cluster does to them: a driver killed mid-job, a
node removed mid-job. The hosts are programs (``ray_prog.py``)."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("ray")

from cluster.ray_prog import expected

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_driver_killed_mid_job_is_completed_by_recover_in_a_new_process(
    spawn, ray_address, tmp_path
):
    store = str(tmp_path / "store.db")
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    driver = spawn("ray_prog.py", "run", store, "60", env=env)
    driver.expect("submitted", timeout=60)
    done = int(driver.expect("progress", timeout=60))
    assert done < 60  # mid-job
    driver.kill()
    log = (tmp_path / "stderr-0.txt").read_text()
    assert f"ray routines run on the Ray cluster at {ray_address} (RAY_ADDRESS)" in log

    again = spawn("ray_prog.py", "recover", store, env=env)
    assert again.expect("recovered", timeout=60) == "running"
    result = json.loads(again.expect("result", timeout=90))
    assert again.wait(30) == 0
    want = expected(60)
    assert result["job"] == want["job"]
    assert result["work"] == want["work"]  # each message counted exactly once


def test_a_node_removed_mid_job_the_job_still_completes_exactly(spawn, tmp_path):
    host = spawn("ray_prog.py", "twonode", "40")
    assert host.until_line("removed", timeout=90)
    result = json.loads(host.expect("result", timeout=120))
    assert host.wait(60) == 0
    want = expected(40)
    assert result["job"] == want["job"]
    assert result["work"] == want["work"]
    assert result["crashes"] and all(r.startswith("Ray ") for r in result["crashes"])
    log = (tmp_path / "stderr-0.txt").read_text()
    assert "ray routines run on the Ray cluster at " in log and "(ray_address)" in log
