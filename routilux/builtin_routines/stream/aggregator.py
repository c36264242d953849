"""Aggregator: wait for several messages, then emit them merged."""

from __future__ import annotations

from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine
from routilux.exceptions import ConfigurationError

_CONFLICTS = ("error", "first", "last")


class Aggregator(BuiltinRoutine):
    """Joins messages: emits one merged message per complete group.

    How a group completes:

    * ``expected_sources=["a", "b"]``: one message from each named source. The source
      of a message is its ``source_key`` field (default ``"source"``; set it upstream,
      e.g. with a connection ``param_mapping`` or a Mapper). A second message from a
      source before the group completes is queued for the next group, so nothing is
      lost; a message from an unknown or missing source raises ``ValueError``.
    * ``count=N``: any N messages.
    * neither: one message per connection into the ``input`` slot (the number of
      connected sources, counted when a message arrives). Messages are counted, not
      told apart; if a source may emit more than once per group, use
      ``expected_sources``.

    Groups are kept per job (the job the message belongs to; one group when used
    outside a flow), so messages of different jobs never mix. A job that ends
    with an incomplete group leaves it pending (``pending_groups()``; ``reset()``
    drops them).

    ``aggregated_data`` merges the messages' keys (in arrival order, the
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

    def __init__(self, **config: Any) -> None:
        # job key -> list of messages (count modes) or source -> queued messages
        self._groups: dict[Any, Any] = {}
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)
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
        if keys & {"count", "expected_sources"}:
            self._groups = {}  # a group started under other settings cannot complete

    def pending_groups(self) -> dict[Any, Any]:
        """A copy of the incomplete groups, by job id (None outside a flow)."""
        return {
            key: {s: list(q) for s, q in group.items()} if isinstance(group, dict) else list(group)
            for key, group in self._groups.items()
        }

    def reset(self) -> None:
        """Drop every incomplete group."""
        self._groups = {}

    def _job_key(self) -> Any:
        context = self.get_execution_context()
        if context is None:
            return None
        return getattr(context.job_state, "job_id", None)

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

    def _on_input(self, /, **message: Any) -> None:
        key = self._job_key()
        sources = self._config["expected_sources"]
        if sources is not None:
            self._by_source(key, sources, message)
        else:
            self._by_count(key, message)

    def _by_count(self, key: Any, message: dict[str, Any]) -> None:
        needed = self._expected_count()
        group = self._groups.setdefault(key, [])
        group.append(dict(message))
        if len(group) < needed:
            return
        del self._groups[key]
        self._emit_group(group, None, None)

    def _by_source(self, key: Any, sources: list[str], message: dict[str, Any]) -> None:
        source_key = self._config["source_key"]
        if source_key not in message:
            raise ValueError(
                f"Aggregator: message has no {source_key!r} field to name its source "
                f"(keys: {sorted(message)}); expected one of {sources}"
            )
        source = message[source_key]
        if source not in sources:
            raise ValueError(
                f"Aggregator: unknown source {source!r}; expected one of {sources}"
            )
        group = self._groups.setdefault(key, {})
        group.setdefault(source, []).append(dict(message))
        if not all(group.get(s) for s in sources):
            return
        messages = [group[s].pop(0) for s in sources]
        if not any(group.values()):
            del self._groups[key]
        self._emit_group(messages, source_key, list(sources))

    def _emit_group(
        self, messages: list[dict[str, Any]], skip: str | None, sources: list[str] | None
    ) -> None:
        merged = self._merge(messages, skip)
        self._count("groups")
        self.emit(
            "output",
            aggregated_data=merged,
            messages=messages,
            count=len(messages),
            sources=sources,
        )
