"""Per-device rate limits for the bridge: a token bucket per device id.

A device that publishes faster than ``rate_per_s`` (after a ``burst`` allowance) has its excess
dead-lettered with the reason ``rate limit``: acknowledged to MQTT, kept (raw payload) on the
dead-letter topic, counted and logged, but not validated or sent to the detectors, so one broken
or hostile device cannot starve the others of the bridge's time.

The burst is large on purpose: a device that was offline flushes its queued readings when it
reconnects, and that backlog is real data. SOS and fall events are never throttled (they still
spend tokens, so a device that floods SOS cannot slip its other telemetry past the limit); a
flood of SOS presses is collapsed downstream into one open alert per resident.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from anxin.core.settings import Settings


class IngestSettings(BaseModel):
    """The bridge's own tunables (``ANXIN_INGEST__...``)."""

    # Sustained messages per second per device; 0 turns the throttle off (replays, bulk loads).
    rate_per_s: float = Field(default=20.0, ge=0)
    # Messages a device may send at once above the rate: an offline backlog of ~4 h at one
    # reading every 10 s fits.
    burst: int = Field(default=2000, ge=1)
    # Events that pass even when the device is over its rate.
    unthrottled_events: tuple[str, ...] = ("sos", "fall")
    # Raw bytes of a message kept in its dead-letter record (the rest is counted, not kept).
    deadletter_payload_max: int = Field(default=64 * 1024, ge=0)
    # Seconds between two "over the rate limit" log lines of one device.
    throttle_log_interval_s: float = 10.0


class _IngestFromEnv(BaseSettings):
    """Until ``Settings`` has an ``ingest`` section: the same fields from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="ANXIN_INGEST__", env_nested_delimiter="__", extra="ignore"
    )
    rate_per_s: float = IngestSettings.model_fields["rate_per_s"].default
    burst: int = IngestSettings.model_fields["burst"].default
    unthrottled_events: tuple[str, ...] = IngestSettings.model_fields["unthrottled_events"].default
    deadletter_payload_max: int = IngestSettings.model_fields["deadletter_payload_max"].default
    throttle_log_interval_s: float = IngestSettings.model_fields["throttle_log_interval_s"].default


def ingest_settings(settings: Settings) -> IngestSettings:
    """``settings.ingest`` when the settings carry it, else ``ANXIN_INGEST__*`` variables."""
    found = getattr(settings, "ingest", None)
    if isinstance(found, BaseModel):
        return IngestSettings.model_validate(found.model_dump())
    return IngestSettings.model_validate(_IngestFromEnv().model_dump())


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> bool:
        """Spend one token if there is one; refill first at ``rate`` per second."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0 - 1e-9:  # a device exactly at the rate passes despite rounding
            self.tokens -= 1.0
            return True
        return False

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.updated) * self.rate >= self.burst


@dataclass
class Throttle:
    """Token buckets by device id. ``allow`` is O(1); idle buckets are pruned when many."""

    rate_per_s: float
    burst: int
    max_devices: int = 100_000
    buckets: dict[str, TokenBucket] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def allow(self, device_id: str, now: float | None = None) -> bool:
        if not self.enabled:
            return True
        now = time.monotonic() if now is None else now
        bucket = self.buckets.get(device_id)
        if bucket is None:
            if len(self.buckets) >= self.max_devices:
                self._prune(now)
            bucket = TokenBucket(self.rate_per_s, float(self.burst), float(self.burst), now)
            self.buckets[device_id] = bucket
        return bucket.take(now)

    def _prune(self, now: float) -> None:
        """Forget devices whose bucket has refilled: forgetting them changes nothing."""
        for device_id in [d for d, b in self.buckets.items() if b.full(now)]:
            del self.buckets[device_id]
        if len(self.buckets) >= self.max_devices:  # all busy: forget the oldest half
            for device_id in sorted(self.buckets, key=lambda d: self.buckets[d].updated)[
                : len(self.buckets) // 2
            ]:
                del self.buckets[device_id]
