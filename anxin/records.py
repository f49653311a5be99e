"""Records on the topics: the only coupling between ingest, detectors and alerts (DESIGN.md).

Readings travel as the validated telemetry payload plus ``device_id``, ``resident_id`` and
``received_at``; alerts as the alert record contract. Both are JSON, keyed by device (readings)
or resident (alerts), so any consumer in any language can read them.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

AlertKind = Literal["fall", "wander", "vitals", "sos", "device"]
Severity = Literal["warning", "critical"]


class AlertRecord(BaseModel):
    """The alert record contract: on the ``alerts`` topic and in every alert output file."""

    model_config = ConfigDict(extra="forbid")

    alert_id: str
    kind: AlertKind
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
