"""The signed checkpoint format: round trip, and refusal of anything not intact.

Every refusal test also proves that nothing was unpickled: the payload holds an
object whose unpickling creates a marker file (``Tripwire``), and the marker must
never appear. A control test shows that the tripwire does fire on a good blob.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pathlib
import pickle
import struct
import time

import pytest

from routilux import CheckpointError, __version__
from routilux.checkpoint import format as fmt
from routilux.runtime.wire import dumps

KEY = b"format-test-key-0123456789abcdef"
OTHER_KEY = b"another-key-0123456789abcdefghij"
FLOW = "flow-A"
WHERE = "store.db (flow 'flow-A')"

class Tripwire:
    """Unpickling this creates ``marker`` (via a stdlib callable, so it works anywhere)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "unpickled.marker"
    yield path


def payload_for(marker: pathlib.Path) -> bytes:
    return dumps({"data": list(range(20)), "tripwire": Tripwire(marker), "text": "x" * 40})


def regions(blob: bytes) -> dict[str, range]:
    """Byte ranges of the format's parts in ``blob``."""
    hlen = struct.unpack_from(">I", blob, 8)[0]
    header_end = 12 + hlen
    plen = struct.unpack_from(">Q", blob, header_end)[0]
    payload_start = header_end + 8
    payload_end = payload_start + plen
    assert payload_end + 32 == len(blob)
    return {
        "magic": range(0, 8),
        "hlen": range(8, 12),
        "header": range(12, header_end),
        "plen": range(header_end, payload_start),
        "payload": range(payload_start, payload_end),
        "mac": range(payload_end, len(blob)),
    }


def signed(header: dict | bytes, payload: bytes, key: bytes = KEY) -> bytes:
    """A validly signed blob with an arbitrary header (bytes: used as is)."""
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = b"".join((
        fmt.MAGIC, struct.pack(">I", len(header_bytes)), header_bytes,
        struct.pack(">Q", len(payload)), payload,
    ))
    return body + hmac.new(key, body, hashlib.sha256).digest()


def refused(blob: bytes, marker: pathlib.Path, *, key: bytes = KEY, flow_id: str | None = FLOW):
    """Decode must raise CheckpointError (returned) and must not unpickle anything."""
    with pytest.raises(CheckpointError) as info:
        fmt.decode(blob, key, flow_id, WHERE)
    assert not marker.exists(), f"the payload was unpickled: {info.value}"
    message = str(info.value)
    assert message.startswith(WHERE + ":"), f"message does not say where: {message}"
    return message


# ------------------------------------------------------------------ round trip
def test_round_trip_header_and_payload(marker):
    obj = {"numbers": list(range(100)), "nested": {"a": (1, 2.5, "z")}, "bytes": b"\x00\xff"}
    jobs = [{"job_id": "j1", "status": "running", "error": None}]
    before = time.time()
    blob = fmt.encode(FLOW, dumps(obj), KEY, jobs)
    header, loaded = fmt.decode(blob, KEY, FLOW, WHERE)
    assert loaded == obj
    assert header["format_version"] == fmt.FORMAT_VERSION == 1
    assert header["routilux_version"] == __version__
    assert header["flow_id"] == FLOW
    assert header["jobs"] == jobs
    assert before <= header["created_at"] <= time.time()
    assert blob.startswith(b"RTLXCKPT")
    # decode without a flow id check, and read_header without unpickling
    assert fmt.decode(blob, KEY)[1] == obj
    header2, raw = fmt.read_header(blob, KEY)
    assert header2 == header and pickle.loads(raw) == obj


def test_tripwire_fires_on_a_good_blob(marker):
    """Control: the refusal tests would notice an unpickling."""
    blob = fmt.encode(FLOW, payload_for(marker), KEY)
    fmt.read_header(blob, KEY)  # verifying alone never unpickles
    assert not marker.exists()
    fmt.decode(blob, KEY, FLOW)
    assert marker.exists()


def test_empty_payload_and_no_jobs():
    blob = fmt.encode(FLOW, dumps(None), KEY)
    header, obj = fmt.decode(blob, KEY, FLOW)
    assert obj is None and header["jobs"] == []


