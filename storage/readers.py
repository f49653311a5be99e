"""Reading the time series back for people: one interface, two stores.

- ``VictoriaMetricsReader``: MetricsQL and ``/api/v1/export`` over HTTP (the local store; tested
  against a real VictoriaMetrics). VictoriaMetrics names each field ``<measurement>_<field>``
  and keeps ``resident``/``device`` as labels.
- ``InfluxReader``: Flux through influxdb-client's ``query_api`` for InfluxDB 2.x/3.x. No InfluxDB
  2.x can run on this machine (DESIGN.md), so only the Flux it builds is unit-tested
  (``flux_*`` functions below); it has not been run against a real InfluxDB here.

Both return the same dataclasses, so the console and ``anxin history`` do not care which store
they read. Identifiers are checked against the device-id pattern before they go into a query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import urllib3

from storage.points import ACVPU_CODES

VITALS = ("hr", "spo2", "rr", "temp", "sbp", "dbp", "o2", "acvpu")
SEVERITIES = {1: "warning", 2: "critical"}
ACVPU_LETTERS = {code: letter for letter, code in ACVPU_CODES.items()}
# How far ahead of the reader's clock a device's timestamps may be and still count as latest.
CLOCK_AHEAD_S = 300
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Sample:
    ts: float
    value: float
    device: str


@dataclass(frozen=True)
class Position:
    ts: float
    lat: float
    lon: float
    acc: float | None
    device: str


@dataclass(frozen=True)
class AlertMark:
    ts: float
    kind: str
    severity: str
    device: str


class Reader(Protocol):
    """What the console and ``anxin history`` read; times are epoch seconds."""

    def latest_vitals(self, resident_id: str) -> dict[str, Sample]:
        """Newest value of each vital parameter (any device of the resident)."""
        ...

    def vitals_series(
        self, resident_id: str, start: float, end: float, step: float | None = None
    ) -> dict[str, list[Sample]]:
        """Each parameter's samples in ``[start, end]``, oldest first; raw, or averaged per
        ``step`` seconds for long ranges."""
        ...

    def last_positions(
        self, device_id: str, limit: int = 20, since: float | None = None
    ) -> list[Position]:
        """The device's last ``limit`` positions (since ``since``, default a day), oldest first."""
        ...

    def alert_marks(self, resident_id: str, start: float, end: float) -> list[AlertMark]:
        """Alerts of the resident in ``[start, end]``, for marks on a chart."""
        ...

    def close(self) -> None: ...


def check_id(value: str) -> str:
    """Resident and device ids as in DESIGN.md; anything else never reaches a query."""
    if not _ID.match(value):
        raise ValueError(f"not a valid id: {value!r}")
    return value


# -- VictoriaMetrics ---------------------------------------------------------------------------


