"""Commands of the storage room, mounted on the ``anxin`` CLI.

- ``anxin storage run``: the writer process (Kafka → time-series store).
- ``anxin history RESIDENT --hours 24 [--plot FILE.png]``: vitals as tables and a chart.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

storage_app = typer.Typer(no_args_is_help=True, help="Time series: the writer and its readers.")
console = Console()


def _settings():  # type: ignore[no-untyped-def]
    from anxin.core import logs
    from anxin.core.settings import get_settings

    settings = get_settings()
    logs.configure(settings.log_level)
    return settings


@storage_app.command("run")
def storage_run(
    ready_file: Annotated[
        Path | None, typer.Option(help="Touched once the writer's partitions are assigned.")
    ] = None,
    stats_file: Annotated[
        Path | None, typer.Option(help="Counters as JSON, rewritten as they change.")
    ] = None,
) -> None:
    """Write every reading, alert and alert event from Kafka to InfluxDB/VictoriaMetrics."""
    from storage.writer import run_writer

    stats = asyncio.run(run_writer(_settings(), ready_file, stats_file))
    console.print(json.dumps(stats.snapshot()), markup=False, highlight=False)


@storage_app.command("latest")
def storage_latest(resident: str) -> None:
    """The resident's latest vitals as JSON (what the console shows)."""
    from storage.readers import make_reader

    reader = make_reader(_settings())
    try:
        latest = reader.latest_vitals(resident)
    finally:
        reader.close()
    console.print_json(json.dumps({k: vars(v) for k, v in latest.items()}))


def history(
    resident: Annotated[str, typer.Argument(help="Resident id, e.g. R001.")],
    hours: Annotated[float, typer.Option(help="How far back.")] = 24.0,
    plot: Annotated[Path | None, typer.Option(help="Also write a PNG chart here.")] = None,
    bucket_min: Annotated[float, typer.Option(help="Minutes per summary row.")] = 60.0,
) -> None:
    """A resident's vitals: latest values, a row per hour, alerts; optionally a chart."""
    from storage.history import load_history, plot_history, print_history, resident_timezone
    from storage.readers import check_id, make_reader

    settings = _settings()
    try:
        check_id(resident)
    except ValueError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    end = time.time()
    reader = make_reader(settings)
    try:
        h = load_history(
            reader,
            resident,
            end - hours * 3600,
            end,
            resident_timezone(settings.registry, resident),
        )
    except Exception as exc:
        console.print(f"[red]cannot read the store at {settings.influx.url}: {exc}")
        raise typer.Exit(1) from None
    finally:
        reader.close()
    print_history(console, h, bucket_min * 60)
    if plot is not None:
        plot_history(h, plot)
        console.print(f"chart written to {plot}")


def register(root: typer.Typer, alerts: typer.Typer) -> None:
    """Add this room's commands to the root CLI (or to ``anxin alerts``)."""
    root.add_typer(storage_app, name="storage")
    root.command("history")(history)
