"""Every detector behind one interface, so the Faust agents and ``anxin evaluate`` run one code.

Two stages, because readings are keyed by device but NEWS2 is per resident:
- ``process(reading, now)``: device stage (SOS, falls and the "are you OK?" window, geofences,
  device trouble); it also emits the reading's vitals as a resident-keyed record;
- ``process_vitals(record, now)``: resident stage (NEWS2 over all the resident's devices).
``tick_device`` / ``tick_resident`` are the timers (silence, check windows, vitals resolution):
a clock, not a message, decides those. ``now`` is the wall clock live and the message arrival
time ``t`` in replay, so a replay yields the same alerts.

State is a JSON-able dict per device and per resident in mappings the caller provides (Faust
tables in the worker, dicts in evaluation). Each state carries ``due``: the earliest time a timer
could fire, so a tick over thousands of idle devices is a float comparison each.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anxin.core.logs import get_logger
from anxin.core.records import (
    AlertRecord,
    AlertUpdate,
    DeadLetter,
    DeviceCommand,
    VitalsRecord,
    alert_id,
    dead_letter,
)
from anxin.core.registry import Registry, Resident
from detectors import device_health, geofence, news2
from detectors.fall import FallDetector, FallFinding, check_accel
from detectors.sos import sos_alert

log = get_logger(__name__)
State = dict[str, Any]
INF = float("inf")
NEVER = 1e18  # "no timer due" in stored state: JSON (orjson) has no infinity and writes null


def due_of(state: dict[str, Any]) -> float:
    """A state's next timer; a missing or unreadable one counts as due now (the tick fixes it)."""
    due = state.get("due")
    return float(due) if isinstance(due, int | float) else -INF


FALL_EPISODE_S = 30.0  # a device event and an accelerometer finding this close are one fall
STILL_UPGRADE_S = 15.0  # motionless this long after a detected fall: upgrade before the timeout
SATURATION_NOTE_EVERY_S = 600.0
FALL_SAVE_EVERY_S = 10.0  # the fall detector's window is saved to the table at most this often
SEQ_WINDOW = 256  # recent sequence numbers remembered per device, to drop redelivered copies


def seen_before(state: dict[str, Any], seq: int) -> bool:
    """Record ``seq`` in the device's window; True if it was already there (a duplicate).

    At-least-once delivery (MQTT QoS 1, Kafka redelivery after a crash) repeats messages; the
    device's ``seq`` tells them apart. A drop far below the window is a device restart.
    """
    top, hex_mask = state.get("seq", (None, "0"))  # hex: JSON codecs stop at 64-bit integers
    mask = int(hex_mask, 16)
    if top is None or seq > top or top - seq >= SEQ_WINDOW:
        shift = SEQ_WINDOW if top is None or top - seq >= SEQ_WINDOW else seq - top
        state["seq"] = (seq, format(((mask << shift) | 1) & ((1 << SEQ_WINDOW) - 1), "x"))
        return False
    bit = 1 << (top - seq)
    if mask & bit:
        return True
    state["seq"] = (top, format(mask | bit, "x"))
    return False


@dataclass
class Outputs:
    alerts: list[AlertRecord] = field(default_factory=list)
    updates: list[AlertUpdate] = field(default_factory=list)  # topic alert-updates
    commands: list[DeviceCommand] = field(default_factory=list)  # topic device-commands
    rejected: list[DeadLetter] = field(default_factory=list)  # topic readings-rejected
    vitals: list[VitalsRecord] = field(default_factory=list)  # resident-keyed, to stage two

    def extend(self, other: Outputs) -> None:
        self.alerts += other.alerts
        self.updates += other.updates
        self.commands += other.commands
        self.rejected += other.rejected
        self.vitals += other.vitals


def _placement(resident: Resident | None, device_id: str) -> str:
    device = resident.devices.get(device_id) if resident else None
    if device is None:
        return "wrist"
    if device.placement:
        return device.placement
    return "pendant" if device.type == "pendant" else "wrist"


