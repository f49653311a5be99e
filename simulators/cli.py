"""Commands of the simulators room, mounted on the ``anxin`` CLI."""

from __future__ import annotations

import typer


def register(root: typer.Typer, alerts: typer.Typer) -> None:
    """Add this room's commands to the root CLI (or to ``anxin alerts``)."""
