"""Deterministic, fixed-size message ids.

A job's entry message gets an id derived from the job id; every other message's id
is derived from its parent's id, the emit's index within the parent's step and the
connection's index. A redelivered step that emits the same way produces the same
ids, which is how the supervisor recognises duplicates. Ids are 63-bit integers,
so they do not grow along a chain or a cycle.
"""

from __future__ import annotations

import hashlib

MASK = (1 << 63) - 1


def root_id(job_id: str, salt: str = "entry") -> int:
    """The id of a job's entry message (or another root message, by ``salt``)."""
    digest = hashlib.blake2b(f"{job_id}/{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & MASK


def emit_id(parent_id: int, emit_index: int) -> int:
    """The id of the ``emit_index``-th emit of the step handling ``parent_id``."""
    # Tuples of ints hash deterministically (no per-process salt), and fast.
    # Inlined in Router.on_emit: change both together.
    return hash((parent_id, emit_index)) & MASK


def delivery_id(emit: int, connection_index: int) -> int:
    """The id of the delivery of emit ``emit`` through its n-th connection."""
    return hash((emit, connection_index, 1)) & MASK
