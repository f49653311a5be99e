"""Local service supervisor: the real services as child processes on 127.0.0.1 and free ports.

Used by ``anxin services up``, ``anxin demo`` and the pytest session fixture alike. Each service
gets its config, data and log in the run folder; readiness is the service answering its own protocol
(MQTT CONNACK, Kafka metadata, HTTP health, SQL ``select 1``), never a sleep. Children get
``PR_SET_PDEATHSIG`` so that they die with the supervisor even when it is killed.

Secure MQTT (optional): ``Supervisor(run_dir, mqtt_auth=MqttAuth(passwd, acl), mqtt_tls=MqttTls(
ca, cert, key))`` turns anonymous access off, uses the password file (hashed by
``mosquitto_passwd``, see ``anxin devices credentials``) and the ACL, and adds a TLS listener.
The files are copied into the run folder, readable by the broker's user only.
"""

from __future__ import annotations

import asyncio
import ctypes
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from anxin.core.logs import get_logger
from storage.config import VICTORIAMETRICS_FLAGS

log = get_logger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TWILIO_MOCK_DIR = PROJECT_ROOT / "tools" / "twilio-mock"
TWILIO_SPEC = "node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/twilio_api_v2010.json"
TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
SERVICE_NAMES = ("mosquitto", "kafka", "victoriametrics", "postgres", "twilio")
# Largest MQTT packet the broker accepts (the contract allows 64 KiB payloads; bigger ones up to
# this size reach the bridge and are dead-lettered, beyond it the broker drops the client).
MQTT_MAX_PACKET_BYTES = 1024 * 1024


@dataclass(frozen=True)
class MqttAuth:
    """Mosquitto authentication: a ``mosquitto_passwd`` password file and an ACL file."""

    passwd_file: Path
    acl_file: Path


@dataclass(frozen=True)
class MqttTls:
    """A TLS listener. With ``plain_listener`` False (the default) it is the only one."""

    cafile: Path
    certfile: Path
    keyfile: Path
    plain_listener: bool = False


class ServiceError(RuntimeError):
    """A service did not start; the message carries the tail of its log."""


def free_port() -> int:
    """A port that was free a moment ago: only a candidate. Another process may bind it before
    the service does, so whoever starts a service on it checks that the service itself holds it
    (``listens_on``) and moves to a new candidate when the bind failed (``bind_failed``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BIND_FAILURES = ("address already in use", "eaddrinuse", "could not bind", "address in use")
MAX_PORT_MOVES = 5


def bind_failed(log_path: Path, offset: int = 0) -> bool:
    """True if the log, from ``offset`` on, says the process could not bind its port."""
    try:
        with log_path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace").lower()
    except FileNotFoundError:
        return False
    return any(failure in text for failure in BIND_FAILURES)


def log_size(path: Path) -> int:
    """Where a process's output starts in a log that earlier runs appended to."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _listening_inodes(port: int) -> set[str]:
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                found.add(f"socket:[{fields[9]}]")
    return found


