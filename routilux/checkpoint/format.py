"""The checkpoint file format: header + cloudpickle payload + HMAC-SHA256.

Layout (all integers big-endian)::

    magic      8 bytes   b"RTLXCKPT"
    hlen       4 bytes   length of the header
    header     hlen      JSON: format_version, routilux_version, flow_id, created_at, jobs
    plen       8 bytes   length of the payload
    payload    plen      cloudpickle of the flow's state
    mac        32 bytes  HMAC-SHA256(key, everything above)

The MAC is checked before anything is unpickled: a truncated, corrupted or tampered
checkpoint, or one written with another key, raises :class:`CheckpointError` and is
never loaded. Checkpoints are code (pickle): the key is what keeps untrusted files out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import struct
import time
from typing import Any

from routilux._version import __version__
from routilux.exceptions import CheckpointError

MAGIC = b"RTLXCKPT"
FORMAT_VERSION = 1
_MAC_SIZE = 32
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEADER = json.JSONEncoder(separators=(",", ":"))  # one per process: built once


def encode(
    flow_id: str,
    payload: bytes,
    key: bytes,
    jobs: list[dict[str, Any]] | None = None,
    parts: list[str] | None = None,
) -> bytes:
    """Build a signed checkpoint from an already pickled ``payload``.

    ``parts``: the digests of the stored parts the payload refers to (see
    :mod:`routilux.runtime.job_pickle`); the store keeps those parts while it keeps
    this checkpoint.
    """
    fields = {
        "format_version": FORMAT_VERSION,
        "routilux_version": __version__,
        "flow_id": flow_id,
        "created_at": time.time(),
        "jobs": jobs or [],
    }
    if parts:
        fields["parts"] = parts
    header = _HEADER.encode(fields).encode()
    pieces = [MAGIC, _U32.pack(len(header)), header, _U64.pack(len(payload)), payload]
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for piece in pieces:
        mac.update(piece)
    pieces.append(mac.digest())
    return b"".join(pieces)  # one copy of the payload, not two


def peek_jobs(blob: bytes) -> list[dict[str, Any]]:
    """The job summaries in a checkpoint's header, read without verifying it.

    For listing only (``routilux jobs``): nothing is unpickled, and a damaged or
    foreign blob gives an empty list. Anything that loads a checkpoint verifies it.
    """
    return _peek(blob, "jobs")


def peek_parts(blob: bytes) -> list[str]:
    """The part digests a checkpoint's header names, read without verifying it (for
    deciding which parts a store keeps; loading verifies every part it uses)."""
    return [p for p in _peek(blob, "parts") if isinstance(p, str)]


def _peek(blob: bytes, field: str) -> list[Any]:
    try:
        if not blob.startswith(MAGIC):
            return []
        (hlen,) = _U32.unpack_from(blob, len(MAGIC))
        start = len(MAGIC) + 4
        value = json.loads(blob[start : start + hlen]).get(field, [])
    except (ValueError, struct.error, AttributeError):
        return []
    return value if isinstance(value, list) else []


def read_header(blob: bytes, key: bytes, where: str = "checkpoint") -> tuple[dict[str, Any], bytes]:
    """Verify ``blob`` and return ``(header, payload_bytes)`` (payload not unpickled)."""
    # A blob shorter than the magic is "truncated" if it is a prefix of it.
    if not (blob.startswith(MAGIC) or MAGIC.startswith(blob)):
        raise CheckpointError(f"{where}: not a routilux checkpoint (bad magic bytes)")
    if len(blob) < len(MAGIC) + 4 + 8 + _MAC_SIZE:
        raise CheckpointError(f"{where}: truncated checkpoint ({len(blob)} bytes)")
    offset = len(MAGIC)
    (hlen,) = _U32.unpack_from(blob, offset)
    offset += 4
    if offset + hlen + 8 + _MAC_SIZE > len(blob):
        raise CheckpointError(f"{where}: truncated checkpoint (header runs past the end)")
    header_bytes = blob[offset : offset + hlen]
    offset += hlen
    (plen,) = _U64.unpack_from(blob, offset)
    offset += 8
    end = offset + plen
    if end + _MAC_SIZE != len(blob):
        kind = "truncated" if end + _MAC_SIZE > len(blob) else "corrupted (trailing bytes)"
        raise CheckpointError(f"{where}: {kind} checkpoint")
    expected = hmac.new(key, blob[:end], hashlib.sha256).digest()
    if not hmac.compare_digest(expected, blob[end:]):
        raise CheckpointError(
            f"{where}: integrity check failed (corrupted, tampered with, or written with "
            "another key); it was not loaded"
        )
    try:
        header = json.loads(header_bytes)
    except ValueError as exc:  # signed but unreadable: written by something else
        raise CheckpointError(f"{where}: unreadable header: {exc}") from None
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint format version {version!r} is not supported by this "
            f"routilux (it reads version {FORMAT_VERSION})"
        )
    return header, blob[offset:end]


def decode(
    blob: bytes, key: bytes, flow_id: str | None = None, where: str = "checkpoint"
) -> tuple[dict[str, Any], Any]:
    """Verify and unpickle a checkpoint; ``flow_id`` must match if given."""
    header, payload = read_header(blob, key, where)
    if flow_id is not None and header.get("flow_id") != flow_id:
        raise CheckpointError(
            f"{where}: checkpoint belongs to flow {header.get('flow_id')!r}, not {flow_id!r}"
        )
    try:
        return header, pickle.loads(payload)
    except Exception as exc:
        raise CheckpointError(
            f"{where}: verified checkpoint could not be loaded ({type(exc).__name__}: {exc}); "
            "is the code that defined its routines importable here?"
        ) from exc
