"""Telemetry v1 validation (DESIGN.md contract): strict, field by field, never losing good data.

A message whose envelope is broken (topic, size, encoding, JSON, ``ts``) is rejected whole. A
message whose envelope is sound but carries a bad optional field keeps its good fields: the bad
ones are dropped and named, and the caller dead-letters that part while the reading flows on.
One exception for ``ts``: a message that carries an event, vitals, a position, the battery or
``worn`` flows on at its arrival time when its ``ts`` is unusable (``_validate_fields``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

DEVICE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
EPOCH_2000 = 946_684_800.0
MAX_ACCEL_SAMPLES = 4096

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _ranged(lo: float, hi: float) -> Any:
    return Annotated[float, Field(strict=True, allow_inf_nan=False, ge=lo, le=hi)]


class Vitals(BaseModel):
    """Plausible physiological ranges: outside them a sensor is broken, not a patient ill."""

    model_config = ConfigDict(extra="forbid", strict=True)
    hr: _ranged(20, 300) | None = None  # type: ignore[valid-type]
    spo2: _ranged(50, 100) | None = None  # type: ignore[valid-type]
    sbp: _ranged(40, 300) | None = None  # type: ignore[valid-type]
    dbp: _ranged(20, 200) | None = None  # type: ignore[valid-type]
    rr: _ranged(2, 80) | None = None  # type: ignore[valid-type]
    temp: _ranged(25, 45) | None = None  # type: ignore[valid-type]
    o2: StrictBool | None = None
    acvpu: Literal["A", "C", "V", "P", "U"] | None = None


class Accel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    rate: _ranged(1, 2000)  # type: ignore[valid-type]
    g: Annotated[
        list[Annotated[list[Finite], Field(min_length=3, max_length=3)]],
        Field(min_length=1, max_length=MAX_ACCEL_SAMPLES),
    ]


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    lat: _ranged(-90, 90)  # type: ignore[valid-type]
    lon: _ranged(-180, 180)  # type: ignore[valid-type]
    acc: _ranged(0, 100_000) | None = None  # type: ignore[valid-type]


_FIELDS: dict[str, TypeAdapter[Any]] = {
    "seq": TypeAdapter(Annotated[StrictInt, Field(ge=0)]),
    "battery": TypeAdapter(_ranged(0, 1)),
    "worn": TypeAdapter(StrictBool),
    "vitals": TypeAdapter(Vitals),
    "accel": TypeAdapter(Accel),
    "location": TypeAdapter(Location),
    "event": TypeAdapter(Literal["sos", "fall", "ok", "removed"]),
}


@dataclass(frozen=True)
class Dropped:
    field: str
    reason: str


@dataclass
class Accepted:
    """A usable reading: ``reading`` is the normalised payload plus ``device_id``."""

    device_id: str
    reading: dict[str, Any]
    dropped: list[Dropped] = field(default_factory=list)


@dataclass
class Rejected:
    reason: str
    device_id: str | None = None


def topic_device(topic: str, prefix: str, kind: str) -> str | None:
    """The device id of ``{prefix}/devices/{id}/{kind}``, or None if the topic is not that."""
    head = f"{prefix}/devices/"
    tail = f"/{kind}"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    device_id = topic[len(head) : len(topic) - len(tail)]
    return device_id if DEVICE_ID.match(device_id) else None


def _plain(model: BaseModel) -> dict[str, Any]:
    """The fields that are set, as ``model_dump(exclude_none=True)`` gives them for these flat
    models (scalars and lists of floats): the validated values as they are, where a dump would
    copy every accel sample again (half of an accel chunk's validation)."""
    return {k: v for k, v in model.__dict__.items() if v is not None}


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def _oversize(size: int, max_bytes: int) -> Rejected | None:
    return Rejected(f"payload too large: {size} bytes > {max_bytes}") if size > max_bytes else None


def decode_json(payload: bytes, max_bytes: int) -> dict[str, Any] | Rejected:
    too_large = _oversize(len(payload), max_bytes)
    if too_large is not None:
        return too_large
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(f"payload is not UTF-8 (byte {exc.start})")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if re.search(r"\b(NaN|-?Infinity)\b", text):
            return Rejected("NaN/Infinity are not valid JSON numbers")
        return Rejected(f"invalid JSON: {exc.msg} at position {exc.pos}")
    if not isinstance(data, dict):
        return Rejected(f"payload must be a JSON object, not {type(data).__name__}")
    return data


def validate_telemetry(
    topic: str,
    payload: bytes,
    received_at: float,
    prefix: str = "anxin/v1",
    max_bytes: int = 64 * 1024,
    max_future_s: float = 3600.0,
) -> Accepted | Rejected:
    """Validate one telemetry message against telemetry v1."""
    device_id = topic_device(topic, prefix, "telemetry")
    if device_id is None:
        return _bad_topic(prefix)
    data = decode_json(payload, max_bytes)
    if isinstance(data, Rejected):
        data.device_id = device_id
        return data
    return _validate_fields(device_id, data, received_at, max_future_s)


def validate_decoded(
    topic: str,
    data: dict[str, Any],
    size: int,
    received_at: float,
    prefix: str = "anxin/v1",
    max_bytes: int = 64 * 1024,
    max_future_s: float = 3600.0,
) -> Accepted | Rejected:
    """``validate_telemetry`` of a JSON object the caller has already decoded (the in-process
    replay reads it from its scenario line), ``size`` being its encoded length: the same checks
    and verdicts, without decoding the same bytes a second time."""
    device_id = topic_device(topic, prefix, "telemetry")
    if device_id is None:
        return _bad_topic(prefix)
    too_large = _oversize(size, max_bytes)
    if too_large is not None:
        too_large.device_id = device_id
        return too_large
    return _validate_fields(device_id, data, received_at, max_future_s)


def _bad_topic(prefix: str) -> Rejected:
    return Rejected(f"topic does not match {prefix}/devices/<id>/telemetry with a valid id")


# Fields that mean something without the device's own clock, with the arrival time for it.
_WITHOUT_CLOCK = frozenset({"seq", "battery", "worn", "vitals", "location", "event"})


def _ts_problem(ts: Any, received_at: float, max_future_s: float) -> str | None:
    """Why ``ts`` cannot be the reading's time, or None."""
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        return "required number of epoch seconds is missing or not a number"
    if not math.isfinite(ts) or ts < EPOCH_2000:
        return "before 2000-01-01 (device clock not set?)"
    if ts > received_at + max_future_s:
        return f"{ts - received_at:.0f} s in the future"
    return None


def _validate_fields(
    device_id: str, data: dict[str, Any], received_at: float, max_future_s: float
) -> Accepted | Rejected:
    """The envelope's ``ts``, then each field on its own (module docstring).

    A message whose ``ts`` is unusable (a watch rebooted with its clock not set yet, a clock far
    ahead) is rejected whole unless it carries something that means as much with the arrival
    time: an SOS press, vitals, a position, the battery. Those flow on at the arrival time, the
    ``ts`` named in ``dropped`` (and any accelerometer chunk with it: its samples need the
    device's own clock); rejected, the press of a watch that had just restarted paged nobody.
    """
    ts = data.get("ts")
    problem = _ts_problem(ts, received_at, max_future_s)
    reading: dict[str, Any] = {
        "device_id": device_id,
        "ts": received_at if problem is not None else float(cast(float, ts)),
        "received_at": received_at,
    }
    dropped: list[Dropped] = []
    for key, value in data.items():
        if key == "ts":
            continue
        adapter = _FIELDS.get(key)
        if adapter is None:
            dropped.append(Dropped(key, "unknown field"))
            continue
        if value is None:
            continue
        if problem is not None and key not in _WITHOUT_CLOCK:
            dropped.append(Dropped(key, "its samples need the device's own clock (ts unusable)"))
            continue
        if key == "event" and isinstance(value, str):
            value = value.strip().lower()  # "SOS" is a press of the button: never lose one
        elif key == "vitals" and isinstance(value, dict) and isinstance(value.get("acvpu"), str):
            value = {**value, "acvpu": value["acvpu"].strip().upper()}  # "v" scores 3 as "V"
        try:
            parsed = adapter.validate_python(value)
        except ValidationError as exc:
            if key == "vitals" and isinstance(value, dict):
                kept, bad = _partial_vitals(value)
                dropped.extend(bad)
                if kept:
                    reading["vitals"] = kept
                continue
            dropped.append(Dropped(key, _errors(exc)))
            continue
        reading[key] = _plain(parsed) if isinstance(parsed, BaseModel) else parsed
    if problem is not None:
        if not reading.keys() - {"device_id", "ts", "received_at", "seq"}:
            return Rejected(f"ts: {problem}", device_id)
        dropped.insert(0, Dropped("ts", f"{problem}: the arrival time stands in"))
        return Accepted(device_id, reading, dropped)
    if dropped and len(reading) == 3:
        reasons = "; ".join(f"{d.field[:64]}: {d.reason}" for d in dropped[:10])
        if len(dropped) > 10:
            reasons += f"; and {len(dropped) - 10} more"
        return Rejected(f"no usable field: {reasons}", device_id)
    return Accepted(device_id, reading, dropped)


def _partial_vitals(value: dict[str, Any]) -> tuple[dict[str, Any], list[Dropped]]:
    """Keep the good vital signs of a vitals object that has a bad one."""
    kept: dict[str, Any] = {}
    bad: list[Dropped] = []
    for name, item in value.items():
        try:
            one = Vitals.model_validate({name: item})
        except ValidationError as exc:
            bad.append(Dropped(f"vitals.{name}", _errors(exc)))
            continue
        kept.update(_plain(one))
    return kept, bad


def validate_status(topic: str, payload: bytes, prefix: str = "anxin/v1") -> str | Rejected:
    """The retained status of a device: ``online`` or ``offline``."""
    device_id = topic_device(topic, prefix, "status")
    if device_id is None:
        return Rejected(f"topic does not match {prefix}/devices/<id>/status with a valid id")
    try:
        text = payload.decode("utf-8").strip().strip('"')
    except UnicodeDecodeError:
        return Rejected("status payload is not UTF-8", device_id)
    if text not in ("online", "offline"):
        return Rejected('status must be "online" or "offline"', device_id)
    return text
