"""Replay over real Mosquitto: per-device order and the original spacing, seen by a subscriber;
and the live fleet: own client ids, retained status, valid telemetry, answers to checks."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
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


def private_prefix() -> str:
    """An MQTT prefix of this test alone: the session's bridge subscribes to ``anxin/v1`` only,
    so these devices (the fleet's W001-W030 above all) never reach its readings or alerts."""
    return f"anxin-sim-{uuid.uuid4().hex[:8]}/v1"


class Subscriber:
    """Records (receive wall time, topic, payload, retained) of everything under ``topic``."""

    def __init__(self, port: int, topic: str):
        self.got: list[tuple[float, str, bytes, bool]] = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:12]}"
        )
        ready = threading.Event()
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert ready.wait(10)

    def _on(self, c: Any, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.changed:
            self.got.append((time.monotonic(), msg.topic, bytes(msg.payload), bool(msg.retain)))
            self.changed.notify_all()

    def wait_until(
        self, what: str, check: Callable[[list[tuple[float, str, bytes, bool]]], bool]
    ) -> None:
        """Block until ``check(got)`` holds (woken by each message); fail after 60 s."""
        with self.changed:
            if not self.changed.wait_for(lambda: check(self.got), timeout=60):
                raise AssertionError(f"timed out waiting for {what}")

    def wait(self, n: int) -> None:
        self.wait_until(f"{n} messages", lambda got: len(got) >= n)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _folder(tmp: Path, tag: str, prefix: str) -> tuple[Path, dict[str, list[float]]]:
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
    msgs: list[dict[str, Any]] = []
    times: dict[str, list[float]] = defaultdict(list)
    for i, d in enumerate(devices):
        t = T + 0.05 * i
        msgs.append({"t": t - 0.01, "topic": f"{prefix}/devices/{d}/status", "payload": "online"})
        for seq in range(15):
            t += 0.1 + 0.1 * ((seq * (i + 1)) % 4)
            times[d].append(t)
            msgs.append(
                {
                    "t": t,
                    "topic": f"{prefix}/devices/{d}/telemetry",
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
    prefix = private_prefix()
    folder, times = _folder(tmp_path, "s", prefix)
    sub = Subscriber(services.mqtt_port, f"{prefix}/devices/+/telemetry")
    try:
        stats = replay(
            folder, "127.0.0.1", services.mqtt_port, speed=2.0, progress=False, prefix=prefix
        )
        sub.wait(45)
    finally:
        sub.stop()
    assert stats.published == 48  # 45 readings and 3 retained statuses
    got = _received(sub, "s")
    assert {d: [s for _w, s in got[d]] for d in times} == {d: list(range(15)) for d in times}
    assert len(sub.got) == 45  # nothing twice
    # The replay waits for each message's scaled time, so the run lasts at least the scaled
    # span (a bound that holds by construction; how close the spacing comes is a figure).
    span = max(max(ts) for ts in times.values()) - (T - 0.01)
    assert stats.wall_s >= span / 2.0
    errors = [
        abs((b[0] - a[0]) - (tb - ta) / 2.0)
        for d, sent in times.items()
        for (a, b), (ta, tb) in zip(
            itertools.pairwise(got[d]), itertools.pairwise(sent), strict=True
        )
    ]
    print(f"replay at 2x: spacing error max {max(errors) * 1000:.0f} ms over {len(errors)} gaps")


def test_replay_fast_keeps_order_and_retains_status(services: Endpoints, tmp_path: Path) -> None:
    prefix = private_prefix()
    folder, times = _folder(tmp_path, "f", prefix)
    sub = Subscriber(services.mqtt_port, f"{prefix}/devices/+/telemetry")
    try:
        started = time.monotonic()
        stats = replay(
            folder, "127.0.0.1", services.mqtt_port, speed=None, progress=False, prefix=prefix
        )
        sub.wait(45)
        took = time.monotonic() - started
    finally:
        sub.stop()
    assert stats.published == 48
    got = _received(sub, "f")
    assert {d: [s for _w, s in got[d]] for d in times} == {d: list(range(15)) for d in times}
    assert len(sub.got) == 45
    print(f"fast replay of a ~4 s span took {took:.2f} s")
    late = Subscriber(services.mqtt_port, f"{prefix}/devices/RPf0/status")
    try:
        late.wait(1)  # a retained message is delivered on subscribing
    finally:
        late.stop()
    assert [(p, retained) for _w, _t, p, retained in late.got] == [(b"online", True)]


def test_fleet_publishes_valid_telemetry_and_answers_checks(services: Endpoints) -> None:
    prefix = private_prefix()  # W001-W030 are other tests' devices on anxin/v1
    registry = demo_registry(30, seed=3)
    rates = Rates(fall=0.0, wander=0.0, trouble=0.0, vitals=0.0)
    fleet = Fleet(
        registry,
        "127.0.0.1",
        services.mqtt_port,
        prefix,
        interval_s=10.0,
        sos_rate=0.0,
        ok_share=1.0,
        seed=3,
        rates=rates,
        speed=10.0,
    )
    sub = Subscriber(services.mqtt_port, f"{prefix}/devices/+/#")
    ours = {d for r in registry["residents"].values() for d in r["devices"]}
    connected = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(connected.set,), daemon=True)
    runner.start()

    def reporting(got: list[tuple[float, str, bytes, bool]]) -> set[str]:
        return {t.split("/")[-2] for _w, t, _p, _r in got if t.endswith("/telemetry")}

    def last_status(got: list[tuple[float, str, bytes, bool]]) -> dict[str, bytes]:
        return {t.split("/")[-2]: p for _w, t, p, r in got if t.endswith("/status") and not r}

    offline = {d: b"offline" for d in ours}

    try:
        assert connected.wait(60), "the fleet did not connect"
        assert fleet.pool.connected == ours
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-nurse-{prefix}")
        pub.connect("127.0.0.1", services.mqtt_port)
        pub.loop_start()
        try:
            pub.publish(
                f"{prefix}/devices/W005/commands",
                orjson.dumps({"cmd": "check", "alert_id": "fall-x", "timeout_s": 30}),
                qos=1,
            ).wait_for_publish(10)
        finally:
            pub.loop_stop()
            pub.disconnect()
        sub.wait_until(
            "W005's answer to the check",
            lambda got: any(
                t == f"{prefix}/devices/W005/telemetry" and b'"ok"' in p for _w, t, p, _r in got
            ),
        )
        # Every device reports within its first interval (spread over it, as a real fleet is).
        sub.wait_until("every device reporting", lambda got: reporting(got) == ours)
        fleet.stop()
        runner.join(30)
        assert not runner.is_alive()
        sub.wait_until("every device's offline status", lambda got: last_status(got) == offline)
    finally:
        fleet.stop()
        runner.join(10)
        sub.stop()
    onlines = [t for _w, t, p, _r in sub.got if t.endswith("/status") and p == b"online"]
    assert sorted(onlines) == sorted(f"{prefix}/devices/{d}/status" for d in ours)
    per_device: dict[str, list[int]] = defaultdict(list)
    answers = []
    for _w, topic, payload, _r in sub.got:
        if topic.endswith("/telemetry"):
            verdict = validate_telemetry(topic, payload, time.time(), prefix=prefix)
            assert isinstance(verdict, Accepted) and not verdict.dropped, verdict
            per_device[topic.split("/")[-2]].append(orjson.loads(payload)["seq"])
            if orjson.loads(payload).get("event") == "ok":
                answers.append(topic.split("/")[-2])
    assert answers == ["W005"]
    assert set(per_device) == ours
    assert all(seqs == list(range(len(seqs))) for seqs in per_device.values())
