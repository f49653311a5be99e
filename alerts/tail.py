"""``anxin alerts tail``: alerts live in the terminal, and optionally as JSON lines in a file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from anxin.core.records import AlertRecord
from anxin.core.settings import Settings

_STYLE = {"critical": "bold red", "warning": "yellow"}


_SHOWN_DETAILS = ("reason", "news2", "peak_g", "distance_m", "detected_by", "trend")


def format_alert(alert: AlertRecord) -> str:
    """One line per alert: severity, kind, who, when, how late, and the telling details."""
    when = time.strftime("%H:%M:%S", time.localtime(alert.ts))
    lag = alert.detected_at - alert.ts
    style = _STYLE.get(alert.severity, "")
    extra = " ".join(f"{k}={alert.details[k]}" for k in _SHOWN_DETAILS if k in alert.details)
    return (
        f"[{style}]{alert.severity.upper():8}[/] {alert.kind:7} {alert.resident_id:8} "
        f"{alert.device_id:8} {when} +{lag:4.1f}s  [dim]{alert.alert_id}[/] {extra}"
    )


def format_event(event: dict[str, Any]) -> str:
    """One line per lifecycle change: who was told or answered, by what (ids only)."""
    when = time.strftime("%H:%M:%S", time.localtime(float(event.get("at") or 0)))
    by = f" by {event['by']}" if event.get("by") else ""
    via = f" via {event['channel']}" if event.get("channel") else ""
    what = event.get("event") or event.get("state")
    return f"[dim]  ↳ {when} {event.get('alert_id')}[/] [cyan]{what}[/]{by}{via}"


async def tail_alerts(
    settings: Settings,
    console: Console,
    out: Path | None = None,
    from_beginning: bool = False,
    count: int = 0,
    events: bool = False,
) -> int:
    """Print alerts (and with ``events`` their lifecycle) as they arrive; returns alerts shown."""
    topics = [settings.kafka.alerts_topic]
    if events:
        topics.append(settings.kafka.alert_events_topic)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka.bootstrap,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    console.print(
        "[dim]severity kind    resident device   time     delay  alert id[/]", soft_wrap=True
    )
    shown = 0
    sink = out.open("ab") if out else None
    try:
        async for msg in consumer:
            if msg.topic == settings.kafka.alert_events_topic:
                try:
                    console.print(
                        format_event(orjson.loads(msg.value)), soft_wrap=True, emoji=False
                    )
                except ValueError:
                    console.print(f"[red]invalid alert event at offset {msg.offset}")
                continue
            try:
                alert = AlertRecord.model_validate(orjson.loads(msg.value))
            except ValueError:
                console.print(f"[red]invalid alert record at offset {msg.offset}", highlight=False)
                continue
            console.print(format_alert(alert), highlight=False, soft_wrap=True, emoji=False)
            if sink:
                sink.write(alert.to_json() + b"\n")
                sink.flush()
            shown += 1
            if count and shown >= count:
                break
    finally:
        await consumer.stop()
        if sink:
            sink.close()
    return shown
