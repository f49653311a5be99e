"""``anxin demo``: the whole pipeline on this machine, with a simulated fleet pressing SOS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from rich.console import Console

from anxin.processes import ProcessGroup
from anxin.services import ServiceError, Supervisor
from anxin.settings import Settings
from simulators.fleet import demo_registry


def run_demo(
    console: Console, run_dir: Path, residents: int, interval: float, sos_rate: float
) -> int:
    run_dir = run_dir.resolve()
    sup = Supervisor(run_dir)
    group = ProcessGroup(run_dir / "logs")
    try:
        with console.status(
            "starting Mosquitto, Kafka (Tansu), VictoriaMetrics, PostgreSQL, Twilio mock…"
        ):
            ep = sup.start()
        console.print(
            f"[green]✓[/] services up on 127.0.0.1 (addresses in {run_dir / 'services.json'})"
        )
        registry_path = run_dir / "registry.yaml"
        registry_path.write_text(
            yaml.safe_dump(demo_registry(residents), allow_unicode=True, sort_keys=False)
        )
        group.env = {
            **ep.env(),
            "ANXIN_RUN_DIR": str(run_dir),
            "ANXIN_REGISTRY": str(registry_path),
            "ANXIN_FAUST__DATA_DIR": str(run_dir / "faust"),
        }
        ready = run_dir / "worker.ready"
        ready.unlink(missing_ok=True)
        with console.status("starting the MQTT→Kafka bridge and a Faust detector worker…"):
            bridge_ready = run_dir / "bridge.ready"
            bridge_ready.unlink(missing_ok=True)
            bridge = group.spawn("bridge", "ingest", "--ready-file", str(bridge_ready))
            worker = group.spawn("worker", "worker", "--ready-file", str(ready))
            group.wait_until(bridge, bridge_ready.exists)
            group.wait_until(worker, ready.exists)
        console.print(f"[green]✓[/] bridge and worker running (logs in {group.run_dir})")
        group.spawn(
            "fleet",
            "simulate",
            "--residents",
            str(residents),
            "--interval",
            str(interval),
            "--sos-rate",
            str(sos_rate),
        )
        console.print(
            f"[green]✓[/] {residents} simulated residents reporting every {interval:.0f} s, "
            f"about {residents * sos_rate:.0f} SOS presses an hour. "
            "Alerts appear below; Ctrl-C stops.\n"
        )
        from alerts.tail import tail_alerts

        settings = Settings(kafka={"bootstrap": ep.kafka_bootstrap})  # type: ignore[arg-type]
        try:
            asyncio.run(tail_alerts(settings, console, run_dir / "alerts.jsonl"))
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
        console.print("stopped; alerts were saved to " + str(run_dir / "alerts.jsonl"))
