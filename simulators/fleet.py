"""A live simulated fleet: wearables publishing telemetry v1 over MQTT as real devices do.

Each device keeps its own MQTT identity (client id ``sim-{device}``, or the device id when it logs
in with its password, as the broker requires; retained ``online`` status,
an ``offline`` last will, QoS 1, its ``commands`` subscription), but all connections are driven
by one thread through ``simulators.replay.ClientPool`` and a heap of due times, so thousands of
devices run on a 2-core machine. Watches report every 10-60 s (``interval_s`` x 0.75-1.5) with
vitals, a GPS fix, battery, ``worn`` and a quiet accelerometer chunk. At configurable rates per
device-hour a wearer presses SOS, falls (a ``motion.segment`` streamed as continuous chunks),
wanders off (walks away from home at 1 m/s for half an hour), deteriorates (NEWS2 rising over
half an hour), or the device goes silent or is taken off; batteries drain and are recharged.
A ``check`` downlink is answered with ``ok`` in ``ok_share`` of cases after 3-20 s.

Against a broker with per-device accounts (``anxin devices credentials``), give ``passwords``
(``ingest.credentials.read_passwords`` of the provisioning file): each device then logs in as
itself (username = device id), as a provisioned watch does. Without them the fleet connects
anonymously (a local anonymous broker, the tests). A refused login stops ``run`` once every device
has had its answer from the broker, naming all the refused device ids (never a password).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from anxin.core.logs import get_logger
from simulators import gps, motion
from simulators.replay import ClientPool, LoginRefused

log = get_logger(__name__)

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = [
    "秀兰",
    "桂英",
    "玉兰",
    "建国",
    "志强",
    "淑珍",
    "德明",
    "凤英",
    "国华",
    "秀英",
    "文明",
    "丽华",
]
HOME = (37.5135, 122.1203)  # Weihai, as in DESIGN.md's registry example


def demo_registry(residents: int, seed: int = 1) -> dict[str, Any]:
    """A registry of ``residents`` people living around one town, each with a wrist watch."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for i in range(1, residents + 1):
        rid = f"R{i:03d}"
        lat = HOME[0] + float(rng.normal(0, 0.01))
        lon = HOME[1] + float(rng.normal(0, 0.01))
        name = str(rng.choice(list(_SURNAMES))) + str(rng.choice(_GIVEN))
        out[rid] = {
            "name": name,
            "timezone": "Asia/Shanghai",
            "language": "zh-CN",
            "devices": {f"W{i:03d}": {"placement": "wrist"}},
            "geofences": [
                {
                    "name": "home",
                    "circle": {"lat": round(lat, 5), "lon": round(lon, 5), "radius_m": 120},
                    "active": "00:00-24:00",
                }
            ],
            "family": [{"name": name[0] + "伟", "phone": f"+86138{i:08d}", "relation": "son"}],
            "escalation": "default",
        }
    return {"residents": out}


FleetLoginError = LoginRefused  # the fleet's name for a refused login


@dataclass(frozen=True)
class Rates:
    """Events per device-hour (``drain`` speeds the battery up: 1 = about two days a charge)."""

    fall: float = 0.05
    wander: float = 0.02
    trouble: float = 0.02
    vitals: float = 0.01
    drain: float = 1.0


@dataclass
class SimDevice:
    device_id: str
    home: tuple[float, float]
    placement: str
    interval_s: float
    rate: int
    chunk_s: float
    mount: Any
    base_hr: float
    seq: int = 0
    battery: float = 1.0
    worn: bool = True
    burst: list[Any] = field(default_factory=list)  # accel chunks still to stream
    burst_ts: float = 0.0
    wander_until: float = 0.0
    wander_from: float = 0.0
    heading: float = 0.0
    silent_until: float = 0.0
    removed_until: float = 0.0
    ill_from: float = math.inf
    ill_until: float = 0.0
    pending: list[tuple[float, str]] = field(default_factory=list)  # (due, event)