def _children_of(pid: int) -> list[int]:
    out: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # exited while we looked: not a child any more
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def _holds(pid: int, sockets: set[str]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # exited
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                return True
        except OSError:  # closed while we looked
            continue
    return False


def listens_on(pid: int, port: int) -> bool:
    """True if process ``pid`` (or a descendant) holds the listening socket of ``port``.

    Why: a service that lost the race for its port must not pass readiness because another
    process (another test run's broker) answers on that port in its place."""
    sockets = _listening_inodes(port)
    if not sockets:
        return False
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        if _holds(p, sockets):
            return True
        todo += _children_of(p)
    return False


def _die_with_parent() -> None:
    """Runs in the child before exec: ask the kernel for SIGTERM when the supervisor dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def which(name: str, *extra_globs: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for pattern in extra_globs:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    raise ServiceError(f"{name} not found: run scripts/setup (it installs the Debian packages)")


@dataclass
class Endpoints:
    """Where the running services answer; written to ``services.json`` for the CLI."""

    mqtt_port: int
    kafka_port: int
    vm_port: int
    pg_port: int
    twilio_port: int
    host: str = "127.0.0.1"
    twilio_account_sid: str = TEST_ACCOUNT_SID
    mqtt_tls_port: int | None = None  # the TLS listener, if any (== mqtt_port when TLS only)
    mqtt_tls_ca: str | None = None  # the CA clients verify the broker with

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def vm_url(self) -> str:
        return f"http://{self.host}:{self.vm_port}"

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://anxin@{self.host}:{self.pg_port}/anxin"

    @property
    def twilio_url(self) -> str:
        return f"http://{self.host}:{self.twilio_port}"

    def settings(self) -> dict[str, Any]:
        """The settings overrides that point Anxin at these services."""
        mqtt_settings: dict[str, Any] = {"host": self.host, "port": self.mqtt_port}
        if self.mqtt_tls_ca and self.mqtt_tls_port == self.mqtt_port:
            mqtt_settings["tls_ca"] = self.mqtt_tls_ca
        return {
            "mqtt": mqtt_settings,
            "kafka": {"bootstrap": self.kafka_bootstrap},
            "influx": {"url": self.vm_url},
            "postgres": {"dsn": self.pg_dsn},
            "twilio": {"base_url": self.twilio_url, "account_sid": self.twilio_account_sid},
        }

    def env(self) -> dict[str, str]:
        """The same overrides as ``ANXIN_`` environment variables, for child processes."""
        out: dict[str, str] = {}
        for section, values in self.settings().items():
            for key, value in values.items():
                out[f"ANXIN_{section.upper()}__{key.upper()}"] = str(value)
        return out


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)
    cwd: Path | None = None
    user: str | None = None


@dataclass
class Supervisor:
    """Starts, watches and stops the local services. Use as a context manager."""

    run_dir: Path
    only: Sequence[str] = SERVICE_NAMES
    startup_timeout: float = 60.0
    ports: dict[str, int] = field(default_factory=dict)  # pin a service's port; default: free
    mqtt_auth: MqttAuth | None = None  # per-device accounts and ACL; None: anonymous (local)
    mqtt_tls: MqttTls | None = None  # a TLS listener (port "mosquitto-tls" in ``ports``)
    children: list[_Child] = field(default_factory=list)
    endpoints: Endpoints | None = None
    _log_from: dict[str, int] = field(default_factory=dict, repr=False)

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Endpoints:
        self.run_dir = self.run_dir.resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.run_dir, 0o755)  # the postgres user must reach its data folder
        # Candidates only: a service whose port was taken before it bound it moves to another
        # (``_wait_ready``); a pinned port (``ports``) never moves.
        port = {name: self.ports.get(name) or free_port() for name in SERVICE_NAMES}
        tls_port = None
        if self.mqtt_tls is not None:
            tls_port = self.ports.get("mosquitto-tls") or free_port()
            if not self.mqtt_tls.plain_listener:
                port["mosquitto"] = tls_port
        ep = Endpoints(
            mqtt_tls_port=tls_port,
            mqtt_tls_ca=str(self.mqtt_tls.cafile.resolve()) if self.mqtt_tls else None,
            mqtt_port=port["mosquitto"],
            kafka_port=port["kafka"],
            vm_port=port["victoriametrics"],
            pg_port=port["postgres"],
            twilio_port=port["twilio"],
        )
        self.endpoints = ep
        self._starters: dict[str, Callable[[Endpoints], None]] = {
            "mosquitto": self._start_mosquitto,
            "kafka": self._start_kafka,
            "victoriametrics": self._start_vm,
            "postgres": self._start_postgres,
            "twilio": self._start_twilio,
        }
        self._moves = {name: 0 for name in SERVICE_NAMES}
        try:
            for name in self.only:
                self._starters[name](ep)
            self._wait_ready(ep, movable=True)
        except BaseException:
            self.stop()
            raise
        self._write_state(ep)
        return ep

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in reversed(self.children):
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        self.children.clear()
        state = self.run_dir / "services.json"
        if state.exists():
            state.unlink()

    def _write_state(self, ep: Endpoints) -> None:
        state = {
            "supervisor_pid": os.getpid(),
            "endpoints": asdict(ep),
            "settings": ep.settings(),
            "pids": {c.name: c.proc.pid for c in self.children},
            "logs": {c.name: str(c.log_path) for c in self.children},
        }
        (self.run_dir / "services.json").write_text(json.dumps(state, indent=2))

    # -- spawning ------------------------------------------------------------------------------
    def _spawn(
        self,
        name: str,
        argv: list[str],
        cwd: Path | None = None,
        user: str | None = None,
        env: dict[str, str] | None = None,
    ) -> _Child:
        log_path = self.run_dir / f"{name}.log"
        self._log_from[name] = log_size(log_path)  # a bind failure is looked for from here
        logf = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops us in order
            user=user,
            env={**os.environ, **(env or {})},
        )
        logf.close()
        child = _Child(name, proc, log_path, argv, cwd, user)
        self.children.append(child)
        return child

    def _child(self, name: str) -> _Child:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(f"no service {name!r} is supervised here")

    def stop_service(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop one service (fault tests: broker outages, store outages)."""
        child = self._child(name)
        if child.proc.poll() is None:
            child.proc.send_signal(sig)
            child.proc.wait(timeout=30)

    def start_service(self, name: str) -> None:
        """Start a stopped service again on the same port and data, and wait until it answers."""
        assert self.endpoints is not None
        old = self._child(name)
        if old.proc.poll() is None:
            raise ServiceError(f"{name} is still running")
        self.children.remove(old)
        self._spawn(name, old.argv, cwd=old.cwd, user=old.user)
        self._wait_ready(self.endpoints, only=(name,))

    def _start_mosquitto(self, ep: Endpoints) -> None:
        folder = self.run_dir / "mosquitto"
        folder.mkdir(exist_ok=True)
        conf = folder / "mosquitto.conf"
        user = None
        if os.geteuid() == 0:
            # Started as root, mosquitto would switch user itself, which clears the parent-death
            # signal; start it as its own user instead.
            user = "mosquitto"
            _chown_to(folder, user)
        lines = [
            "per_listener_settings false",
            f"max_packet_size {MQTT_MAX_PACKET_BYTES}",
        ]
        if self.mqtt_auth is None:
            lines.append("allow_anonymous true")
        else:
            passwd = _private_copy(self.mqtt_auth.passwd_file, folder / "passwd", user)
            acl = _private_copy(self.mqtt_auth.acl_file, folder / "acl", user)
            lines += ["allow_anonymous false", f"password_file {passwd}", f"acl_file {acl}"]
        # With accounts, the client id is the account name (a listener option in Mosquitto 2.0):
        # a device logging in with its own password but another's id (the bridge's, another
        # watch's) gets its own id instead of taking over, and with a clean start wiping, that
        # session.
        own_id = ["use_username_as_clientid true"] if self.mqtt_auth is not None else []
        tls = self.mqtt_tls
        if tls is None or tls.plain_listener:
            lines += [f"listener {ep.mqtt_port} {ep.host}", *own_id]
        if tls is not None:
            lines += [
                f"listener {ep.mqtt_tls_port} {ep.host}",
                *own_id,
                f"cafile {_private_copy(tls.cafile, folder / 'ca.crt', user)}",
                f"certfile {_private_copy(tls.certfile, folder / 'server.crt', user)}",
                f"keyfile {_private_copy(tls.keyfile, folder / 'server.key', user)}",
                "tls_version tlsv1.2",
            ]
        lines += [
            "persistence true",
            f"persistence_location {folder}/",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        conf.write_text("\n".join(lines) + "\n")
        argv = [which("mosquitto", "/usr/sbin/mosquitto"), "-c", str(conf)]
        self._spawn("mosquitto", argv, user=user)

    def _start_kafka(self, ep: Endpoints) -> None:
        url = f"tcp://{ep.host}:{ep.kafka_port}"
        tansu = which("tansu", str(Path(sys.executable).parent / "tansu"))
        self._spawn(
            "kafka",
            [
                tansu,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            cwd=self.run_dir,
        )

    def _start_vm(self, ep: Endpoints) -> None:
        folder = self.run_dir / "victoriametrics"
        folder.mkdir(exist_ok=True)
        self._spawn(
            "victoriametrics",
            [
                which("victoria-metrics", "/usr/bin/victoria-metrics"),
                f"-httpListenAddr={ep.host}:{ep.vm_port}",
                f"-storageDataPath={folder}",
                *VICTORIAMETRICS_FLAGS,  # retention, and dedup so a replayed point stays one
                "-search.latencyOffset=0s",
                "-loggerLevel=WARN",
            ],
        )

    def _start_postgres(self, ep: Endpoints) -> None:
        bindir = Path(which("initdb", "/usr/lib/postgresql/*/bin/initdb")).parent
        data = self.run_dir / "postgres"
        user: str | None = None
        if os.geteuid() == 0:
            user = "postgres"  # postgres refuses to run as root
        if not (data / "PG_VERSION").exists():
            data.mkdir(exist_ok=True)
            if user:
                _chown_to(data, user)
            result = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "anxin",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
                capture_output=True,
                user=user,
                text=True,
            )
            if result.returncode != 0:
                raise ServiceError(f"postgres initdb failed:\n{result.stdout}\n{result.stderr}")
        self._spawn(
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                ep.host,
                "-p",
                str(ep.pg_port),
                "-k",
                str(data),
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            user=user,
        )

    def _start_twilio(self, ep: Endpoints) -> None:
        prism = TWILIO_MOCK_DIR / "node_modules" / ".bin" / "prism"
        if not prism.exists():
            raise ServiceError(f"{prism} is missing: run scripts/setup (npm ci of the Twilio mock)")
        self._spawn(
            "twilio",
            [str(prism), "mock", "-h", ep.host, "-p", str(ep.twilio_port), TWILIO_SPEC],
            cwd=TWILIO_MOCK_DIR,
        )

    # -- readiness -----------------------------------------------------------------------------
    # -- ports ---------------------------------------------------------------------------------
    def _ports_of(self, ep: Endpoints, name: str) -> list[int]:
        fields = _PORT_FIELDS[name]
        return [p for p in (getattr(ep, f) for f in fields) if isinstance(p, int)]

    def _can_move(self, name: str) -> bool:
        pins = {"mosquitto": ("mosquitto", "mosquitto-tls")}.get(name, (name,))
        return not any(self.ports.get(pin) for pin in pins) and self._moves[name] < MAX_PORT_MOVES

    def _move(self, ep: Endpoints, name: str) -> _Child:
        """Start ``name`` again on new candidate ports after it lost its port to someone else."""
        old = self._child(name)
        if old.proc.poll() is None:
            old.proc.kill()
        old.proc.wait()
        self.children.remove(old)
        self._moves[name] += 1
        taken = self._ports_of(ep, name)
        log.info(
            "service %s: port %s was taken, moving (attempt %d)", name, taken, self._moves[name]
        )
        if name == "mosquitto":
            tls_only = ep.mqtt_tls_port is not None and ep.mqtt_tls_port == ep.mqtt_port
            if ep.mqtt_tls_port is not None:
                ep.mqtt_tls_port = free_port()
            ep.mqtt_port = ep.mqtt_tls_port if tls_only and ep.mqtt_tls_port else free_port()
        else:
            setattr(ep, _PORT_FIELDS[name][0], free_port())
        self._starters[name](ep)
        return self._child(name)

    def _wait_ready(
        self, ep: Endpoints, only: Sequence[str] | None = None, movable: bool = False
    ) -> None:
        """Wait until every service answers on its port, the port held by that very process.

        With ``movable`` (a first start), a service that could not bind its candidate port
        (taken by another process in between) starts again on a new one."""
        checks: dict[str, Callable[[], bool]] = {
            "mosquitto": lambda: (
                mqtt_ready(ep.host, ep.mqtt_port)
                if self.mqtt_auth is None and self.mqtt_tls is None
                else mqtt_answers(
                    ep.host,
                    ep.mqtt_port,
                    ep.mqtt_tls_ca if ep.mqtt_tls_port == ep.mqtt_port else None,
                )
            ),
            "kafka": lambda: kafka_ready(ep.kafka_bootstrap),
            "victoriametrics": lambda: http_ready(f"{ep.vm_url}/health"),
            "postgres": lambda: postgres_ready(ep.pg_dsn),
            "twilio": lambda: http_ready(
                f"{ep.twilio_url}/2010-04-01/Accounts/{ep.twilio_account_sid}.json", any_status=True
            ),
        }
        pending = {c.name: c for c in self.children if only is None or c.name in only}
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.05
        while pending:
            for name, child in list(pending.items()):
                exited = child.proc.poll() is not None
                owned = not exited and all(
                    listens_on(child.proc.pid, p) for p in self._ports_of(ep, name)
                )
                if (
                    (exited or not owned)
                    and movable
                    and self._can_move(name)
                    and bind_failed(child.log_path, self._log_from.get(name, 0))
                ):
                    pending[name] = self._move(ep, name)
                    continue
                if exited:
                    raise ServiceError(
                        f"{name} exited with code {child.proc.returncode} while starting; "
                        f"last lines of {child.log_path}:\n{_tail(child.log_path)}"
                    )
                if owned and checks[name]():
                    log.info("service %s ready", name)
                    del pending[name]
            if pending and time.monotonic() > deadline:
                name, child = next(iter(pending.items()))
                raise ServiceError(
                    f"{name} did not answer within {self.startup_timeout:.0f} s; "
                    f"last lines of {child.log_path}:\n{_tail(child.log_path)}"
                )
            if pending:
                time.sleep(
                    delay
                )  # polling interval between readiness probes, not a wait for readiness
                delay = min(delay * 1.5, 0.5)


_PORT_FIELDS: dict[str, tuple[str, ...]] = {
    "mosquitto": ("mqtt_port", "mqtt_tls_port"),
    "kafka": ("kafka_port",),
    "victoriametrics": ("vm_port",),
    "postgres": ("pg_port",),
    "twilio": ("twilio_port",),
}


def _chown_to(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _private_copy(src: Path, dst: Path, user: str | None) -> Path:
    """Copy a secret file for the broker: mode 600, owned by the broker's user."""
    if dst.exists():
        dst.unlink()
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(Path(src).read_bytes())
    if user:
        _chown_to(dst, user)
    return dst


def mqtt_ready(host: str, port: int) -> bool:
    """True once the broker answers CONNECT with CONNACK."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"anxin-probe-{os.getpid()}")
    try:
        client.connect(host, port, keepalive=5)
        deadline = time.monotonic() + 2
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        ok = client.is_connected()
        client.disconnect()
        return ok
    except OSError:
        return False


def mqtt_answers(host: str, port: int, tls_ca: str | None = None) -> bool:
    """True once the broker answers CONNECT with any CONNACK (also "not authorised"): the
    readiness probe of a broker that refuses anonymous clients."""
    answered: list[bool] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"anxin-probe-{os.getpid()}")
    client.on_connect = lambda c, u, flags, reason, props: answered.append(True)
    if tls_ca:
        client.tls_set(ca_certs=tls_ca)
    try:
        client.connect(host, port, keepalive=5)
        deadline = time.monotonic() + 2
        while not answered and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        client.disconnect()
        return bool(answered)
    except (OSError, ValueError):
        return False


def kafka_ready(bootstrap: str) -> bool:
    """True once the broker answers a Kafka metadata request."""
    from aiokafka import AIOKafkaClient

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await client.bootstrap()
            return True
        except Exception:
            return False
        finally:
            await client.close()

    return asyncio.run(probe())


def http_ready(url: str, any_status: bool = False) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return any_status
    except (OSError, ValueError):
        return False


def postgres_ready(dsn: str) -> bool:
    """True once ``select 1`` answers; creates the ``anxin`` database on first start."""
    import psycopg

    try:
        admin_dsn = dsn.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_dsn, connect_timeout=2, autocommit=True) as conn:
            conn.execute("select 1")
            exists = conn.execute("select 1 from pg_database where datname = 'anxin'").fetchone()
            if not exists:
                conn.execute("create database anxin")
        return True
    except psycopg.OperationalError:
        return False


def read_state(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "services.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data
