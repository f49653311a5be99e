"""A bridge of a test's own: its own MQTT prefix, Kafka topics and registry, on the session's
services, so that one test's traffic (a fuzz run, a flood) never reaches another's topics.

Its folder (registry, log) is under the session's run root and stays there, so the session-end
personal-data check reads its log too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from anxin.processes import Child, ProcessGroup


@dataclass
class PrivateBridge:
    prefix: str
    readings: str
    rejected: str
    bootstrap: str
    child: Child


@contextmanager
def private_bridge(
    anxin_env: dict[str, str], name: str, registry: str, env: Mapping[str, str]
) -> Iterator[PrivateBridge]:
    """Start ``anxin ingest`` with ``registry`` (YAML text) and ``env`` on top; stop it after."""
    uid = uuid.uuid4().hex[:8]
    folder = Path(anxin_env["ANXIN_RUN_DIR"]).parent / f"{name}-{uid}"
    folder.mkdir(parents=True)
    (folder / "registry.yaml").write_text(registry)
    topic = f"{name}-{uid}"
    group = ProcessGroup(folder / "logs", env=anxin_env)
    ready = folder / "bridge.ready"
    child = group.spawn(
        f"{name}-bridge",
        "ingest",
        "--ready-file",
        str(ready),
        env={
            "ANXIN_MQTT__PREFIX": f"{topic}/v1",
            "ANXIN_MQTT__CLIENT_ID": f"anxin-ingest-{topic}",
            "ANXIN_REGISTRY": str(folder / "registry.yaml"),
            "ANXIN_KAFKA__READINGS_TOPIC": f"{topic}-readings",
            "ANXIN_KAFKA__REJECTED_TOPIC": f"{topic}-rejected",
            "ANXIN_KAFKA__STATUS_TOPIC": f"{topic}-status",
            "ANXIN_KAFKA__COMMANDS_TOPIC": f"{topic}-commands",
            **env,
        },
    )
    try:
        group.wait_until(child, ready.exists)
        yield PrivateBridge(
            f"{topic}/v1",
            f"{topic}-readings",
            f"{topic}-rejected",
            anxin_env["ANXIN_KAFKA__BOOTSTRAP"],
            child,
        )
    finally:
        group.stop()
