"""The frozen plan: everything the runtime reads of a flow, in one immutable record.

A :class:`~routilux.flow.Flow` builds a :class:`FlowPlan` when its supervisor
starts and again whenever the graph or a setting changes; the supervisor swaps
plans between messages. The runtime never reads the ``Flow`` object itself, so no
setting has two sources of truth (a store replaced by ``recover(store)`` reaches the
supervisor with the next plan, not "sometimes").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routilux.runtime.bus import EventBus
from routilux.runtime.restart import RestartPolicy

Route = tuple[str, str, Any]  # (target routine id, target slot, Connection)


@dataclass(frozen=True)
class RoutinePlan:
    """How one routine of a flow runs."""

    routine_id: str  #: its id in the flow
    routine: Any  #: the Routine object (thread routines run it; process ones ship it)
    execution: str = "thread"  #: ``"thread"``, ``"process"`` or ``"ray"``
    workers: int = 1  #: replicas
    restart: RestartPolicy | None = None  #: its own policy, else the flow's
    timeout: float | None = None  #: seconds one step may run (process and ray routines)
    ray_options: Mapping[str, Any] | None = None  #: Ray placement options (ray routines)


@dataclass(frozen=True)
class FlowPlan:
    """One immutable snapshot of a flow, as the runtime sees it."""

    flow_id: str  #: the flow's id (checkpoints are filed under it)
    owner: Any  #: the Flow, handed to handlers by ``get_execution_context()``; never read
    routines: Mapping[str, RoutinePlan]  #: by routine id
    routes: Mapping[tuple[str, str], list[Route]]  #: (routine id, event) -> targets in order
    bus: EventBus  #: where the supervisor publishes what happens
    store: Any = None  #: the checkpoint store, or None (not durable)
    error_handler: Any = None  #: the flow's ErrorHandler (a routine's own one comes first)
    restart: RestartPolicy | None = None  #: the flow's restart policy
    execution_strategy: str = "sequential"  #: ``"sequential"`` or ``"concurrent"``
    max_workers: int = 5  #: busy routine actors at once (concurrent)
    max_queued_per_routine: int = 10_000  #: the backpressure limit
    record_history: bool = True  #: whether JobState.execution_history is kept
    checkpoint_interval: float = 1.0  #: seconds between periodic checkpoints
    keep_finished_jobs: int = 100  #: finished jobs a store keeps per flow
    ray_address: str | None = None  #: the Ray cluster for ray routines (None: see docs)
    #: recovered replica states by routine id (used once, to start the replicas)
    replica_states: Mapping[str, list[bytes | None]] = field(default_factory=dict)

    def restart_policy(self, routine: RoutinePlan) -> RestartPolicy:
        """The policy that governs ``routine``'s restarts."""
        return routine.restart or self.restart or RestartPolicy()