class DetectorPipeline:
    def __init__(
        self,
        registry: Callable[[], Registry],
        device_state: MutableMapping[str, State] | None = None,
        resident_state: MutableMapping[str, State] | None = None,
        health: device_health.DeviceHealthConfig | None = None,
        fall_save_every_s: float = FALL_SAVE_EVERY_S,
    ):
        self.registry = registry
        self.device_state: MutableMapping[str, State] = {} if device_state is None else device_state
        self.resident_state: MutableMapping[str, State] = (
            {} if resident_state is None else resident_state
        )
        self.health_config = health or device_health.DeviceHealthConfig()
        self._fences: dict[str, tuple[int, list[geofence.Fence]]] = {}
        self._next_due = -INF  # no timer of any key is due before this (unknown at start)
        # Live fall detectors, with the token of the table state they continue. Serialising a
        # detector's window for every message was most of the pipeline's cost; the table gets it
        # every FALL_SAVE_EVERY_S (and at once when something happened), and a token that no
        # longer matches (another worker owned the device meanwhile) reloads it from the table.
        # An in-process evaluation, which no other worker shares, passes math.inf: it saves on
        # a device's first chunk (so the state holds the live detector's token) and when
        # something happened.
        self._fall_save_every_s = fall_save_every_s
        self._fall_live: dict[str, tuple[FallDetector, str]] = {}
        self._saves = itertools.count()
        self._instance = f"{id(self):x}"

    # -- helpers ------------------------------------------------------------------------------
    def _resident(self, resident_id: str) -> Resident | None:
        return self.registry().residents.get(resident_id)

    def _health_config(self, resident_id: str, device_id: str) -> device_health.DeviceHealthConfig:
        """The device's own reporting expectation (registry ``expected_interval_s``)."""
        resident = self._resident(resident_id)
        device = resident.devices.get(device_id) if resident else None
        if device is None or device.expected_interval_s == self.health_config.silent_after_s:
            return self.health_config
        return dataclasses.replace(self.health_config, silent_after_s=device.expected_interval_s)

    def _health(self, state: State, resident_id: str, device_id: str) -> device_health.DeviceHealth:
        config = self._health_config(resident_id, device_id)
        state["silent_after"] = config.silent_after_s
        return device_health.DeviceHealth.from_state(state.get("health"), config)

    def _alert(
        self,
        kind: str,
        severity: str,
        resident_id: str,
        device_id: str,
        ts: float,
        now: float,
        details: dict[str, Any],
        *id_parts: object,
    ) -> AlertRecord:
        return AlertRecord(
            alert_id=alert_id(kind, device_id if kind != "vitals" else resident_id, *id_parts),
            kind=kind,  # type: ignore[arg-type]
            severity=severity,  # type: ignore[arg-type]
            resident_id=resident_id,
            device_id=device_id,
            ts=float(ts),
            detected_at=float(now),
            details=details,
        )

    @staticmethod
    def _update(
        action: str, alert: str, resident_id: str, kind: str, now: float, reason: str
    ) -> AlertUpdate:
        return {
            "action": action,
            "alert_id": alert,
            "resident_id": resident_id,
            "kind": kind,
            "at": now,
            "reason": reason,
        }

    @staticmethod
    def _rejected(reading: State, reason: str, now: float, partial: bool = True) -> DeadLetter:
        return dead_letter(
            reason,
            "detectors",
            reading.get("received_at", now),
            device_id=reading["device_id"],
            ts=reading.get("ts"),
            seq=reading.get("seq"),
            partial=partial,
        )

    # -- device stage -------------------------------------------------------------------------
    def process(self, reading: State, now: float) -> Outputs:
        out = Outputs()
        device_id, resident_id = reading["device_id"], reading["resident_id"]
        resident = self._resident(resident_id)
        state = dict(self.device_state.get(device_id) or {})
        arrived = float(reading.get("received_at", now))
        seq = reading.get("seq")
        if seq is not None and seen_before(state, int(seq)):
            return out  # a redelivered copy: everything it could raise was raised the first time

        # Each detector on its own: a bug in one must not cost the others (an SOS above all).
        for name, step in (
            ("sos", lambda: self._sos(reading, state, now, out)),
            ("fall", lambda: self._falls(reading, state, resident, now, out)),
            ("wander", lambda: self._wander(reading, state, resident, now, out)),
            ("device", lambda: self._observe_health(reading, state, arrived, now, out)),
        ):
            try:
                step()
            except Exception as exc:
                log.exception("%s detector failed on a reading of %s", name, device_id)
                out.rejected.append(
                    self._rejected(reading, f"{name} detector error: {type(exc).__name__}", now)
                )
        if reading.get("event") == "ok":
            out.updates.append(
                {
                    "action": "wearer_ok",
                    "resident_id": resident_id,
                    "device_id": device_id,
                    "at": now,
                }
            )
        vitals = reading.get("vitals")
        if vitals:
            reasons = news2.plausible(vitals)
            if reasons:
                out.rejected.append(self._rejected(reading, "vitals: " + "; ".join(reasons), now))
            else:
                out.vitals.append(
                    {
                        "resident_id": resident_id,
                        "device_id": device_id,
                        "ts": reading["ts"],
                        "vitals": vitals,
                    }
                )
        self._set_due(state)
        self.device_state[device_id] = state
        return out

    def _observe_health(
        self, reading: State, state: State, arrived: float, now: float, out: Outputs
    ) -> None:
        health = self._health(state, reading["resident_id"], reading["device_id"])
        self._health_decisions(health.observe(arrived, reading), state, reading, now, out)
        state["health"] = health.to_state()

    def process_status(self, record: State, now: float) -> Outputs:
        """A retained ``online``/``offline`` from the ``device-status`` topic."""
        out = Outputs()
        device_id = record["device_id"]
        owner = self.registry().device_owner(device_id)
        if owner is None:
            return out
        state = dict(self.device_state.get(device_id) or {})
        health = self._health(state, owner[0], device_id)
        reading = {"device_id": device_id, "resident_id": owner[0]}
        decisions = health.status(float(record.get("received_at", now)), record["status"])
        self._health_decisions(decisions, state, reading, now, out)
        state["health"] = health.to_state()
        self._set_due(state)
        self.device_state[device_id] = state
        return out

    def tick_device(self, device_id: str, now: float) -> Outputs:
        """Timers of one device: silence, offline and removal grace, the check window."""
        out = Outputs()
        state = self.device_state.get(device_id)
        if not state or due_of(state) > now:
            return out
        state = dict(state)
        owner = self.registry().device_owner(device_id)
        if owner is None:
            return out
        reading = {"device_id": device_id, "resident_id": owner[0]}
        health = self._health(state, owner[0], device_id)
        self._health_decisions(health.check(now), state, reading, now, out)
        state["health"] = health.to_state()
        self._check_window(state, reading, now, out)
        self._set_due(state)
        self.device_state[device_id] = state
        return out

    def _set_due(self, state: State) -> None:
        due = NEVER
        check = state.get("check")
        if check:
            due = min(due, check["deadline"])
        h = state.get("health") or {}
        cfg = self.health_config
        if h.get("seen") is not None and "silent" not in h.get("open", {}):
            due = min(due, h["seen"] + state.get("silent_after", cfg.silent_after_s) + 0.001)
        if h.get("off") is not None and "offline" not in h.get("open", {}):
            due = min(due, h["off"] + cfg.offline_grace_s)
        if h.get("unworn") is not None and "removed" not in h.get("open", {}):
            due = min(due, h["unworn"] + cfg.removed_grace_s)
        state["due"] = due
        self._next_due = min(self._next_due, due)

    # -- SOS ----------------------------------------------------------------------------------
    def _sos(self, reading: State, state: State, now: float, out: Outputs) -> None:
        if reading.get("event") != "sos":
            return
        press = reading.get("seq", reading["ts"])
        if state.get("last_sos") == press:
            return  # the same press again (redelivered or replayed)
        state["last_sos"] = press
        alert = sos_alert(reading, now)
        if alert is not None:
            out.alerts.append(alert)

    # -- falls and the "are you OK?" window ---------------------------------------------------
    def _falls(
        self, reading: State, state: State, resident: Resident | None, now: float, out: Outputs
    ) -> None:
        device_id = reading["device_id"]
        accel = reading.get("accel")
        if accel:
            samples: Any = accel.get("g")
            try:  # one conversion for the check and the detector (most of a chunk's cost)
                samples = np.asarray(samples, dtype=np.float64)
            except (TypeError, ValueError):
                pass  # ragged or not numbers: check_accel names the problem
            verdict = check_accel(accel.get("rate"), samples)
            if verdict.error:
                out.rejected.append(self._rejected(reading, f"accel: {verdict.error}", now))
            else:
                if "saturated" in verdict.notes and (
                    now - state.get("saturation_noted", -INF) >= SATURATION_NOTE_EVERY_S
                ):
                    state["saturation_noted"] = now
                    out.rejected.append(
                        self._rejected(
                            reading,
                            "accel: sensor saturated (clipped axis); chunk kept as a lower "
                            "bound of the true acceleration",
                            now,
                        )
                    )
                detector = self._fall_detector(device_id, _placement(resident, device_id), state)
                findings = detector.feed(reading["ts"], float(accel["rate"]), samples)
                if (
                    findings
                    or state.get("check")
                    or (now - state.get("fall_saved_at", -INF) >= self._fall_save_every_s)
                ):
                    token = f"{self._instance}:{next(self._saves)}"
                    state["fall_detector"] = detector.to_state()
                    state["fall_saved_at"], state["fall_token"] = now, token
                    self._fall_live[device_id] = (detector, token)
                for finding in findings:
                    self._accel_fall(finding, reading, state, resident, now, out)
                check = state.get("check")
                if (
                    check
                    and detector.still_for(reading["ts"]) >= STILL_UPGRADE_S
                    and check.get("lying")
                ):
                    self._upgrade_fall(state, reading, now, out, "motionless after the fall")
        if reading.get("event") == "fall":
            self._device_fall(reading, state, now, out)
        if reading.get("event") == "ok" and state.get("check"):
            check = state.pop("check")
            out.updates.append(
                self._update(
                    "cancel",
                    check["alert_id"],
                    reading["resident_id"],
                    "fall",
                    now,
                    "wearer pressed I'm OK",
                )
            )
            out.commands.append(
                {"device_id": device_id, "cmd": "cancel", "alert_id": check["alert_id"]}
            )
        self._check_window(state, reading, now, out)

    def _fall_detector(self, device_id: str, placement: str, state: State) -> FallDetector:
        live = self._fall_live.get(device_id)
        if live and live[1] == state.get("fall_token") and live[0].placement == placement:
            return live[0]
        saved = state.get("fall_detector")
        detector = (
            FallDetector.from_state(saved)
            if saved and saved.get("placement") == placement
            else FallDetector(placement)
        )
        self._fall_live[device_id] = (detector, state.get("fall_token", ""))
        return detector

    def _accel_fall(
        self,
        finding: FallFinding,
        reading: State,
        state: State,
        resident: Resident | None,
        now: float,
        out: Outputs,
    ) -> None:
        last = state.get("fall")
        if last and abs(finding.impact_ts - last["impact"]) <= FALL_EPISODE_S:
            return  # the same fall, already raised (by the device or an earlier finding)
        timeout = resident.check_timeout_s if resident else 30
        details = {
            "detected_by": "pipeline",
            "peak_g": round(finding.peak_g, 2),
            "placement": finding.placement,
            "lying_still": finding.lying_still,
            "evidence": finding.evidence,
            "check_timeout_s": timeout,
        }
        alert = self._alert(
            "fall",
            "warning",
            reading["resident_id"],
            reading["device_id"],
            finding.impact_ts,
            now,
            details,
            round(finding.impact_ts, 1),
        )
        out.alerts.append(alert)
        state["fall"] = {
            "impact": finding.impact_ts,
            "alert_id": alert.alert_id,
            "severity": "warning",
            "details": details,
        }
        state["check"] = {
            "alert_id": alert.alert_id,
            "deadline": now + timeout,
            "lying": finding.lying_still,
        }
        out.commands.append(
            {
                "device_id": reading["device_id"],
                "cmd": "check",
                "alert_id": alert.alert_id,
                "timeout_s": timeout,
            }
        )

    def _device_fall(self, reading: State, state: State, now: float, out: Outputs) -> None:
        last = state.get("fall")
        ts = float(reading["ts"])
        if last and abs(ts - last["impact"]) <= FALL_EPISODE_S:
            if last["severity"] != "critical":
                self._upgrade_fall(state, reading, now, out, "the device detected the fall too")
            return
        details = {
            "detected_by": "device",
            "placement": _placement(self._resident(reading["resident_id"]), reading["device_id"]),
        }
        alert = self._alert(
            "fall",
            "critical",
            reading["resident_id"],
            reading["device_id"],
            ts,
            now,
            details,
            "device",
            reading.get("seq", ts),
        )
        out.alerts.append(alert)
        state["fall"] = {
            "impact": ts,
            "alert_id": alert.alert_id,
            "severity": "critical",
            "details": details,
        }

    def _check_window(self, state: State, reading: State, now: float, out: Outputs) -> None:
        check = state.get("check")
        if check and now >= check["deadline"]:
            self._upgrade_fall(state, reading, now, out, "no answer to are-you-OK")

    def _upgrade_fall(
        self, state: State, reading: State, now: float, out: Outputs, reason: str
    ) -> None:
        state.pop("check", None)
        fall = state.get("fall")
        if not fall or fall["severity"] == "critical":
            return
        fall["severity"] = "critical"
        details = {**fall["details"], "upgraded": reason}
        out.alerts.append(
            AlertRecord(
                alert_id=fall["alert_id"],
                kind="fall",
                severity="critical",
                resident_id=reading["resident_id"],
                device_id=reading["device_id"],
                ts=fall["impact"],
                detected_at=now,
                details=details,
            )
        )

    # -- wandering ----------------------------------------------------------------------------
    def _fences_of(self, resident_id: str, resident: Resident) -> list[geofence.Fence]:
        cached = self._fences.get(resident_id)
        if cached is None or cached[0] != id(resident):
            fences = geofence.fences_from_registry(
                [f.model_dump(exclude_none=True) for f in resident.geofences]
            )
            cached = (id(resident), fences)
            self._fences[resident_id] = cached
        return cached[1]

    def _wander(
        self, reading: State, state: State, resident: Resident | None, now: float, out: Outputs
    ) -> None:
        loc = reading.get("location")
        if not loc or resident is None or not resident.geofences:
            return
        monitor = geofence.GeofenceMonitor.from_state(
            state.get("wander"),
            self._fences_of(reading["resident_id"], resident),
            resident.timezone,
        )
        decision = monitor.observe(reading["ts"], loc["lat"], loc["lon"], loc.get("acc"))
        state["wander"] = monitor.to_state()
        if isinstance(decision, geofence.Raise):
            alert = self._alert(
                "wander",
                decision.severity,
                reading["resident_id"],
                reading["device_id"],
                decision.ts,
                now,
                decision.details,
                round(decision.ts, 1),
            )
            state["wander_alert"] = alert.alert_id
            out.alerts.append(alert)
        elif isinstance(decision, geofence.Resolve) and state.get("wander_alert"):
            out.updates.append(
                self._update(
                    "resolve",
                    state.pop("wander_alert"),
                    reading["resident_id"],
                    "wander",
                    now,
                    "back inside",
                )
            )

    # -- device trouble -----------------------------------------------------------------------
    def _health_decisions(
        self,
        decisions: list[device_health.Decision],
        state: State,
        reading: State,
        now: float,
        out: Outputs,
    ) -> None:
        open_ids: dict[str, str] = state.setdefault("health_alerts", {})
        for d in decisions:
            if isinstance(d, device_health.Raise):
                same_episode = open_ids.get(d.reason)
                alert = self._alert(
                    "device",
                    d.severity,
                    reading["resident_id"],
                    reading["device_id"],
                    d.ts,
                    now,
                    {"reason": d.reason, **d.details},
                    d.reason,
                    same_episode or round(d.ts, 1),
                )
                if same_episode:  # a rise (battery warning → critical) re-uses the alert id
                    alert = alert.model_copy(update={"alert_id": same_episode})
                open_ids[d.reason] = alert.alert_id
                out.alerts.append(alert)
            elif d.reason in open_ids:
                out.updates.append(
                    self._update(
                        "resolve",
                        open_ids.pop(d.reason),
                        reading["resident_id"],
                        "device",
                        now,
                        f"{d.reason} cleared",
                    )
                )

    # -- resident stage: vitals ---------------------------------------------------------------
    def _vitals_config(self, resident: Resident | None) -> news2.VitalsConfig:
        if resident is None:
            return news2.VitalsConfig()
        return news2.VitalsConfig(
            spo2_scale=resident.vitals.spo2_scale, freshness_s=resident.vitals.freshness_s
        )

    def process_vitals(self, record: Mapping[str, Any], now: float) -> Outputs:
        resident_id = record["resident_id"]
        resident = self._resident(resident_id)
        state = dict(self.resident_state.get(resident_id) or {})
        monitor = news2.VitalsMonitor.from_state(state.get("news2"), self._vitals_config(resident))
        decision = monitor.observe(float(record["ts"]), record["vitals"], record["device_id"])
        out = self._vitals_decision(decision, state, resident_id, record["device_id"], now)
        state["news2"] = monitor.to_state()
        state["device"] = record["device_id"]
        state["last_wall"] = now
        state["due"] = now + 60.0 if state.get("vitals_alert") else NEVER
        self._next_due = min(self._next_due, state["due"])
        self.resident_state[resident_id] = state
        return out

    def tick_resident(self, resident_id: str, now: float) -> Outputs:
        state = self.resident_state.get(resident_id)
        if not state or due_of(state) > now:
            return Outputs()
        state = dict(state)
        monitor = news2.VitalsMonitor.from_state(
            state.get("news2"), self._vitals_config(self._resident(resident_id))
        )
        # The monitor runs on device time: advance it by the wall time since its last reading.
        last_wall = state.get("last_wall", now)
        decision = (
            monitor.check(monitor.now + max(0.0, now - last_wall)) if monitor.now > -INF else None
        )
        out = self._vitals_decision(decision, state, resident_id, state.get("device", "-"), now)
        state["news2"] = monitor.to_state()
        state["last_wall"] = now
        state["due"] = now + 60.0 if state.get("vitals_alert") else NEVER
        self.resident_state[resident_id] = state
        return out

    def _vitals_decision(
        self,
        decision: news2.Decision | None,
        state: State,
        resident_id: str,
        device_id: str,
        now: float,
    ) -> Outputs:
        out = Outputs()
        if isinstance(decision, news2.Raise):
            episode = state.get("vitals_alert")
            alert = self._alert(
                "vitals",
                decision.severity,
                resident_id,
                device_id,
                decision.ts,
                now,
                decision.details,
                round(decision.ts, 1),
            )
            if episode:
                alert = alert.model_copy(update={"alert_id": episode})
            state["vitals_alert"] = alert.alert_id
            out.alerts.append(alert)
        elif isinstance(decision, news2.Resolve) and state.get("vitals_alert"):
            out.updates.append(
                self._update(
                    "resolve",
                    state.pop("vitals_alert"),
                    resident_id,
                    "vitals",
                    now,
                    "NEWS2 low again",
                )
            )
        return out

    def tick(self, now: float) -> Outputs:
        """All timers (evaluation; the worker ticks its own partitions' keys)."""
        out = Outputs()
        if now < self._next_due:
            return out
        for device_id in list(self.device_state):
            out.extend(self.tick_device(device_id, now))
        for resident_id in list(self.resident_state):
            out.extend(self.tick_resident(resident_id, now))
        self._next_due = min(
            [due_of(s) for s in self.device_state.values()]
            + [due_of(s) for s in self.resident_state.values()],
            default=NEVER,
        )
        return out
