"""Every detector behind one interface, so the Faust agents and ``anxin evaluate`` run one code.

One call per reading, because readings are keyed by resident (all of a resident's devices
meet in one partition):
- ``process(reading, now)``: the device detectors (SOS, falls, geofences, device trouble), then
  NEWS2 over all the resident's devices (``process_vitals``) in the same call. An accelerometer
  finding is only a suspicion: it prompts the wearer and becomes an alert when
  ``detectors/fall_confirm.py`` confirms it;
- ``tick(now)`` fires the timers (silence, check windows, vitals resolution): a clock, not a
  message, decides those. ``now`` is the wall clock live and the message arrival time ``t`` in
  replay, so a replay yields the same alerts.

State is a JSON-able dict per device and per resident in mappings the caller provides (the
worker's live state, dicts in evaluation). Each state carries ``due``, the earliest time a
timer could fire, and a heap of due times finds the keys to tick without a sweep of every key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import itertools
import secrets
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from anxin.core.logs import get_logger
from anxin.core.records import (
    AlertRecord,
    AlertUpdate,
    DeadLetter,
    DeviceCommand,
    FallSuspicion,
    VitalsRecord,
    accel_samples,
    alert_id,
    dead_letter,
)
from anxin.core.rules import AnyRegistry, AnyResident, fence_dict
from detectors import device_health, geofence, news2
from detectors.fall import AccelCheck, FallDetector, FallFinding, check_accel, check_accel_chunks
from detectors.fall_confirm import ConfirmConfig, Decision, Suspicion
from detectors.sos import press_key, sos_alert

log = get_logger(__name__)
State = dict[str, Any]
INF = float("inf")
NEVER = 1e18  # "no timer due" in stored state: JSON (orjson) has no infinity and writes null


def due_of(state: dict[str, Any]) -> float:
    """A state's next timer; a missing or unreadable one counts as due now (the tick fixes it)."""
    due = state.get("due")
    return float(due) if isinstance(due, int | float) else -INF


FALL_EPISODE_S = 30.0  # a device event and an accelerometer finding this close are one fall
SATURATION_NOTE_EVERY_S = 600.0
FALL_SAVE_EVERY_S = 10.0  # the fall detector's window is saved to the table at most this often
SEEN_KEEP = 32  # identities of a device's latest messages kept to drop redelivered copies
SEEN_BYTES = 8  # each kept as an 8-byte hash: 32 of them are 344 base64 characters in the state
_NOT_CONTENT = ("received_at", "resident_id")  # added on the way, not sent by the device


def message_key(reading: Mapping[str, Any]) -> str:
    """What makes a message the same message: its ``seq`` and ``ts`` together.

    A counter alone is not an identity: a device that reboots counts from 1 again, with a new
    ``ts``. A message without ``seq`` is identified by its whole content.
    """
    seq = reading.get("seq")
    if seq is not None:
        return f"{seq}@{reading.get('ts')!r}"
    content = {k: v for k, v in reading.items() if k not in _NOT_CONTENT}
    try:
        raw = orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # not JSON: it did not come off a topic; process it, never drop it
        return ""
    return "#" + hashlib.blake2b(raw, digest_size=12).hexdigest()


def _seen_hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=SEEN_BYTES).digest()


def seen_hashes(state: Mapping[str, Any]) -> bytes:
    """The device's kept message identities, oldest first, ``SEEN_BYTES`` each.

    The live state holds them as bytes (289 B for 32; as base64 text 393 B, as 32 key strings
    about 2 KB), a snapshot as base64 text (``anxin/live_state.py`` writes bytes so); a state
    written before the hashes holds the key strings themselves.
    """
    seen = state.get("seen")
    if not seen:
        return b""
    if isinstance(seen, bytes):
        return seen
    if isinstance(seen, list):  # the form written before the hashes
        return b"".join(_seen_hash(str(k)) for k in seen[-SEEN_KEEP:])
    try:
        raw = base64.b64decode(seen)
    except (binascii.Error, ValueError, TypeError):
        return b""  # unreadable: forget it (a copy is processed again, never lost)
    return raw[len(raw) % SEEN_BYTES :]


def seen_before(state: dict[str, Any], key: str) -> bool:
    """Record ``key`` among the device's latest ``SEEN_KEEP``; True if it was there already.

    At-least-once delivery (MQTT QoS 1, Kafka redelivery after a crash) repeats a message soon
    after the first copy; only an exact repeat is dropped, so no reading and no SOS is lost to a
    counter reset. A copy older than the memory is processed again: every output is idempotent
    (deterministic alert ids, the SOS press key), so that costs a repeat, never a loss. Keys are
    kept as 8-byte hashes: two different keys of one device's last 32 collide with a probability
    of about 2**-59.
    """
    if not key:
        return False
    digest = _seen_hash(key)
    raw = seen_hashes(state)
    at = raw.find(digest)
    while at >= 0:
        if at % SEEN_BYTES == 0:
            return True
        at = raw.find(digest, at + 1)
    raw = (raw + digest)[-SEEN_KEEP * SEEN_BYTES :]
    state["seen"] = raw
    return False


QUIET_GAP_MEMORY_S = 600.0  # the longest gap between a device's messages is remembered this long


