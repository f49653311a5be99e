"""Storage without services: records → points, the writer's retry/drop logic, the Flux it builds.

The InfluxDB 2.x reader cannot run on this machine (no InfluxDB 2.x installable, DESIGN.md), so
its Flux is checked here as text; the VictoriaMetrics reader is tested against the real store in
test_storage_e2e.py.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import numpy as np
import orjson
import pytest
from influxdb_client import Point

from anxin.core.settings import Settings
from storage.points import (
    AlertTags,
    Unusable,
    alert_event_points,
    alert_points,
    motion_summary,
    reading_points,
)
from storage.readers import (
    check_id,
    flux_alert_marks,
    flux_last_positions,
    flux_latest_vitals,
    flux_string,
    flux_time,
    flux_vitals_series,
)
from storage.writer import StorageWriter, StoreRejected, StoreUnavailable, _Pending

TS = 1795390492.123


def lines(points: Sequence[Point]) -> list[str]:
    return [p.to_line_protocol() for p in points]


def reading(**extra: object) -> dict[str, object]:
    return {"device_id": "W001", "resident_id": "R001", "ts": TS, "received_at": TS + 0.2, **extra}


def test_a_full_reading_becomes_one_point_per_measurement_at_the_device_time() -> None:
    r = reading(
        seq=5,
        battery=0.8,
        worn=True,
        vitals={"hr": 72, "spo2": 97, "sbp": 128, "dbp": 81, "o2": False, "acvpu": "A"},
        accel={"rate": 25, "g": [[0, 0, 1], [0, 0, 3], [0, 0, 1]]},
        location={"lat": 37.5135, "lon": 122.1203, "acc": 8},
        event="sos",
    )
    got = lines(reading_points(r))
    ms = "1795390492123"
    assert got == [
        f"vitals,device=W001,resident=R001 acvpu=0i,dbp=81,hr=72,o2=false,sbp=128,spo2=97 {ms}",
        f"device,device=W001,resident=R001 battery=0.8,seq=5i,worn=true {ms}",
        f"location,device=W001,resident=R001 acc=8,lat=37.5135,lon=122.1203 {ms}",
        f"motion,device=W001,resident=R001 activity=3i,enmo=0.6666666666666666,"
        f"mean=1.6666666666666667,peak=3,rate=25,samples=3i {ms}",
        f"event,device=W001,resident=R001 sos=1i {ms}",
    ]
    # Same record, same points: a replay overwrites instead of adding.
    assert lines(reading_points(r)) == got


def test_only_resident_and_device_are_tags() -> None:
    r = reading(seq=1, vitals={"hr": 70}, location={"lat": 1.0, "lon": 2.0}, dropped=["battery"])
    for point in reading_points(r):
        assert set(point._tags) == {"resident", "device"}


def test_raw_accelerometer_samples_only_when_configured() -> None:
    r = reading(accel={"rate": 25, "g": [[0, 0, 1]] * 4})
    assert [p._name for p in reading_points(r)] == ["motion"]
    raw = [p for p in reading_points(r, raw_accel=True) if p._name == "accel"]
    assert [line.rsplit(" ", 1)[1] for line in lines(raw)] == [
        "1795390492123",
        "1795390492163",
        "1795390492203",
        "1795390492243",
    ]


def test_partial_and_odd_readings() -> None:
    # Integers are written as floats (no `i`) so InfluxDB never sees a field change type.
    assert lines(reading_points(reading(vitals={"temp": 37}))) == [
        "vitals,device=W001,resident=R001 temp=37 1795390492123"
    ]
    with pytest.raises(Unusable, match="nothing to write"):
        reading_points(reading(vitals={}, worn="yes"))
    with pytest.raises(Unusable, match="timestamp"):
        reading_points(reading(ts="yesterday", seq=1))
    with pytest.raises(Unusable, match="timestamp"):
        reading_points(reading(ts=math.nan, seq=1))
    with pytest.raises(Unusable, match="resident"):
        reading_points({"device_id": "W001", "ts": TS, "seq": 1})


def test_motion_summary_levels() -> None:
    rest = np.tile([0.0, 0.0, 1.0], (25, 1))
    summary = motion_summary(rest)
    assert summary == {"peak": 1.0, "mean": 1.0, "enmo": 0.0, "activity": 0, "samples": 25}
    walk = rest.copy()
    walk[::5, 2] = 1.5
    assert motion_summary(walk)["activity"] == 2  # type: ignore[index]
    assert motion_summary([[1, 2]]) is None
    assert motion_summary([[math.nan, 0, 1]]) is None


def test_alert_and_alert_event_points() -> None:
    alert = {
        "alert_id": "vitals-0123456789abcdef",
        "kind": "vitals",
        "severity": "critical",
        "resident_id": "R001",
        "device_id": "M001",
        "ts": TS,
        "detected_at": TS + 1,
        "details": {"news2": 7, "scores": {"hr": 3}},
    }
    assert lines(alert_points(alert)) == [
        "alert,device=M001,resident=R001 news2=7i,vitals=2i 1795390492123"
    ]
    assert 'id="vitals-0123456789abcdef"' in lines(alert_points(alert, string_fields=True))[0]
    event = {
        "alert_id": alert["alert_id"],
        "state": "acknowledged",
        "at": TS + 30,
        "by": "+8613900000099",
        "channel": "sms",
        "note": "张三 called back",
    }
    tags = AlertTags("R001", "M001")
    (line,) = lines(alert_event_points(event, tags, string_fields=True))
    assert line.startswith("alert_event,device=M001,resident=R001 ")
    assert "acknowledged=1i" in line and 'channel="sms"' in line
    # Who acknowledged and the note may be personal data: never written.
    assert "8613900000099" not in line and "张三" not in line
    (untagged,) = lines(alert_event_points(event, None))
    assert untagged == "alert_event acknowledged=1i 1795390522123"


class FakeSink:
    """Fails as scripted, then accepts; remembers what it was given."""

    def __init__(self, script: list[Exception | None]) -> None:
        self.script = script
        self.calls: list[int] = []
        self.written: list[str] = []

    async def write(self, points: Sequence[Point]) -> None:
        self.calls.append(len(points))
        outcome = self.script.pop(0) if self.script else None
        if callable(outcome):
            outcome = outcome(points)
        if outcome is not None:
            raise outcome
        self.written += lines(points)

    async def close(self) -> None:
        return None


def make_writer(sink: FakeSink) -> StorageWriter:
    settings = Settings()
    settings.storage.retry_initial_s = 0.001
    settings.storage.retry_max_s = 0.004
    return StorageWriter(settings, sink)


def test_writer_retries_an_unavailable_store_until_it_takes_the_batch() -> None:
    sink = FakeSink([StoreUnavailable("ConnectionRefused")] * 5)
    writer = make_writer(sink)
    pending = [_Pending(reading_points(reading(seq=i, battery=0.5))) for i in range(3)]
    assert asyncio.run(writer.write_all(pending, asyncio.Event()))
    assert sink.calls == [3] * 6
    assert len(sink.written) == 3
    s = writer.stats.snapshot()
    assert (s["retries"], s["records_written"], s["outages"], s["store_up"]) == (5, 3, 1, True)


def test_writer_drops_only_the_record_the_store_refuses() -> None:
    def refuse_bad(points: Sequence[Point]) -> Exception | None:
        return StoreRejected("HTTP 400") if any("seq=1i" in p for p in lines(points)) else None

    sink = FakeSink([refuse_bad] * 10)
    writer = make_writer(sink)
    pending = [_Pending(reading_points(reading(seq=i, battery=0.5))) for i in range(3)]
    assert asyncio.run(writer.write_all(pending, asyncio.Event()))
    assert sink.calls == [3, 1, 1, 1]
    assert writer.stats.records_written == 2
    assert writer.stats.dropped == {"rejected by store: HTTP 400": 1}


def test_writer_stops_without_writing_when_asked_during_an_outage() -> None:
    sink = FakeSink([StoreUnavailable("down")] * 1000)
    writer = make_writer(sink)
    stop = asyncio.Event()

    async def go() -> bool:
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return await writer.write_all([_Pending(reading_points(reading(seq=1)))], stop)

    assert asyncio.run(go()) is False
    assert writer.stats.records_written == 0 and writer.stats.retries > 1


def test_writer_counts_what_it_cannot_use_and_tags_events_from_alerts_it_saw() -> None:
    writer = make_writer(FakeSink([]))
    assert writer.convert("readings", orjson.dumps(reading(seq=1)))
    for bad, reason in [(b"{nope", "invalid JSON"), (b"[1]", "not a JSON object")]:
        with pytest.raises(Unusable, match=reason):
            writer.convert("readings", bad)
    alert = {"alert_id": "sos-1", "kind": "sos", "severity": "critical", "resident_id": "R002"}
    alert |= {"device_id": "P002", "ts": TS, "detected_at": TS}
    writer.convert("alerts", orjson.dumps(alert))
    (event,) = writer.convert(
        "alert-events", orjson.dumps({"alert_id": "sos-1", "state": "resolved", "at": TS + 9})
    )
    assert event._tags == {"resident": "R002", "device": "P002"}
    writer.convert("alert-events", orjson.dumps({"alert_id": "x", "state": "opened", "at": TS}))
    assert writer.stats.events_untagged == 1


# -- the Flux the InfluxDB reader sends (not executable here: no InfluxDB 2.x on this machine) --


def test_flux_literals_and_ids() -> None:
    assert flux_time(TS) == "2026-11-22T23:34:52.123Z"
    assert flux_string('a"b\\c${x}') == '"a\\"b\\\\c\\${x}"'
    assert check_id("W001") == "W001"
    for bad in ['R001" or true', "", "x" * 65, "R 1"]:
        with pytest.raises(ValueError):
            check_id(bad)


def test_flux_latest_vitals() -> None:
    assert flux_latest_vitals("anxin", "R001", 86400) == (
        'from(bucket: "anxin")\n'
        "  |> range(start: -86400s, stop: 300s)\n"
        '  |> filter(fn: (r) => r._measurement == "vitals" and r.resident == "R001")\n'
        "  |> last()\n"
        '  |> keep(columns: ["_time", "_field", "_value", "device"])'
    )


def test_flux_vitals_series_raw_and_downsampled() -> None:
    raw = flux_vitals_series("anxin", "R001", TS - 86400, TS)
    assert "range(start: 2026-11-21T23:34:52.123Z, stop: 2026-11-22T23:34:52.123Z)" in raw
    assert "aggregateWindow" not in raw
    down = flux_vitals_series("anxin", "R001", TS - 86400, TS, step=300)
    assert down.splitlines()[3:5] == [
        '  |> filter(fn: (r) => r._field != "o2")',
        "  |> aggregateWindow(every: 300000ms, fn: mean, createEmpty: false)",
    ]
    with pytest.raises(ValueError):
        flux_vitals_series("anxin", 'R001") |> drop(', TS - 1, TS)


def test_flux_last_positions_and_alerts() -> None:
    flux = flux_last_positions("anxin", "W001", TS - 3600, 20)
    assert 'r._measurement == "location" and r.device == "W001"' in flux
    assert 'pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")' in flux
    assert flux.endswith('|> sort(columns: ["_time"], desc: true)\n  |> limit(n: 20)')
    alerts = flux_alert_marks("anxin", "R001", TS - 3600, TS)
    assert 'r._measurement == "alert" and r.resident == "R001"' in alerts
    assert 'r._field != "news2" and r._field != "id"' in alerts
