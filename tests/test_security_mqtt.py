"""Nobody let in: per-device MQTT accounts, the ACL, TLS, and no secret in the bridge's log.

A Mosquitto of its own (the session's broker stays anonymous for the other tests) with the
credentials `anxin devices credentials` generates, a TLS listener with a CA made here by openssl,
and a bridge of its own on its own Kafka topics (on the session's Kafka).
"""

from __future__ import annotations

import os
import queue
import signal
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
import typer
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from anxin.processes import Child, ProcessGroup
from anxin.services import Endpoints, MqttAuth, MqttTls, Supervisor
from ingest.cli import register
from ingest.credentials import BRIDGE_USER, read_passwords
from simulators.fleet import Fleet, FleetLoginError, Rates
from tests.kafka_helpers import collect

PREFIX = "anxin/v1"
REGISTRY = """
residents:
  R901:
    name: Test Resident Nine
    timezone: Asia/Shanghai
    devices:
      S901: {placement: wrist}
      S902: {placement: pendant}
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=Anxin test CA", cwd=folder)  # fmt: skip
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext",
             cwd=folder)  # fmt: skip
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


@dataclass
class Secure:
    ep: Endpoints
    supervisor: Supervisor
    folder: Path
    creds: Path
    passwords: dict[str, str]
    bridge_password: str
    ca: Path
    topics: dict[str, str]
    group: ProcessGroup
    bridge: Child
    bridge_client_id: str  # what the bridge is configured to ask for


@pytest.fixture(scope="module")
def secure(services: Endpoints, anxin_env: dict[str, str], run_root: Path) -> Iterator[Secure]:
    # Under the run root, kept to the session's end: the personal-data check reads the broker's
    # and the bridge's (DEBUG) logs there with the rest.
    folder = run_root / f"secure-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    os.chmod(folder, 0o755)
    registry = folder / "registry.yaml"
    registry.write_text(REGISTRY)
    creds = folder / "creds"
    app = typer.Typer()
    register(app, typer.Typer())

    @app.command()
    def _unused() -> None:  # a second command keeps "devices" a sub-command
        pass

    result = CliRunner().invoke(app, ["devices", "credentials", str(registry), "--out", str(creds)])
    assert result.exit_code == 0, result.output
    ca, cert, key = make_ca(folder)
    sup = Supervisor(
        folder / "services",
        only=("mosquitto",),
        mqtt_auth=MqttAuth(creds / "passwd", creds / "acl"),
        mqtt_tls=MqttTls(ca, cert, key, plain_listener=True),
    )
    ep = sup.start()
    uid = uuid.uuid4().hex[:8]
    topics = {
        "readings": f"sec-{uid}-readings",
        "rejected": f"sec-{uid}-rejected",
        "status": f"sec-{uid}-status",
        "commands": f"sec-{uid}-commands",
    }
    # Bridges come and go in this module; their downlink group rebalances each time (Tansu's
    # join waits half the rebalance timeout): shorter group timeouts, as in the other tests.
    group_env = {"ANXIN_FAUST__SESSION_TIMEOUT": "6", "ANXIN_FAUST__REBALANCE_TIMEOUT": "6"}
    group = ProcessGroup(folder / "logs", env={**anxin_env, **group_env})
    ready = folder / "bridge.ready"
    bridge_client_id = f"anxin-ingest-secure-{uid}"
    bridge = group.spawn(
        "secure-bridge",
        "ingest",
        "--ready-file",
        str(ready),
        env={
            "ANXIN_SETTINGS_FILE": str(creds / "ingest-settings.yaml"),  # the bridge's account
            "ANXIN_MQTT__HOST": ep.host,
            "ANXIN_MQTT__PORT": str(ep.mqtt_port),
            "ANXIN_MQTT__CLIENT_ID": bridge_client_id,
            "ANXIN_REGISTRY": str(registry),
            "ANXIN_KAFKA__READINGS_TOPIC": topics["readings"],
            "ANXIN_KAFKA__REJECTED_TOPIC": topics["rejected"],
            "ANXIN_KAFKA__STATUS_TOPIC": topics["status"],
            "ANXIN_KAFKA__COMMANDS_TOPIC": topics["commands"],
            "ANXIN_LOG_LEVEL": "DEBUG",  # the most talkative it gets: still no secret
        },
    )
    try:
        group.wait_until(bridge, ready.exists)
        bridge_password = (creds / "ingest-settings.yaml").read_text().split("password: ")[1]
        yield Secure(
            ep,
            sup,
            folder,
            creds,
            read_passwords(creds / "devices.csv"),
            bridge_password.strip(),
            ca,
            topics,
            group,
            bridge,
            bridge_client_id,
        )
    finally:
        group.stop()
        sup.stop()


class Device:
    """A paho client as a device (or anybody) would connect."""

    def __init__(
        self,
        ep: Endpoints,
        username: str | None,
        password: str | None,
        port: int | None = None,
        ca: Path | None = None,
        tls_default: bool = False,
        client_id: str | None = None,
    ):
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{username}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        if username:
            self.client.username_pw_set(username, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        elif tls_default:
            self.client.tls_set()  # the system's CAs: the test CA is not among them
        self.connack: queue.Queue[Any] = queue.Queue()
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.subacks: queue.Queue[list[Any]] = queue.Queue()
        self.disconnects: queue.Queue[Any] = queue.Queue()  # every time the broker dropped us
        self.client.on_connect = lambda c, u, f, reason, p: self.connack.put(reason)
        self.client.on_disconnect = lambda c, u, f, reason, p: self.disconnects.put(reason)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subacks.put(codes)
        self.client.on_message = lambda c, u, msg: self.messages.put(
            (msg.topic, orjson.loads(msg.payload))
        )
        self.client.connect(ep.host, port or ep.mqtt_port)
        self.client.loop_start()

    def connected(self) -> bool:
        reason = self.connack.get(timeout=10)
        return not reason.is_failure

    def publish(self, topic: str, payload: dict[str, Any]) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, orjson.dumps(payload), qos=1)
        info.wait_for_publish(timeout=10)
        return info

    def subscribe(self, topic: str) -> list[Any]:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _device(s: Secure, device_id: str) -> Device:
    d = Device(s.ep, device_id, s.passwords[device_id])
    assert d.connected(), f"{device_id} refused with its own password"
    return d


def test_credentials_files(secure: Secure) -> None:
    assert set(secure.passwords) == {"S901", "S902"}
    assert len(set(secure.passwords.values())) == 2
    for name in ("devices.csv", "passwd", "ingest-settings.yaml"):
        assert (secure.creds / name).stat().st_mode & 0o777 == 0o600, name
    hashed = (secure.creds / "passwd").read_text()
    assert {line.split(":")[0] for line in hashed.splitlines()} == {"S901", "S902", BRIDGE_USER}
    assert all(line.split(":", 1)[1].startswith("$7$") for line in hashed.splitlines())
    for pw in [*secure.passwords.values(), secure.bridge_password]:
        assert pw not in hashed
    assert "pattern write anxin/v1/devices/%u/telemetry" in (secure.creds / "acl").read_text()


def test_anonymous_and_wrong_passwords_are_refused(secure: Secure) -> None:
    for username, password in [
        (None, None),
        ("S901", "not-the-password"),
        ("S901", secure.passwords["S902"]),
        ("nobody", "x"),
    ]:
        d = Device(secure.ep, username, password)
        try:
            assert not d.connected(), (username, password)
        finally:
            d.close()


def test_the_bridge_with_its_account_carries_telemetry_and_commands(secure: Secure) -> None:
    s = secure
    w, p = _device(s, "S901"), _device(s, "S902")
    try:
        assert not w.subscribe(f"{PREFIX}/devices/S901/commands")[0].is_failure
        t0 = time.time()
        w.publish(f"{PREFIX}/devices/S901/telemetry", {"ts": round(t0, 3), "seq": 8_900_001})
        found = collect(
            _bootstrap(s),
            s.topics["readings"],
            lambda r: r.get("seq") == 8_900_001,
            lambda f: len(f) >= 1,
        )
        assert [(r["device_id"], r["resident_id"]) for r in found] == [("S901", "R901")]

        # Downlink: a command for S901 reaches S901 only (S902 tries to listen in).
        codes = p.subscribe(f"{PREFIX}/devices/S901/commands")
        _produce(s, s.topics["commands"], {"device_id": "S901", "cmd": "notify", "text": "hi-901"})
        topic, payload = w.messages.get(timeout=60)
        assert topic == f"{PREFIX}/devices/S901/commands" and payload["text"] == "hi-901"
        assert codes[0].is_failure or p.messages.empty()
        # S902's own command still arrives: the downlink works for it and it saw no S901 one.
        p.subscribe(f"{PREFIX}/devices/S902/commands")
        _produce(s, s.topics["commands"], {"device_id": "S902", "cmd": "notify", "text": "hi-902"})
        topic, payload = p.messages.get(timeout=60)
        assert payload["text"] == "hi-902", "S902 received S901's command"
        assert p.messages.empty()
    finally:
        w.close()
        p.close()


def test_a_device_cannot_speak_for_another(secure: Secure) -> None:
    s = secure
    intruder = _device(s, "S902")
    try:
        t0 = round(time.time(), 3)
        # Forged as S901 (not delivered), then the intruder's own reading as a sentinel.
        intruder.publish(f"{PREFIX}/devices/S901/telemetry", {"ts": t0, "seq": 8_900_100})
        intruder.publish(f"{PREFIX}/devices/S901/status", {"ts": t0})
        intruder.publish(f"{PREFIX}/devices/S902/telemetry", {"ts": t0, "seq": 8_900_101})
    finally:
        intruder.close()
    found = collect(
        _bootstrap(s),
        s.topics["readings"],
        lambda r: r.get("seq") in (8_900_100, 8_900_101),
        lambda f: any(r["seq"] == 8_900_101 for r in f),
    )
    assert [(r["device_id"], r["seq"]) for r in found] == [("S902", 8_900_101)]
    rejected = collect(
        _bootstrap(s), s.topics["rejected"], lambda r: True, lambda f: True, settle_ms=500
    )
    assert not [r for r in rejected if "8900100" in r.get("payload", "")]


def test_a_device_cannot_take_the_bridges_or_another_devices_session(secure: Secure) -> None:
    """S902 logs in with its own valid password but claims the bridge's client id (the configured
    one and the account name), then S901's, each with a clean start that would wipe the session
    it took over. The broker gives S902 its own id instead: the bridge keeps its persistent
    session (paused meanwhile, so only that session can carry what S901 publishes) and all 40 of
    S901's readings reach ``readings`` exactly once; S901 is never knocked off."""
    s = secure
    victim = Device(s.ep, "S901", s.passwords["S901"], client_id="S901")
    assert victim.connected()
    try:
        os.kill(s.bridge.proc.pid, signal.SIGSTOP)
        try:
            for claimed in (s.bridge_client_id, BRIDGE_USER):
                _claim(s, claimed)
            t0 = round(time.time(), 3)
            for i in range(40):
                victim.publish(
                    f"{PREFIX}/devices/S901/telemetry", {"ts": t0 + i, "seq": 8_900_300 + i}
                )
        finally:
            os.kill(s.bridge.proc.pid, signal.SIGCONT)
        found = collect(
            _bootstrap(s),
            s.topics["readings"],
            lambda r: 8_900_300 <= r.get("seq", -1) < 8_900_340,
            lambda f: len({r["seq"] for r in f}) == 40,
        )
        assert sorted(r["seq"] for r in found) == list(range(8_900_300, 8_900_340))
        assert {r["device_id"] for r in found} == {"S901"}
        assert "MQTT disconnected" not in s.bridge.log_path.read_text(errors="replace")

        for claimed in ("S901", "sim-S901"):  # the victim's own id, and the fleet's old one
            _claim(s, claimed)
        # A round trip after the claims: had the broker dropped S901, paho saw it before this ack.
        victim.publish(f"{PREFIX}/devices/S901/telemetry", {"ts": t0, "seq": 8_900_340})
        assert victim.disconnects.empty(), "S901 was knocked off by a client claiming its id"
    finally:
        victim.close()
    broker_log = (s.folder / "services" / "mosquitto.log").read_text(errors="replace")
    for claimed in (s.bridge_client_id, BRIDGE_USER, "S901", "sim-S901"):
        assert f"Client {claimed} already connected" not in broker_log