def _note_gap(state: State, arrived: float) -> None:
    """Keep the device's longest gap between messages of about the last ten minutes.

    It tells a device that stops reporting from one that goes back to its usual cadence after
    streaming (a wake-on-motion watch, a tracker): ``fall_confirm`` reads silence against it.
    """
    previous = state.get("arrived_at")
    if previous is not None and arrived > previous:
        gap = arrived - float(previous)
        held = state.get("quiet_gap")
        if held is None or gap >= held[0] or arrived - held[1] > QUIET_GAP_MEMORY_S:
            state["quiet_gap"] = (round(gap, 3), arrived)  # a list after a JSON round trip
    if previous is None or arrived > previous:
        state["arrived_at"] = arrived


@dataclass
class Outputs:
    alerts: list[AlertRecord] = field(default_factory=list)
    updates: list[AlertUpdate] = field(default_factory=list)  # topic alert-updates
    commands: list[DeviceCommand] = field(default_factory=list)  # topic device-commands
    rejected: list[DeadLetter] = field(default_factory=list)  # topic readings-rejected
    suspicions: list[FallSuspicion] = field(default_factory=list)  # topic fall-suspicions

    def extend(self, other: Outputs) -> None:
        self.alerts += other.alerts
        self.updates += other.updates
        self.commands += other.commands
        self.rejected += other.rejected
        self.suspicions += other.suspicions

    def mark(self) -> tuple[int, int, int, int, int]:
        """Where each list ends now: ``truncate`` drops what came after (a failed reading)."""
        return (
            len(self.alerts),
            len(self.updates),
            len(self.commands),
            len(self.rejected),
            len(self.suspicions),
        )

    def truncate(self, mark: tuple[int, int, int, int, int]) -> None:
        del self.alerts[mark[0] :], self.updates[mark[1] :], self.commands[mark[2] :]
        del self.rejected[mark[3] :], self.suspicions[mark[4] :]


def _finding_details(finding: FallFinding, probability: float) -> dict[str, Any]:
    """What a suspicion's record and alert say of the finding that opened (or upgraded) it."""
    return {
        "probability": round(probability, 4),
        "peak_g": round(finding.peak_g, 2),
        "placement": finding.placement,
        "lying_still": finding.lying_still,
        "evidence": finding.evidence,
    }


def _samples(rows: list[Any]) -> np.ndarray:
    """``np.asarray(rows, np.float64)``, twice as fast when every row is a list of three: numpy
    then reads the values in one flat pass instead of walking nested lists. Each value converts
    alike both ways; anything else (a row that is not a list, a value numpy refuses) goes the
    general way, which gives what it always gave."""
    try:
        if rows and set(map(list.__len__, rows)) == {3}:
            flat = itertools.chain.from_iterable(rows)
            return np.fromiter(flat, np.float64, 3 * len(rows)).reshape(-1, 3)
    except (TypeError, ValueError, OverflowError):
        pass
    return np.asarray(rows, np.float64)


def _accel_chunks(readings: Sequence[State]) -> list[tuple[np.ndarray, AccelCheck] | None]:
    """Every well-formed accelerometer chunk of a batch converted in one ``np.asarray`` and
    checked in one pass (``check_accel_chunks``): (samples, verdict) per reading, None where
    the reading has no chunk or one the per-reading path must convert itself (it names the
    problem, or raises inside the fall detector's guard, exactly as ``process`` does)."""
    found: list[tuple[int, list[Any] | np.ndarray, Any]] = []
    packed = False
    for i, reading in enumerate(readings):
        accel = reading.get("accel")
        if type(accel) is dict and accel:
            g = accel.get("g")
            if type(g) is list and g:
                found.append((i, g, accel.get("rate")))
            elif "mg16" in accel or "g64" in accel:  # packed at ingest (pack_accel)
                try:
                    found.append((i, accel_samples(accel), accel.get("rate")))
                    packed = True
                except ValueError:
                    pass  # the per-reading path names the problem
    chunks: list[tuple[np.ndarray, AccelCheck] | None] = [None] * len(readings)
    if not found:
        return chunks
    try:
        if packed:
            a = np.concatenate(
                [g if isinstance(g, np.ndarray) else _samples(g) for _, g, _ in found]
            )
        else:
            a = _samples(list(itertools.chain.from_iterable(g for _, g, _ in found)))
    except (TypeError, ValueError):
        return chunks  # a ragged or non-numeric chunk somewhere: each converts on its own
    if a.ndim != 2 or a.shape[1] != 3:
        return chunks
    starts = list(itertools.accumulate((len(g) for _, g, _ in found), initial=0))
    verdicts = check_accel_chunks([rate for *_, rate in found], a, starts[:-1])
    for (i, _, _), lo, hi, verdict in zip(found, starts, starts[1:], verdicts, strict=False):
        chunks[i] = (a[lo:hi].copy(), verdict)  # a copy: a detector may keep it queued
    return chunks


