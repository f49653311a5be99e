"""Run a scenario folder through the detectors in-process: the code the Faust agents run.

Each message goes through the same ingest validation as the bridge and the same
``DetectorPipeline`` as the worker, with ``detected_at`` = the message's arrival time ``t``;
timers tick on that clock too. No services needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from anxin.records import AlertRecord
from anxin.registry import Registry, load_registry
from detectors.pipeline import DetectorPipeline, Outputs
from ingest.telemetry import Accepted, validate_status, validate_telemetry

TICK_S = 1.0


@dataclass
class InProcessResult:
    alerts: list[AlertRecord] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    messages: int = 0
    first_t: float | None = None
    last_t: float | None = None


def read_messages(path: Path) -> Iterator[tuple[float, str, bytes]]:
    """(t, topic, raw payload) per line of ``messages.jsonl``; the payload re-encoded as sent."""
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            msg = orjson.loads(line)
            payload = msg["payload"]
            raw = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
            yield float(msg["t"]), str(msg["topic"]), raw


def run_scenario(folder: Path, prefix: str = "anxin/v1") -> InProcessResult:
    registry = load_registry(folder / "registry.yaml")
    return run_messages(registry, read_messages(folder / "messages.jsonl"), prefix)


def run_messages(
    registry: Registry, messages: Iterator[tuple[float, str, bytes]], prefix: str = "anxin/v1"
) -> InProcessResult:
    pipeline = DetectorPipeline(lambda: registry)
    result = InProcessResult()
    next_tick = -float("inf")

    def take(out: Outputs) -> None:
        result.alerts += out.alerts
        result.updates += out.updates
        result.commands += out.commands
        result.rejected += len(out.rejected)
        for record in out.vitals:
            take(pipeline.process_vitals(record, now))

    now = 0.0
    for t, topic, raw in messages:
        now = t
        result.messages += 1
        result.first_t = t if result.first_t is None else result.first_t
        result.last_t = t
        if t >= next_tick:
            take(pipeline.tick(t))
            next_tick = t + TICK_S
        if topic.endswith("/status"):
            status = validate_status(topic, raw, prefix)
            if isinstance(status, str):
                device_id = topic.split("/")[-2]
                take(
                    pipeline.process_status(
                        {"device_id": device_id, "status": status, "received_at": t}, t
                    )
                )
            else:
                result.rejected += 1
            continue
        verdict = validate_telemetry(topic, raw, t, prefix)
        if not isinstance(verdict, Accepted):
            result.rejected += 1
            continue
        owner = registry.device_owner(verdict.device_id)
        if owner is None:
            result.rejected += 1
            continue
        reading = verdict.reading
        reading["resident_id"] = owner[0]
        take(pipeline.process(reading, t))
    return result