def _claim(s: Secure, client_id: str) -> None:
    """S902, with its own valid password, connects asking for ``client_id`` (clean start)."""
    intruder = Device(s.ep, "S902", s.passwords["S902"], client_id=client_id)
    try:
        assert intruder.connected(), client_id  # its own account: it logs in, as itself
    finally:
        intruder.close()


def test_the_fleet_logs_in_per_device_and_the_bridge_forwards(secure: Secure) -> None:
    """`anxin simulate --credentials devices.csv`, as the demo runs it: every device logs in as
    itself, its readings reach Kafka through the bridge's account, a ``check`` downlink reaches
    the device and its "I'm OK" comes back, and no password is in its log."""
    s = secure
    ready = s.folder / "fleet.ready"
    fleet = s.group.spawn(
        "secure-fleet",
        "simulate",
        "--residents", "1",
        "--interval", "2",
        "--sos-rate", "0", "--fall-rate", "0", "--wander-rate", "0",
        "--trouble-rate", "0", "--vitals-rate", "0", "--ok-share", "1",
        "--credentials", str(s.creds / "devices.csv"),
        "--ready-file", str(ready),
        env={
            "ANXIN_MQTT__HOST": s.ep.host,
            "ANXIN_MQTT__PORT": str(s.ep.mqtt_port),
            "ANXIN_REGISTRY": str(s.folder / "registry.yaml"),
        },
    )  # fmt: skip
    try:
        s.group.wait_until(fleet, ready.exists)
        found = collect(
            _bootstrap(s),
            s.topics["readings"],
            # the first two reports of each (a device reporting every 1.5-3 s would otherwise
            # keep matching, and the collection settles only after 1.5 s without a match)
            lambda r: r["device_id"] in ("S901", "S902") and 0 <= r.get("seq", -1) < 2,
            lambda f: {r["device_id"] for r in f} == {"S901", "S902"},
        )
        assert {(r["device_id"], r["resident_id"]) for r in found} == {
            ("S901", "R901"),
            ("S902", "R901"),
        }
        assert all("vitals" in r and "accel" in r for r in found)
        # Downlink through the bridge's account to the logged-in device, and the answer back.
        check = {"device_id": "S902", "cmd": "check", "alert_id": "fall-sec", "timeout_s": 6}
        _produce(s, s.topics["commands"], check)
        answered = collect(
            _bootstrap(s),
            s.topics["readings"],
            lambda r: r["device_id"] == "S902" and r.get("event") == "ok",
            lambda f: bool(f),
        )
        assert len(answered) == 1
    finally:
        s.group.stop(fleet)
    assert fleet.proc.returncode == 0, fleet.log_path.read_text(errors="replace")
    log_text = fleet.log_path.read_text(errors="replace")
    assert "2 devices connected (each with its own password)" in log_text
    for secret in s.passwords.values():
        assert secret not in log_text
    # The broker saw each device log in under its own name.
    broker_log = (s.folder / "services" / "mosquitto.log").read_text(errors="replace")
    for device_id in ("S901", "S902"):
        assert f"as {device_id} (" in broker_log  # its account name is its client id too
        assert f"u'{device_id}')" in broker_log


