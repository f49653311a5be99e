"""Where the console finds its accounts; its settings model is ``anxin.core.settings``."""

from __future__ import annotations

from pathlib import Path


def users_path(configured: Path, registry_path: Path) -> Path:
    """A relative users path is taken beside the registry (like ``alerts.yaml``)."""
    return configured if configured.is_absolute() else registry_path.parent / configured
