"""Commands of the simulators room, mounted on the ``anxin`` CLI."""

from __future__ import annotations

import signal
from typing import Annotated

import typer


def register(root: typer.Typer, alerts: typer.Typer) -> None:
    """Add this room's commands to the root CLI."""

    @root.command()
    def simulate(
        residents: Annotated[int, typer.Option(help="Residents, one watch each.")] = 10,
        interval: Annotated[float, typer.Option(help="Seconds between a watch's reports.")] = 10.0,
        sos_rate: Annotated[float, typer.Option(help="SOS presses per device-hour.")] = 2.0,
        seed: int = 1,
    ) -> None:
        """Run a simulated fleet against the configured MQTT broker (the registry must list it)."""
        from anxin import logs
        from anxin.registry import load_registry
        from anxin.settings import get_settings
        from simulators.fleet import Fleet

        settings = get_settings()
        logs.configure(settings.log_level)
        registry = load_registry(settings.registry).model_dump()
        registry["residents"] = dict(list(registry["residents"].items())[:residents])
        m = settings.mqtt
        fleet = Fleet(registry, m.host, m.port, m.prefix, interval, sos_rate, seed=seed)
        signal.signal(signal.SIGTERM, lambda *a: fleet.stop())
        try:
            fleet.run()
        except KeyboardInterrupt:
            fleet.stop()
