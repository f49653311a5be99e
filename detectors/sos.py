"""SOS button: immediate and critical, one alert per press even when the message is redelivered."""

from __future__ import annotations

from typing import Any

from anxin.core.records import AlertRecord, alert_id


def press_key(reading: dict[str, Any]) -> str:
    """One press: its ``seq`` and ``ts`` together (a rebooted device counts ``seq`` from 1 again,
    so the counter alone would take a new press for one already seen)."""
    return f"{reading.get('seq')}@{reading['ts']!r}"


def sos_alert(reading: dict[str, Any], detected_at: float) -> AlertRecord | None:
    """The alert for a reading whose ``event`` is ``sos``; the id depends on the press only."""
    if reading.get("event") != "sos":
        return None
    device_id = reading["device_id"]
    press = reading.get("seq", reading["ts"])
    details: dict[str, Any] = {"source": "button"}
    if "seq" in reading:
        details["seq"] = reading["seq"]
    if "location" in reading:
        loc = reading["location"]
        details["location"] = {
            "lat": round(loc["lat"], 5),
            "lon": round(loc["lon"], 5),
            **({"acc": loc["acc"]} if "acc" in loc else {}),
        }
    return AlertRecord(
        alert_id=alert_id("sos", device_id, press, reading["ts"]),
        kind="sos",
        severity="critical",
        resident_id=reading["resident_id"],
        device_id=device_id,
        ts=reading["ts"],
        detected_at=detected_at,
        details=details,
    )