class VictoriaMetricsReader:
    """MetricsQL/export reader for VictoriaMetrics (single-node ``/api/v1/...``)."""

    def __init__(self, url: str, lookback_h: float = 24.0, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.lookback_s = lookback_h * 3600
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=timeout_s), retries=urllib3.Retry(2, backoff_factor=0.2)
        )

    def _post(self, path: str, params: list[tuple[str, str]]) -> bytes:
        if path != "/api/v1/export":
            # The rollup cache would hide points written late (catch-up after an outage, a
            # replay, a device that was offline): per-resident queries are cheap uncached.
            params = [*params, ("nocache", "1")]
        resp = self._http.request(
            "POST",
            f"{self.url}{path}",
            body=urlencode(params),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if resp.status != 200:
            raise RuntimeError(f"{path}: HTTP {resp.status}: {resp.data[:300]!r}")
        return bytes(resp.data)

    def export(self, selector: str, start: float, end: float) -> Iterator[dict[str, Any]]:
        """Raw samples of every series matching ``selector`` (one JSON object per series)."""
        data = self._post(
            "/api/v1/export",
            [("match[]", selector), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")],
        )
        for line in data.splitlines():
            if line.strip():
                yield json.loads(line)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = [("query", expr)]
        if at is not None:
            params.append(("time", f"{at:.3f}"))
        result: list[dict[str, Any]] = json.loads(self._post("/api/v1/query", params))["data"][
            "result"
        ]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = [("query", expr), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        params.append(("step", f"{step:g}s"))
        result: list[dict[str, Any]] = json.loads(self._post("/api/v1/query_range", params))[
            "data"
        ]["result"]
        return result

    @staticmethod
    def _vitals_selector(resident_id: str) -> str:
        names = "|".join(VITALS)
        return f'{{__name__=~"vitals_({names})",resident="{check_id(resident_id)}"}}'

    def latest_vitals(self, resident_id: str) -> dict[str, Sample]:
        import time

        # Evaluated a little ahead of now: VictoriaMetrics truncates a default query time to the
        # second, and device clocks run ahead, so "now" would miss the newest readings.
        at = time.time() + CLOCK_AHEAD_S
        window = f"[{int(self.lookback_s + CLOCK_AHEAD_S)}s]"
        sel = self._vitals_selector(resident_id)
        values = self.query(f"last_over_time({sel}{window}) keep_metric_names", at)
        times = self.query(f"tlast_over_time({sel}{window}) keep_metric_names", at)
        when = {
            (r["metric"]["__name__"], r["metric"].get("device", "")): float(r["value"][1])
            for r in times
        }
        out: dict[str, Sample] = {}
        for r in values:
            name, device = r["metric"]["__name__"], r["metric"].get("device", "")
            param = name.removeprefix("vitals_")
            ts = when.get((name, device))
            if ts is None:
                continue
            sample = Sample(ts, float(r["value"][1]), device)
            if param not in out or sample.ts > out[param].ts:
                out[param] = sample
        return out

    def vitals_series(
        self, resident_id: str, start: float, end: float, step: float | None = None
    ) -> dict[str, list[Sample]]:
        sel = self._vitals_selector(resident_id)
        out: dict[str, list[Sample]] = {}
        if step is None:
            for series in self.export(sel, start, end):
                param = series["metric"]["__name__"].removeprefix("vitals_")
                device = series["metric"].get("device", "")
                out.setdefault(param, []).extend(
                    Sample(t / 1000, float(v), device)
                    for t, v in zip(series["timestamps"], series["values"], strict=True)
                )
        else:
            expr = f"avg_over_time({sel}[{step:g}s]) keep_metric_names"
            for series in self.query_range(expr, start, end, step):
                param = series["metric"]["__name__"].removeprefix("vitals_")
                device = series["metric"].get("device", "")
                out.setdefault(param, []).extend(
                    Sample(float(t), float(v), device) for t, v in series["values"]
                )
        for samples in out.values():
            samples.sort(key=lambda s: s.ts)
        return out

    def last_positions(
        self, device_id: str, limit: int = 20, since: float | None = None
    ) -> list[Position]:
        import time

        end = time.time() + 60
        start = since if since is not None else end - self.lookback_s
        sel = f'{{__name__=~"location_(lat|lon|acc)",device="{check_id(device_id)}"}}'
        columns: dict[str, dict[int, float]] = {}
        for series in self.export(sel, start, end):
            field = series["metric"]["__name__"].removeprefix("location_")
            columns.setdefault(field, {}).update(
                zip(series["timestamps"], series["values"], strict=True)
            )
        lat, lon, acc = columns.get("lat", {}), columns.get("lon", {}), columns.get("acc", {})
        stamps = sorted(set(lat) & set(lon))[-limit:] if limit > 0 else []
        return [Position(t / 1000, lat[t], lon[t], acc.get(t), device_id) for t in stamps]

    def alert_marks(self, resident_id: str, start: float, end: float) -> list[AlertMark]:
        sel = (
            f'{{__name__=~"alert_.+",__name__!~"alert_(news2|id|event_.*)",'
            f'resident="{check_id(resident_id)}"}}'
        )
        marks = [
            AlertMark(
                t / 1000,
                series["metric"]["__name__"].removeprefix("alert_"),
                SEVERITIES.get(int(v), "warning"),
                series["metric"].get("device", ""),
            )
            for series in self.export(sel, start, end)
            for t, v in zip(series["timestamps"], series["values"], strict=True)
        ]
        return sorted(marks, key=lambda m: m.ts)

    def close(self) -> None:
        self._http.clear()


# -- InfluxDB 2.x (Flux) -----------------------------------------------------------------------


def flux_string(value: str) -> str:
    """A Flux string literal (ids are checked too; this is defence in depth)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def flux_time(ts: float) -> str:
    """An RFC 3339 Flux time literal at millisecond precision."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def flux_latest_vitals(bucket: str, resident_id: str, lookback_s: float) -> str:
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: -{int(lookback_s)}s, stop: {CLOCK_AHEAD_S}s)\n"
        f'  |> filter(fn: (r) => r._measurement == "vitals" and '
        f"r.resident == {flux_string(check_id(resident_id))})\n"
        "  |> last()\n"
        '  |> keep(columns: ["_time", "_field", "_value", "device"])'
    )


def flux_vitals_series(
    bucket: str, resident_id: str, start: float, end: float, step: float | None = None
) -> str:
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {flux_time(start)}, stop: {flux_time(end)})",
        f'  |> filter(fn: (r) => r._measurement == "vitals" and '
        f"r.resident == {flux_string(check_id(resident_id))})",
    ]
    if step is not None:
        # mean() is undefined on the boolean o2 field: averaged series are the numeric ones.
        lines.append('  |> filter(fn: (r) => r._field != "o2")')
        lines.append(
            f"  |> aggregateWindow(every: {int(step * 1000)}ms, fn: mean, createEmpty: false)"
        )
    lines.append('  |> keep(columns: ["_time", "_field", "_value", "device"])')
    return "\n".join(lines)


