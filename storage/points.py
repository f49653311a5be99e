"""Records on the topics → line-protocol points (pure: no I/O, unit-tested).

Schema (tags are ``resident`` and ``device`` only, so cardinality is bounded by the registry;
timestamps are the device's ``ts`` in milliseconds, the precision VictoriaMetrics stores):

- ``vitals``: ``hr spo2 sbp dbp rr temp`` (float), ``o2`` (bool), ``acvpu`` (0=A … 4=U); at ts.
- ``device``: ``battery`` (float), ``worn`` (bool), ``seq`` (int); at ts.
- ``location``: ``lat lon acc`` (float); at ts.
- ``motion``: per accelerometer chunk ``peak mean enmo`` (g), ``activity`` (0 rest … 3
  vigorous), ``samples``, ``rate``; at ts.
- ``accel``: ``x y z`` (g), a point per raw sample at ts + i/rate, only if ``raw_accel`` is on.
- ``event``: ``sos``/``fall``/``ok``/``removed`` = 1; at ts.
- ``alert``: ``<kind>`` = 1 warning / 2 critical, ``news2`` for vitals alerts, ``id`` (string,
  opt-in); at the alert's ``ts``.
- ``alert_event``: ``<state>`` = 1, ``alert_id`` and ``channel`` (strings, opt-in); at ``at``.

Numbers are always written as floats (counters as ints) so that InfluxDB never sees a field change
type. The same record always yields the same points, so a replay overwrites (see README.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from influxdb_client import Point, WritePrecision

from anxin.core.records import accel_samples

PRECISION = WritePrecision.MS
VITAL_FLOATS = ("hr", "spo2", "sbp", "dbp", "rr", "temp")
ACVPU_CODES = {"A": 0, "C": 1, "V": 2, "P": 3, "U": 4}
SEVERITY_CODES = {"warning": 1, "critical": 2}
EVENTS = ("sos", "fall", "ok", "removed")
# Wrist ENMO cut points (g) for light, moderate and vigorous activity (Hildebrand et al. 2014).
ACTIVITY_CUTS = (0.0458, 0.0932, 0.4183)
_NAME = re.compile(r"[^a-z0-9_]")


class Unusable(ValueError):
    """The record cannot be written; the message is the reason it is counted under."""


@dataclass(frozen=True)
class AlertTags:
    resident_id: str
    device_id: str


def to_ms(ts: Any) -> int:
    """Epoch seconds (float) → integer milliseconds; refuses what is not a finite time."""
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise Unusable("no usable timestamp")
    return round(ts * 1000)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _base(measurement: str, resident: str | None, device: str | None, ms: int) -> Point:
    point = Point(measurement).time(ms, PRECISION)
    if resident:
        point.tag("resident", resident)
    if device:
        point.tag("device", device)
    return point


def _ids(record: Mapping[str, Any]) -> tuple[str, str]:
    resident, device = record.get("resident_id"), record.get("device_id")
    if not isinstance(resident, str) or not resident or not isinstance(device, str) or not device:
        raise Unusable("no resident or device")
    return resident, device


def motion_summary(g: Any) -> dict[str, float | int] | None:
    """Peak and mean |a|, ENMO and an activity level for one chunk of samples (in g)."""
    try:
        samples = np.asarray(g, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if samples.ndim != 2 or samples.shape[1] != 3 or samples.shape[0] == 0:
        return None
    if not np.isfinite(samples).all():
        return None
    magnitude = np.sqrt(np.einsum("ij,ij->i", samples, samples))
    enmo = float(np.maximum(magnitude - 1.0, 0.0).mean())
    return {
        "peak": float(magnitude.max()),
        "mean": float(magnitude.mean()),
        "enmo": enmo,
        "activity": int(np.searchsorted(ACTIVITY_CUTS, enmo, side="right")),
        "samples": int(samples.shape[0]),
    }


def reading_points(reading: Mapping[str, Any], raw_accel: bool = False) -> list[Point]:
    """The points of one validated reading (telemetry v1 + ``device_id``, ``resident_id``)."""
    resident, device = _ids(reading)
    ms = to_ms(reading.get("ts"))
    points: list[Point] = []

    vitals = reading.get("vitals")
    if isinstance(vitals, Mapping):
        p = _base("vitals", resident, device, ms)
        n = 0
        for name in VITAL_FLOATS:
            value = _num(vitals.get(name))
            if value is not None:
                p.field(name, value)
                n += 1
        if isinstance(vitals.get("o2"), bool):
            p.field("o2", vitals["o2"])
            n += 1
        code = ACVPU_CODES.get(vitals.get("acvpu"))  # type: ignore[arg-type]
        if code is not None:
            p.field("acvpu", code)
            n += 1
        if n:
            points.append(p)

    p = _base("device", resident, device, ms)
    n = 0
    battery = _num(reading.get("battery"))
    if battery is not None:
        p.field("battery", battery)
        n += 1
    if isinstance(reading.get("worn"), bool):
        p.field("worn", reading["worn"])
        n += 1
    seq = reading.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        p.field("seq", seq)
        n += 1
    if n:
        points.append(p)

    location = reading.get("location")
    if isinstance(location, Mapping):
        lat, lon = _num(location.get("lat")), _num(location.get("lon"))
        if lat is not None and lon is not None:
            p = _base("location", resident, device, ms).field("lat", lat).field("lon", lon)
            acc = _num(location.get("acc"))
            if acc is not None:
                p.field("acc", acc)
            points.append(p)

    accel = reading.get("accel")
    if isinstance(accel, Mapping):
        try:
            samples = accel_samples(accel)  # packed as g64 on the readings topic
        except ValueError:
            samples = None
        summary = motion_summary(samples)
        rate = _num(accel.get("rate"))
        if summary is not None:
            p = _base("motion", resident, device, ms)
            for key, value in summary.items():
                p.field(key, value)
            if rate is not None:
                p.field("rate", rate)
            points.append(p)
            if raw_accel and rate and rate > 0:
                for i, (x, y, z) in enumerate(samples):
                    points.append(
                        _base("accel", resident, device, ms + round(i * 1000 / rate))
                        .field("x", float(x))
                        .field("y", float(y))
                        .field("z", float(z))
                    )

    event = reading.get("event")
    if event in EVENTS:
        points.append(_base("event", resident, device, ms).field(str(event), 1))

    if not points:
        raise Unusable("nothing to write")
    return points


def alert_points(alert: Mapping[str, Any], string_fields: bool = False) -> list[Point]:
    """The point of one alert record (DESIGN.md contract), at the time of what was detected."""
    resident, device = _ids(alert)
    ms = to_ms(alert.get("ts"))
    kind = alert.get("kind")
    if not isinstance(kind, str) or not kind:
        raise Unusable("alert without kind")
    p = _base("alert", resident, device, ms).field(
        _field_name(kind), SEVERITY_CODES.get(str(alert.get("severity")), 1)
    )
    details = alert.get("details")
    if isinstance(details, Mapping) and _num(details.get("news2")) is not None:
        p.field("news2", int(details["news2"]))
    if string_fields and isinstance(alert.get("alert_id"), str):
        p.field("id", alert["alert_id"])
    return [p]


def alert_event_points(
    event: Mapping[str, Any], tags: AlertTags | None, string_fields: bool = False
) -> list[Point]:
    """The point of one lifecycle event ``{alert_id, state, at, by, channel, note}``.

    ``by`` and ``note`` are never written: they may hold a phone number or a name.
    """
    state = event.get("state")
    if not isinstance(state, str) or not state:
        raise Unusable("alert event without state")
    ms = to_ms(event.get("at"))
    resident = event.get("resident_id") if isinstance(event.get("resident_id"), str) else None
    device = event.get("device_id") if isinstance(event.get("device_id"), str) else None
    if tags is not None:
        resident = resident or tags.resident_id
        device = device or tags.device_id
    p = _base("alert_event", resident, device, ms).field(_field_name(state), 1)
    if string_fields:
        if isinstance(event.get("alert_id"), str):
            p.field("alert_id", event["alert_id"])
        if isinstance(event.get("channel"), str):
            p.field("channel", event["channel"])
    return [p]


def _field_name(value: str) -> str:
    """Kinds and states become field names: lower-case identifiers only."""
    return _NAME.sub("_", value.lower())[:64] or "unknown"