class _DeviceLive:
    """A device's detectors as live objects, continuing the state that holds ``token``.

    Rebuilding them from JSON-able state and serialising them back for every reading was most of
    the pipeline's cost; a snapshot takes their forms beside the state (``device_form``), and
    the state gets them only when it is saved (``save_live_state``). A form the live objects
    were built from is taken out of the state (``*_state`` here until used), so the worker does
    not hold both.
    """

    __slots__ = (
        "device_id",
        "fall",
        "fall_state",
        "health",
        "resident_id",
        "token",
        "wander",
        "wander_state",
    )

    def __init__(
        self, token: int, device_id: str, resident_id: str, health: device_health.DeviceHealth
    ):
        # the registry's own id objects (else the ids as first seen): every later structure
        # keyed by them is given these, not each reading's copies (two strings, ~110 bytes)
        self.token, self.device_id, self.resident_id = token, device_id, resident_id
        self.health = health
        self.fall: FallDetector | None = None
        self.fall_state: dict[str, Any] | None = None
        self.wander: geofence.GeofenceMonitor | None = None
        self.wander_state: dict[str, Any] | None = None


class _ResidentLive:
    __slots__ = ("monitor", "token")

    def __init__(self, token: int, monitor: news2.VitalsMonitor):
        self.token, self.monitor = token, monitor


_DEVICE_FORMS = ("fall_detector", "health", "wander")


def _placement(resident: AnyResident | None, device_id: str) -> str:
    device = resident.devices.get(device_id) if resident else None
    if device is None:
        return "wrist"
    if device.placement:
        return device.placement
    return "pendant" if device.type == "pendant" else "wrist"


