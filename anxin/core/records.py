"""Records on the topics: the only coupling between ingest, detectors and alerts (DESIGN.md).

Every topic's record is typed here and described in ``anxin/core/README.md``: readings (the
validated telemetry payload plus ``device_id``, ``resident_id`` and ``received_at``), vitals,
alert records (the DESIGN.md contract), alert updates, device commands, alert events, fall
suspicions and one dead-letter shape for every stage. All are JSON, so any consumer in any
language can read them. The ``TypedDict`` forms cost nothing on the hot path; the alert record
is a pydantic model because it is the public contract that every output file follows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# DESIGN.md's kinds; consumers pass unknown kinds through (the 2026-12 extension).
AlertKind = Literal["fall", "wander", "vitals", "sos", "device"]
# A kind added since (``checkin``, ``inactivity``): any short lower-case name is a valid kind.
OtherKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Severity = Literal["warning", "critical"]


class AlertRecord(BaseModel):
    """The alert record contract: on the ``alerts`` topic and in every alert output file."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    kind: AlertKind | OtherKind
    severity: Severity
    resident_id: str
    device_id: str
    ts: float
    detected_at: float
    details: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump())


def alert_id(kind: str, device_id: str, *parts: object) -> str:
    """A deterministic id, so a re-processed reading yields the same alert and dedup is exact."""
    digest = hashlib.blake2b(
        "|".join([kind, device_id, *map(str, parts)]).encode(), digest_size=8
    ).hexdigest()
    return f"{kind}-{digest}"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


# --------------------------------------------------------------------------- topic records


class Reading(TypedDict, total=False):
    """``readings``: a validated telemetry v1 payload plus where and when it arrived."""

    device_id: str
    resident_id: str
    received_at: float
    ts: float
    seq: int
    battery: float
    worn: bool
    vitals: dict[str, Any]
    accel: dict[str, Any]
    location: dict[str, Any]
    event: str
    dropped: list[str]


def pack_accel(reading: dict[str, Any]) -> dict[str, Any]:
    """``reading`` as the ``readings`` topic carries it: its accelerometer rows ``g`` packed.

    - ``mg16``: when every value is a whole number of milli-g within the int16 range (what
      devices with a milli-g resolution send, the fleet simulator too), the base64 of
      little-endian int16 milli-g x, y, z, row after row: 6 bytes a sample, half the JSON text.
      Chosen only when ``mg / 1000.0`` gives back every float64 to the bit.
    - ``g64`` otherwise: the base64 of little-endian float64 x, y, z, row after row.

    The same numbers to the bit either way; a consumer reads them with one ``frombuffer``
    instead of parsing three floats and a list per sample, which was about a seventh of the
    detector worker's time (issue 16). A chunk that is not rows of three numbers (only a test
    producing straight to Kafka could send one) stays as it is.
    """
    accel = reading.get("accel")
    if type(accel) is not dict:
        return reading
    g = accel.get("g")
    if type(g) is not list or not g or set(map(_row_len, g)) != {3}:
        return reading
    try:
        flat = np.fromiter(itertools.chain.from_iterable(g), "<f8", 3 * len(g))
    except (TypeError, ValueError, OverflowError):
        return reading
    packed = {k: v for k, v in accel.items() if k != "g"}
    with np.errstate(over="ignore"):  # beyond ~1e305 g: inf, which the range check refuses
        mg = np.rint(flat * 1000.0)
    if np.abs(mg).max() <= _MG_MAX:  # False for NaN
        whole = mg.astype("<i2")
        if np.array_equal((whole / 1000.0).view(np.int64), flat.view(np.int64)):
            packed["mg16"] = base64.b64encode(whole.tobytes()).decode("ascii")
            return {**reading, "accel": packed}
    packed["g64"] = base64.b64encode(flat.tobytes()).decode("ascii")
    return {**reading, "accel": packed}


_MG_MAX = 32767.0


def _row_len(row: Any) -> int:
    return len(row) if type(row) is list else -1


