"""``anxin demo``: the whole system on this machine, with a simulated fleet.

Services (Mosquitto, Tansu, VictoriaMetrics, PostgreSQL, the Twilio mock), then the bridge, a
detector worker, the alerts worker (escalation by the Twilio mock) and the storage writer, then
the fleet. Alerts and their escalation are printed as they happen. Ctrl-C stops everything.

MQTT is not anonymous: ``ingest.credentials.write_credentials`` makes a random password for every
device and the bridge in ``credentials/`` of the run folder (mode 700; never printed), Mosquitto
runs with that password file and ACL, the bridge logs in with its own account (the only Anxin
process that speaks MQTT: the detector and alerts workers send their ``check``/``notify``/
``cancel`` downlinks through Kafka's ``device-commands`` and the bridge) and every simulated
device logs in as itself with its password from the provisioning file.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml
from rich.console import Console

from anxin.core.registry import load_registry
from anxin.core.settings import Settings
from anxin.processes import Child, ProcessGroup
from anxin.services import (
    MAX_PORT_MOVES,
    PROJECT_ROOT,
    Endpoints,
    MqttAuth,
    ServiceError,
    Supervisor,
    bind_failed,
    free_port,
    listens_on,
    log_size,
)
from console.users import add_user
from ingest.credentials import CredentialsError, write_credentials
from simulators.fleet import demo_registry

POLICIES_EXAMPLE = PROJECT_ROOT / "alerts" / "policies.example.yaml"


def pipeline_env(ep: Endpoints, run_dir: Path, registry: Path) -> dict[str, str]:
    """Environment of the bridge, workers and storage of one run folder (demo and bench alike):
    the services' addresses, the registry, Faust's data and the policies beside the registry.
    The alerts worker's webhook port comes from ``spawn_on_own_port`` (``webhook_env``)."""
    return {
        **ep.env(),
        "ANXIN_RUN_DIR": str(run_dir),
        "ANXIN_REGISTRY": str(registry),
        "ANXIN_FAUST__DATA_DIR": str(run_dir / "faust"),
        "ANXIN_ALERTS__POLICIES": str(run_dir / "alerts.yaml"),
    }


