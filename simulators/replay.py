"""``anxin replay``: publish a scenario folder over MQTT as its devices would have.

Each device gets its own MQTT connection (client id ``{client_prefix}{device}``, retained
``offline`` last will, QoS 1), because the broker's per-connection ordering is what keeps a
device's messages in order, and because the bridge sees what real devices produce. All
connections are driven by one thread (``ClientPool``, an epoll loop over paho clients without
their per-client threads), so thousands of devices fit on a small machine. Messages go out in
the file's arrival order; with ``speed`` the original spacing is kept, divided by ``speed``;
without it (``--fast``) as fast as the broker acknowledges, with a bounded number in flight.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from anxin.core.logs import get_logger

log = get_logger(__name__)
PREFIX = "anxin/v1"
MAX_UNACKED = 4000  # --fast: messages published but not yet acknowledged, over all clients


class LoginRefused(RuntimeError):
    """The broker refused some devices' logins (or a device has no password)."""


class ClientPool:
    """Many paho clients on one network loop: call ``pump`` from the one thread that publishes.

    Why not ``loop_start()`` per client: that is a thread per device; a few thousand threads
    on 2 cores spend their time switching. paho writes a publish at once when no loop thread
    runs, so the loop only has to read (acks, downlinks) and retry partial writes.
    With ``passwords`` each device logs in as itself (username = device id); anonymous without.
    A refused login is reported at once by ``wait_connected`` rather than waited out.
    """

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str = PREFIX,
        client_prefix: str = "replay-",
        on_message: Callable[[str, bytes], None] | None = None,
        subscribe_commands: bool = False,
        keepalive: int = 60,
        passwords: Mapping[str, str] | None = None,
    ):
        self.host, self.port, self.prefix = host, port, prefix
        self.passwords = passwords
        self.refused: dict[str, str] = {}  # device id -> the broker's reason
        self.client_prefix = client_prefix
        self.on_message = on_message
        self.subscribe_commands = subscribe_commands
        self.keepalive = keepalive
        self.clients: dict[str, mqtt.Client] = {}
        self.connected: set[str] = set()
        self.sel = selectors.DefaultSelector()
        self.published = 0
        self.acked = 0
        self._dirty: set[str] = set()
        self._misc_at = 0.0

    def status_topic(self, device_id: str) -> str:
        return f"{self.prefix}/devices/{device_id}/status"

    def add(self, device_id: str, will: bool = True) -> mqtt.Client:
        """Connect one device (non-blocking for the handshake: ``wait_connected`` after)."""
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            # Logged in, a device's client id is its account name (the broker enforces it).
            client_id=device_id
            if self.passwords is not None
            else f"{self.client_prefix}{device_id}",
            protocol=mqtt.MQTTv311,
        )
        if self.passwords is not None:
            password = self.passwords.get(device_id)
            if password is None:
                raise LoginRefused(f"no password for device {device_id} in the credentials")
            c.username_pw_set(device_id, password)
        c.max_inflight_messages_set(200)
        c.max_queued_messages_set(0)
        if will:
            c.will_set(self.status_topic(device_id), "offline", qos=1, retain=True)

        def on_connect(cl: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            if rc.is_failure:
                self.refused[device_id] = str(rc)
                return
            self.connected.add(device_id)
            if self.subscribe_commands:
                cl.subscribe(f"{self.prefix}/devices/{device_id}/commands", qos=1)

        def on_publish(cl: mqtt.Client, u: Any, mid: int, rc: Any, p: Any) -> None:
            self.acked += 1

        c.on_connect = on_connect
        c.on_publish = on_publish
        if self.on_message is not None:
            handler = self.on_message
            c.on_message = lambda cl, u, msg: handler(device_id, bytes(msg.payload))
        c.connect(self.host, self.port, keepalive=self.keepalive)
        sock = c.socket()
        if sock is not None:
            self.sel.register(sock, selectors.EVENT_READ, device_id)
        self.clients[device_id] = c
        self._dirty.add(device_id)
        return c

    def wait_connected(self, device_ids: Iterable[str], timeout: float = 30.0) -> None:
        want = set(device_ids)
        deadline = time.monotonic() + timeout
        while not want <= self.connected:
            refused = sorted(want & set(self.refused))
            if refused:
                raise LoginRefused(
                    f"MQTT login refused ({self.refused[refused[0]]}) for {len(refused)} "
                    f"device(s): {', '.join(refused[:5])}{' ...' if len(refused) > 5 else ''}"
                )
            if time.monotonic() > deadline:
                missing = sorted(want - self.connected)[:5]
                raise TimeoutError(f"MQTT connections not acknowledged: {missing} ...")
            self.pump(0.05)

    def publish(
        self, device_id: str, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> None:
        client = self.clients.get(device_id)
        if client is None:
            client = self.add(device_id)
            self.wait_connected([device_id])
        client.publish(topic, payload, qos=qos, retain=retain)
        self.published += 1
        if qos == 0:
            self.acked += 1
        self._dirty.add(device_id)

    def pump(self, timeout: float = 0.0) -> None:
        """Read what arrived (acks, downlinks), finish pending writes, keep connections alive."""
        for key, _mask in self.sel.select(timeout):
            client = self.clients.get(str(key.data))
            if client is not None:
                client.loop_read()
                if client.want_write():
                    self._dirty.add(str(key.data))
        for device_id in list(self._dirty):
            client = self.clients[device_id]
            if client.want_write():
                client.loop_write()
            if not client.want_write():
                self._dirty.discard(device_id)
        self._keep_alive(time.monotonic())

    def _keep_alive(self, now: float) -> None:
        """paho's ``loop_misc`` (pings, timeouts) for every client, once a second."""
        if now - self._misc_at > 1.0:
            self._misc_at = now
            for client in self.clients.values():
                client.loop_misc()

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until every QoS 1 message was acknowledged."""
        deadline = time.monotonic() + timeout
        while self.acked < self.published and time.monotonic() < deadline:
            self.pump(0.05)

    def close(self, offline: bool = False) -> None:
        """Disconnect every client cleanly (no last will), optionally saying ``offline`` first."""
        if offline:
            for device_id in self.clients:
                self.publish(device_id, self.status_topic(device_id), b"offline", retain=True)
            self.drain(10.0)
        for client in self.clients.values():
            client.disconnect()
            if client.want_write():
                client.loop_write()
        for client in self.clients.values():
            sock = client.socket()
            if sock is not None:
                try:
                    self.sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
        self.sel.close()


@dataclass
class ReplayStats:
    published: int = 0
    devices: int = 0
    first_t: float | None = None
    last_t: float | None = None
    wall_s: float = 0.0
    log: list[tuple[float, float]] = field(default_factory=list)  # (wall time, scenario t)


def _device(topic: str) -> str:
    parts = topic.split("/")
    return parts[-2] if len(parts) >= 3 else topic


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))


def replay(
    folder: Path,
    host: str,
    port: int,
    speed: float | None = 1.0,
    progress: bool = True,
    client_prefix: str = "replay-",
    prefix: str = PREFIX,
) -> ReplayStats:
    """Publish ``folder/messages.jsonl``; ``speed=None`` means as fast as the broker acks."""
    from anxin.core.registry import load_registry
    from anxin.core.scenario_files import read_messages

    stats = ReplayStats()
    pool = ClientPool(host, port, prefix, client_prefix)
    registry_path = folder / "registry.yaml"
    if registry_path.exists():
        devices = [d for r in load_registry(registry_path).residents.values() for d in r.devices]
        for device_id in devices:
            pool.add(device_id)
        pool.wait_connected(devices)
    total = count_lines(folder / "messages.jsonl")
    w0 = time.time()
    prog_ctx: Any = None
    task = None
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        prog_ctx = Progress(
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[scn]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        prog_ctx.start()
        task = prog_ctx.add_task("replay", total=total, scn="")
    try:
        for i, (t, topic, raw) in enumerate(read_messages(folder / "messages.jsonl")):
            if stats.first_t is None:
                stats.first_t = t
            if speed is not None:
                target = w0 + (t - stats.first_t) / speed
                while True:
                    wait = target - time.time()
                    if wait <= 0:
                        break
                    pool.pump(min(wait, 0.05))
            else:
                while pool.published - pool.acked > MAX_UNACKED:
                    pool.pump(0.01)
            is_status = topic.endswith("/status")
            pool.publish(_device(topic), topic, raw, qos=1, retain=is_status)
            stats.log.append((time.time(), t))
            stats.last_t = t
            if i % 64 == 0:
                pool.pump(0.0)
                if prog_ctx is not None and task is not None:
                    scn = f"scenario +{t - stats.first_t:,.0f} s"
                    prog_ctx.update(task, completed=i + 1, scn=scn)
        pool.drain()
        if prog_ctx is not None and task is not None:
            prog_ctx.update(task, completed=total)
    finally:
        if prog_ctx is not None:
            prog_ctx.stop()
        stats.published = pool.published
        stats.devices = len(pool.clients)
        pool.close()
        stats.wall_s = time.time() - w0
    return stats