def accel_samples(accel: Mapping[str, Any]) -> Any:
    """A reading's accelerometer samples: ``mg16`` or ``g64`` unpacked to an N x 3 float64
    array, else ``g`` as it came (None if none is there). Raises ``ValueError`` naming the
    problem when the packed field is not base64 of whole rows."""
    for name, dtype, scale in _PACKED:
        packed = accel.get(name)
        if packed is None:
            continue
        try:
            raw = base64.b64decode(packed, validate=True)
        except (TypeError, ValueError, binascii.Error):
            raise ValueError(f"{name} is not base64") from None
        kind = np.dtype(dtype)
        if not raw or len(raw) % (3 * kind.itemsize):
            raise ValueError(f"{name} holds {len(raw)} bytes, not whole rows of 3 {kind.name}")
        values = np.frombuffer(raw, dtype).astype(np.float64)
        if scale != 1.0:
            values /= scale
        return values.reshape(-1, 3)
    return accel.get("g")


# (field, little-endian dtype, units per g) of the packed forms
_PACKED = (("mg16", "<i2", 1000.0), ("g64", "<f8", 1.0))


class VitalsRecord(TypedDict):
    """``vitals``: one reading's vital signs, keyed by resident so NEWS2 sees all devices."""

    resident_id: str
    device_id: str
    ts: float
    vitals: dict[str, Any]


class AlertUpdate(TypedDict, total=False):
    """``alert-updates``: detector-side changes of an alert (``cancel``, ``resolve``) and the
    wearer's "I'm OK" (``wearer_ok``), keyed by resident."""

    action: str
    alert_id: str
    resident_id: str
    device_id: str
    kind: str
    at: float
    reason: str


class DeviceCommand(TypedDict, total=False):
    """``device-commands``: what the bridge sends down to ``{prefix}/devices/{id}/commands``."""

    device_id: str
    cmd: Literal["check", "notify", "cancel"]
    alert_id: str
    timeout_s: float
    text: str


class AlertEvent(TypedDict):
    """``alert-events``: one row of the alerts room's ``alert_events`` table, as published."""

    event_id: int
    alert_id: str
    state: str
    event: str
    at: float
    by: str | None
    channel: str | None
    note: str | None
    resident_id: str
    kind: str
    severity: str


class FallSuspicion(TypedDict):
    """``fall-suspicions``: an accelerometer fall waiting for the wearer's confirmation.

    Not an alert record (it notifies nobody): it prompts the wearer with a ``check`` and is kept
    for the console and for evaluation. ``outcome`` is ``open`` when raised, then ``confirmed``
    (an alert record with the same ``alert_id`` follows) or ``cancelled``; ``reason`` says why.
    """

    suspicion_id: str
    resident_id: str
    device_id: str
    ts: float
    detected_at: float
    outcome: Literal["open", "confirmed", "cancelled"]
    reason: str
    details: dict[str, Any]


class DeadLetter(TypedDict):
    """``readings-rejected``: the one shape of a dead letter, whichever stage made it.

    ``reason`` is what was wrong, ``stage`` who found it (``ingest``, ``detectors``, a worker's
    agent name, ``alerts``). The raw payload, when there is one, is kept up to a bound
    (``payload_truncated``/``payload_bytes`` say when it was cut), base64 when not UTF-8, so a
    huge or binary message still makes a record Kafka accepts. ``partial`` means the good part of
    the message went on (for example a reading whose bad vitals were set aside).
    """

    reason: str
    stage: str
    topic: str | None
    device_id: str | None
    received_at: float
    ts: float | None
    seq: int | None
    partial: bool
    payload: str | None
    payload_encoding: Literal["utf-8", "base64"] | None
    payload_bytes: int | None
    payload_truncated: bool
    count: NotRequired[int]
    messages: NotRequired[list[dict[str, Any]]]


DEADLETTER_PAYLOAD_MAX = 64 * 1024


def dead_letter(
    reason: str,
    stage: str,
    received_at: float,
    *,
    payload: bytes | None = None,
    topic: str | None = None,
    device_id: str | None = None,
    ts: float | None = None,
    seq: int | None = None,
    partial: bool = False,
    max_payload: int = DEADLETTER_PAYLOAD_MAX,
) -> DeadLetter:
    """The dead-letter record for ``payload`` (see ``DeadLetter``)."""
    text: str | None = None
    encoding: Literal["utf-8", "base64"] | None = None
    kept = b""
    if payload is not None:
        kept = payload[:max_payload]
        try:
            text, encoding = kept.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    return {
        "reason": reason,
        "stage": stage,
        "topic": topic,
        "device_id": device_id,
        "received_at": received_at,
        "ts": ts,
        "seq": seq,
        "partial": partial,
        "payload": text,
        "payload_encoding": encoding,
        "payload_bytes": None if payload is None else len(payload),
        "payload_truncated": payload is not None and len(kept) < len(payload),
    }
