"""MQTT in tests: publish with the real mosquitto client, listen with paho."""

from __future__ import annotations

import queue
import subprocess
import time
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from anxin.services import Endpoints


def mosquitto_pub(ep: Endpoints, topic: str, lines: list[bytes], retain: bool = False) -> None:
    """Publish each line as one QoS 1 message with the real mosquitto client."""
    argv = ["mosquitto_pub", "-h", ep.host, "-p", str(ep.mqtt_port), "-q", "1", "-t", topic, "-l"]
    if retain:
        argv.append("-r")
    subprocess.run(argv, input=b"\n".join(lines) + b"\n", check=True, timeout=60)


class Listener:
    """A paho subscriber collecting JSON messages of one topic filter."""

    def __init__(self, ep: Endpoints, topic: str):
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-listener-{time.monotonic_ns()}"
        )
        subscribed: queue.Queue[bool] = queue.Queue()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: subscribed.put(True)
        self.client.on_message = lambda c, u, msg: self.messages.put(
            (msg.topic, orjson.loads(msg.payload))
        )
        self.client.connect(ep.host, ep.mqtt_port)
        self.client.loop_start()
        subscribed.get(timeout=10)

    def wait_for(self, match: Callable[[Any], bool], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching MQTT message")
            try:
                _topic, payload = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if match(payload):
                return payload

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