def test_a_fleet_device_with_a_wrong_password_is_refused(secure: Secure) -> None:
    s = secure
    registry = {
        "residents": {
            "R901": {"name": "x", "devices": {"S901": {"placement": "wrist"}, "S902": {}}}
        }
    }
    wrong = {"S901": s.passwords["S901"], "S902": "not-the-password"}
    for passwords, refused in [(wrong, "S902"), (None, "S901, S902")]:  # None: anonymous
        fleet = Fleet(
            registry,
            s.ep.host,
            s.ep.mqtt_port,
            PREFIX,
            sos_rate=0.0,
            rates=Rates(fall=0, wander=0, trouble=0, vitals=0),
            passwords=passwords,
        )
        with pytest.raises(FleetLoginError) as refusal:  # not the TimeoutError of a wait
            fleet.run()
        message = str(refusal.value)
        assert message.endswith(f"device(s): {refused}"), message
        assert "authori" in message.lower(), message
        assert s.passwords["S901"] not in message and "not-the-password" not in message
    # A device without a password in the provisioning file is named, not tried anonymously.
    with pytest.raises(FleetLoginError, match="no password for device S902"):
        Fleet(registry, s.ep.host, s.ep.mqtt_port, passwords={"S901": "x"}).run()


def test_tls_works_with_the_ca_and_fails_without(secure: Secure) -> None:
    s = secure
    assert s.ep.mqtt_tls_port and s.ep.mqtt_tls_port != s.ep.mqtt_port
    good = Device(s.ep, "S901", s.passwords["S901"], port=s.ep.mqtt_tls_port, ca=s.ca)
    try:
        assert good.connected()
        good.publish(f"{PREFIX}/devices/S901/telemetry", {"ts": time.time(), "seq": 8_900_200})
    finally:
        good.close()
    found = collect(
        _bootstrap(s), s.topics["readings"], lambda r: r.get("seq") == 8_900_200, lambda f: bool(f)
    )
    assert len(found) == 1
    with pytest.raises(ssl.SSLCertVerificationError):
        Device(s.ep, "S901", s.passwords["S901"], port=s.ep.mqtt_tls_port, tls_default=True)
    # Plain MQTT to the TLS port gets no CONNACK.
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-plain-on-tls")
    plain.username_pw_set("S901", s.passwords["S901"])
    answered: list[Any] = []
    plain.on_connect = lambda c, u, f, reason, p: answered.append(reason)
    try:
        plain.connect(s.ep.host, s.ep.mqtt_tls_port, keepalive=5)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not answered:
            plain.loop(timeout=0.2)
    except OSError:
        pass
    assert not answered


