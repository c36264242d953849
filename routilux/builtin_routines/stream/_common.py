"""Helpers shared by the stream routines."""

from __future__ import annotations

from typing import Any

# Routine.emit(event_name, flow=None, **data) takes these two names for itself, so
# a message carrying them cannot be re-emitted key for key.
RESERVED_KEYS = ("event_name", "flow")


def check_forwardable(owner: str, message: dict[str, Any]) -> None:
    """Refuse to forward a message whose keys ``emit`` would swallow."""
    clash = [key for key in RESERVED_KEYS if key in message]
    if clash:
        raise ValueError(
            f"{owner} cannot forward a message with the key(s) {clash}: Routine.emit "
            "reserves them; rename them where the message is made"
        )
    bad = [key for key in message if not isinstance(key, str)]
    if bad:
        raise TypeError(f"{owner} can only forward str keys, got {bad!r}")