class Fleet:
    """Runs the devices of a registry until ``stop()``; rates are per device-hour."""

    def __init__(
        self,
        registry: dict[str, Any],
        host: str,
        port: int,
        prefix: str = "anxin/v1",
        interval_s: float = 10.0,
        sos_rate: float = 2.0,
        ok_share: float = 0.5,
        seed: int = 1,
        rates: Rates | None = None,
        speed: float = 1.0,
        passwords: Mapping[str, str] | None = None,
    ):
        self.prefix = prefix
        self.interval_s = interval_s
        self.sos_rate = sos_rate
        self.ok_share = ok_share
        self.rates = rates or Rates()
        self.speed = max(speed, 1e-6)
        self.rng = np.random.default_rng(seed)
        self.host, self.port = host, port
        self.devices: dict[str, SimDevice] = {}
        rng = self.rng
        for resident in registry["residents"].values():
            fences = resident.get("geofences") or []
            circle = next((f["circle"] for f in fences if f.get("circle")), None)
            home = (circle["lat"], circle["lon"]) if circle else HOME
            for device_id, dev in resident["devices"].items():
                if (dev.get("type") or "") == "monitor":
                    continue  # spot monitors are not part of the live fleet
                placement = dev.get("placement") or "wrist"
                rate, chunk = ((50, 1.0), (25, 2.0))[int(rng.integers(2))]
                self.devices[device_id] = SimDevice(
                    device_id,
                    home,
                    placement,
                    float(np.clip(interval_s * rng.uniform(0.75, 1.5), 1.0, 60.0)) / self.speed,
                    rate,
                    chunk,
                    motion.random_mount(placement, rng),
                    float(rng.uniform(62, 82)),
                    battery=float(rng.uniform(0.4, 1.0)),
                )
        self.pool = ClientPool(
            host,
            port,
            prefix,
            "sim-",
            self._on_command,
            subscribe_commands=True,
            keepalive=30,
            passwords=passwords,
        )
        self._stop = threading.Event()
        self._heap: list[tuple[float, str, str]] = []  # (due, device, "report" | "answer")
        self.published = 0
        self.counts: dict[str, int] = {}

    # -- downlinks ----------------------------------------------------------------------------
    def _on_command(self, device_id: str, payload: bytes) -> None:
        try:
            command = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        device = self.devices.get(device_id)
        if not isinstance(command, dict) or device is None:
            return
        if command.get("cmd") == "check" and self.rng.random() < self.ok_share:
            timeout = float(command.get("timeout_s", 30))
            delay = float(self.rng.uniform(3, max(3.5, min(20.0, timeout - 2))))
            due = time.time() + delay / self.speed
            device.pending.append((due, "ok"))
            heapq.heappush(self._heap, (due, device_id, "answer"))

    # -- one report ---------------------------------------------------------------------------
    def _chance(self, per_hour: float, device: SimDevice) -> bool:
        return bool(self.rng.random() < per_hour * device.interval_s * self.speed / 3600.0)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def telemetry(self, device: SimDevice, now: float, event: str | None = None) -> dict[str, Any]:
        rng = self.rng
        hour = time.localtime(now).tm_hour
        circadian = math.sin((hour - 4) / 24 * 2 * math.pi)
        ill = 0.0
        if device.ill_from <= now < device.ill_until:
            ill = min(1.0, (now - device.ill_from) * self.speed / 1800.0)
        n = int(device.rate * device.chunk_s)
        if device.worn:
            g = motion.quiet(device.chunk_s, device.placement, rng, device.rate, device.mount)
        else:
            g = np.round(np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.006, (n, 3)), 3)
        payload: dict[str, Any] = {
            "ts": round(now - device.chunk_s, 3),
            "seq": device.seq,
            "battery": round(device.battery, 2),
            "worn": device.worn,
            "accel": {"rate": device.rate, "g": g},
        }
        if device.worn:
            payload["vitals"] = {
                "hr": round(float(device.base_hr + 6 * circadian + 45 * ill + rng.normal(0, 2.5))),
                "spo2": round(float(min(100, 97 - 7 * ill + rng.normal(0, 0.8)))),
                "rr": round(float(16 + 12 * ill + rng.normal(0, 1.0))),
                "temp": round(float(36.6 + 0.3 * circadian + 2 * ill + rng.normal(0, 0.08)), 1),
            }
        lat, lon = device.home
        acc = float(rng.uniform(30, 80))
        if device.wander_from <= now < device.wander_until:
            walked = (now - device.wander_from) * self.speed * 1.0
            la, lo = gps.offset(
                lat, lon, walked * math.sin(device.heading), walked * math.cos(device.heading)
            )
            lat, lon, acc = float(la), float(lo), float(rng.uniform(5, 15))
        sigma = acc / math.sqrt(2.0)
        la, lo = gps.offset(lat, lon, rng.normal(0, sigma * 0.5), rng.normal(0, sigma * 0.5))
        payload["location"] = {
            "lat": round(float(la), 6),
            "lon": round(float(lo), 6),
            "acc": round(acc, 1),
        }
        if event:
            payload["event"] = event
        return payload

    def publish(self, device: SimDevice, payload: dict[str, Any]) -> None:
        topic = f"{self.prefix}/devices/{device.device_id}/telemetry"
        self.pool.publish(
            device.device_id, topic, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), qos=1
        )
        device.seq += 1
        self.published += 1

    def _start_events(self, device: SimDevice, now: float) -> None:
        r = self.rates
        if self._chance(r.fall, device) and device.worn:
            seg = motion.segment(
                str(self.rng.choice(np.array(motion.FALLS))),
                device.placement,
                self.rng,
                device.rate,
                8.0,
                device.mount,
            )
            n = int(device.rate * device.chunk_s)
            device.burst = [seg.g[k : k + n] for k in range(0, seg.g.shape[0], n)]
            device.burst_ts = now
            self._count("fall")
        elif self._chance(r.wander, device) and now >= device.wander_until:
            device.wander_from = now
            device.wander_until = now + 1800.0 / self.speed
            device.heading = float(self.rng.uniform(0, 2 * math.pi))
            self._count("wander")
        elif self._chance(r.trouble, device):
            if self.rng.random() < 0.5:
                device.silent_until = now + float(self.rng.uniform(900, 1800)) / self.speed
                self._count("silent")
            else:
                device.removed_until = now + float(self.rng.uniform(600, 1200)) / self.speed
                device.worn = False
                self._count("removed")
        elif self._chance(r.vitals, device) and now >= device.ill_until:
            device.ill_from = now
            device.ill_until = now + 3600.0 / self.speed
            self._count("deterioration")

    def _answer(self, device: SimDevice, now: float) -> None:
        """The wearer presses "I'm OK" (answers are due at their own times, off the cadence)."""
        for e in [e for e in device.pending if e[0] <= now]:
            device.pending.remove(e)
            self.publish(device, {"ts": round(now, 3), "seq": device.seq, "event": e[1]})
            self._count("ok")

    def _tick(self, device: SimDevice, now: float) -> float:
        """One regular report (or burst chunk) of a device; returns when it is due next."""
        if device.burst:  # streaming a fall, one chunk per chunk_s
            g = device.burst.pop(0)
            self.publish(
                device,
                {
                    "ts": round(device.burst_ts, 3),
                    "seq": device.seq,
                    "battery": round(device.battery, 2),
                    "worn": True,
                    "accel": {"rate": device.rate, "g": g},
                },
            )
            device.burst_ts += g.shape[0] / device.rate
            return now + device.chunk_s
        if now < device.silent_until:
            return device.silent_until
        if device.removed_until and now >= device.removed_until:
            device.worn, device.removed_until = True, 0.0
        drain = self.rates.drain * device.interval_s * self.speed / (48 * 3600.0)
        device.battery = max(0.0, device.battery - drain * float(self.rng.uniform(0.5, 1.5)))
        if device.battery < 0.03:  # empty: off to the charger for a while, back full
            device.battery = 1.0
            device.silent_until = now + 1200.0 / self.speed
            self._count("recharge")
            return device.silent_until
        event = None
        if self._chance(self.sos_rate, device):
            event = "sos"
            self._count("sos")
        else:
            self._start_events(device, now)
        self.publish(device, self.telemetry(device, now, event))
        return now + (device.chunk_s if device.burst else device.interval_s)

    # -- running ------------------------------------------------------------------------------
    def run(self, on_connected: Callable[[], None] | None = None) -> None:
        """Connect every device (then call ``on_connected``), then serve the heap of due times
        until ``stop()``. Raises ``FleetLoginError`` when the broker refuses a device."""
        try:
            for device_id in self.devices:
                self.pool.add(device_id)
            self._wait_logins(timeout=120.0)
        except BaseException:
            self.pool.close()
            raise
        for device_id in self.devices:
            self.pool.publish(device_id, self.pool.status_topic(device_id), b"online", retain=True)
        now = time.time()
        # Spread the devices over their interval, as a real fleet is.
        self._heap = [
            (now + float(self.rng.uniform(0, d.interval_s)), d.device_id, "report")
            for d in self.devices.values()
        ]
        heapq.heapify(self._heap)
        login = " (each with its own password)" if self.pool.passwords is not None else ""
        log.info("fleet: %d devices connected%s", len(self.devices), login)
        if on_connected is not None:
            on_connected()
        while not self._stop.is_set():
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                _due, device_id, what = heapq.heappop(self._heap)
                device = self.devices[device_id]
                if what == "answer":
                    self._answer(device, now)
                else:
                    heapq.heappush(self._heap, (self._tick(device, now), device_id, "report"))
            wait = (self._heap[0][0] - time.time()) if self._heap else 0.1
            self.pool.pump(max(0.0, min(wait, 0.1)))
        self.pool.close(offline=True)

    def _wait_logins(self, timeout: float) -> None:
        """Wait for every device's CONNACK, success or refusal, then name every refused device.

        Why not stop at the first refusal: CONNACKs arrive one by one, so a report written at the
        first one names only the devices refused so far, and whoever fixes the credentials fixes
        them one run at a time. Raises ``FleetLoginError`` (ids and the broker's reasons, never a
        password) or ``TimeoutError`` when some device got no answer at all within ``timeout``.
        """
        want = set(self.devices)
        deadline = time.monotonic() + timeout
        pool = self.pool
        try:  # the pool's own wait (bench/_fleetproc hooks it to learn the fleet is connected)
            pool.wait_connected(want, timeout=timeout)
            return
        except FleetLoginError:
            pass  # the first refusal: wait for everyone's answer, then name them all
        while not want <= (pool.connected | set(pool.refused)):
            if time.monotonic() > deadline:
                break
            pool.pump(0.05)
        refused = sorted(want & set(pool.refused))
        if refused:
            reasons = ", ".join(sorted({pool.refused[d] for d in refused}))
            shown = ", ".join(refused[:20]) + (" ..." if len(refused) > 20 else "")
            raise FleetLoginError(
                f"MQTT login refused ({reasons}) for {len(refused)} device(s): {shown}"
            )
        missing = sorted(want - pool.connected)
        if missing:
            raise TimeoutError(
                f"MQTT connections not acknowledged within {timeout:.0f} s: "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
            )

    def stop(self) -> None:
        self._stop.set()
