"""A device command is confirmed on Kafka only after the MQTT broker acknowledged it.

A private Mosquitto, and between it and the bridge a TCP relay that can swallow what the bridge
sends (a network that took the bytes and never delivered them): the bridge consumes a command and
publishes it, the PUBLISH is held in the relay, the bridge is killed (SIGKILL) or stopped (SIGTERM)
and the held bytes are dropped with the connection. The next bridge of the same consumer group must
publish that command again; a device subscribed to its commands topic gets every command, in
order, exactly once.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from anxin.processes import Child, ProcessGroup
from anxin.services import Endpoints, Supervisor
from tests.mqtt_helpers import Listener

REGISTRY = """
residents:
  R931:
    name: Test Resident Downlink
    timezone: Asia/Shanghai
    devices:
      D931: {placement: wrist}
"""


class HoldingRelay:
    """TCP relay to the broker. ``hold()``: the client's bytes are kept, not passed on;
    ``cut()``: every connection and every held byte is dropped, and bytes pass again."""

    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.server = socket.create_server((host, 0))
        self.port = self.server.getsockname()[1]
        self._holding = False
        self._held = bytearray()
        self._cond = threading.Condition()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            broker = socket.create_connection(self.upstream)
            with self._cond:
                self._sockets += [client, broker]
            threading.Thread(target=self._pipe, args=(client, broker, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(broker, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            with self._cond:
                if from_client and self._holding:
                    self._held += data
                    self._cond.notify_all()
                    continue
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def hold(self) -> None:
        with self._cond:
            self._holding = True

    def wait_held(self, marker: bytes, timeout: float = 60.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: marker in self._held, timeout):
                raise AssertionError("the bridge never sent the command")

    def cut(self) -> None:
        with self._cond:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self._sockets.clear()
            self._held.clear()
            self._holding = False

    def close(self) -> None:
        self.server.close()
        self.cut()


@pytest.fixture
def broker(run_root: Path) -> Iterator[tuple[Endpoints, Path]]:
    # Under the run root, kept to the session's end: the personal-data check reads its logs.
    folder = run_root / f"downlink-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    folder.chmod(0o755)
    sup = Supervisor(folder / "services", only=("mosquitto",))
    try:
        yield sup.start(), folder
    finally:
        sup.stop()


def test_a_command_is_committed_only_after_the_brokers_puback(
    broker: tuple[Endpoints, Path], anxin_env: dict[str, str]
) -> None:
    ep, folder = broker
    relay = HoldingRelay(ep.host, ep.mqtt_port)
    (folder / "registry.yaml").write_text(REGISTRY)
    uid = uuid.uuid4().hex[:8]
    prefix = f"downlink-{uid}/v1"
    commands = f"downlink-{uid}-commands"
    group = ProcessGroup(folder / "logs", env=anxin_env)
    env = {
        "ANXIN_MQTT__HOST": ep.host,
        "ANXIN_MQTT__PORT": str(relay.port),
        "ANXIN_MQTT__PREFIX": prefix,
        "ANXIN_MQTT__CLIENT_ID": f"anxin-ingest-downlink-{uid}",
        "ANXIN_REGISTRY": str(folder / "registry.yaml"),
        "ANXIN_KAFKA__READINGS_TOPIC": f"downlink-{uid}-readings",
        "ANXIN_KAFKA__REJECTED_TOPIC": f"downlink-{uid}-rejected",
        "ANXIN_KAFKA__STATUS_TOPIC": f"downlink-{uid}-status",
        "ANXIN_KAFKA__COMMANDS_TOPIC": commands,
        # A killed bridge's downlink is taken over once its session times out: shorter here.
        "ANXIN_FAUST__SESSION_TIMEOUT": "6",
        "ANXIN_FAUST__REBALANCE_TIMEOUT": "6",
    }
    starts = iter(range(10))

    def start_bridge() -> Child:
        ready = folder / f"bridge-{next(starts)}.ready"
        child = group.spawn(ready.stem, "ingest", "--ready-file", str(ready), env=env)
        group.wait_until(child, ready.exists)
        return child

    device = Listener(ep, f"{prefix}/devices/D931/commands")
    received: list[str] = []

    def until_received(text: str) -> None:
        while text not in received:
            try:
                _topic, payload = device.messages.get(timeout=120)
            except queue.Empty:
                raise AssertionError(f"{text} never reached the device: {received}") from None
            received.append(payload["text"])

    def send(text: str) -> None:
        produce(anxin_env["ANXIN_KAFKA__BOOTSTRAP"], commands, text)

    try:
        bridge = start_bridge()
        send("c0")
        until_received("c0")  # the downlink is up, c0 acknowledged and committed
        for text, sig in (("c1", signal.SIGKILL), ("c2", signal.SIGTERM)):
            relay.hold()
            send(text)
            relay.wait_held(f'"text":"{text}"'.encode())  # consumed and published, never acked
            group.stop(bridge, sig=sig)
            relay.cut()  # what the bridge sent is gone with its connection
            bridge = start_bridge()
            until_received(text)  # the next bridge publishes it again
        send("c3")
        until_received("c3")
        assert received == ["c0", "c1", "c2", "c3"]
        with pytest.raises(queue.Empty):  # nothing after c3 either (c3 was the last sent)
            device.messages.get_nowait()
    finally:
        device.close()
        group.stop()
        relay.close()


def produce(bootstrap: str, topic: str, text: str) -> None:
    record: dict[str, Any] = {"device_id": "D931", "cmd": "notify", "text": text}

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, orjson.dumps(record), key=b"D931")
        finally:
            await producer.stop()

    asyncio.run(go())
