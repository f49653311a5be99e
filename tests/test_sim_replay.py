"""Replay over real Mosquitto: per-device order and the original spacing, seen by a subscriber;
and the live fleet: own client ids, retained status, valid telemetry, answers to checks."""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import yaml

from anxin.services import Endpoints
from ingest.telemetry import Accepted, validate_telemetry
from simulators.fleet import Fleet, Rates, demo_registry
from simulators.replay import replay

T = 1_711_814_400.0


class Subscriber:
    """Records (receive wall time, topic, payload) of everything under ``topic``."""

    def __init__(self, port: int, topic: str):
        self.got: list[tuple[float, str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{time.time()}")
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert ready.wait(10)

    def _on(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.got.append((time.monotonic(), msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _folder(tmp: Path, tag: str) -> tuple[Path, dict[str, list[float]]]:
    """Three devices, 15 messages each, with irregular spacing (0.1-0.4 s) interleaved."""
    folder = tmp / tag
    folder.mkdir()
    devices = [f"RP{tag}{i}" for i in range(3)]
    registry = {
        "residents": {
            f"R{tag}{i}": {"name": "x", "devices": {d: {"placement": "wrist"}}}
            for i, d in enumerate(devices)
        }
    }
    (folder / "registry.yaml").write_text(yaml.safe_dump(registry))
    msgs, times = [], defaultdict(list)
    for i, d in enumerate(devices):
        t = T + 0.05 * i
        msgs.append({"t": t - 0.01, "topic": f"anxin/v1/devices/{d}/status", "payload": "online"})
        for seq in range(15):
            t += 0.1 + 0.1 * ((seq * (i + 1)) % 4)
            times[d].append(t)
            msgs.append(
                {
                    "t": t,
                    "topic": f"anxin/v1/devices/{d}/telemetry",
                    "payload": {"ts": t - 0.1, "seq": seq, "battery": 0.5},
                }
            )
    msgs.sort(key=lambda m: m["t"])
    (folder / "messages.jsonl").write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in msgs))
    return folder, times


def _received(sub: Subscriber, tag: str) -> dict[str, list[tuple[float, int]]]:
    out: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for wall, topic, payload, _r in sub.got:
        if topic.endswith("/telemetry") and f"RP{tag}" in topic:
            out[topic.split("/")[-2]].append((wall, orjson.loads(payload)["seq"]))
    return out


def test_replay_keeps_order_and_scaled_spacing(services: Endpoints, tmp_path: Path) -> None:
    folder, times = _folder(tmp_path, "s")
    sub = Subscriber(services.mqtt_port, "anxin/v1/devices/+/telemetry")
    try:
        stats = replay(folder, "127.0.0.1", services.mqtt_port, speed=2.0, progress=False)
        sub.wait(45)
    finally:
        sub.stop()
    assert stats.published == 48
    got = _received(sub, "s")
    for device, sent in times.items():
        walls = [w for w, _s in got[device]]
        assert [s for _w, s in got[device]] == list(range(15)), "order per device"
        want = [(b - a) / 2.0 for a, b in itertools.pairwise(sent)]
        have = [b - a for a, b in itertools.pairwise(walls)]
        errors = [abs(h - w) for h, w in zip(have, want, strict=True)]
        assert max(errors) < 0.04, (device, errors)
        # and the whole run took the scaled span
        assert abs((walls[-1] - walls[0]) - (sent[-1] - sent[0]) / 2.0) < 0.05


def test_replay_fast_keeps_order_and_retains_status(services: Endpoints, tmp_path: Path) -> None:
    folder, times = _folder(tmp_path, "f")
    sub = Subscriber(services.mqtt_port, "anxin/v1/devices/+/telemetry")
    try:
        started = time.monotonic()
        replay(folder, "127.0.0.1", services.mqtt_port, speed=None, progress=False)
        sub.wait(45)
        took = time.monotonic() - started
    finally:
        sub.stop()
    got = _received(sub, "f")
    assert all([s for _w, s in got[d]] == list(range(15)) for d in times)
    print(f"fast replay of a ~4 s span took {took:.2f} s")
    late = Subscriber(services.mqtt_port, "anxin/v1/devices/RPf0/status")
    late.wait(1, timeout=5)
    late.stop()
    assert late.got and late.got[0][2] == b"online" and late.got[0][3], "retained status"


def test_fleet_publishes_valid_telemetry_and_answers_checks(services: Endpoints) -> None:
    registry = demo_registry(30, seed=3)
    rates = Rates(fall=0.0, wander=0.0, trouble=0.0, vitals=0.0)
    fleet = Fleet(
        registry,
        "127.0.0.1",
        services.mqtt_port,
        "anxin/v1",
        interval_s=10.0,
        sos_rate=0.0,
        ok_share=1.0,
        seed=3,
        rates=rates,
        speed=10.0,
    )
    sub = Subscriber(services.mqtt_port, "anxin/v1/devices/+/#")
    ours = {d for r in registry["residents"].values() for d in r["devices"]}
    runner = threading.Thread(target=fleet.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(fleet.pool.connected) < 30:
            time.sleep(0.05)
        assert len(fleet.pool.connected) == 30
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t-nurse")
        pub.connect("127.0.0.1", services.mqtt_port)
        pub.loop_start()
        pub.publish(
            "anxin/v1/devices/W005/commands",
            orjson.dumps({"cmd": "check", "alert_id": "fall-x", "timeout_s": 30}),
            qos=1,
        )
        deadline = time.monotonic() + 15
        ok = []
        while time.monotonic() < deadline and not ok:
            time.sleep(0.1)
            with sub.lock:
                ok = [
                    p
                    for _w, t, p, _r in sub.got
                    if t == "anxin/v1/devices/W005/telemetry" and b'"ok"' in p
                ]
        pub.loop_stop()
        pub.disconnect()
        # Every device reports within its first interval (spread over it, as a real fleet is).
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with sub.lock:
                reporting = {
                    t.split("/")[-2] for _w, t, _p, _r in sub.got if t.endswith("/telemetry")
                }
            if len(reporting & ours) == 30:
                break
            time.sleep(0.1)
    finally:
        fleet.stop()
        runner.join(10)
        sub.stop()
    assert ok, "the wearer answered the check"
    statuses = {
        t.split("/")[-2]: p
        for _w, t, p, retained in sub.got
        if t.endswith("/status") and not retained and t.split("/")[-2] in ours
    }
    assert set(statuses) == ours and set(statuses.values()) <= {b"online", b"offline"}
    per_device: dict[str, list[int]] = defaultdict(list)
    for _w, topic, payload, _r in sub.got:
        if topic.endswith("/telemetry") and topic.split("/")[-2] in ours:
            verdict = validate_telemetry(topic, payload, time.time())
            assert isinstance(verdict, Accepted) and not verdict.dropped
            per_device[topic.split("/")[-2]].append(orjson.loads(payload)["seq"])
    assert len(per_device) == 30
    assert all(seqs == sorted(seqs) for seqs in per_device.values())
