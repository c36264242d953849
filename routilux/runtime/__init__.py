"""The runtime: the actors that run a flow's jobs (the service class that hosts many
flows is :class:`routilux.Runtime`, in ``routilux/service.py``).

Where things happen
-------------------

- **A message is routed** in :mod:`~routilux.runtime.routing`: an EMIT from a step
  becomes one delivery per connected slot (``Router.on_emit``), queued per job by
  :mod:`~routilux.runtime.dispatch` (sequential or concurrent) and handed to a
  replica with room (``Router.send_batch``; a sequential job's run of deliveries
  for one routine goes together, ``Router.send_run``); its DONE comes back to
  ``Router.on_done`` (the successful steps of a thread replica's batch together, to
  ``Router.on_done_batch``).
- **A crash is handled** in :mod:`~routilux.runtime.restarts` (``Restarts.on_crashed``):
  restart intensity and period, redelivery of the lost messages, out of service.
  Failed *steps* (handler exceptions) go through :mod:`~routilux.runtime.failures`.
- **A checkpoint is cut** in :mod:`~routilux.runtime.checkpointer` (when, and writing
  it); what a cut holds is :mod:`~routilux.runtime.cut`.
- **A job ends** in :mod:`~routilux.runtime.jobs` (``JobBook.settle``/``finish``).

The pieces
----------

``supervisor``   the per-flow pykka actor: a shell that receives and delegates
``plan``         FlowPlan: everything the runtime reads of a Flow, frozen
``commands``     Flow -> supervisor commands (typed records)
``messages``     actor -> supervisor messages (tagged tuples, ``Tag``) and Delivery
``ledger``       the records: routines, replicas, live jobs, in-flight counters
``control``      job commands: start, adopt, pause, resume, cancel
``backends``     the one interface to replicas (thread, process, ray); ``thread_actor``,
                 ``process_actor`` and ``worker`` (the loop in a routine's process);
                 ``ray_backend``, ``ray_replica`` and ``ray_actor`` (loaded only
                 when a flow has a ray routine: ``import routilux`` never imports ray)
``bus``          the event bus the supervisor publishes on

Which thread owns which record
------------------------------

- The **supervisor thread** owns the ledger (ActorHandle, RoutineEntry, JobRun,
  counters), every JobState while its job runs, the gate's ``full``/``escape`` sets,
  and the caller's routine ``_stats`` of process routines (REPORT messages).
- A **thread replica** owns its routine object while a step runs; it posts EMIT,
  DONE_BATCH (its successful steps), DONE (failed or retried ones) and RETURNED.
- A **process replica's reader thread** only reads frames and posts messages
  (EMIT, REPORT, DONE, OUTPUT, DEFER, CRASHED); the actor thread starts children and
  posts RESTARTED.
- A **ray replica's reader thread** only takes step results (in the order sent) and
  posts messages, like a process reader; a restart runs on a thread of its own
  and posts RESTARTED.
- The **timer thread** only posts TIMER messages (retries, timeouts, checkpoints,
  metrics snapshots).
- **Callers** (Flow, Runtime) send commands and read JobStates; they never write the
  ledger.
"""