# ------------------------------------------------------------------ flipped bytes
@pytest.mark.parametrize("xor", [0x01, 0x80, 0xFF])
def test_a_flipped_byte_anywhere_is_refused_and_never_unpickled(marker, xor):
    blob = fmt.encode(FLOW, payload_for(marker), KEY, [{"job_id": "j", "status": "running"}])
    parts = regions(blob)
    assert len(parts["payload"]) > 100
    seen_regions = set()
    for position in range(len(blob)):  # every single byte of the blob
        damaged = bytearray(blob)
        damaged[position] ^= xor
        message = refused(bytes(damaged), marker)
        region = next(name for name, r in parts.items() if position in r)
        seen_regions.add(region)
        if region == "magic":
            assert "not a routilux checkpoint" in message, message
        elif region in ("header", "payload", "mac"):
            assert "integrity check failed" in message, (region, message)
        else:  # a length field: the framing no longer adds up
            assert "truncated" in message or "corrupted" in message \
                or "integrity" in message, (region, message)
    assert seen_regions == set(parts)


def test_flipped_bytes_are_refused_by_read_header_too(marker):
    blob = fmt.encode(FLOW, payload_for(marker), KEY)
    for position in range(0, len(blob), 7):
        damaged = bytearray(blob)
        damaged[position] ^= 0x10
        with pytest.raises(CheckpointError):
            fmt.read_header(bytes(damaged), KEY, WHERE)
    assert not marker.exists()


# ------------------------------------------------------------------ truncation
def test_truncation_at_every_length_is_refused(marker):
    blob = fmt.encode(FLOW, payload_for(marker), KEY)
    for length in range(len(blob)):  # every proper prefix, including empty
        message = refused(blob[:length], marker)
        assert "truncated" in message, (length, message)


def test_trailing_bytes_are_refused(marker):
    blob = fmt.encode(FLOW, payload_for(marker), KEY)
    for extra in (b"\x00", b"junk", blob[-32:]):
        message = refused(blob + extra, marker)
        assert "corrupted" in message and "trailing" in message, message


def test_payload_swapped_between_two_valid_blobs_is_refused(marker):
    """Splicing the payload of one checkpoint into another's frame breaks the MAC."""
    good = fmt.encode(FLOW, dumps({"n": 1}), KEY)
    evil = fmt.encode(FLOW, payload_for(marker), KEY)
    g, e = regions(good), regions(evil)
    spliced = (
        good[: g["hlen"].start] + evil[e["hlen"].start: e["mac"].start] + good[g["mac"].start:]
    )
    message = refused(spliced, marker)
    assert "integrity check failed" in message


# ------------------------------------------------------------------ keys, flows, versions
def test_wrong_key_is_refused(marker):
    blob = fmt.encode(FLOW, payload_for(marker), KEY)
    message = refused(blob, marker, key=OTHER_KEY)
    assert "integrity check failed" in message and "another key" in message
    assert "not loaded" in message


def test_checkpoint_of_another_flow_is_refused(marker):
    blob = fmt.encode("flow-B", payload_for(marker), KEY)
    message = refused(blob, marker, flow_id=FLOW)
    assert "'flow-B'" in message and "'flow-A'" in message and "belongs to flow" in message


@pytest.mark.parametrize("version", [0, 2, 99, "1", None])
def test_foreign_format_version_is_refused(marker, version):
    header = {
        "format_version": version, "routilux_version": "9.9.9", "flow_id": FLOW,
        "created_at": time.time(), "jobs": [],
    }
    if version is None:
        del header["format_version"]
    blob = signed(header, payload_for(marker))
    fmt.read_header(signed({**header, "format_version": 1}, b"x"), KEY)  # framing is right
    message = refused(blob, marker)
    assert "format version" in message and repr(version) in message, message
    assert "reads version 1" in message


def test_signed_but_unreadable_header_is_refused(marker):
    message = refused(signed(b"\xff not json {", payload_for(marker)), marker)
    assert "unreadable header" in message


def test_bad_magic_is_refused(marker):
    blob = fmt.encode(FLOW, payload_for(marker), KEY)
    message = refused(b"SQLite format 3\x00" + blob[16:], marker)
    assert "not a routilux checkpoint" in message
    message = refused(b"\x80\x04" + blob, marker)  # a bare pickle is not a checkpoint
    assert "not a routilux checkpoint" in message


def test_verified_payload_needing_missing_code_is_a_checkpoint_error():
    payload = b"\x80\x04cno_such_module_routilux_test\nThing\n)\x81."
    blob = fmt.encode(FLOW, payload, KEY)
    with pytest.raises(CheckpointError) as info:
        fmt.decode(blob, KEY, FLOW, WHERE)
    message = str(info.value)
    assert message.startswith(WHERE) and "could not be loaded" in message
    assert "ModuleNotFoundError" in message and "importable" in message


def test_checkpoint_error_is_exported_and_a_routilux_error():
    import routilux

    assert routilux.CheckpointError is CheckpointError
    assert issubclass(CheckpointError, routilux.RoutiluxError)
