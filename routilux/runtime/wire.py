"""Framing and pickling for the pipe between a routine actor and its process.

Frames are a 4-byte big-endian length followed by a cloudpickle payload, over a
Unix socket pair (one round trip costs about as much as a ``multiprocessing.Pipe``).
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

import cloudpickle

from routilux.exceptions import SerializationError
from routilux.serialization import is_plain_callable

_HEADER = struct.Struct(">I")
_MAX_DESCRIBE_DEPTH = 20


def dumps(obj: Any) -> bytes:
    """cloudpickle ``obj`` (classes from ``__main__`` travel by value)."""
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


loads = pickle.loads


class Channel:
    """A framed, blocking, bidirectional byte channel over a connected socket."""

    __slots__ = ("sock", "_recv_into")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def send(self, payload: bytes) -> None:
        """Write one frame."""
        self.sock.sendall(_HEADER.pack(len(payload)) + payload)

    def recv(self) -> bytes:
        """The next frame; raises EOFError when the peer has gone."""
        header = self._exact(4)
        return self._exact(_HEADER.unpack(header)[0])

    def _exact(self, size: int) -> bytes:
        sock = self.sock
        chunk = sock.recv(size)
        if len(chunk) == size:
            return chunk
        if not chunk:
            raise EOFError("peer closed the channel")
        parts = [chunk]
        remaining = size - len(chunk)
        while remaining:
            chunk = sock.recv(min(remaining, 1 << 20))
            if not chunk:
                raise EOFError("peer closed the channel mid-frame")
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        try:
            self.sock.close()
        except OSError:
            pass


def describe_unpicklable(obj: Any, what: str) -> str:
    """Explain which part of ``obj`` cannot be pickled, e.g. "key 'lock' (a _thread.lock)".

    Public attributes are searched before private ones (a routine's graph refers
    back to the routine itself), and nothing is visited twice. The search is a loop
    bounded in depth, so data nested too deeply to pickle is named, not recursed into.
    """
    seen: set[int] = set()
    for _ in range(_MAX_DESCRIBE_DEPTH):
        seen.add(id(obj))
        if isinstance(obj, dict):
            items = list(obj.items())
            label = "key"
        elif isinstance(obj, (list, tuple)):
            items = list(enumerate(obj))
            label = "item"
        elif hasattr(obj, "__dict__") and not is_plain_callable(obj):
            items = sorted(vars(obj).items(), key=lambda kv: str(kv[0]).startswith("_"))
            label = "attribute"
        else:
            return f"{what} (a {_type_name(obj)})"
        for key, value in items:
            if id(value) in seen:
                continue
            try:
                dumps(value)
            except RecursionError:
                return f"{what} {label} {key!r} (nested too deeply to pickle)"
            except Exception:
                obj, what = value, f"{what} {label} {key!r}"
                break
        else:
            return f"{what} (a {_type_name(obj)})"
    return f"{what} (nested too deeply to describe)"


def dumps_or_explain(obj: Any, what: str, culprit: Any = None) -> bytes:
    """Pickle ``obj`` or raise SerializationError naming the offending part
    (searched for in ``culprit``, the user's data, when ``obj`` wraps it)."""
    try:
        return dumps(obj)
    except Exception as exc:
        raise SerializationError(
            f"cannot pickle {describe_unpicklable(obj if culprit is None else culprit, what)}: "
            f"{type(exc).__name__}: {exc}. "
            "Data sent to or from a process routine, and the routine itself, must be "
            "picklable (no locks, sockets, open files or generators)."
        ) from None


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return (
        f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__
    )