class DetectorPipeline:
    def __init__(
        self,
        registry: Callable[[], AnyRegistry],
        device_state: MutableMapping[str, State] | None = None,
        resident_state: MutableMapping[str, State] | None = None,
        health: device_health.DeviceHealthConfig | None = None,
        fall_save_every_s: float = FALL_SAVE_EVERY_S,
        fall_alert_p: float | None = None,
    ):
        self.registry = registry
        self.device_state: MutableMapping[str, State] = {} if device_state is None else device_state
        self.resident_state: MutableMapping[str, State] = (
            {} if resident_state is None else resident_state
        )
        self.health_config = health or device_health.DeviceHealthConfig()
        # resident id -> (the registry entry they were made from, its fences, its zone): the
        # entry itself, not its id(), which a later entry may reuse once this one is freed
        self._fences: dict[str, tuple[AnyResident, tuple[geofence.Fence, ...], ZoneInfo]] = {}
        self._vitals_configs: dict[tuple[int, float], news2.VitalsConfig] = {}
        self._health_configs: dict[tuple[Any, Any], device_health.DeviceHealthConfig] = {}
        # (due, 0 device / 1 resident, key): every due time set since; a popped entry whose
        # state holds a later due is stale and skipped (the later one has its own entry)
        self._timers: list[tuple[float, int, str]] = []
        # [which][key] -> the earliest due on the heap for it: a later due is not pushed (its
        # key is rescheduled when that entry pops), so the heap holds about one entry per key
        # instead of one per due time set (a silence timer moves on with every reading). One
        # dict per kind, keyed by the id itself (a (which, key) tuple a key was 56 bytes more).
        self._scheduled: tuple[dict[str, float], dict[str, float]] = ({}, {})
        # Live detectors per device and NEWS2 monitors per resident, with the token of the state
        # they continue (``_DeviceLive``). The worker's snapshots take their forms beside the
        # states (``device_form``); the state gets them when it is saved (``save_live_state``),
        # every FALL_SAVE_EVERY_S when a fall chunk comes, and at once when something happened;
        # a token that no longer matches (another worker owned the key meanwhile) rebuilds them
        # from the state. The worker and an in-process evaluation pass math.inf: they save only
        # when something happened (the worker's snapshots take the forms; a device's state
        # holds one key fewer, 88 bytes).
        self._fall_save_every_s = fall_save_every_s
        # The probability from which an unanswered suspicion pages: the model's ALERT_P unless
        # given (a threshold sweep in evaluation; tests that must not depend on the model).
        self._alert_p = ConfirmConfig().alert_p if fall_alert_p is None else fall_alert_p
        self._live: dict[str, _DeviceLive] = {}
        self._resident_live: dict[str, _ResidentLive] = {}
        # Tokens: a random start of this pipeline's own plus a count, an int (32 bytes; the text
        # "<id>:<count>" was ~67, twice a device). Another worker's tokens are another range:
        # two ranges of n tokens meet with odds of about n / 2**59.
        self._saves = itertools.count(secrets.randbits(59) + 1)
        self.schedule_all()

    # -- helpers ------------------------------------------------------------------------------
    def _resident(self, resident_id: str) -> AnyResident | None:
        return self.registry().residents.get(resident_id)

    def _health_config(self, resident_id: str, device_id: str) -> device_health.DeviceHealthConfig:
        return self._health_config_of(self._resident(resident_id), device_id)

    def _health_config_of(
        self, resident: AnyResident | None, device_id: str
    ) -> device_health.DeviceHealthConfig:
        """The device's rules: registry ``expected_interval_s``, else its type's, else learned
        (one config object per kind of device, not a new one for every reading)."""
        device = resident.devices.get(device_id) if resident else None
        if device is None:
            return self.health_config
        key = (device.type, device.expected_interval_s)
        config = self._health_configs.get(key)
        if config is None:
            config = device_health.config_for(self.health_config, *key)
            self._health_configs[key] = config
        return config

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
            kind=kind,
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
        """One reading: the device detectors, then NEWS2 over the resident's devices."""
        out = Outputs()
        self._process(reading, now, None, out)
        return out

    def process_batch(
        self,
        readings: Sequence[State],
        now: float,
        nows: Sequence[float] | None = None,
        on_error: Callable[[int, Exception], None] | None = None,
    ) -> Outputs:
        """A batch of readings (many devices and residents, in arrival order): exactly what
        ``process`` on each in turn gives, in one ``Outputs`` (same records, same order, same
        states afterwards), with the per-batch work done once in numpy: every accelerometer
        chunk converted in one pass and checked by ``check_accel_chunks``. Each device's
        detectors still run in its readings' order. ``nows``: each reading's own ``now``
        (a replay's arrival times); else ``now`` for all. ``on_error(i, exc)``: a reading that
        raises is handed over and the batch goes on (the worker dead-letters it, as it does a
        reading ``process`` raises on); without it the exception propagates."""
        out = Outputs()
        chunks = _accel_chunks(readings)
        process = self._process
        for i, reading in enumerate(readings):
            mark = out.mark()
            try:
                process(reading, now if nows is None else nows[i], chunks[i], out)
            except Exception as exc:
                out.truncate(mark)  # a reading that raises gives nothing, as in ``process``
                if on_error is None:
                    raise
                on_error(i, exc)
        return out

    def _process(
        self,
        reading: State,
        now: float,
        chunk: tuple[np.ndarray, AccelCheck] | None,
        out: Outputs,
    ) -> None:
        """One reading's outputs appended to ``out`` (one ``Outputs`` per batch, not three per
        reading); if it raises, the caller drops what it appended."""
        device_id, resident_id = reading["device_id"], reading["resident_id"]
        resident = self._resident(resident_id)  # once: every lookup below gets it passed
        state = dict(self.device_state.get(device_id) or {})
        arrived = float(reading.get("received_at", now))
        if seen_before(state, message_key(reading)):
            return  # a redelivered copy: everything it could raise was raised the first time
        config = self._health_config_of(resident, device_id)
        live = self._device_live(state, resident_id, device_id, config)
        device_id, resident_id = live.device_id, live.resident_id  # the same ids, held once

        answers = bool(state.get("suspicion"))  # an "ok" now answers the suspicion: nobody told
        # Each detector on its own: a bug in one must not cost the others (an SOS above all).
        try:
            self._sos(reading, state, now, out)
        except Exception as exc:
            self._detector_failed("sos", exc, reading, now, out)
        try:
            self._falls(reading, state, live, resident, now, out, chunk)
        except Exception as exc:
            self._detector_failed("fall", exc, reading, now, out)
        try:
            self._wander(reading, state, live, resident, now, out)
        except Exception as exc:
            self._detector_failed("wander", exc, reading, now, out)
        try:
            self._observe_health(reading, state, live, arrived, now, out)
        except Exception as exc:
            self._detector_failed("device", exc, reading, now, out)
        if reading.get("event") == "ok" and not answers:
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
            bad = news2.implausible(vitals)
            if bad:  # dead-lettered with the reasons; the parameters that are real still count
                reason = "vitals: " + "; ".join(why for _, why in bad)
                out.rejected.append(self._rejected(reading, reason, now))
                out_of = {key for keys, _ in bad for key in keys}
                vitals = {key: value for key, value in vitals.items() if key not in out_of}
        self._set_due(state, device_id, live.health)
        self.device_state[device_id] = state
        if vitals:
            record: VitalsRecord = {
                "resident_id": resident_id,
                "device_id": device_id,
                "ts": reading["ts"],
                "vitals": vitals,
            }
            self._vitals(record, now, out, self._vitals_config(resident))

    def _detector_failed(
        self, name: str, exc: Exception, reading: State, now: float, out: Outputs
    ) -> None:
        log.exception("%s detector failed on a reading of %s", name, reading["device_id"])
        out.rejected.append(
            self._rejected(reading, f"{name} detector error: {type(exc).__name__}", now)
        )

    def _token(self) -> int:
        return next(self._saves)

    def _device_live(
        self,
        state: State,
        resident_id: str,
        device_id: str,
        config: device_health.DeviceHealthConfig | None = None,
    ) -> _DeviceLive:
        """The device's live detectors; built from ``state`` unless they continue it."""
        if config is None:
            config = self._health_config(resident_id, device_id)
        live = self._live.get(device_id)
        if live is not None and live.token == state.get("token"):
            for form in _DEVICE_FORMS:  # written by a save; the live objects have moved on
                if form in state:
                    del state[form]
            if live.health.config is not config:  # the registry changed the device's rules
                live.health.config = config
            if live.resident_id != resident_id:  # equal: the object held already is kept
                live.resident_id = resident_id
            return live
        state.pop("silent_after", None)  # now in the health state ("after"), learned or set
        state.pop("fall_token", None)  # the token of the form written before
        health = device_health.DeviceHealth.from_state(state.pop("health", None), config)
        device_id, resident_id = self.registry().own_ids(device_id, resident_id)
        live = _DeviceLive(self._token(), device_id, resident_id, health)
        live.fall_state = state.pop("fall_detector", None)
        live.wander_state = state.pop("wander", None)
        state["token"] = live.token
        self._live[device_id] = live
        return live

    def _write_device(self, live: _DeviceLive, state: State) -> None:
        """The live detectors' forms into ``state`` (JSON-able, as a snapshot stores them)."""
        state["health"] = live.health.to_state()
        if live.fall is not None:
            state["fall_detector"] = live.fall.to_state()
        elif live.fall_state is not None:
            state["fall_detector"] = live.fall_state
        if live.wander is not None:
            state["wander"] = live.wander.to_state()
        elif live.wander_state is not None:
            state["wander"] = live.wander_state

    def _observe_health(
        self,
        reading: State,
        state: State,
        live: _DeviceLive,
        arrived: float,
        now: float,
        out: Outputs,
    ) -> None:
        decisions = live.health.observe(arrived, reading)
        self._health_decisions(decisions, state, reading, now, out)

    def process_status(self, record: State, now: float) -> Outputs:
        """A retained ``online``/``offline`` from the ``device-status`` topic."""
        out = Outputs()
        device_id = record["device_id"]
        owner = self.registry().device_owner(device_id)
        if owner is None:
            return out
        state = dict(self.device_state.get(device_id) or {})
        live = self._device_live(state, owner[0], device_id)
        reading = {"device_id": device_id, "resident_id": owner[0]}
        decisions = live.health.status(float(record.get("received_at", now)), record["status"])
        self._health_decisions(decisions, state, reading, now, out)
        self._set_due(state, device_id, live.health)
        self.device_state[device_id] = state
        return out

    def tick_device(self, device_id: str, now: float, silence_at: float | None = None) -> Outputs:
        """Timers of one device: silence, offline and removal grace (judged at ``silence_at``,
        default ``now``: the worker's ``ArrivalClock``), the fall suspicion."""
        out = Outputs()
        state = self.device_state.get(device_id)
        if not state or due_of(state) > now:
            return out
        if silence_at is not None and silence_at < due_of(state) and not state.get("suspicion"):
            return out  # only silence or a grace period is due, and not yet at ``silence_at``
        state = dict(state)
        owner = self.registry().device_owner(device_id)
        if owner is None:
            return out
        reading = {"device_id": device_id, "resident_id": owner[0]}
        live = self._device_live(state, owner[0], device_id)
        health_now = now if silence_at is None else min(now, silence_at)
        self._health_decisions(live.health.check(health_now), state, reading, now, out)
        self._fall_timers(state, reading, now, out)
        self._set_due(state, device_id, live.health)
        self.device_state[device_id] = state
        return out

    def _schedule(self, which: int, key: str, due: float) -> None:
        if due < NEVER:
            scheduled = self._scheduled[which]
            held = scheduled.get(key)
            if held is None or due < held:
                heapq.heappush(self._timers, (due, which, key))
                scheduled[key] = due

    def schedule_all(self) -> None:
        """Put every held state's due time on the heap (states loaded from elsewhere)."""
        for device_id, state in self.device_state.items():
            self._schedule(0, device_id, due_of(state))
        for resident_id, state in self.resident_state.items():
            self._schedule(1, resident_id, due_of(state))

    def forget(self, device_ids: list[str], resident_ids: list[str]) -> None:
        """Drop the live state of keys this process no longer owns (their heap entries go
        stale: a tick skips a key without state)."""
        for device_id in device_ids:
            self.device_state.pop(device_id, None)
            self._live.pop(device_id, None)
        for resident_id in resident_ids:
            self.resident_state.pop(resident_id, None)
            self._resident_live.pop(resident_id, None)

    def save_live_state(self, device_id: str) -> None:
        """Write the device's live detectors, and its resident's NEWS2 monitor, into their
        states now (what ``device_form`` and ``resident_form`` give a snapshot)."""
        live = self._save_device(device_id)
        if live is not None:
            self._save_resident(live.resident_id)

    def _continued_device(self, device_id: str) -> tuple[_DeviceLive, State] | None:
        """The device's live detectors and its state, if they continue that state."""
        live = self._live.get(device_id)
        state = self.device_state.get(device_id)
        if live is None or state is None or live.token != state.get("token"):
            return None
        return live, state

    def _continued_resident(self, resident_id: str) -> tuple[_ResidentLive, State] | None:
        """The resident's live NEWS2 monitor and its state, if it continues that state."""
        live = self._resident_live.get(resident_id)
        state = self.resident_state.get(resident_id)
        if live is None or state is None or live.token != state.get("token"):
            return None
        return live, state

    def _save_device(self, device_id: str) -> _DeviceLive | None:
        """The device's live detectors into its state, if they continue it (else None)."""
        continued = self._continued_device(device_id)
        if continued is None:
            return None
        live, state = continued
        self._write_device(live, state)
        return live

    def device_form(self, device_id: str) -> State | None:
        """The device's state as a snapshot stores it: a new dict with the live detectors'
        forms (``save_live_state`` would put the same into the state itself). The state is left as
        it is: writing the forms in and taking them out again after each snapshot grew and
        rebuilt every state's table, a sixth of a snapshot's CPU. A state no live object
        continues (a snapshot loaded, not read on yet) is its own form."""
        continued = self._continued_device(device_id)
        if continued is None:
            return self.device_state.get(device_id)
        live, state = continued
        form = dict(state)
        self._write_device(live, form)
        return form

    def resident_form(self, resident_id: str) -> State | None:
        """The resident's state as a snapshot stores it (``device_form``): with the NEWS2
        monitor's form."""
        continued = self._continued_resident(resident_id)
        if continued is None:
            return self.resident_state.get(resident_id)
        live, state = continued
        return {**state, "news2": live.monitor.to_state()}

    def _save_resident(self, resident_id: str) -> None:
        continued = self._continued_resident(resident_id)
        if continued is not None:
            live, state = continued
            state["news2"] = live.monitor.to_state()

    def _set_due(self, state: State, device_id: str, h: device_health.DeviceHealth) -> None:
        due = NEVER
        suspicion = state.get("suspicion")
        if suspicion:
            due = min(due, Suspicion.from_state(suspicion).due)
        cfg = self.health_config
        after = h.silent_after()  # None: this device is never "silent"
        if h.last_seen is not None and after is not None and "silent" not in h.open:
            due = min(due, h.last_seen + after + 0.001)
        if h.offline_since is not None and "offline" not in h.open:
            due = min(due, h.offline_since + cfg.offline_grace_s)
        if h.unworn_since is not None and "removed" not in h.open:
            due = min(due, h.unworn_since + cfg.removed_grace_s)
        if due != state.get("due"):
            self._schedule(0, device_id, due)
        state["due"] = due

    # -- SOS ----------------------------------------------------------------------------------
    def _sos(self, reading: State, state: State, now: float, out: Outputs) -> None:
        if reading.get("event") != "sos":
            return
        press = press_key(reading)
        if state.get("last_sos") == press:
            return  # the same press again (redelivered or replayed)
        state["last_sos"] = press
        alert = sos_alert(reading, now)
        if alert is not None:
            out.alerts.append(alert)

    # -- falls: suspicion, the "are you OK?" window, confirmation ------------------------------
    def _falls(
        self,
        reading: State,
        state: State,
        live: _DeviceLive,
        resident: AnyResident | None,
        now: float,
        out: Outputs,
        converted: tuple[np.ndarray, AccelCheck] | None = None,
    ) -> None:
        device_id = reading["device_id"]
        placement = _placement(resident, device_id)
        accel = reading.get("accel")
        event = reading.get("event")
        chunk: tuple[float, Any, FallDetector] | None = None
        _note_gap(state, float(reading.get("received_at", now)))
        if accel:
            samples: Any
            if converted is not None:  # the batch's one pass (process_batch)
                samples, verdict = converted
            else:
                try:
                    samples = accel_samples(accel)
                except ValueError as exc:  # a packed chunk that is not whole rows
                    samples, verdict = None, AccelCheck(error=str(exc))
                else:
                    try:  # one conversion for the check and the detector (most of its cost)
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
                detector = self._fall_detector(live, placement)
                findings = detector.feed(reading["ts"], float(accel["rate"]), samples)
                if (
                    findings
                    or state.get("suspicion")
                    or (
                        self._fall_save_every_s < INF
                        and now - state.get("fall_saved_at", -INF) >= self._fall_save_every_s
                    )
                ):
                    self._write_device(live, state)
                    state["fall_saved_at"] = now
                for finding in findings:
                    self._suspect(finding, reading, state, resident, now, out)
                chunk = (float(accel["rate"]), samples, detector)
        if event == "fall":
            self._device_fall(reading, state, placement, now, out)
        suspicion = self._suspicion(state)
        if suspicion is None:
            if event == "ok":
                state["ok_ts"] = float(reading["ts"])  # may answer a suspicion found just after
            return
        decision = suspicion.event(now, event) if isinstance(event, str) else None
        if decision is None and chunk is not None:
            rate, samples, detector = chunk
            still = detector.still_for(reading["ts"])
            decision = suspicion.samples(now, placement, reading["ts"], rate, samples, still)
        suspicion.seen(now)
        decision = decision or suspicion.check(now)
        self._settle(suspicion, decision, state, reading, now, out)

    @staticmethod
    def _suspicion(state: State) -> Suspicion | None:
        saved = state.get("suspicion")
        return Suspicion.from_state(saved) if saved else None

    @staticmethod
    def _fall_detector(live: _DeviceLive, placement: str) -> FallDetector:
        detector = live.fall
        if detector is not None and detector.placement == placement:
            return detector
        saved, live.fall_state = live.fall_state, None
        detector = (
            FallDetector.from_state(saved)
            if saved and saved.get("placement") == placement
            else FallDetector(placement)
        )
        live.fall = detector
        return detector

    def _confirm_config(self, resident: AnyResident | None) -> ConfirmConfig:
        if resident is None:
            return ConfirmConfig(alert_p=self._alert_p)
        return ConfirmConfig(
            window_s=float(resident.check_timeout_s),
            still_s=resident.fall_confirm.still_s,
            silence_s=resident.fall_confirm.silence_s,
            silence_hold_s=resident.fall_confirm.silence_hold_s,
            alert_p=self._alert_p,
        )

    def _suspect(
        self,
        finding: FallFinding,
        reading: State,
        state: State,
        resident: AnyResident | None,
        now: float,
        out: Outputs,
    ) -> None:
        """An accelerometer finding: ask the wearer; nobody else is told yet."""
        probability = float(getattr(finding, "probability", 1.0))
        open_one = self._suspicion(state)
        if open_one is not None:  # the wearer is being asked already: one question at a time
            if probability > open_one.probability:
                self._upgrade(open_one, finding, probability, state)
            return
        last = state.get("fall")
        if last and abs(finding.impact_ts - last["impact"]) <= FALL_EPISODE_S:
            return  # the same fall (raised by the device, or an earlier finding)
        config = self._confirm_config(resident)
        sid = alert_id("fall", reading["device_id"], round(finding.impact_ts, 1))
        quiet_gap = float((state.get("quiet_gap") or (0.0, 0.0))[0])
        suspicion = Suspicion.open(
            sid, finding.impact_ts, probability, finding.lying_still, now, config, quiet_gap
        )
        state["fall"] = {"impact": finding.impact_ts, "alert_id": sid, "severity": None}
        state["suspicion_details"] = {
            "detected_by": "accelerometer",
            **_finding_details(finding, probability),
            "check_timeout_s": resident.check_timeout_s if resident else 30,
            "suspected_at": now,
        }
        answered = state.get("ok_ts")
        if answered is not None and 0 <= answered - finding.impact_ts <= config.window_s:
            # The wearer said "I'm OK" after this impact, before it was found: already answered.
            self._record(suspicion, "cancelled", "wearer pressed I'm OK", state, reading, now, out)
            return
        state["suspicion"] = suspicion.to_state()
        self._record(suspicion, "open", "suspected by the accelerometer", state, reading, now, out)
        out.commands.append(
            {
                "device_id": reading["device_id"],
                "cmd": "check",
                "alert_id": sid,
                "timeout_s": int(config.window_s),
            }
        )

    @staticmethod
    def _upgrade(
        suspicion: Suspicion, finding: FallFinding, probability: float, state: State
    ) -> None:
        """The open question gets the stronger evidence (a weak candidate just before the real
        impact, e.g. the stumble of a trip, must not decide the fall with its own probability)."""
        suspicion.upgrade(finding.impact_ts, probability, finding.lying_still)
        state["suspicion"] = suspicion.to_state()
        episode = state.get("fall") or {"alert_id": suspicion.suspicion_id, "severity": None}
        state["fall"] = {**episode, "impact": finding.impact_ts}
        details = state.get("suspicion_details") or {}
        details.update(_finding_details(finding, probability))
        state["suspicion_details"] = details

    def _record(
        self,
        suspicion: Suspicion,
        outcome: str,
        reason: str,
        state: State,
        reading: State,
        now: float,
        out: Outputs,
    ) -> None:
        out.suspicions.append(
            {
                "suspicion_id": suspicion.suspicion_id,
                "resident_id": reading["resident_id"],
                "device_id": reading["device_id"],
                "ts": suspicion.impact_ts,
                "detected_at": now,
                "outcome": outcome,  # type: ignore[typeddict-item]
                "reason": reason,
                "details": dict(state.get("suspicion_details") or {}),
            }
        )

    def _settle(
        self,
        suspicion: Suspicion,
        decision: Decision | None,
        state: State,
        reading: State,
        now: float,
        out: Outputs,
    ) -> None:
        """Keep the suspicion open, or close it: an alert (confirmed) or a quiet cancel."""
        if decision is None:
            state["suspicion"] = suspicion.to_state()
            return
        state.pop("suspicion", None)
        self._record(suspicion, decision.outcome, decision.reason, state, reading, now, out)
        details = state.pop("suspicion_details", None) or {}
        sid = suspicion.suspicion_id
        if decision.outcome == "cancelled":
            out.commands.append(
                {"device_id": reading["device_id"], "cmd": "cancel", "alert_id": sid}
            )
            return
        state["fall"] = {"impact": suspicion.impact_ts, "alert_id": sid, "severity": "critical"}
        out.alerts.append(
            AlertRecord(
                alert_id=sid,
                kind="fall",
                severity="critical",
                resident_id=reading["resident_id"],
                device_id=reading["device_id"],
                ts=suspicion.impact_ts,
                detected_at=now,
                details={**details, "confirmed_by": decision.reason},
            )
        )

    def _device_fall(
        self, reading: State, state: State, placement: str, now: float, out: Outputs
    ) -> None:
        """On-device fall detection: an alert at once (or the confirmation of a suspicion)."""
        last = state.get("fall")
        ts = float(reading["ts"])
        if (
            last
            and abs(ts - last["impact"]) <= FALL_EPISODE_S
            and (last["severity"] == "critical" or state.get("suspicion"))
        ):
            return  # already an alert; an open suspicion is confirmed by the event itself
        details = {"detected_by": "device", "placement": placement}
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
        if not state.get("suspicion"):  # an open one of another episode keeps its own record
            state["fall"] = {"impact": ts, "alert_id": alert.alert_id, "severity": "critical"}

    def _fall_timers(self, state: State, reading: State, now: float, out: Outputs) -> None:
        suspicion = self._suspicion(state)
        if suspicion is not None:
            self._settle(suspicion, suspicion.check(now), state, reading, now, out)

    # -- wandering ----------------------------------------------------------------------------
    def _fences_of(
        self, resident_id: str, resident: AnyResident
    ) -> tuple[AnyResident, tuple[geofence.Fence, ...], ZoneInfo]:
        cached = self._fences.get(resident_id)
        if cached is None or cached[0] is not resident:
            fences = tuple(  # a tuple: 48 bytes for one fence, the list was 88
                geofence.fences_from_registry([fence_dict(f) for f in resident.geofences])
            )
            cached = (resident, fences, ZoneInfo(resident.timezone))
            self._fences[resident_id] = cached
        return cached

    def _wander(
        self,
        reading: State,
        state: State,
        live: _DeviceLive,
        resident: AnyResident | None,
        now: float,
        out: Outputs,
    ) -> None:
        loc = reading.get("location")
        if not loc or resident is None or not resident.geofences:
            return
        _, fences, zone = self._fences_of(reading["resident_id"], resident)
        monitor = live.wander
        if monitor is None:
            saved, live.wander_state = live.wander_state, None
            monitor = live.wander = geofence.GeofenceMonitor.from_state(saved, fences, zone)
        else:  # not state: the registry's, and may change
            monitor.fences, monitor.tz = fences, zone
        decision = monitor.observe(reading["ts"], loc["lat"], loc["lon"], loc.get("acc"))
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
        if not decisions:
            return  # no dict for a device that never had one (64 bytes a device)
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
    def _vitals_config(self, resident: AnyResident | None) -> news2.VitalsConfig:
        if resident is None:
            return news2.VitalsConfig()
        key = (resident.vitals.spo2_scale, resident.vitals.freshness_s)
        config = self._vitals_configs.get(key)
        if config is None:
            config = news2.VitalsConfig(spo2_scale=key[0], freshness_s=key[1])
            self._vitals_configs[key] = config
        return config

    def _monitor(
        self, state: State, resident_id: str, config: news2.VitalsConfig | None = None
    ) -> news2.VitalsMonitor:
        """The resident's live NEWS2 monitor; built from ``state`` unless it continues it."""
        if config is None:
            config = self._vitals_config(self._resident(resident_id))
        live = self._resident_live.get(resident_id)
        if live is not None and live.token == state.get("token"):
            state.pop("news2", None)  # written by a save; the live monitor has moved on
            if live.monitor.config is not config:
                live.monitor.config = config
            return live.monitor
        monitor = news2.VitalsMonitor.from_state(state.pop("news2", None), config)
        live = _ResidentLive(self._token(), monitor)
        state["token"] = live.token
        self._resident_live[resident_id] = live
        return monitor

    def process_vitals(self, record: Mapping[str, Any], now: float) -> Outputs:
        out = Outputs()
        self._vitals(record, now, out)
        return out

    def _vitals(
        self,
        record: Mapping[str, Any],
        now: float,
        out: Outputs,
        config: news2.VitalsConfig | None = None,
    ) -> None:
        resident_id = record["resident_id"]
        state = dict(self.resident_state.get(resident_id) or {})
        monitor = self._monitor(state, resident_id, config)
        decision = monitor.observe(float(record["ts"]), record["vitals"], record["device_id"])
        self._vitals_decision(decision, state, resident_id, record["device_id"], now, out)
        state["device"] = record["device_id"]
        state["last_wall"] = now
        self._set_resident_due(state, resident_id, now)
        self.resident_state[resident_id] = state

    def _set_resident_due(self, state: State, resident_id: str, now: float) -> None:
        due = now + 60.0 if state.get("vitals_alert") else NEVER
        if due != state.get("due"):
            self._schedule(1, resident_id, due)
        state["due"] = due

    def tick_resident(self, resident_id: str, now: float) -> Outputs:
        state = self.resident_state.get(resident_id)
        if not state or due_of(state) > now:
            return Outputs()
        state = dict(state)
        monitor = self._monitor(state, resident_id)
        # The monitor runs on device time: advance it by the wall time since its last reading.
        last_wall = state.get("last_wall", now)
        decision = (
            monitor.check(monitor.now + max(0.0, now - last_wall)) if monitor.now > -INF else None
        )
        out = Outputs()
        self._vitals_decision(decision, state, resident_id, state.get("device", "-"), now, out)
        state["news2"] = monitor.to_state()  # a timer marks no device changed: saved now
        state["last_wall"] = now
        self._set_resident_due(state, resident_id, now)
        self.resident_state[resident_id] = state
        return out

    def _vitals_decision(
        self,
        decision: news2.Decision | None,
        state: State,
        resident_id: str,
        device_id: str,
        now: float,
        out: Outputs,
    ) -> None:
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

    @property
    def next_due(self) -> float:
        """No timer of any key is due before this (``NEVER``: none is set)."""
        return self._timers[0][0] if self._timers else NEVER

    def tick(self, now: float, silence_at: float | None = None) -> Outputs:
        """The timers due by ``now``, devices first, each key once, in (due, key) order; a
        device's silence and grace periods are judged at ``silence_at`` if given (the time up to
        which the worker has read what arrived: ``anxin.arrival_clock``), so a device whose
        readings still wait to be read is not "silent". Its timer stays due and is looked at
        again at the next tick."""
        out = Outputs()
        timers = self._timers
        if not timers or timers[0][0] > now:
            return out
        devices: dict[str, None] = {}
        residents: dict[str, None] = {}
        while timers and timers[0][0] <= now:
            due, which, key = heapq.heappop(timers)
            scheduled = self._scheduled[which]
            if scheduled.get(key) == due:
                del scheduled[key]
            (residents if which else devices)[key] = None
        for device_id in devices:
            out.extend(self.tick_device(device_id, now, silence_at))
            self._reschedule(0, device_id, self.device_state.get(device_id))
        for resident_id in residents:
            out.extend(self.tick_resident(resident_id, now))
            self._reschedule(1, resident_id, self.resident_state.get(resident_id))
        return out

    def _reschedule(self, which: int, key: str, state: State | None) -> None:
        """A popped key keeps its timer: a check still open is due again at its same time."""
        if state:
            self._schedule(which, key, due_of(state))
