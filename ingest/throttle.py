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
