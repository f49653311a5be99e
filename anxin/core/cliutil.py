"""Small pieces the rooms' command-line modules share."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from anxin.core.yamlfile import ConfigError


def exit_invalid(console: Console, what: str, exc: ConfigError) -> NoReturn:
    """Print every problem of an invalid configuration (``file:line: path: message``), exit 1."""
    console.print(f"[red]{what} is invalid:[/]")
    for problem in exc.problems:
        console.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1) from None
