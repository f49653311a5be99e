"""docker-compose.yml cannot run here (no Docker): check what it passes to Anxin is real."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import typer.main
import yaml
from pydantic import BaseModel

from anxin.cli import app
from anxin.core.settings import Settings

ROOT = Path(__file__).parent.parent


def _setting_exists(env_name: str) -> bool:
    parts = env_name.removeprefix("ANXIN_").lower().split("__")
    model: type[BaseModel] = Settings
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _commands() -> set[tuple[str, ...]]:
    click_app = typer.main.get_command(app)
    found: set[tuple[str, ...]] = set()

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        found.add(path)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))

    walk(click_app, ())
    return found


def test_every_setting_and_command_in_compose_exists() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands = _commands()
    anxin_services = {
        n: s for n, s in compose["services"].items() if s.get("image") == "anxin:latest"
    }
    assert {"bridge", "worker", "alerts", "storage", "console"} <= set(anxin_services)
    for name, service in anxin_services.items():
        env = service.get("environment", {})
        names = [k for k in env if k.startswith("ANXIN_")]
        assert names, name
        for env_name in names:
            if env_name in ("ANXIN_RUN_DIR",):
                continue
            assert _setting_exists(env_name), f"{name}: {env_name} is not a setting"
        argv = tuple(itertools.takewhile(lambda a: not a.startswith("-"), service["command"]))
        assert argv in commands, f"{name}: anxin {' '.join(argv)} is not a command"
    assert "build" in anxin_services["worker"] and (ROOT / "Dockerfile").exists()


def test_the_check_itself_rejects_unknown_settings() -> None:
    assert _setting_exists("ANXIN_KAFKA__BOOTSTRAP")
    assert not _setting_exists("ANXIN_KAFKA__BOOTSTRAPS")
    assert not _setting_exists("ANXIN_NOPE")
