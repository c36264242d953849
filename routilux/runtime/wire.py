"""Framing and pickling for the pipe between a routine actor and its process.

Frames are a 4-byte big-endian length followed by a payload, over a Unix socket
pair (one round trip costs about as much as a ``multiprocessing.Pipe``). A payload
is a *batch*: one or more messages, each a 4-byte length and a cloudpickle, so that
many steps go to a child in one write and many emits come back in one frame
(:class:`Packer` builds one, :func:`unpack` reads it).
"""

from __future__ import annotations

import io
import pickle
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

import cloudpickle

from routilux.exceptions import SerializationError
from routilux.serialization import is_plain_callable

_HEADER = struct.Struct(">I")
# What a message is, for an error naming it: a string, or a function building one.
Label = str | Callable[[], str]
_MAX_DESCRIBE_DEPTH = 20
_PROTOCOL = pickle.HIGHEST_PROTOCOL


class _Reusable(threading.local):
    """One cloudpickle pickler per thread, reused: building a pickler costs more than
    pickling a small message with it."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.pickler = cloudpickle.Pickler(self.buffer, protocol=_PROTOCOL)
        self.free = True


_reusable = _Reusable()
# cloudpickle's Pickler.dump only wraps the C pickler's dump to reword a recursion
# error (done below): calling the C one directly saves a Python frame per message.
_c_dump = pickle.Pickler.dump
_RECYCLE_BYTES = 1 << 20  # a buffer grown past this is not kept


def dumps(obj: Any) -> bytes:
    """cloudpickle ``obj`` (classes from ``__main__`` travel by value)."""
    local = _reusable
    if not local.free:  # pickling from inside a pickling (a __reduce__ calling us)
        return cloudpickle.dumps(obj, protocol=_PROTOCOL)
    local.free = False
    buffer = local.buffer
    pickler = local.pickler
    try:
        _c_dump(pickler, obj)
        return buffer.getvalue()
    except RecursionError as exc:  # what cloudpickle.Pickler.dump raises instead
        raise pickle.PicklingError(
            "Could not pickle object as excessively deep recursion required."
        ) from exc
    finally:
        if buffer.tell() > _RECYCLE_BYTES:  # do not keep a large buffer alive
            local.buffer = io.BytesIO()
            local.pickler = cloudpickle.Pickler(local.buffer, protocol=_PROTOCOL)
        else:
            buffer.seek(0)
            buffer.truncate()
            pickler.clear_memo()
        local.free = True


loads = pickle.loads


def pack_one(message: Any) -> bytes:
    """A batch holding the one ``message``."""
    payload = dumps(message)
    return _HEADER.pack(len(payload)) + payload


# A successful step's end, the most common message from a routine process, travels
# as a fixed-size record instead of a pickle: a tag byte no pickle starts with (they
# start with the PROTO opcode), the step's number, its start and its end.
_DONE = struct.Struct(">BQdd")
_DONE_TAG = ord("D")


def pack_done(seq: int, started: float, ended: float) -> bytes:
    """A successful step's end, read back by :func:`unpack` as
    ``("done", seq, None, started, ended)``."""
    return _DONE.pack(_DONE_TAG, seq, started, ended)


def unpack(batch: bytes) -> list[Any]:
    """The messages of a batch, in order."""
    view = memoryview(batch)
    unpack_from = _HEADER.unpack_from
    done_from = _DONE.unpack_from
    out = []
    offset = 0
    end = len(batch)
    while offset < end:
        (size,) = unpack_from(view, offset)
        offset += 4
        if view[offset] == _DONE_TAG:
            _, seq, started, ended = done_from(view, offset)
            out.append(("done", seq, None, started, ended))
        else:
            out.append(loads(view[offset : offset + size]))
        offset += size
    return out


class Packer:
    """Builds a batch message by message; a message that cannot be pickled raises
    and leaves the batch as it was. Not thread-safe: one owner at a time."""

    __slots__ = ("parts", "count", "size")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.count = 0
        self.size = 0

    def add(self, message: Any, what: Label, culprit: Any = None) -> int:
        """Append ``message``; returns its size. SerializationError (naming what
        cannot be pickled, see :func:`dumps_or_explain`) if it cannot be pickled."""
        return self.add_bytes(dumps_or_explain(message, what, culprit))

    def add_bytes(self, payload: bytes) -> int:
        """Append a message already encoded (a pickle, or :func:`pack_done`)."""
        self.parts.append(_HEADER.pack(len(payload)))
        self.parts.append(payload)
        self.count += 1
        self.size += len(payload) + 4
        return len(payload) + 4

    def take(self) -> bytes:
        """The batch so far (emptied)."""
        batch = b"".join(self.parts)
        self.parts.clear()
        self.count = 0
        self.size = 0
        return batch


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


def dumps_or_explain(obj: Any, what: Label, culprit: Any = None) -> bytes:
    """Pickle ``obj`` or raise SerializationError naming the offending part
    (searched for in ``culprit``, the user's data, when ``obj`` wraps it).
    ``what`` may be a function returning the label: on hot paths it is built
    only when something cannot be pickled."""
    try:
        return dumps(obj)
    except Exception as exc:
        if not isinstance(what, str):
            what = what()
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
