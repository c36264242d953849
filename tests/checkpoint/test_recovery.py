"""Recovery: kill a real host process at many points and recover in a new one.

The durable program (``durable_prog.py``) runs a chain with a thread routine and a
PROCESS routine that keep exact counters and a sink that accumulates a sum. Every
recovered run must end with exactly the figures of an uninterrupted run: the sink's
sum and count, every routine's counters and ``stats()``, and the JobState's
per-routine processed counts.

Nothing here sleeps to let things settle: the tests read the programs' stdout lines
(``submitted``, ``children``, ``result`` ...). The one deliberate wait is the kill
time itself, waited for as a deadline on the program's ``result`` line.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from helpers import Program, wait_gone

from routilux import CheckpointError, ConfigurationError, Flow, Routine
from routilux.checkpoint import DirectoryStore, SQLiteStore
from routilux.checkpoint.format import decode
from routilux.checkpoint.stores import verify_blob
from routilux.runtime.job_pickle import resolve_jobs

HERE = Path(__file__).resolve().parent
PROG = "durable_prog.py"
PROG_KEY = b"durable-prog-test-key-0123456789"
PROG_FLOW = "durable-test-flow"
MESSAGES = 320
RUN_ARGS = ["--messages", str(MESSAGES), "--work", "8000", "--interval", "0.05"]
KILLS = 20
PROGRESS_EVERY = 8  # the sink says its count every 8 messages: kill points
KEY = b"recovery-test-key-0123456789abcd"

def store_path(tmp: Path, kind: str, name: str = "store") -> str:
    return str(tmp / (f"{name}.db" if kind == "sqlite" else name))


def open_prog_store(kind: str, path: str):
    if kind == "sqlite":
        return SQLiteStore(path, key=PROG_KEY)
    return DirectoryStore(path, key=PROG_KEY)


def comparable(result: dict) -> dict:
    """What must be identical between runs (the process routine's pid may differ)."""
    return {k: v for k, v in result.items() if k != "scale_pid"}


def differences(got: dict, want: dict) -> dict:
    return {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}


def wait_for_line(program: Program, word: str, timeout: float) -> str | None:
    """The ``word`` line if it arrives within ``timeout`` seconds, else None."""
    try:
        return program.expect(word, timeout=timeout)
    except AssertionError:
        if program.popen.poll() is not None:
            raise
        return None


# ------------------------------------------------------------------ reference runs
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """``reference(kind, strategy) -> (result, seconds)`` of an uninterrupted run.

    Two runs each: their results must be identical (the workload is deterministic);
    the duration is the shorter of the two (from ``submitted`` to ``result``).
    """
    cache: dict[tuple[str, str], tuple[dict, float]] = {}

    def measure(kind: str, strategy: str) -> tuple[dict, float]:
        if (kind, strategy) in cache:
            return cache[kind, strategy]
        results, durations = [], []
        for attempt in range(2):
            tmp = tmp_path_factory.mktemp(f"ref-{kind}-{strategy}-{attempt}")
            program = Program(
                [str(HERE / PROG), "run", kind, store_path(tmp, kind), "--strategy", strategy,
                 *RUN_ARGS], tmp / "stderr.txt",
            )
            try:
                program.expect("submitted")
                started = time.monotonic()
                line = program.expect("result", timeout=45)
                durations.append(time.monotonic() - started)
                results.append(json.loads(line))
                assert program.wait() == 0, program.describe()
            finally:
                program.close()
        assert results[0]["status"] == "completed", results[0]
        assert comparable(results[0]) == comparable(results[1]), "the workload is not deterministic"
        assert results[0]["sink_count"] == MESSAGES
        cache[kind, strategy] = (results[0], min(durations))
        return cache[kind, strategy]

    return measure


def inspect_store(kind: str, path: str, job_id: str) -> str:
    """Where the killed run's job was, as far as the store knows."""
    store = open_prog_store(kind, path)
    try:
        blob = store.load_latest(PROG_FLOW)
        if blob is None:
            assert len(store.intents(PROG_FLOW)) == 1, "neither a checkpoint nor an intent"
            return "intent only"
        verify_blob(store, blob, path)
        payload = decode(blob, store.key, PROG_FLOW)[1]
        finished = [decode(b, store.key, PROG_FLOW)[1] for b in store.load_finished(PROG_FLOW)]
        if any(st.job_id == job_id for st in finished):
            return "checkpoint: job finished"
        resolve_jobs(payload["jobs"], store, PROG_FLOW, path)  # its history parts
        (record,) = payload["jobs"]
        return f"checkpoint: job {record['state'].status}"
    finally:
        store.close()


def kill_and_recover(spawn, kind: str, strategy: str, tmp: Path, kill_at: int,
                     reference_result: dict) -> dict:
    """One cycle: run, SIGKILL once the sink has taken ``kill_at`` messages (0: right
    after ``submitted``), recover, compare."""
    path = store_path(tmp, kind)
    args = ["--strategy", strategy, *RUN_ARGS]
    run = spawn(PROG, "run", kind, path, *args, "--say-progress", str(PROGRESS_EVERY))
    job_id = run.expect("submitted")
    started = time.monotonic()
    if kill_at:
        while int(run.expect("progress")) < kill_at:
            pass
    finished_first = wait_for_line(run, "result", 0)
    killed_at = time.monotonic() - started
    processes = run.kill()
    old_children = {p.pid for p in processes}
    if finished_first is None:
        assert len(old_children) == 1, "the process routine's process runs before submit"
    assert not wait_gone(processes), "the killed host's routine processes kept running"
    where = inspect_store(kind, path, job_id)
    ended = finished_first is not None or where == "checkpoint: job finished"

    # A job that had ended comes back finished: nothing to wait for (and should it
    # wrongly come back unfinished, the comparison below reports it at once).
    recover_args = [*args, "--timeout", "30"] + (["--no-wait"] if ended else [])
    rec = spawn(PROG, "recover", kind, path, *recover_args)
    recovered = json.loads(rec.expect("recovered"))
    new_children = set(json.loads(rec.expect("children")))
    result = json.loads(rec.expect("result", timeout=40))
    assert rec.wait() == 0, rec.describe()
    assert [r[0] for r in recovered] == [job_id]
    assert not (old_children & new_children)
    got, want = comparable(result), comparable(reference_result)
    return {
        "kill_at_count": kill_at, "killed_at": round(killed_at, 3), "store": where,
        "recovered_status": recovered[0][1], "ended_before_kill": ended,
        "diff": differences(got, want),
    }


# ------------------------------------------------------------------ the kill loop
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("kind", "strategy"), [("sqlite", "concurrent"), ("dir", "sequential")])
def test_sigkill_at_many_points_then_recover_gives_the_exact_result(
    kind, strategy, tmp_path, spawn, reference
):
    ref, duration = reference(kind, strategy)
    # Spread over the job's progress (the sink's count), so that the spread holds
    # on a busy machine too: kill 0 lands right after execute() returned, the last
    # when the last message reached the sink (before or after the job-end checkpoint).
    steps = MESSAGES // PROGRESS_EVERY
    kill_points = [PROGRESS_EVERY * round(steps * i / (KILLS - 1)) for i in range(KILLS)]
    outcomes = []
    for i, kill_at in enumerate(kill_points):
        tmp = tmp_path / f"kill-{i:02d}"
        tmp.mkdir()
        outcomes.append(kill_and_recover(spawn, kind, strategy, tmp, kill_at, ref))
    report = "\n".join(json.dumps(o) for o in outcomes)
    print(f"run of {duration:.3f} s; kills:\n{report}")
    wrong = [o for o in outcomes if o["diff"]]
    assert not wrong, f"recovered results differ from the uninterrupted run:\n{report}"
    mid_run = [o for o in outcomes if not o["ended_before_kill"]]
    assert len(mid_run) >= KILLS * 2 // 3, f"too few kills landed mid-run:\n{report}"
    assert sum(o["store"] == "checkpoint: job running" for o in outcomes) >= KILLS // 2, report


