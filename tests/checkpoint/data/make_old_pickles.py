"""Writes the pickles in this folder, in the history formats from before the
history was kept as columns. Run it with routilux at commit e8e7c97 on the path:
``PYTHONPATH=<old checkout> python make_old_pickles.py <this folder>``."""

import pickle
import sys
from datetime import datetime
from pathlib import Path

from routilux.job_state import JobState
from routilux.runtime.job_pickle import HistoryChunks, snapshot
from routilux.runtime.wire import dumps

out = Path(sys.argv[1])


def job():
    s = JobState("flow", "old-job")
    s.created_at = s.updated_at = datetime(2026, 1, 2, 3, 4, 5)
    s.entry = {"routine": "a", "slot": "trigger", "params": {"n": 3}}
    return s


# 1. a checkpointed job: two cuts, the front trimmed past the first chunk
s, chunks = job(), HistoryChunks()
s.history_limit = 4
for n in range(6):
    s.record_execution("a", "out", {"n": n})
for i, r in enumerate(s._history):
    r.wall_time = 1_700_000_000.0 + i
snapshot(s, chunks)
for n in range(6, 10):
    s.record_execution("b", "out", {"n": n})
for i, r in enumerate(s._history):
    r.wall_time = 1_700_000_000.0 + s.history_dropped + i
s._history[-1].wall_time = None  # set by hand: not a number (the old chunk keeps it)
s.set_status("completed")
snap = snapshot(s, chunks)
(out / "old_history_snapshot.pickle").write_bytes(dumps({"state": snap}))

# 2. a whole JobState pickled (history as 4-tuples)
s = job()
s.history_limit = 7
s.history_dropped = 3
for n in range(3):
    s.record_execution("a", "out", {"n": n})
for i, r in enumerate(s._history):
    r.wall_time = 1_700_000_100.0 + i
(out / "old_job_state.pickle").write_bytes(pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL))
