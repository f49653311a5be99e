"""The ``anxin`` command line: services, bridge, worker, alerts, registry checks and the demo."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from anxin.core import logs
from anxin.core.settings import Settings, get_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Anxin 安心: wearable health alerts."
)
services_app = typer.Typer(
    no_args_is_help=True,
    help="Local services (Mosquitto, Kafka, VictoriaMetrics, PostgreSQL, Twilio mock).",
)
alerts_app = typer.Typer(no_args_is_help=True, help="Alerts on the Kafka topic.")
registry_app = typer.Typer(no_args_is_help=True, help="The registry of residents and devices.")
app.add_typer(services_app, name="services")
app.add_typer(alerts_app, name="alerts")
app.add_typer(registry_app, name="registry")
console = Console()

for _room in ("ingest.cli", "alerts.cli", "storage.cli", "anxin.simcli", "console.cli"):
    __import__(_room, fromlist=["register"]).register(app, alerts_app)


def _settings() -> Settings:
    settings = get_settings()
    logs.configure(settings.log_level)
    return settings


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = {"now": False}

    def handler(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop["now"]:
        signal.pause()


RunDir = Annotated[Path, typer.Option("--run-dir", envvar="ANXIN_RUN_DIR", help="Run folder.")]


@services_app.command("up")
def services_up(run_dir: RunDir = Path(".run")) -> None:
    """Start the services in the foreground; Ctrl-C (or `anxin services down`) stops them."""
    from anxin.services import ServiceError, Supervisor, read_state

    logs.configure("INFO")
    state = read_state(run_dir)
    if state and _alive(state["supervisor_pid"]):
        console.print(
            f"[yellow]services already running (supervisor pid {state['supervisor_pid']})"
        )
        raise typer.Exit(1)
    sup = Supervisor(run_dir)
    try:
        ep = sup.start()
    except ServiceError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    try:
        _print_endpoints(ep.settings())
        console.print(
            f"[green]services up[/] (addresses in {run_dir / 'services.json'}); Ctrl-C stops them"
        )
        _wait_for_signal()
    finally:
        sup.stop()
        console.print("services stopped")


@services_app.command("down")
def services_down(run_dir: RunDir = Path(".run")) -> None:
    """Stop the services started by `anxin services up`."""
    from anxin.services import read_state

    state = read_state(run_dir)
    if not state or not _alive(state["supervisor_pid"]):
        console.print("no services running")
        return
    pid = int(state["supervisor_pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    console.print("services stopped" if not _alive(pid) else f"[red]supervisor {pid} still running")


@services_app.command("status")
def services_status(run_dir: RunDir = Path(".run")) -> None:
    """Show which services answer, and where."""
    from rich.table import Table

    from anxin.services import (
        Endpoints,
        http_ready,
        kafka_ready,
        mqtt_answers,
        postgres_ready,
        read_state,
    )

    state = read_state(run_dir)
    if not state:
        console.print("no services running (start them with `anxin services up`)")
        raise typer.Exit(1)
    ep = Endpoints(**state["endpoints"])
    table = Table("service", "address", "answers")
    rows = [
        (  # any CONNACK counts: a broker with per-device passwords refuses this probe's login
            "mosquitto",
            f"mqtt://{ep.host}:{ep.mqtt_port}",
            mqtt_answers(
                ep.host, ep.mqtt_port, ep.mqtt_tls_ca if ep.mqtt_tls_port == ep.mqtt_port else None
            ),
        ),
        ("kafka (tansu)", ep.kafka_bootstrap, kafka_ready(ep.kafka_bootstrap)),
        ("victoriametrics", ep.vm_url, http_ready(f"{ep.vm_url}/health")),
        ("postgres", f"{ep.host}:{ep.pg_port}", postgres_ready(ep.pg_dsn)),
        ("twilio mock", ep.twilio_url, http_ready(ep.twilio_url, any_status=True)),
    ]
    for name, address, ok in rows:
        table.add_row(name, address, "[green]yes" if ok else "[red]no")
    console.print(table)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _print_endpoints(settings: dict[str, dict[str, object]]) -> None:
    for section, values in settings.items():
        shown = {k: v for k, v in values.items() if k not in ("dsn",)}
        console.print(f"  {section}: {shown}")


@app.command()
def ingest(
    ready_file: Annotated[Path | None, typer.Option(help="Written once subscribed.")] = None,
) -> None:
    """Run the MQTT → Kafka bridge (and the command downlink)."""
    from ingest.bridge import run_bridge

    asyncio.run(run_bridge(_settings(), ready_file))


@app.command()
def worker(
    ready_file: Annotated[
        Path | None, typer.Option(help="Touched once partitions are assigned.")
    ] = None,
) -> None:
    """Run a Faust detector worker."""
    from anxin.app import run_worker
    from anxin.core.topics import ensure_topics

    settings = _settings()
    asyncio.run(ensure_topics(settings.kafka))
    sys.argv = [sys.argv[0], "worker"]
    run_worker(settings, ready_file)


@alerts_app.command("tail")
def alerts_tail(
    out: Annotated[
        Path | None, typer.Option(help="Also append each alert as a JSON line here.")
    ] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest alert.")] = False,
    count: Annotated[int, typer.Option(help="Stop after this many alerts (0: never).")] = 0,
    events: Annotated[bool, typer.Option(help="Also show each alert's escalation events.")] = False,
) -> None:
    """Show alerts live as they arrive on the `alerts` topic."""
    from alerts.tail import tail_alerts

    settings = _settings()
    try:
        asyncio.run(tail_alerts(settings, console, out, from_beginning, count, events))
    except KeyboardInterrupt:
        pass


@registry_app.command("check")
def registry_check(path: Path) -> None:
    """Validate a registry file; errors name the file, line and field."""
    from anxin.core.cliutil import exit_invalid
    from anxin.core.registry import load_registry
    from anxin.core.yamlfile import ConfigError

    try:
        registry = load_registry(path)
    except ConfigError as exc:
        exit_invalid(console, str(path), exc)
    devices = sum(len(r.devices) for r in registry.residents.values())
    console.print(f"[green]{path}: {len(registry.residents)} residents, {devices} devices, valid")


@app.command()
def demo(
    residents: Annotated[int, typer.Option(help="Simulated residents.")] = 50,
    interval: Annotated[float, typer.Option(help="Seconds between a watch's reports.")] = 10.0,
    sos_rate: Annotated[float, typer.Option(help="SOS presses per device-hour.")] = 3.0,
    fall_rate: Annotated[float, typer.Option(help="Falls per device-hour.")] = 0.2,
    run_dir: RunDir = Path(".run"),
) -> None:
    """Services, bridge, worker and a simulated fleet; alerts appear below. Ctrl-C stops."""
    from anxin.demo import run_demo

    logs.configure("WARNING")
    raise typer.Exit(run_demo(console, run_dir, residents, interval, sos_rate, fall_rate))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
