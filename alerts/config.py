"""Settings of the alerts room (mounted as ``Settings.alerts``, env ``ANXIN_ALERTS__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator


class AlertsSettings(BaseModel):
    """Tunables of the alerts worker; the defaults suit production, tests override a few."""

    # Contacts, rota and escalation policies (YAML); relative paths are taken beside the registry.
    policies: Path = Path("alerts.yaml")
    # Kafka intake: one consumer group for every alerts worker, so they share the partitions.
    group_id: str = "anxin-alerts"
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # Webhook server for Twilio's requests (Twilio reaches it through ``twilio.public_base_url``).
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8000
    # Engine loop: how often due steps and due notifications are looked for.
    tick_s: float = Field(default=0.2, gt=0)
    claim_batch: int = Field(default=20, ge=1)
    # Twilio retries of 429/5xx/connection errors: exponential backoff with jitter.
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    request_timeout_s: float = Field(default=10.0, gt=0)
    # A send claimed by a worker that then vanished is sent again after this (wall clock) lease,
    # renewed before each request; it must outlast one request.
    lease_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_request(self) -> AlertsSettings:
        if self.lease_s <= self.request_timeout_s:
            raise ValueError(
                f"lease_s ({self.lease_s:g}) must exceed request_timeout_s"
                f" ({self.request_timeout_s:g}): a live worker would lose the row it is sending"
            )
        return self
