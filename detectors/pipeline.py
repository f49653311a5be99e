"""The detectors behind one interface, so the Faust agent and ``anxin evaluate`` run the same code.

``process`` takes one validated reading (as on the ``readings`` topic) and returns what it
produces; the caller owns the I/O. Per-device state lives in a mapping the caller provides (a
Faust table in the worker, a dict in evaluation). Duplicate presses (same device and ``seq``) are
dropped here, so a redelivered or replayed message raises nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from anxin.records import AlertRecord
from anxin.registry import Registry
from detectors.sos import sos_alert


@dataclass
class Outputs:
    alerts: list[AlertRecord] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Outputs) -> None:
        self.alerts.extend(other.alerts)
        self.commands.extend(other.commands)
        self.rejected.extend(other.rejected)


class DetectorPipeline:
    def __init__(
        self,
        registry: Callable[[], Registry],
        device_state: MutableMapping[str, dict[str, Any]] | None = None,
    ):
        self.registry = registry
        self.device_state: MutableMapping[str, dict[str, Any]] = (
            device_state if device_state is not None else {}
        )

    def process(self, reading: dict[str, Any], detected_at: float) -> Outputs:
        out = Outputs()
        device_id = reading["device_id"]
        state = dict(self.device_state.get(device_id) or {})
        event = reading.get("event")
        if event == "sos":
            press = reading.get("seq", reading["ts"])
            if state.get("last_sos") != press:
                alert = sos_alert(reading, detected_at)
                if alert is not None:
                    out.alerts.append(alert)
                state["last_sos"] = press
        state["last_seen"] = max(float(state.get("last_seen", 0.0)), reading["ts"])
        self.device_state[device_id] = state
        return out
