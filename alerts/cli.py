"""Commands of the alerts room, mounted on the ``anxin`` CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from anxin.core.settings import Settings

console = Console()


def _settings() -> Settings:
    from anxin.core import logs
    from anxin.core.settings import get_settings

    settings = get_settings()
    logs.configure(settings.log_level)
    return settings


def _by(value: str) -> tuple[str, str]:
    role, sep, contact = value.partition(":")
    if not sep or not role or not contact:
        raise typer.BadParameter("give ROLE:CONTACT-ID, e.g. duty_nurse:nurse-li")
    return role, contact


def register(root: typer.Typer, alerts: typer.Typer) -> None:
    """Add this room's commands to the root CLI (or to ``anxin alerts``)."""

    @alerts.command("run")
    def run(
        ready_file: Annotated[
            Path | None, typer.Option(help="Written once partitions and webhooks are up.")
        ] = None,
        clock: Annotated[
            str, typer.Option(help="wall, or file:PATH (a test or replay drives the time).")
        ] = "wall",
        worker_id: Annotated[str | None, typer.Option(help="Name in outbox claims.")] = None,
        webhooks: Annotated[bool, typer.Option(help="Serve Twilio's webhooks here.")] = True,
    ) -> None:
        """Run an alerts worker: intake, escalation, Twilio/SMS/device sends, webhooks."""
        from alerts.clock import parse_clock
        from alerts.worker import Worker
        from anxin.core.cliutil import exit_invalid
        from anxin.core.yamlfile import ConfigError

        settings = _settings()
        try:
            worker = Worker(settings, parse_clock(clock), worker_id)
        except ConfigError as exc:
            exit_invalid(console, "alerts configuration", exc)
        asyncio.run(worker.run(ready_file, webhooks))

    @alerts.command("migrate")
    def migrate_cmd() -> None:
        """Apply the alerts database migrations (the worker also does this at start)."""
        from alerts.db import Database, migrate

        settings = _settings()
        version = migrate(Database(settings.postgres.dsn.get_secret_value()))
        console.print(f"alerts schema at version {version}")

    @alerts.command("check-policies")
    def check_policies(path: Path) -> None:
        """Validate a contacts/policies file; errors name the file, line and field."""
        from alerts.policies import load_policies
        from anxin.core.cliutil import exit_invalid
        from anxin.core.yamlfile import ConfigError

        try:
            pf = load_policies(path)
        except ConfigError as exc:
            exit_invalid(console, str(path), exc)
        console.print(
            f"[green]{path}: {len(pf.contacts)} contacts, {len(pf.roles)} roles, "
            f"{len(pf.policies)} policies, valid"
        )

    @alerts.command("ack")
    def ack(
        alert_id: str,
        by: Annotated[str, typer.Option(help="ROLE:CONTACT-ID of who has it.")],
        channel: str = "console",
        note: str | None = None,
    ) -> None:
        """Acknowledge an alert (stops its escalation); tells who was first."""
        _close("acknowledge", alert_id, by, channel, note)

    @alerts.command("resolve")
    def resolve(
        alert_id: str,
        by: Annotated[str, typer.Option(help="ROLE:CONTACT-ID of who resolved it.")],
        channel: str = "console",
        note: str | None = None,
    ) -> None:
        """Resolve an alert; those told get a short "resolved" message."""
        _close("resolve", alert_id, by, channel, note)

    def _close(action: str, alert_id: str, by: str, channel: str, note: str | None) -> None:
        """Acknowledge or resolve through the lifecycle, and say who was first."""
        from alerts.clock import WallClock
        from alerts.db import Database
        from alerts.lifecycle import Lifecycle

        settings = _settings()
        role, contact = _by(by)
        lc = Lifecycle(Database(settings.postgres.dsn.get_secret_value()), WallClock())
        outcome = getattr(lc, action)(alert_id, role, contact, channel, note)
        if outcome is None:
            console.print(f"[red]no alert {alert_id}")
            raise typer.Exit(1)
        done = "acknowledged" if action == "acknowledge" else "resolved"
        console.print(done if outcome.first else f"already {outcome.state} by {outcome.by}")

    @alerts.command("list")
    def list_cmd(
        all_: Annotated[bool, typer.Option("--all", help="Closed alerts too.")] = False,
    ) -> None:
        """Alerts in the database with their state and escalation progress."""
        from rich.table import Table

        from alerts import store
        from alerts.db import Database

        settings = _settings()
        db = Database(settings.postgres.dsn.get_secret_value())
        with db.connect() as conn:
            rows = store.list_alerts(conn, include_closed=all_)
        table = Table("alert", "kind", "severity", "resident", "state", "step", "sent", "by")
        for r in rows:
            table.add_row(
                r["alert_id"],
                r["kind"],
                r["severity"],
                r["resident_id"],
                r["state"],
                f"{r['step']} (pass {r['repeat'] + 1})",
                str(r["sent"]),
                r["acked_by"] or r["closed_by"] or "",
            )
        console.print(table)
