"""Settings of the console (mounted as ``Settings.console``, env ``ANXIN_CONSOLE__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseModel):
    """Where the console listens, who may log in, and how its session cookie is made."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Accounts (YAML, argon2id hashes); a relative path is taken beside the registry.
    users: Path = Path("console-users.yaml")
    # Signs the session cookie. Give it in the environment only (ANXIN_CONSOLE__SESSION_SECRET,
    # 32+ random bytes); unset, a random one is made at start and sessions end with the process.
    session_secret: SecretStr | None = None
    session_cookie: str = "anxin_console"
    session_max_age_s: int = Field(default=12 * 3600, gt=0)  # one shift
    same_site: Literal["lax", "strict"] = "strict"
    # Secure cookies (HTTPS only): on in production behind TLS; off for http://127.0.0.1.
    https_only: bool = False
    # How often the alert_events table is polled for changes pushed to the browsers.
    poll_s: float = Field(default=0.2, gt=0)
    # Positions on the alert page map, and how long store reads are cached for the board.
    positions: int = Field(default=30, ge=1, le=500)
    store_cache_s: float = Field(default=5.0, ge=0)
    # Failed logins from one address within a window before logins are refused for a while.
    login_failures: int = Field(default=10, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)


class _EnvConsoleSettings(BaseSettings, ConsoleSettings):
    model_config = SettingsConfigDict(env_prefix="ANXIN_CONSOLE__", extra="ignore")


def console_settings(settings: Any = None) -> ConsoleSettings:
    """``settings.console`` once it is mounted on ``Settings``; until then from the environment."""
    mounted = getattr(settings, "console", None) if settings is not None else None
    if isinstance(mounted, ConsoleSettings):
        return mounted
    return ConsoleSettings(**_EnvConsoleSettings().model_dump())


def users_path(configured: Path, registry_path: Path) -> Path:
    """A relative users path is taken beside the registry (like ``alerts.yaml``)."""
    return configured if configured.is_absolute() else registry_path.parent / configured
