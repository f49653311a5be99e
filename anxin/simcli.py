"""Commands of the simulators room, mounted on the ``anxin`` CLI."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer


def register(root: typer.Typer, alerts: typer.Typer) -> None:
    """Add this room's commands to the root CLI."""
    scenario = typer.Typer(no_args_is_help=True, help="Labelled scenario folders (DESIGN.md).")
    root.add_typer(scenario, name="scenario")

    @root.command()
    def simulate(
        residents: Annotated[int, typer.Option(help="Residents of the registry to simulate.")] = 10,
        interval: Annotated[
            float, typer.Option(help="Mean seconds between a watch's reports (spread 0.5-1.5x).")
        ] = 10.0,
        sos_rate: Annotated[float, typer.Option(help="SOS presses per device-hour.")] = 2.0,
        fall_rate: Annotated[float, typer.Option(help="Falls per device-hour.")] = 0.05,
        wander_rate: Annotated[float, typer.Option(help="Wanders per device-hour.")] = 0.02,
        trouble_rate: Annotated[
            float, typer.Option(help="Silences and removals per device-hour.")
        ] = 0.02,
        vitals_rate: Annotated[float, typer.Option(help="Deteriorations per device-hour.")] = 0.01,
        drain: Annotated[float, typer.Option(help="Battery drain speed-up factor.")] = 1.0,
        ok_share: Annotated[
            float, typer.Option(help="Share of are-you-OK checks the wearer answers.")
        ] = 0.5,
        speed: Annotated[float, typer.Option(help="Simulated seconds per wall second.")] = 1.0,
        seed: int = 1,
        credentials: Annotated[
            Path | None,
            typer.Option(
                help="Provisioning file (devices.csv of `anxin devices credentials`): each "
                "device logs in with its own password. Default: anonymous."
            ),
        ] = None,
        ready_file: Annotated[
            Path | None, typer.Option(help="Written once every device is connected.")
        ] = None,
    ) -> None:
        """Run a simulated fleet against the configured MQTT broker (the registry must list it)."""
        from anxin.core import logs
        from anxin.core.registry import load_registry
        from anxin.core.settings import get_settings
        from ingest.credentials import read_passwords
        from simulators.fleet import Fleet, FleetLoginError, Rates

        settings = get_settings()
        logs.configure(settings.log_level)
        registry = load_registry(settings.registry).model_dump()
        registry["residents"] = dict(list(registry["residents"].items())[:residents])
        m = settings.mqtt
        rates = Rates(
            fall=fall_rate,
            wander=wander_rate,
            trouble=trouble_rate,
            vitals=vitals_rate,
            drain=drain,
        )
        passwords = None
        if credentials is not None:
            if not credentials.is_file():
                typer.echo(f"{credentials}: no such provisioning file", err=True)
                raise typer.Exit(1)
            passwords = read_passwords(credentials)
        fleet = Fleet(
            registry,
            m.host,
            m.port,
            m.prefix,
            interval,
            sos_rate,
            ok_share=ok_share,
            seed=seed,
            rates=rates,
            speed=speed,
            passwords=passwords,
        )
        signal.signal(signal.SIGTERM, lambda *a: fleet.stop())

        def connected() -> None:
            if ready_file is not None:
                ready_file.parent.mkdir(parents=True, exist_ok=True)
                ready_file.write_text(str(time.time()))

        try:
            fleet.run(connected)
        except FleetLoginError as exc:
            typer.echo(f"fleet: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            fleet.stop()

    @scenario.command("generate")
    def scenario_generate(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write (created).")],
        residents: Annotated[int, typer.Option(help="Residents.")] = 20,
        hours: Annotated[float, typer.Option(help="Hours of data.")] = 24.0,
        seed: Annotated[int, typer.Option(help="Seed: same seed, same bytes.")] = 1,
        artefact_rate: Annotated[
            float, typer.Option(help="Chance per vitals sample of a motion artefact.")
        ] = 0.0,
    ) -> None:
        """Generate a labelled scenario folder: registry.yaml, messages.jsonl, labels.jsonl."""
        from rich.console import Console

        from simulators.scenario import generate

        console = Console()
        started = time.perf_counter()
        with console.status(f"generating {residents} residents x {hours:g} h…"):
            summary = generate(out_dir, residents, hours, seed, artefact_rate=artefact_rate)
        took = time.perf_counter() - started
        labels = ", ".join(f"{k} {v}" for k, v in sorted(summary["labels"].items()))
        console.print(
            f"[green]✓[/] {out_dir}: {summary['messages']:,} messages, labels: {labels} "
            f"({took:.1f} s)"
        )

    @scenario.command("import-csv")
    def scenario_import_csv(
        csv_file: Annotated[Path, typer.Argument(help="CSV with time, x, y, z columns.")],
        out_dir: Annotated[Path, typer.Argument(help="Scenario folder to write.")],
        rate: Annotated[float, typer.Option(help="Rate (Hz) to resample to, 20-200.")] = 50.0,
        placement: Annotated[str, typer.Option(help="wrist, waist or pendant.")] = "wrist",
        units: Annotated[str, typer.Option(help="g or ms2 (m/s², divided by 9.80665).")] = "g",
        labels: Annotated[
            Path | None, typer.Option(help="CSV with kind,start[,deadline] (same time base).")
        ] = None,
        resident: str = "R001",
        device: str = "D001",
        deadline: Annotated[float, typer.Option(help="Deadline after start when absent.")] = 30.0,
    ) -> None:
        """Convert a recorded accelerometer CSV (and its labels) into a scenario folder."""
        from rich.console import Console

        from simulators.importer import CsvImportError, import_csv

        console = Console()
        try:
            info = import_csv(
                csv_file,
                out_dir,
                rate,
                placement,
                units,
                labels,
                resident,
                device,
                deadline_s=deadline,
            )
        except (CsvImportError, OSError) as exc:
            console.print(f"[red]{exc}")
            raise typer.Exit(1) from None
        console.print(
            f"[green]✓[/] {out_dir}: {info['messages']} messages from {info['samples']} "
            f"samples, {info['labels']} labels"
        )

    @root.command()
    def replay(
        folder: Annotated[Path, typer.Argument(help="Scenario folder.")],
        speed: Annotated[float, typer.Option(help="Original spacing divided by this.")] = 1.0,
        fast: Annotated[bool, typer.Option("--fast", help="As fast as the broker acks.")] = False,
        client_prefix: Annotated[str, typer.Option(help="MQTT client id prefix.")] = "replay-",
    ) -> None:
        """Publish a scenario over MQTT (configured broker), each device on its own client."""
        from rich.console import Console

        from anxin.core import logs
        from anxin.core.settings import get_settings
        from simulators.replay import replay as run_replay

        settings = get_settings()
        logs.configure(settings.log_level)
        m = settings.mqtt
        stats = run_replay(
            folder,
            m.host,
            m.port,
            None if fast else speed,
            client_prefix=client_prefix,
            prefix=m.prefix,
        )
        Console().print(
            f"[green]✓[/] {stats.published:,} messages from {stats.devices} devices in "
            f"{stats.wall_s:.1f} s ({stats.published / max(stats.wall_s, 1e-9):,.0f} msgs/s)"
        )

    @root.command()
    def evaluate(
        folder: Annotated[Path, typer.Argument(help="Scenario folder.")],
        out: Annotated[Path, typer.Option("--out", help="Folder for the report files.")] = Path(
            "evaluation"
        ),
        live: Annotated[
            bool, typer.Option("--live", help="Through real services (MQTT, Kafka, Faust).")
        ] = False,
        speed: Annotated[
            float | None, typer.Option(help="--live: replay speed (default: as fast as acked).")
        ] = None,
        run_dir: Annotated[Path, typer.Option(help="--live: folder for the services.")] = Path(
            ".run/evaluate"
        ),
        quiet: Annotated[
            float, typer.Option(help="--live: stop collecting after this many quiet seconds.")
        ] = 20.0,
        jobs: Annotated[
            int | None,
            typer.Option(
                help="In-process: processes sharing the residents (default: one per CPU for "
                "a large scenario, else 1); the alerts are the same."
            ),
        ] = None,
    ) -> None:
        """Run the detectors over a scenario and score them against its labels."""
        from rich.console import Console

        from anxin import evaluation
        from simulators import scoring

        console = Console()
        if live:
            ev = evaluation.evaluate_live(folder, run_dir, speed, quiet)
            title = f"anxin evaluate --live {folder.name}"
        else:
            with console.status("running the detector pipeline in-process…"):
                n = evaluation.auto_jobs(folder) if jobs is None else jobs
                ev = evaluation.evaluate_inprocess(folder, n)
            title = f"anxin evaluate {folder.name}"
        evaluation.add_context(ev, folder)
        evaluation.write_outputs(ev, out, title)
        scoring.print_table(ev.result, title)
        for note in ev.notes:
            console.print(note)
        console.print(f"report: {out / 'report.md'}, {out / 'report.json'}, {out / 'latency.png'}")
