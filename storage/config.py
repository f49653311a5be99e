"""Settings of the storage room (mounted as ``Settings.storage``, env ``ANXIN_STORAGE__*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class StorageSettings(BaseModel):
    """Writer and reader tunables; the store's address and credentials are ``Settings.influx``."""

    # Which query language the readers speak: VictoriaMetrics (MetricsQL) or InfluxDB 2.x (Flux).
    # The writer is the same for both (influxdb-client line protocol on /api/v2/write).
    backend: Literal["victoriametrics", "influxdb"] = "victoriametrics"
    group_id: str = "anxin-storage"
    # One Kafka fetch = one write: at most this many records are held in memory at once.
    batch_size: int = 2000
    # Longest wait for a batch to fill before writing what there is.
    flush_interval_ms: int = 500
    # Bound on what the Kafka client prefetches (bytes), so memory stays bounded while paused.
    fetch_max_bytes: int = 8 * 1024 * 1024
    write_timeout_ms: int = 10_000
    # Retry with exponential backoff and jitter, forever: Kafka is the buffer, nothing is dropped
    # because the store is down.
    retry_initial_s: float = 0.5
    retry_max_s: float = 15.0
    # Write every raw accelerometer sample too (measurement ``accel``); off: only the per-chunk
    # motion summary, which is what charts and audits need and 1/25th of the points.
    raw_accel: bool = False
    # String fields (alert ids, states, who acknowledged) are kept by InfluxDB but turned into
    # zero-valued junk series by VictoriaMetrics, so they are written only when this is on.
    string_fields: bool = False
    # Tansu joins groups in about half the rebalance timeout (DESIGN.md): keep these short.
    session_timeout_ms: int = 10_000
    rebalance_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    # How often the writer logs its counters (and rewrites its stats file).
    stats_interval_s: float = 10.0
    # Alert records kept in memory to tag later lifecycle events that do not name the resident.
    alert_cache_size: int = 100_000
    # Readers: how far back "latest" looks.
    latest_lookback_h: float = 24.0


# Flags the VictoriaMetrics process needs for this writer (the local supervisor and
# docker-compose pass them): identical timestamps of a series collapse to one sample, so a replayed
# reading overwrites instead of doubling; and the default retention of raw readings.
VICTORIAMETRICS_FLAGS = ("-dedup.minScrapeInterval=1ms", "-retentionPeriod=1y")
