"""Settings of the storage room (mounted as ``Settings.storage``, env ``ANXIN_STORAGE__*``)."""

from __future__ import annotations

from pydantic import BaseModel


class StorageSettings(BaseModel):
    pass
