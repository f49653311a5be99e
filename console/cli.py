"""``anxin console``: serve the duty-nurse console; ``anxin console add-user``: make an account."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console_app = typer.Typer(
    invoke_without_command=True, help="The duty-nurse console (web): alerts, acks, residents."
)
out = Console()


def _settings():  # type: ignore[no-untyped-def]
    from anxin.core import logs
    from anxin.core.settings import get_settings

    settings = get_settings()
    logs.configure(settings.log_level)
    return settings


@console_app.callback()
def serve_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    users: Annotated[
        Path | None,
        typer.Option(help="Users file (default console-users.yaml beside the registry)."),
    ] = None,
    ready_file: Annotated[
        Path | None, typer.Option(help="Written once the console listens.")
    ] = None,
    clock: Annotated[
        str, typer.Option(help="wall, or file:PATH (the alerts worker's test clock).")
    ] = "wall",
) -> None:
    """Serve the console (Ctrl-C stops it). Session secret: ANXIN_CONSOLE__SESSION_SECRET."""
    if ctx.invoked_subcommand is not None:
        return
    from alerts.clock import parse_clock
    from console.app import serve

    settings = _settings()
    cs = settings.console
    updates = {
        k: v for k, v in {"host": host, "port": port, "users": users}.items() if v is not None
    }
    cs = cs.model_copy(update=updates)
    try:
        asyncio.run(serve(settings, cs, parse_clock(clock), ready_file))
    except KeyboardInterrupt:
        pass


@console_app.command("add-user")
def add_user_cmd(
    name: Annotated[str, typer.Argument(help="Login name (letters, digits, . _ -).")],
    role: Annotated[
        str, typer.Option(help="nurse (acknowledges, resolves) or operator (views).")
    ] = "nurse",
    contact_id: Annotated[
        str | None,
        typer.Option(
            help="Contact id in alerts.yaml (e.g. nurse-li); acks are recorded as duty_nurse:ID."
        ),
    ] = None,
    users: Annotated[Path | None, typer.Option(help="Users file (default: the console's).")] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input.")
    ] = False,
) -> None:
    """Add or replace a console account; the password is stored as an argon2id hash."""
    from console.config import users_path
    from console.users import add_user

    settings = _settings()
    path = users or users_path(settings.console.users, settings.registry)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        add_user(path, name, role, password, contact_id)
    except ValueError as exc:
        out.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    out.print(f"[green]{name} ({role}) saved in {path}")


def register(root: typer.Typer, alerts: typer.Typer) -> None:
    """Add this room's commands to the root CLI."""
    root.add_typer(console_app, name="console")
