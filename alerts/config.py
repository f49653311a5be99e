"""Settings of the alerts room (mounted as ``Settings.alerts``, env ``ANXIN_ALERTS__*``)."""

from __future__ import annotations

from pydantic import BaseModel


class AlertsSettings(BaseModel):
    pass
