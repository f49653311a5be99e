"""Commands of the ingest room, mounted on the ``anxin`` CLI.

- ``anxin devices credentials REGISTRY --out DIR``: per-device MQTT passwords (a provisioning
  file for the installer), the Mosquitto password file hashed by ``mosquitto_passwd``, the ACL,
  and the bridge's own account as a settings file for ``ANXIN_SETTINGS_FILE``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

devices_app = typer.Typer(no_args_is_help=True, help="Devices: MQTT credentials and access.")
console = Console()


@devices_app.command("credentials")
def devices_credentials(
    registry: Annotated[Path, typer.Argument(help="The registry YAML with the devices.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the files (made mode 700).")],
    prefix: Annotated[str, typer.Option(help="MQTT topic prefix.")] = "anxin/v1",
    rotate: Annotated[
        bool, typer.Option(help="New passwords for every device and the bridge.")
    ] = False,
    bridges: Annotated[
        int,
        typer.Option(min=1, help="Bridge accounts, one per bridge sharing the load (share group)."),
    ] = 1,
) -> None:
    """Generate MQTT credentials and the ACL for every device of the registry.

    Passwords are never printed: they are in OUT/devices.csv (for the installer) and
    OUT/ingest-settings.yaml (the bridge's account), both mode 600.
    """
    from anxin.core.cliutil import exit_invalid
    from anxin.core.registry import load_registry
    from anxin.core.yamlfile import ConfigError
    from ingest.credentials import CredentialsError, write_credentials

    try:
        files = write_credentials(
            load_registry(registry), out, prefix=prefix, rotate=rotate, bridges=bridges
        )
    except ConfigError as exc:
        exit_invalid(console, str(registry), exc)
    except CredentialsError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]{files.devices} devices ({files.new_devices} new)[/]\n"
        f"  provisioning (device_id,password): {files.provisioning}\n"
        f"  mosquitto password_file: {files.passwd}\n"
        f"  mosquitto acl_file: {files.acl}\n"
        f"  bridge account (ANXIN_SETTINGS_FILE): {files.bridge_settings}"
        + "".join(f"\n  bridge account: {p}" for p in files.more_bridge_settings),
        markup=True,
        highlight=False,
    )


def register(root: typer.Typer, alerts: typer.Typer) -> None:
    root.add_typer(devices_app, name="devices")
