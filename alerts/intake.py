"""Intake of the alerts room's topics: one record in, one transaction, or a reason to
dead-letter it. ``alerts`` (alert records, kinds added since DESIGN.md included),
``alert-updates`` (detector cancels/resolves, the wearer's "I'm OK") and ``fall-suspicions``
(kept for the console, notifying nobody). Idempotent: a redelivered record changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import psycopg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerts import store
from alerts.clock import Clock
from alerts.db import Conn, Database
from alerts.lifecycle import apply_update, ingest_alert
from alerts.policies import Directory
from anxin.core.records import AlertRecord, DeadLetter, FallSuspicion, dead_letter
from anxin.core.settings import KafkaSettings


@dataclass(frozen=True)
class Applied:
    """What applying one record did; ``reason`` set: it was not applied (dead-letter it)."""

    outcome: str
    reason: str | None = None


def _first_error(exc: ValidationError) -> str:
    """Where and what, never the input value (a record may carry anything)."""
    err = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "record"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


class _Suspicion(BaseModel):
    """Validation of a ``FallSuspicion`` record (``anxin.core.records``) at intake."""

    model_config = ConfigDict(extra="ignore")

    suspicion_id: str = Field(min_length=1, max_length=200)
    resident_id: str = Field(min_length=1, max_length=200)
    device_id: str = Field(min_length=1, max_length=200)
    ts: float
    detected_at: float
    outcome: Literal["open", "confirmed", "cancelled"]
    reason: str = ""
    details: dict[str, Any] = Field(default_factory=dict)

    def record(self) -> FallSuspicion:
        return FallSuspicion(
            suspicion_id=self.suspicion_id,
            resident_id=self.resident_id,
            device_id=self.device_id,
            ts=self.ts,
            detected_at=self.detected_at,
            outcome=self.outcome,
            reason=self.reason,
            details=self.details,
        )


class Intake:
    """Applies records of the alerts room's topics (several threads may share one)."""

    def __init__(
        self, db: Database, directory: Callable[[], Directory], clock: Clock, kafka: KafkaSettings
    ):
        self.db = db
        self.directory = directory
        self.clock = clock
        self.kafka = kafka

    def _apply_once(self, topic: str, raw: bytes) -> Applied:
        """Apply one record in its own transaction (idempotent: a redelivery changes nothing).
        A record that cannot be applied comes back with the reason to dead-letter it."""
        k = self.kafka
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return Applied("invalid", "invalid JSON")
        if topic == k.alerts_topic:
            try:
                record = AlertRecord.model_validate(value)
            except ValidationError as exc:
                return Applied("invalid", "invalid alert record: " + _first_error(exc))
            directory = self.directory()
            return self._in_transaction(lambda c, now: ingest_alert(c, record, directory, now))
        if topic == k.suspicions_topic:
            try:
                suspicion = _Suspicion.model_validate(value).record()
            except ValidationError as exc:
                return Applied("invalid", "invalid fall suspicion: " + _first_error(exc))
            return self._in_transaction(
                lambda conn, now: "suspicion " + store.upsert_suspicion(conn, dict(suspicion), now)
            )
        if not isinstance(value, dict):
            return Applied("invalid", "invalid alert update: not a JSON object")
        return self._in_transaction(lambda conn, now: apply_update(conn, value, now))

    def _in_transaction(self, step: Callable[[Conn, float], str]) -> Applied:
        try:
            with self.db.transaction() as conn:
                return Applied(step(conn, self.clock.now()))
        except psycopg.errors.UniqueViolation:
            raise  # another worker opened the same episode at once: the caller applies again
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            # e.g. a NUL character or a number PostgreSQL cannot hold: this record, not the
            # database, is at fault; it is dead-lettered and the next record goes on.
            return Applied("invalid", f"alerts could not store it: {type(exc).__name__}")

    def apply(self, topic: str, raw: bytes) -> Applied:
        """Apply one record (see ``_apply_once``), again if a concurrent worker raced us."""
        attempts = 0
        while True:
            try:
                return self._apply_once(topic, raw)
            except psycopg.errors.UniqueViolation:
                # Another worker opened the same episode at the same moment: apply again (merge).
                attempts += 1
                if attempts == 3:
                    raise


def dead_letter_for(topic: str, raw: bytes, reason: str) -> tuple[DeadLetter, str | None]:
    """The dead letter of a record the alerts room cannot apply, and its key (the device)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    device = value.get("device_id") if isinstance(value, dict) else None
    device = device if isinstance(device, str) else None
    letter = dead_letter(reason, "alerts", time.time(), payload=raw, topic=topic, device_id=device)
    return letter, device