def flux_last_positions(bucket: str, device_id: str, since: float, limit: int) -> str:
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {flux_time(since)})\n"
        f'  |> filter(fn: (r) => r._measurement == "location" and '
        f"r.device == {flux_string(check_id(device_id))})\n"
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        "  |> group()\n"
        '  |> sort(columns: ["_time"], desc: true)\n'
        f"  |> limit(n: {int(limit)})"
    )


def flux_alert_marks(bucket: str, resident_id: str, start: float, end: float) -> str:
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {flux_time(start)}, stop: {flux_time(end)})\n"
        f'  |> filter(fn: (r) => r._measurement == "alert" and '
        f"r.resident == {flux_string(check_id(resident_id))})\n"
        '  |> filter(fn: (r) => r._field != "news2" and r._field != "id")\n'
        '  |> keep(columns: ["_time", "_field", "_value", "device"])'
    )


def _epoch(t: datetime) -> float:
    return t.timestamp()


def _as_float(value: Any) -> float:
    return float(value)  # bool (o2) → 0.0/1.0 like VictoriaMetrics stores it


class InfluxReader:
    """Flux reader for InfluxDB 2.x/3.x. Not run on this machine: see the module docstring."""

    def __init__(
        self, url: str, token: str, org: str, bucket: str, lookback_h: float = 24.0
    ) -> None:
        from influxdb_client import InfluxDBClient

        self.bucket = bucket
        self.lookback_s = lookback_h * 3600
        self._client = InfluxDBClient(url=url, token=token, org=org)
        self._query = self._client.query_api()

    def _records(self, flux: str) -> Iterable[Any]:
        for table in self._query.query(flux):
            yield from table.records

    def latest_vitals(self, resident_id: str) -> dict[str, Sample]:
        out: dict[str, Sample] = {}
        for r in self._records(flux_latest_vitals(self.bucket, resident_id, self.lookback_s)):
            sample = Sample(
                _epoch(r.get_time()), _as_float(r.get_value()), r.values.get("device", "")
            )
            field = r.get_field()
            if field not in out or sample.ts > out[field].ts:
                out[field] = sample
        return out

    def vitals_series(
        self, resident_id: str, start: float, end: float, step: float | None = None
    ) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = {}
        for r in self._records(flux_vitals_series(self.bucket, resident_id, start, end, step)):
            out.setdefault(r.get_field(), []).append(
                Sample(_epoch(r.get_time()), _as_float(r.get_value()), r.values.get("device", ""))
            )
        for samples in out.values():
            samples.sort(key=lambda s: s.ts)
        return out

    def last_positions(
        self, device_id: str, limit: int = 20, since: float | None = None
    ) -> list[Position]:
        import time

        start = since if since is not None else time.time() - self.lookback_s
        rows = [
            Position(
                _epoch(r.get_time()),
                float(r.values["lat"]),
                float(r.values["lon"]),
                None if r.values.get("acc") is None else float(r.values["acc"]),
                device_id,
            )
            for r in self._records(flux_last_positions(self.bucket, device_id, start, limit))
            if r.values.get("lat") is not None and r.values.get("lon") is not None
        ]
        return sorted(rows, key=lambda p: p.ts)

    def alert_marks(self, resident_id: str, start: float, end: float) -> list[AlertMark]:
        marks = [
            AlertMark(
                _epoch(r.get_time()),
                r.get_field(),
                SEVERITIES.get(int(r.get_value()), "warning"),
                r.values.get("device", ""),
            )
            for r in self._records(flux_alert_marks(self.bucket, resident_id, start, end))
        ]
        return sorted(marks, key=lambda m: m.ts)

    def close(self) -> None:
        self._client.close()


def make_reader(settings: Any) -> Reader:
    """The reader for ``settings.storage.backend`` at ``settings.influx``."""
    cfg = settings.storage
    if cfg.backend == "influxdb":
        return InfluxReader(
            settings.influx.url,
            settings.influx.token.get_secret_value(),
            settings.influx.org,
            settings.influx.bucket,
            cfg.latest_lookback_h,
        )
    return VictoriaMetricsReader(settings.influx.url, cfg.latest_lookback_h)