def test_no_secret_in_the_bridge_log(secure: Secure) -> None:
    s = secure
    assert s.bridge.alive()
    text = s.bridge.log_path.read_text(errors="replace")
    assert "bridge ready" in text  # the log is the bridge's, at DEBUG
    for secret in [s.bridge_password, *s.passwords.values()]:
        assert secret not in text
    # Nor in the broker's log or the supervisor's state file.
    for path in (s.folder / "services").rglob("*"):
        if path.is_file() and path.name not in ("passwd", "mosquitto.db"):
            body = path.read_text(errors="replace")
            assert s.bridge_password not in body, path


def _bootstrap(s: Secure) -> str:
    return s.group.env["ANXIN_KAFKA__BOOTSTRAP"]


def _produce(s: Secure, topic: str, record: dict[str, Any]) -> None:
    import asyncio

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=_bootstrap(s))
        await producer.start()
        try:
            await producer.send_and_wait(topic, orjson.dumps(record), key=b"x")
        finally:
            await producer.stop()

    asyncio.run(send())


def test_services_status_sees_a_broker_that_refuses_anonymous_logins(secure: Secure) -> None:
    from anxin.cli import app

    result = CliRunner().invoke(
        app, ["services", "status", "--run-dir", str(secure.folder / "services")]
    )
    row = next(line for line in result.output.splitlines() if "mosquitto" in line)
    assert "yes" in row, result.output


