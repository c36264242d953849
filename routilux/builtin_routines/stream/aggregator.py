"""Aggregator: wait for several messages, then emit them merged."""

from __future__ import annotations

from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine
from routilux.exceptions import ConfigurationError

_CONFLICTS = ("error", "first", "last")
STATE_KEY = "aggregator_state"


class Aggregator(BuiltinRoutine):
    """Joins messages: emits one merged message per complete group.

    How a group completes:

    * ``expected_sources=["a", "b"]``: one message from each named source. The source
      of a message is its ``source_key`` field (default ``"source"``; set it upstream,
      e.g. with a Mapper). A second message from a source before the group completes
      is queued for the next group, so nothing is lost; a message from an unknown or
      missing source raises ``ValueError``.
    * ``count=N``: any N messages.
    * neither: one message per connection into the ``input`` slot (the number of
      connected sources). Messages are counted, not told apart; if a source may emit
      more than once per group, use ``expected_sources``.

    The waiting messages are kept in the ``input`` slot's merge state, which the
    runtime keeps per job: messages of different jobs never mix, a new job starts
    with no group, and the handler itself holds no state (so it behaves the same in
    a process routine, across restarts and in checkpoints). Used standalone, the
    state is the slot's own (:attr:`pending`, :meth:`reset`).

    ``aggregated_data`` merges the messages' keys (in group order, the
    ``source_key`` field left out in source mode). Two messages giving one key
    different values raise ``ValueError`` with ``on_conflict="error"`` (default);
    ``"first"`` or ``"last"`` keep one of them.

    Config: ``count`` (int >= 1 or None), ``expected_sources`` (list of names or
    None), ``source_key`` (default ``"source"``), ``on_conflict`` (default
    ``"error"``).

    Slot ``input``.
    Event ``output(aggregated_data, messages, count, sources)``: ``messages`` the
    list of message dicts (arrival order; in source mode, ``expected_sources``
    order), ``count`` their number, ``sources`` the source names (source mode) or
    None.
    """

    CONFIG_DEFAULTS = {
        "count": None,
        "expected_sources": None,
        "source_key": "source",
        "on_conflict": "error",
    }

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_group, merge_strategy=self._accumulate)
        self.define_event("output", ["aggregated_data", "messages", "count", "sources"])

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "count":
            return self._check_int(key, value, minimum=1, allow_none=True)
        if key == "expected_sources":
            if value is None:
                return None
            if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
                raise self._bad_config(key, "a non-empty list of source names or None", value)
            if len(set(value)) != len(value):
                raise self._bad_config(key, "a list without duplicates", value)
            return list(value)
        if key == "source_key":
            return self._check_str(key, value)
        if key == "on_conflict":
            return self._check_choice(key, value, _CONFLICTS)
        return value

    def _config_changed(self, keys: set[str]) -> None:
        if keys & {"count", "expected_sources", "source_key"}:
            self.reset()  # a group started under other settings cannot complete

    # -- standalone state --------------------------------------------------------------
    @property
    def pending(self) -> list[dict[str, Any]]:
        """Messages waiting for their group (standalone use; in a flow the waiting
        messages belong to the job)."""
        state = self.get_slot("input").data.get(STATE_KEY)  # type: ignore[union-attr]
        if not state:
            return []
        if state["mode"] == "count":
            return [] if state["complete"] else list(state["messages"])
        queues = state["queues"]
        if state["complete"]:
            queues = {s: q[1:] for s, q in queues.items()}
        return [m for q in queues.values() for m in q]

    def reset(self) -> None:
        """Drop the waiting messages (standalone state)."""
        self.get_slot("input").clear()  # type: ignore[union-attr]

    # -- grouping (runs as the slot's merge strategy, where the flow keeps job state) --
    def _expected_count(self) -> int:
        count = self._config["count"]
        if count is not None:
            return count
        connected = len(self.get_slot("input").connections)  # type: ignore[union-attr]
        if connected == 0:
            raise ConfigurationError(
                "Aggregator needs count, expected_sources, or connections into its input "
                "slot to know when a group is complete"
            )
        return connected

    def _accumulate(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Merge strategy: add ``new`` to the group state in ``old`` (pure function)."""
        state = old.get(STATE_KEY)
        sources = self._config["expected_sources"]
        if sources is None:
            needed = self._expected_count()
            fresh = not state or state.get("mode") != "count" or state["complete"]
            messages = [*([] if fresh else state["messages"]), dict(new)]
            return {
                STATE_KEY: {
                    "mode": "count",
                    "messages": messages,
                    "complete": len(messages) >= needed,
                }
            }
        source_key = self._config["source_key"]
        if source_key not in new:
            raise ValueError(
                f"Aggregator: message has no {source_key!r} field to name its source "
                f"(keys: {sorted(new)}); expected one of {sources}"
            )
        source = new[source_key]
        if source not in sources:
            raise ValueError(f"Aggregator: unknown source {source!r}; expected one of {sources}")
        if not state or state.get("mode") != "sources" or state["sources"] != sources:
            queues: dict[Any, list[dict[str, Any]]] = {s: [] for s in sources}
        elif state["complete"]:  # the head of each queue went out with the last group
            queues = {s: list(q[1:]) for s, q in state["queues"].items()}
        else:
            queues = {s: list(q) for s, q in state["queues"].items()}
        queues[source].append(dict(new))
        return {
            STATE_KEY: {
                "mode": "sources",
                "sources": list(sources),
                "queues": queues,
                "complete": all(queues[s] for s in sources),
            }
        }

    # -- handler -------------------------------------------------------------------------
    def _merge(self, messages: list[dict[str, Any]], skip: str | None) -> dict[str, Any]:
        policy = self._config["on_conflict"]
        merged: dict[str, Any] = {}
        for message in messages:
            for key, value in message.items():
                if key == skip:
                    continue
                if key in merged and merged[key] != value:
                    if policy == "error":
                        raise ValueError(
                            f"Aggregator: messages disagree on key {key!r} "
                            f"({merged[key]!r} vs {value!r}); set on_conflict='first' or "
                            "'last', or rename the keys upstream"
                        )
                    if policy == "first":
                        continue
                merged[key] = value
        return merged

    def _on_group(self, data: dict[str, Any]) -> None:
        state = data[STATE_KEY]
        if not state["complete"]:
            return
        if state["mode"] == "count":
            messages, sources, skip = state["messages"], None, None
        else:
            sources = state["sources"]
            messages = [state["queues"][s][0] for s in sources]
            skip = self._config["source_key"]
        merged = self._merge(messages, skip)
        self._count("groups")
        self.emit(
            "output",
            aggregated_data=merged,
            messages=[dict(m) for m in messages],
            count=len(messages),
            sources=None if sources is None else list(sources),
        )
