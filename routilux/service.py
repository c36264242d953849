"""Runtime: a long-running host for many flows and their jobs, in one process.

Embed it in a service: add flows (their unfinished jobs are recovered from the
store), submit jobs (durable when ``submit`` returns), and call
:meth:`Runtime.serve_forever`. SIGTERM or SIGINT stops intake, lets running steps
finish, checkpoints every unfinished job and returns; the next start resumes them.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from routilux._validate import check_int, check_number, invalid
from routilux.checkpoint.stores import DEFAULT_STORE, CheckpointStore, SQLiteStore, open_store
from routilux.exceptions import ConfigurationError, FlowStateError
from routilux.flow import Flow
from routilux.job_state import JobState
from routilux.runtime.bus import BusEvent, EventBus, Subscription
from routilux.stop_waiter import StopWaiter

logger = logging.getLogger("routilux.service")


class Runtime:
    """Hosts flows and jobs; see the module docstring.

    ``store`` is a checkpoint store or a path (a directory for a DirectoryStore,
    else an SQLite file); it defaults to ``./.routilux/routilux.sqlite3``.
    ``checkpoint_interval``, if given, overrides that of the flows added.
    ``keep_finished_jobs`` bounds how many finished JobStates stay in memory (older
    ones are forgotten here but stay listed in the store until its retention).
    """

    def __init__(
        self,
        store: Any = None,
        *,
        checkpoint_interval: float | None = None,
        keep_finished_jobs: int = 1000,
    ) -> None:
        check_number("checkpoint_interval", checkpoint_interval, optional=True)
        check_int("keep_finished_jobs", keep_finished_jobs, 0)
        if store is None:
            store = SQLiteStore(DEFAULT_STORE)
        elif isinstance(store, (str, Path)):
            store = open_store(store)
        elif not isinstance(store, CheckpointStore):
            raise invalid("store", store, "a checkpoint store, a path or None")
        self.store = store
        self.checkpoint_interval = checkpoint_interval
        self.keep_finished_jobs = keep_finished_jobs
        self.flows: dict[str, Flow] = {}
        self._live: dict[str, tuple[Flow, JobState]] = {}
        self._finished: OrderedDict[str, JobState] = OrderedDict()
        self._lock = threading.RLock()
        self._accepting = True
        self._stop = threading.Event()
        self._waiter: StopWaiter | None = None  # while serve_forever waits in the main thread
        self._closed = False
        self.bus = EventBus()
        self._http: Any = None  # the web monitor, once serve_http() started it

    def subscribe(
        self,
        target: Callable[[BusEvent], Any] | None = None,
        kinds: Iterable[str] | None = None,
        maxsize: int = 10_000,
    ) -> Subscription:
        """Watch every hosted flow (events carry their ``flow_id``); see
        :meth:`Flow.subscribe`."""
        return self.bus.subscribe(target, kinds, maxsize)

    # ------------------------------------------------------------------ flows
    def add_flow(self, flow: Flow) -> list[JobState]:
        """Host ``flow`` and recover its unfinished jobs from the store.

        Returns the jobs recovered (running ones continue at once; paused ones wait
        for :meth:`resume`).
        """
        if not isinstance(flow, Flow):
            raise ConfigurationError(f"add_flow expects a Flow, got {type(flow).__name__}")
        with self._lock:
            self._check_open()
            if flow.flow_id in self.flows:
                raise ConfigurationError(f"a flow with id {flow.flow_id!r} is already hosted")
            if flow.checkpoint_store is None:
                flow.checkpoint_store = self.store
            if self.checkpoint_interval is not None:
                flow.checkpoint_interval = self.checkpoint_interval
            flow.bus = self.bus  # one bus, one sequence, for every hosted flow
            self.flows[flow.flow_id] = flow
        try:
            recovered = flow.recover(flow.checkpoint_store)
        except BaseException:
            with self._lock:  # not hosted: a retry must not find it "already hosted"
                self.flows.pop(flow.flow_id, None)
            flow.shutdown()
            raise
        with self._lock:
            for job in recovered:
                self._track(flow, job)
        if recovered:
            logger.info("flow %r: recovered %d job(s)", flow.flow_id, len(recovered))
        return recovered

    def _flow(self, flow_id: str) -> Flow:
        flow = self.flows.get(flow_id)
        if flow is None:
            raise ConfigurationError(
                f"no flow {flow_id!r} in this runtime; flows: {sorted(self.flows)}"
            )
        return flow

    # ------------------------------------------------------------------ jobs
    def submit(
        self,
        flow_id: str,
        entry_routine_id: str,
        params: dict[str, Any] | None = None,
        *,
        entry_slot: str = "trigger",
        timeout: float | None = None,
        job_id: str | None = None,
    ) -> JobState:
        """Start a job without waiting; it is durable (in the store) on return.

        ``job_id`` makes submission idempotent: if a job of that id is known here
        or in the store, that job is returned (or raised about) instead of a new one.
        """
        with self._lock:
            self._check_open()
            if not self._accepting:
                raise FlowStateError("the runtime is shutting down and accepts no new jobs")
            flow = self._flow(flow_id)
            if job_id is not None:
                if job_id in self._live or job_id in self._finished:
                    return self._resolve(job_id)[1]
                if any(r["job_id"] == job_id for r in flow.checkpoint_store.list_jobs(flow_id)):
                    raise FlowStateError(
                        f"job {job_id!r} is already recorded in the store "
                        "(finished, or unfinished and not recovered by add_flow)"
                    )
        job = flow.execute(
            entry_routine_id,
            params,
            entry_slot=entry_slot,
            timeout=timeout,
            wait=False,
            job_id=job_id,
        )
        with self._lock:
            self._track(flow, job)
            if len(self._live) % 64 == 0:
                self._sweep()  # keep memory bounded for callers that never list jobs
        return job

    def _track(self, flow: Flow, job: JobState) -> None:
        if job.is_terminal:
            self._remember_finished(job)
        else:
            self._live[job.job_id] = (flow, job)

    def _remember_finished(self, job: JobState) -> None:
        self._finished[job.job_id] = job
        self._finished.move_to_end(job.job_id)
        while len(self._finished) > self.keep_finished_jobs:
            self._finished.popitem(last=False)

    def _sweep(self) -> None:
        """Move jobs that have ended from the live table to the bounded history."""
        for job_id, (_, job) in list(self._live.items()):
            if job.is_terminal:
                del self._live[job_id]
                self._remember_finished(job)

    def _resolve(self, job: JobState | str) -> tuple[Flow | None, JobState]:
        job_id = job.job_id if isinstance(job, JobState) else job
        with self._lock:
            if job_id in self._live:
                return self._live[job_id]
            if job_id in self._finished:
                return None, self._finished[job_id]
        raise ConfigurationError(f"no job {job_id!r} in this runtime")

    def get_job(self, job_id: str) -> JobState:
        """The JobState of ``job_id`` (live, or finished and still remembered)."""
        return self._resolve(job_id)[1]

    def jobs(self, status: str | None = None) -> list[JobState]:
        """Jobs known to this runtime, oldest first, optionally of one status."""
        with self._lock:
            self._sweep()
            everything = list(self._finished.values()) + [job for _, job in self._live.values()]
        everything.sort(key=lambda j: j.created_at)
        return [j for j in everything if status is None or j.status == status]

    def wait(self, job: JobState | str, timeout: float | None = None) -> bool:
        """Wait for one job to settle (completed, failed, cancelled or paused)."""
        state = self._resolve(job)[1]
        settled = state.wait(timeout)
        if settled and state.is_terminal:
            with self._lock:
                if state.job_id in self._live:
                    del self._live[state.job_id]
                    self._remember_finished(state)
        return settled

    def wait_all(self, timeout: float | None = None) -> bool:
        """Wait for every live job to settle; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._sweep()
                pending = [job for _, job in self._live.values() if job.status != "paused"]
            if not pending:
                return True
            for job in pending:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if not job.wait(remaining):
                    return False

    def cancel(self, job: JobState | str, reason: str = "") -> JobState:
        """Cancel one job."""
        flow, state = self._resolve(job)
        if flow is not None and not state.is_terminal:
            flow.cancel(state, reason)
        return state

    def pause(
        self, job: JobState | str, reason: str = "", *, wait: bool = True, timeout: float = 10.0
    ) -> JobState:
        """Pause one job: no new step starts. With ``wait``, returns once its running
        steps ended and it is checkpointed (up to ``timeout`` seconds)."""
        flow, state = self._resolve(job)
        if flow is None or state.is_terminal:
            raise FlowStateError(f"job {state.job_id} is {state.status}; it cannot be paused")
        return flow.pause(state, reason, wait=wait, timeout=timeout)

    def resume(self, job: JobState | str) -> JobState:
        """Resume a paused job."""
        flow, state = self._resolve(job)
        if flow is None:
            raise FlowStateError(f"job {state.job_id} is {state.status}; it cannot be resumed")
        return flow.resume(state)

    # ------------------------------------------------------------------ web monitor
    def serve_http(
        self, host: str = "127.0.0.1", port: int = 8470, *, token: str | None = None
    ) -> str:
        """Serve the HTTP API and the web monitor on a background thread.

        Returns the URL (``port=0`` picks a free port). Binding beyond loopback needs
        ``token`` (or ``ROUTILUX_TOKEN``). :meth:`shutdown` (and so SIGTERM under
        :meth:`serve_forever`) stops it. Needs ``pip install 'routilux[web]'``.
        """
        try:  # optional dependencies: imported only when asked for
            from routilux.web.server import WebServer
        except ImportError as exc:
            raise ConfigurationError(
                f"the web monitor needs the 'web' extra: pip install 'routilux[web]' ({exc})"
            ) from None
        with self._lock:
            self._check_open()
            if self._http is not None:
                raise FlowStateError(f"this runtime already serves HTTP at {self._http.url}")
            self._http = server = WebServer(self, host, port, token=token)
        try:
            return server.start()
        except BaseException:
            with self._lock:
                self._http = None
            raise

    @property
    def http_url(self) -> str | None:
        """The URL of the web monitor, or None when not serving."""
        server = self._http
        return None if server is None else server.url

    # ------------------------------------------------------------------ lifecycle
    def shutdown(self, drain: bool = False, timeout: float = 30.0) -> None:
        """Stop accepting jobs and stop every flow.

        With ``drain=True`` first wait (up to ``timeout``) for live jobs to finish.
        Then running steps finish and every unfinished job is checkpointed; the next
        Runtime on the same store resumes them. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._accepting = False
        if drain:
            self.wait_all(timeout)
        with self._lock:
            http, self._http = self._http, None
        if http is not None:  # before the flows: no request meets a stopped flow
            http.stop()
        for flow in list(self.flows.values()):
            try:
                flow.shutdown(timeout=timeout)
            except Exception:
                logger.exception("flow %r did not shut down cleanly", flow.flow_id)
        with self._lock:
            self._closed = True
            self._sweep()
        self.stop()

    def close(self) -> None:
        """Same as :meth:`shutdown` with its defaults."""
        self.shutdown()

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to return (thread-safe; usable from a handler)."""
        self._stop.set()
        waiter = self._waiter
        if waiter is not None:
            waiter.wake()

    def serve_forever(self, grace: float = 30.0) -> None:
        """Block until SIGTERM, SIGINT or :meth:`stop`; then shut down gracefully.

        Running steps get up to ``grace`` seconds to finish; unfinished jobs are
        checkpointed and resume when a Runtime on the same store adds their flow.
        Signal handlers are installed only when called from the main thread.
        """
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            if previous:
                # Not Event.wait(): a signal that another thread receives would not
                # run its handler until that wait ended (see stop_waiter.py).
                self._waiter = waiter = StopWaiter()
                try:
                    waiter.wait(self._stop.is_set)
                finally:
                    self._waiter = None
                    waiter.close()
            else:
                self._stop.wait()
        finally:
            try:
                self.shutdown(drain=False, timeout=grace)  # further signals: ignored
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._stop.is_set():
            logger.warning("received %s again: already stopping", name)
            return
        logger.warning("received %s: stopping intake and checkpointing", name)
        with self._lock:
            self._accepting = False
        self.stop()

    def _check_open(self) -> None:
        if self._closed:
            raise FlowStateError("this Runtime has been shut down")

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return f"Runtime(store={self.store!r}, flows={sorted(self.flows)})"