def test_bridges_sharing_the_load_each_log_in_with_their_own_account(
    services: Endpoints, anxin_env: dict[str, str], run_root: Path
) -> None:
    """`--bridges 2`: two accounts, two settings files with the share group; both bridges stay
    connected side by side (neither takes the other's session) and every reading arrives once."""
    folder = run_root / f"bridges-{uuid.uuid4().hex[:8]}"  # its logs: read at the session's end
    folder.mkdir()
    os.chmod(folder, 0o755)
    (folder / "registry.yaml").write_text(REGISTRY)
    creds = folder / "creds"
    app = typer.Typer()
    register(app, typer.Typer())
    app.command()(lambda: None)  # a second command keeps "devices" a sub-command
    argv = ["devices", "credentials", str(folder / "registry.yaml"), "--out", str(creds)]
    result = CliRunner().invoke(app, [*argv, "--bridges", "2"])
    assert result.exit_code == 0, result.output
    acl = (creds / "acl").read_text()
    assert "user anxin-ingest\n" in acl and "user anxin-ingest-2\n" in acl
    sup = Supervisor(
        folder / "services",
        only=("mosquitto",),
        mqtt_auth=MqttAuth(creds / "passwd", creds / "acl"),
    )
    ep = sup.start()
    uid = uuid.uuid4().hex[:8]
    readings = f"bridges-{uid}-readings"
    group = ProcessGroup(folder / "logs", env=anxin_env)
    try:
        bridges = []
        for i, settings_file in enumerate(["ingest-settings.yaml", "ingest-settings-2.yaml"]):
            ready = folder / f"bridge-{i}.ready"
            child = group.spawn(
                f"bridge-{i}",
                "ingest",
                "--ready-file",
                str(ready),
                env={
                    "ANXIN_SETTINGS_FILE": str(creds / settings_file),
                    "ANXIN_MQTT__HOST": ep.host,
                    "ANXIN_MQTT__PORT": str(ep.mqtt_port),
                    "ANXIN_REGISTRY": str(folder / "registry.yaml"),
                    "ANXIN_KAFKA__READINGS_TOPIC": readings,
                    "ANXIN_KAFKA__REJECTED_TOPIC": f"bridges-{uid}-rejected",
                    "ANXIN_KAFKA__STATUS_TOPIC": f"bridges-{uid}-status",
                    "ANXIN_KAFKA__COMMANDS_TOPIC": f"bridges-{uid}-commands",
                },
            )
            group.wait_until(child, ready.exists)
            bridges.append(child)
        device = Device(ep, "S901", read_passwords(creds / "devices.csv")["S901"])
        try:
            assert device.connected()
            t0 = round(time.time(), 3)
            for i in range(20):
                device.publish(
                    f"{PREFIX}/devices/S901/telemetry", {"ts": t0 + i, "seq": 8_900_400 + i}
                )
        finally:
            device.close()
        found = collect(
            anxin_env["ANXIN_KAFKA__BOOTSTRAP"],
            readings,
            lambda r: True,
            lambda f: len({r["seq"] for r in f}) == 20,
        )
        assert sorted(r["seq"] for r in found) == list(range(8_900_400, 8_900_420))
        for child in bridges:
            assert "MQTT disconnected" not in child.log_path.read_text(errors="replace")
        broker_log = (folder / "services" / "mosquitto.log").read_text(errors="replace")
        assert "as anxin-ingest (" in broker_log and "as anxin-ingest-2 (" in broker_log
        assert "already connected" not in broker_log
    finally:
        group.stop()
        sup.stop()