def webhook_env(port: int) -> dict[str, str]:
    """The alerts worker's Twilio webhooks on ``port`` (and the URL Twilio is told to call)."""
    return {
        "ANXIN_ALERTS__WEBHOOK_PORT": str(port),
        "ANXIN_TWILIO__PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }


def spawn_on_own_port(
    group: ProcessGroup,
    name: str,
    args: Sequence[str],
    ready: Path,
    port_env: Callable[[int], dict[str, str]],
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
    first: int | None = None,
) -> tuple[Child, int]:
    """Start ``anxin ARGS --ready-file READY`` serving on a port it binds itself (the alerts
    worker's webhooks, the console), the port given by ``port_env(port)``; returns the child and
    its port.

    A free port is only a candidate: ready means the ready file is there AND the child itself
    holds the port's listening socket (``listens_on``), never someone else answering on it. When
    another process took the candidate before the child bound it (the child exited and its log
    says so, ``bind_failed``), it starts again on a new candidate. ``first``: the candidate to try
    first (a restart keeps its port when it can)."""
    for attempt in range(MAX_PORT_MOVES):
        port = first if attempt == 0 and first is not None else free_port()
        ready.unlink(missing_ok=True)
        offset = log_size(group.run_dir / f"{name}.log")
        child = group.spawn(
            name, *args, "--ready-file", str(ready), env={**(env or {}), **port_env(port)}
        )

        def holds(pid: int = child.proc.pid, port: int = port) -> bool:
            return ready.exists() and listens_on(pid, port)

        try:
            group.wait_until(child, holds, timeout=timeout)
            return child, port
        except ServiceError:
            if child.alive() or not bind_failed(child.log_path, offset):
                raise
            group.children.remove(child)
    raise ServiceError(f"{name}: its port was taken {MAX_PORT_MOVES} times over")


def _start(
    group: ProcessGroup, run_dir: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> None:
    ready = run_dir / f"{name}.ready"
    ready.unlink(missing_ok=True)
    child = group.spawn(name, *args, "--ready-file", str(ready), env=env)
    group.wait_until(child, ready.exists)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(
    console: Console,
    run_dir: Path,
    residents: int,
    interval: float,
    sos_rate: float,
    fall_rate: float,
) -> int:
    run_dir = run_dir.resolve()
    # A service manager's or `timeout`'s SIGTERM stops it as Ctrl-C does: the fleet, the workers,
    # then the services, in order (without this, Python exits at once and leaves services.json).
    signal.signal(signal.SIGTERM, _interrupt)
    # A demo starts afresh: Kafka (Tansu) keeps nothing across runs, so the stores must not either
    # (an old run's open alerts would go on escalating against an empty broker).
    for old in ("postgres", "victoriametrics", "mosquitto", "faust", "alerts.jsonl"):
        path = run_dir / old
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    registry_path = run_dir / "registry.yaml"
    registry_path.write_text(
        yaml.safe_dump(demo_registry(residents), allow_unicode=True, sort_keys=False)
    )
    try:
        # Fresh passwords every run for the fleet's devices and the bridge (never printed).
        creds = write_credentials(
            load_registry(registry_path),
            run_dir / "credentials",
            prefix=Settings().mqtt.prefix,
            rotate=True,
        )
    except CredentialsError as exc:
        console.print(f"[red]{exc}")
        return 1
    sup = Supervisor(run_dir, mqtt_auth=MqttAuth(creds.passwd, creds.acl))
    group = ProcessGroup(run_dir / "logs")
    try:
        with console.status("starting Mosquitto, Tansu, VictoriaMetrics, PostgreSQL, Twilio mock…"):
            ep = sup.start()
        console.print(
            f"[green]✓[/] services up on 127.0.0.1 (addresses: {run_dir}/services.json); "
            f"MQTT with a password per device and the ACL (in {creds.folder})"
        )
        shutil.copy(POLICIES_EXAMPLE, run_dir / "alerts.yaml")
        password = secrets.token_urlsafe(9)
        add_user(run_dir / "console-users.yaml", "li", "nurse", password, contact_id="nurse-li")
        group.env = {
            **pipeline_env(ep, run_dir, registry_path),
            "ANXIN_CONSOLE__USERS": str(run_dir / "console-users.yaml"),
            "ANXIN_CONSOLE__SESSION_SECRET": secrets.token_urlsafe(48),
        }
        with console.status("starting the bridge, a detector worker, the alerts worker, storage…"):
            # The bridge's account (anxin-ingest): the only one that reads every device's uplink
            # and writes every device's commands.
            _start(
                group,
                run_dir,
                "bridge",
                "ingest",
                env={"ANXIN_SETTINGS_FILE": str(creds.bridge_settings)},
            )
            _start(group, run_dir, "worker", "worker")
            _, webhook_port = spawn_on_own_port(
                group, "alerts", ("alerts", "run"), run_dir / "alerts.ready", webhook_env
            )
            _start(group, run_dir, "storage", "storage", "run")
            _, console_port = spawn_on_own_port(
                group,
                "console",
                ("console",),
                run_dir / "console.ready",
                lambda port: {"ANXIN_CONSOLE__PORT": str(port)},
            )
        console.print(
            f"[green]✓[/] bridge, detector worker, alerts worker (Twilio webhooks on "
            f":{webhook_port}) and storage writer running; logs in {group.run_dir}"
        )
        console.print(
            f"[green]✓[/] duty-nurse console: [bold]http://127.0.0.1:{console_port}/[/] "
            f"(user [bold]li[/], password [bold]{password}[/], made for this run)"
        )
        with console.status(f"connecting {residents} simulated devices, each with its password…"):
            _start(
                group,
                run_dir,
                "fleet",
                "simulate",
                "--residents",
                str(residents),
                "--interval",
                str(interval),
                "--sos-rate",
                str(sos_rate),
                "--fall-rate",
                str(fall_rate),
                "--credentials",
                str(creds.provisioning),
            )
        console.print(
            f"[green]✓[/] {residents} simulated residents logged in and reporting every "
            f"{interval:.0f} s, "
            f"about {residents * sos_rate:.0f} SOS presses and {residents * fall_rate:.0f} falls "
            "an hour.\n"
            "  Alerts and their escalation appear below. In another terminal: "
            "`anxin alerts ack ALERT_ID --by duty_nurse:nurse-li` acknowledges one,\n"
            "  `anxin history R001 --hours 1 --plot r001.png` charts a resident. Ctrl-C stops.\n"
        )
        from alerts.tail import tail_alerts

        settings = Settings(kafka={"bootstrap": ep.kafka_bootstrap})  # type: ignore[arg-type]
        try:
            asyncio.run(tail_alerts(settings, console, run_dir / "alerts.jsonl", events=True))
        except KeyboardInterrupt:
            pass
        return 0
    except ServiceError as exc:
        console.print(f"[red]{exc}")
        return 1
    finally:
        with console.status("stopping…"):
            group.stop()
            sup.stop()
        console.print(f"stopped; alerts were saved to {run_dir / 'alerts.jsonl'}")
