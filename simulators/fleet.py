"""A live simulated fleet: watches publishing telemetry v1 over MQTT as real devices do.

Each device has its own paho client (own client id, retained ``online`` status and an
``offline`` last will, QoS 1). Watches report every ``interval_s`` with vitals, a position near
home, battery, and a short accelerometer chunk; now and then a wearer presses SOS. A device
answers a ``check`` downlink with ``ok`` in some share of cases, as a wearer would.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import paho.mqtt.client as mqtt

from anxin.logs import get_logger

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


@dataclass
class SimDevice:
    device_id: str
    home: tuple[float, float]
    client: mqtt.Client
    seq: int = 0
    battery: float = 1.0
    pending_checks: list[tuple[float, str]] = field(default_factory=list)


class Fleet:
    """Runs the devices of a registry until ``stop()``; ``sos_rate`` is presses per device-hour."""

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
    ):
        self.prefix = prefix
        self.interval_s = interval_s
        self.sos_rate = sos_rate
        self.ok_share = ok_share
        self.rng = np.random.default_rng(seed)
        self.host, self.port = host, port
        self.devices: list[SimDevice] = []
        for resident in registry["residents"].values():
            fence = resident["geofences"][0]["circle"] if resident.get("geofences") else None
            home = (fence["lat"], fence["lon"]) if fence else HOME
            for device_id in resident["devices"]:
                self.devices.append(SimDevice(device_id, home, self._client(device_id)))
        self._stop = threading.Event()
        self.published = 0

    def _client(self, device_id: str) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{device_id}")
        status = f"{self.prefix}/devices/{device_id}/status"
        client.will_set(status, "offline", qos=1, retain=True)
        client.reconnect_delay_set(1, 30)

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            c.publish(status, "online", qos=1, retain=True)
            c.subscribe(f"{self.prefix}/devices/{device_id}/commands", qos=1)

        client.on_connect = on_connect
        client.on_message = lambda c, u, msg: self._on_command(device_id, bytes(msg.payload))
        return client

    def _on_command(self, device_id: str, payload: bytes) -> None:
        try:
            command = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if command.get("cmd") == "check" and self.rng.random() < self.ok_share:
            device = next(d for d in self.devices if d.device_id == device_id)
            delay = float(self.rng.uniform(3, min(20.0, float(command.get("timeout_s", 30)))))
            device.pending_checks.append((time.time() + delay, str(command.get("alert_id"))))

    def telemetry(self, device: SimDevice, now: float, event: str | None = None) -> dict[str, Any]:
        rng = self.rng
        device.seq += 1
        device.battery = max(0.0, device.battery - 0.0002)
        hour = time.localtime(now).tm_hour
        circadian = math.sin((hour - 4) / 24 * 2 * math.pi)
        rate = 25
        t = np.arange(2 * rate) / rate
        g = np.column_stack(
            [
                0.05 * np.sin(2 * np.pi * 1.5 * t),
                0.05 * np.cos(2 * np.pi * 1.5 * t),
                -np.ones_like(t),
            ]
        ) + rng.normal(0, 0.02, (len(t), 3))
        payload: dict[str, Any] = {
            "ts": round(now, 3),
            "seq": device.seq,
            "battery": round(device.battery, 3),
            "worn": True,
            "vitals": {
                "hr": round(float(72 + 8 * circadian + rng.normal(0, 3))),
                "spo2": round(float(min(100, 97 + rng.normal(0, 1)))),
                "rr": round(float(15 + rng.normal(0, 1.5))),
                "temp": round(float(36.6 + 0.3 * circadian + rng.normal(0, 0.1)), 1),
            },
            "accel": {"rate": rate, "g": np.round(g, 3).tolist()},
            "location": {
                "lat": round(device.home[0] + float(rng.normal(0, 0.0002)), 6),
                "lon": round(device.home[1] + float(rng.normal(0, 0.0002)), 6),
                "acc": round(float(rng.uniform(5, 40)), 1),
            },
        }
        if event:
            payload["event"] = event
        return payload

    def publish(self, device: SimDevice, payload: dict[str, Any]) -> None:
        topic = f"{self.prefix}/devices/{device.device_id}/telemetry"
        device.client.publish(topic, orjson.dumps(payload), qos=1)
        self.published += 1

    def run(self) -> None:
        for device in self.devices:
            device.client.connect_async(self.host, self.port, keepalive=30)
            device.client.loop_start()
        # Spread the devices over the interval, as a real fleet is.
        next_due = {
            d.device_id: time.time() + float(self.rng.uniform(0, self.interval_s))
            for d in self.devices
        }
        p_sos = self.sos_rate * self.interval_s / 3600
        while not self._stop.is_set():
            now = time.time()
            for device in self.devices:
                for due, _alert in [c for c in device.pending_checks if c[0] <= now]:
                    device.pending_checks.remove((due, _alert))
                    self.publish(
                        device, {"ts": round(now, 3), "seq": device.seq + 1, "event": "ok"}
                    )
                    device.seq += 1
                if next_due[device.device_id] <= now:
                    event = "sos" if self.rng.random() < p_sos else None
                    self.publish(device, self.telemetry(device, now, event))
                    next_due[device.device_id] = now + self.interval_s
            self._stop.wait(0.1)
        for device in self.devices:
            device.client.publish(
                f"{self.prefix}/devices/{device.device_id}/status", "offline", qos=1, retain=True
            )
            device.client.disconnect()
            device.client.loop_stop()

    def stop(self) -> None:
        self._stop.set()