@pytest.mark.slow
def test_recovered_flow_runs_its_process_routine_in_a_new_process(tmp_path, spawn, reference):
    ref, duration = reference("sqlite", "concurrent")
    path = store_path(tmp_path, "sqlite")
    args = ["--strategy", "concurrent", *RUN_ARGS]
    run = spawn(PROG, "run", "sqlite", path, *args)
    run.expect("submitted")
    old = set(json.loads(run.expect("children")))
    assert len(old) == 1, "one process routine, one child process"
    assert wait_for_line(run, "result", duration * 0.3) is None
    for proc in run.kill():
        assert proc.pid in old
    rec = spawn(PROG, "recover", "sqlite", path, *args)
    assert json.loads(rec.expect("recovered"))[0][1] == "running"
    new = set(json.loads(rec.expect("children")))
    result = json.loads(rec.expect("result"))
    assert len(new) == 1 and not (new & old)
    assert result["scale_pid"] in new, "steps after recovery ran in the new process"
    assert comparable(result) == comparable(ref)
    # the caller's object of the process routine holds the exact state
    assert result["counters"]["scale"] == ref["counters"]["scale"]
    assert result["stats"]["scale"] == ref["stats"]["scale"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_killed_again_while_recovering_then_recovered(kind, tmp_path, spawn, reference):
    """A crash during a recovered run is recovered from too (three hosts, two kills).

    Each host is killed right after a checkpoint of its own that holds the running
    job (a known point, whatever the machine's load)."""
    ref, _ = reference("sqlite", "concurrent")
    path = store_path(tmp_path, kind)
    args = ["--strategy", "concurrent", *RUN_ARGS, "--say-checkpoints"]
    run = spawn(PROG, "run", kind, path, *args)
    job_id = run.expect("submitted")
    kill_after_a_running_cut(run)
    again = spawn(PROG, "recover", kind, path, *args)
    assert json.loads(again.expect("recovered")) == [[job_id, "running"]]
    kill_after_a_running_cut(again)
    assert inspect_store(kind, path, job_id) == "checkpoint: job running"
    last = spawn(PROG, "recover", kind, path, *args)
    assert json.loads(last.expect("recovered")) == [[job_id, "running"]]
    assert comparable(json.loads(last.expect("result"))) == comparable(ref)


def kill_after_a_running_cut(program: Program) -> None:
    """SIGKILL ``program`` once it has written a checkpoint with its job running."""
    while json.loads(program.expect("checkpoint")) == 0:
        pass
    wait_gone(program.kill())


# ------------------------------------------------------------------ pause, shutdown, intents
@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_pause_in_one_process_resume_in_another(kind, tmp_path, spawn, reference):
    ref, _ = reference("sqlite", "concurrent")
    path = store_path(tmp_path, kind)
    args = ["--strategy", "concurrent", *RUN_ARGS]
    first = spawn(PROG, "pause", kind, path, *args, "--pause-at", str(MESSAGES // 3))
    job_id = first.expect("submitted")
    paused = json.loads(first.expect("pause"))
    assert paused["status"] == "paused"
    assert MESSAGES // 3 <= paused["sink_count"] < MESSAGES
    assert first.wait() == 0  # left with os._exit: pause() alone made the job durable
    store = open_prog_store(kind, path)
    assert [j["status"] for j in store.list_jobs()] == ["paused"]
    store.close()

    second = spawn(PROG, "resume", kind, path, *args)
    assert json.loads(second.expect("recovered")) == [[job_id, "paused"]]
    result = json.loads(second.expect("result"))
    assert comparable(result) == comparable(ref)


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_shutdown_then_recover_in_another_process(kind, tmp_path, spawn, reference):
    ref, _ = reference("sqlite", "concurrent")
    path = store_path(tmp_path, kind)
    args = ["--strategy", "concurrent", *RUN_ARGS]
    first = spawn(PROG, "shutdown", kind, path, *args, "--pause-at", str(MESSAGES // 2))
    job_id = first.expect("submitted")
    state = json.loads(first.expect("shutdown"))
    assert state["status"] == "paused", "shutdown marks unfinished jobs paused in memory"
    assert state["sink_count"] < MESSAGES
    assert first.wait() == 0
    second = spawn(PROG, "recover", kind, path, *args)
    assert json.loads(second.expect("recovered")) == [[job_id, "running"]]
    result = json.loads(second.expect("result"))
    assert comparable(result) == comparable(ref)


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_job_killed_right_after_execute_returns_is_recovered_from_its_intent(
    kind, tmp_path, spawn, reference
):
    ref, _ = reference("sqlite", "concurrent")
    path = store_path(tmp_path, kind)
    args = ["--strategy", "concurrent", *RUN_ARGS]
    # "submit": the first step never returns and no periodic checkpoint is due, so
    # the job intent written by execute() is all there is.
    run = spawn(PROG, "submit", kind, path, *args)
    job_id = run.expect("submitted")
    wait_gone(run.kill())
    store = open_prog_store(kind, path)
    assert store.load_latest(PROG_FLOW) is None
    assert len(store.intents(PROG_FLOW)) == 1
    assert [(j["job_id"], j["status"]) for j in store.list_jobs()] == [(job_id, "running")]
    store.close()

    rec = spawn(PROG, "recover", kind, path, *args)
    assert json.loads(rec.expect("recovered")) == [[job_id, "running"]]
    result = json.loads(rec.expect("result"))
    assert comparable(result) == comparable(ref)
    store = open_prog_store(kind, path)
    assert store.intents(PROG_FLOW) == [], "the final checkpoint covers the intent"
    store.close()


def test_completed_job_comes_back_completed(tmp_path, spawn, reference):
    """A job that completed (and nothing after it) comes back completed and settled."""
    ref, _ = reference("sqlite", "concurrent")
    path = store_path(tmp_path, "sqlite")
    args = ["--strategy", "concurrent", *RUN_ARGS]
    run = spawn(PROG, "run", "sqlite", path, *args, "--hard-exit")
    job_id = run.expect("submitted")
    assert json.loads(run.expect("result"))["status"] == "completed"
    assert run.wait() == 0  # os._exit right after: no shutdown checkpoint
    rec = spawn(PROG, "recover", "sqlite", path, *args, "--no-wait")
    assert json.loads(rec.expect("recovered")) == [[job_id, "completed"]]
    result = json.loads(rec.expect("result"))
    assert comparable(result) == comparable(ref)


class Recorder(Routine):
    """Records every ``x``; ``x == 2`` waits for ``RECORDER_GATE``."""

    def __init__(self):
        super().__init__()
        self.got = []
        self.define_slot("trigger", handler=self.take)

    def take(self, x):
        if x == 2:
            RECORDER_GATE.wait(30)
        self.got.append(x)


RECORDER_GATE = threading.Event()


def test_resubmitted_job_id_is_recovered_from_its_intent(tmp_path):
    """Flow.execute(job_id=...) accepts the id of a finished job; that new run must be
    as durable as any other. Host A is left running (as if it had crashed: its store
    is all host B sees)."""
    RECORDER_GATE.clear()
    host_a = Flow("reuse", checkpoint_store=SQLiteStore(tmp_path / "ck.db", key=KEY),
                  checkpoint_interval=3600)
    host_a.add_routine(Recorder(), "r")
    host_b = Flow("reuse")
    host_b.add_routine(Recorder(), "r")
    try:
        assert host_a.execute("r", {"x": 1}, job_id="daily").status == "completed"
        host_a.execute("r", {"x": 2}, job_id="daily", wait=False)  # durable from here
        jobs = host_b.recover(SQLiteStore(tmp_path / "ck.db", key=KEY))
        RECORDER_GATE.set()
        assert jobs[-1].wait(3), "the re-submitted job was not continued"
        assert host_b.routines["r"].got == [1, 2]
    finally:
        RECORDER_GATE.set()
        host_a.shutdown()
        host_b.shutdown()


# ------------------------------------------------------------------ in-process recovery errors
class Holder(Routine):
    """Keeps whatever it is given; ``keep_lock`` stores an unpicklable lock."""

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.define_slot("trigger", handler=self.take)

    def take(self, keep_lock=False, **_):
        self.seen += 1
        if keep_lock:
            self.guard = threading.Lock()


def test_unpicklable_thread_routine_state_is_a_clear_checkpoint_error(tmp_path):
    store = SQLiteStore(tmp_path / "ck.db", key=KEY)
    flow = Flow("unpicklable", checkpoint_store=store, checkpoint_interval=3600)
    holder = Holder()
    flow.add_routine(Holder(), "fine")
    flow.add_routine(holder, "holder")
    try:
        job = flow.execute("holder", {"keep_lock": True})
        assert job.status == "completed"  # a failed checkpoint does not fail the job
        with pytest.raises(CheckpointError) as info:
            flow.checkpoint(timeout=30)
        message = str(info.value)
        assert "'holder'" in message, message
        assert "guard" in message and "lock" in message, message
        assert "'fine'" not in message
        # the supervisor keeps working
        assert flow.execute("fine", {}).status == "completed"
        assert flow.metrics()["fine"]["processed"] == 1
        assert flow.execute("holder", {}).status == "completed"
        assert holder.seen == 2
        # once the attribute is gone, checkpoints work again and recover
        del holder.guard
        flow.checkpoint(timeout=30)
    finally:
        flow.shutdown()
    fresh = Flow("unpicklable", checkpoint_store=SQLiteStore(tmp_path / "ck.db", key=KEY))
    fresh.add_routine(Holder(), "fine")
    fresh.add_routine(Holder(), "holder")
    jobs = fresh.recover()
    assert fresh.routines["holder"].seen == 2
    assert all(job.is_terminal for job in jobs)
    fresh.shutdown()


def test_unpicklable_process_routine_state_is_a_clear_checkpoint_error(tmp_path):
    """The child process leaves unpicklable attributes out of the state it reports;
    a checkpoint must refuse that state rather than silently lose the attribute."""
    store = SQLiteStore(tmp_path / "ck.db", key=KEY)
    flow = Flow("unpicklable-process", checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Holder(), "holder", execution="process")
    try:
        assert flow.execute("holder", {"keep_lock": True}).status == "completed"
        with pytest.raises(CheckpointError, match=r"'holder'.*lock"):
            flow.checkpoint(timeout=30)
    finally:
        flow.shutdown()


class Flood(Routine):
    """Emits ``n`` messages in one step."""

    def __init__(self):
        super().__init__()
        self.define_slot("trigger", handler=self.go)
        self.define_event("out", ["i"])

    def go(self, n):
        for i in range(n):
            self.emit("out", i=i)


class GatedSink(Routine):
    """Its first message waits for ``SINK_GATE`` (``SINK_ENTERED`` tells it arrived)."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.define_slot("inp", handler=self.take)

    def take(self, i):
        SINK_ENTERED.set()
        SINK_GATE.wait(30)
        self.count += 1


SINK_GATE = threading.Event()
SINK_ENTERED = threading.Event()


class RecordingStore(SQLiteStore):
    """Records how many live jobs each checkpoint it saved holds."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.live_jobs: list[int] = []

    def save(self, flow_id, blob, jobs):
        self.live_jobs.append(len(decode(blob, self.key, flow_id)[1]["jobs"]))
        super().save(flow_id, blob, jobs)


def test_checkpoint_either_writes_or_raises_under_backpressure(tmp_path):
    SINK_GATE.clear()
    SINK_ENTERED.clear()
    store = RecordingStore(tmp_path / "ck.db", key=KEY)
    flow = Flow("flooded", "concurrent", checkpoint_store=store, checkpoint_interval=3600,
                max_queued_per_routine=5)
    flow.add_routine(Flood(), "flood")
    flow.add_routine(GatedSink(), "sink")
    flow.connect("flood", "out", "sink", "inp")
    outcome: list = []

    def take_checkpoint():
        try:
            flow.checkpoint(timeout=20)
            outcome.append("returned")
        except CheckpointError as exc:
            outcome.append(exc)

    try:
        job = flow.execute("flood", {"n": 200}, wait=False)
        assert SINK_ENTERED.wait(10)
        taker = threading.Thread(target=take_checkpoint)
        taker.start()
        SINK_GATE.set()  # the sink's steps end; the flood step stays blocked on room
        taker.join(20)
        assert outcome, "flow.checkpoint() did not return"
        assert job.wait(20) and job.status == "completed"
        if outcome[0] == "returned":
            assert any(live for live in store.live_jobs), (
                f"checkpoint() returned, but no checkpoint of the running job was written "
                f"(live jobs per checkpoint: {store.live_jobs})"
            )
    finally:
        SINK_GATE.set()
        flow.shutdown()


class Tripwire:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class Armed(Routine):
    """A routine whose saved state contains a tripwire."""

    def __init__(self, marker: Path | None = None):
        super().__init__()
        self.wire = Tripwire(marker) if marker is not None else None
        self.define_slot("trigger", handler=lambda **kw: None)


def write_armed_checkpoint(store, marker: Path, flow_id: str = "armed") -> None:
    flow = Flow(flow_id, checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Armed(marker), "armed")
    flow.execute("armed", {})
    flow.checkpoint(timeout=30)
    flow.shutdown()
    assert not marker.exists()


def recover_armed(store, flow_id: str = "armed") -> list:
    flow = Flow(flow_id)
    flow.add_routine(Armed(), "armed")
    try:
        return flow.recover(store)
    finally:
        flow.shutdown()


def flip_latest(kind: str, path: Path, position: int) -> None:
    if kind == "sqlite":
        db = sqlite3.connect(path)
        rowid, data = db.execute("SELECT id, data FROM checkpoints ORDER BY id DESC").fetchone()
        data = bytearray(data)
        data[position] ^= 0x20
        db.execute("UPDATE checkpoints SET data = ? WHERE id = ?", (bytes(data), rowid))
        db.commit()
        db.close()
    else:
        latest = sorted((path / "armed").glob("*.ckpt"))[-1]
        data = bytearray(latest.read_bytes())
        data[position] ^= 0x20
        latest.write_bytes(bytes(data))


def make(kind: str, path: Path, key: bytes = KEY):
    return SQLiteStore(path, key=key) if kind == "sqlite" else DirectoryStore(path, key=key)


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_recover_from_an_intact_store_unpickles_the_state(kind, tmp_path):
    """Control for the tamper tests: an intact checkpoint does get loaded."""
    marker = tmp_path / "marker"
    path = tmp_path / ("ck.db" if kind == "sqlite" else "ck")
    write_armed_checkpoint(make(kind, path), marker)
    jobs = recover_armed(make(kind, path))
    assert marker.exists() and len(jobs) == 1


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
@pytest.mark.parametrize("position", [3, 40, -200, -100, -1])
def test_recover_refuses_a_tampered_store(kind, position, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / ("ck.db" if kind == "sqlite" else "ck")
    write_armed_checkpoint(make(kind, path), marker)
    flip_latest(kind, path, position)
    with pytest.raises(CheckpointError) as info:
        recover_armed(make(kind, path))
    assert not marker.exists(), "a tampered checkpoint was unpickled"
    assert str(path) in str(info.value) and "'armed'" in str(info.value)


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_recover_refuses_a_wrong_key_and_a_tampered_intent(kind, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / ("ck.db" if kind == "sqlite" else "ck")
    write_armed_checkpoint(make(kind, path), marker)
    with pytest.raises(CheckpointError, match="integrity check failed"):
        recover_armed(make(kind, path, key=b"the-wrong-key-0123456789abcdefgh"))
    assert not marker.exists()
    # a job intent is verified too
    store = make(kind, path)
    flow = Flow("intent-only", checkpoint_store=store, checkpoint_interval=3600)
    gate = threading.Event()

    class Blocker(Routine):
        def __init__(self):
            super().__init__()
            self.define_slot("trigger", handler=lambda **kw: gate.wait(30))

    flow.add_routine(Blocker(), "b")
    flow.execute("b", {"wire": Tripwire(marker)}, wait=False)
    intent = store.intents("intent-only")[0]
    tampered = bytearray(intent)
    tampered[len(tampered) // 2] ^= 1
    if kind == "sqlite":
        db = sqlite3.connect(path)
        db.execute("UPDATE intents SET data = ?", (bytes(tampered),))
        db.commit()
        db.close()
    else:
        next((path / "intent-only").glob("*.intent")).write_bytes(bytes(tampered))
    fresh = Flow("intent-only")
    fresh.add_routine(Blocker(), "b")
    try:
        with pytest.raises(CheckpointError, match=r"job intent.*integrity check failed"):
            fresh.recover(make(kind, path))
        assert not marker.exists()
    finally:
        gate.set()
        fresh.shutdown()
        flow.shutdown()


def test_recover_refuses_a_checkpoint_of_another_flow(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "ck.db"
    write_armed_checkpoint(make("sqlite", path), marker, flow_id="other")
    db = sqlite3.connect(path)
    db.execute("UPDATE checkpoints SET flow_id = 'armed'")  # moved under another flow
    db.commit()
    db.close()
    with pytest.raises(CheckpointError, match="belongs to flow 'other', not 'armed'"):
        recover_armed(make("sqlite", path))
    assert not marker.exists()


def test_recover_needs_a_store():
    flow = Flow("no-store")
    flow.add_routine(Armed(), "armed")
    with pytest.raises(ConfigurationError, match="checkpoint_store"):
        flow.recover()


def test_recover_with_an_empty_store_returns_no_jobs(tmp_path):
    flow = Flow("empty")
    flow.add_routine(Armed(), "armed")
    assert flow.recover(SQLiteStore(tmp_path / "ck.db", key=KEY)) == []
    flow.shutdown()
