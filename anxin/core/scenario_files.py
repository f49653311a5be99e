"""Reading a scenario folder's ``messages.jsonl`` (DESIGN.md, "Scenario (replay) folder").

Both the replay (over MQTT) and the in-process evaluation read the same lines the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

# (t, topic, payload): the payload as raw bytes, or as the JSON value of a scenario line
Message = tuple[float, str, Any]


def scenario_lines(path: Path) -> Iterator[Message]:
    """(t, topic, payload) per line of ``messages.jsonl``, the payload as decoded from the line."""
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            msg = orjson.loads(line)
            yield float(msg["t"]), str(msg["topic"]), msg["payload"]


def encode(payload: Any) -> bytes:
    """The bytes a payload stands for: bytes as they are, a string as sent, else its JSON."""
    if isinstance(payload, bytes):
        return payload
    return payload.encode() if isinstance(payload, str) else orjson.dumps(payload)


def read_messages(path: Path) -> Iterator[tuple[float, str, bytes]]:
    """(t, topic, raw payload) per line of ``messages.jsonl``; the payload re-encoded as sent."""
    for t, topic, payload in scenario_lines(path):
        yield t, topic, encode(payload)
