"""Every address, credential and tunable in one place.

Values come from the environment (prefix ``ANXIN_``, nested with ``__``), then from an optional
settings file (``ANXIN_SETTINGS_FILE``, YAML or dotenv), then from the addresses the local service
supervisor wrote (``services.json`` in the run folder), then from defaults. Production points
these at Apache Kafka, Mosquitto, InfluxDB/VictoriaMetrics, PostgreSQL and real Twilio.
"""

from __future__ import annotations

import json
import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from alerts.config import AlertsSettings
from console.config import ConsoleSettings
from storage.config import StorageSettings

DEFAULT_RUN_DIR = Path(".run")


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: Path | None = None
    prefix: str = "anxin/v1"
    # The bridge's persistent session. Empty: "anxin-ingest", or "anxin-ingest-<host>" when
    # bridges share the load (each member of a share group needs its own id).
    client_id: str = ""
    # Set (e.g. "anxin-ingest") to split telemetry between several bridges with an MQTT v5 shared
    # subscription. Off by default: Mosquitto 2.0.11 does not restore shared subscriptions from
    # its persistence file, so a broker restart would lose what arrives before the bridge
    # re-subscribes; a plain persistent subscription survives the restart.
    share_group: str = ""
    keepalive: int = 30

    def session_id(self) -> str:
        if self.client_id:
            return self.client_id
        return f"anxin-ingest-{socket.gethostname()}" if self.share_group else "anxin-ingest"


class IngestSettings(BaseModel):
    """The bridge's per-device throttle and dead-letter limits (``ingest/throttle.py``)."""

    rate_per_s: float = 20.0  # sustained messages per device; 0 turns the throttle off
    burst: int = 2000  # a device catching up after hours offline is not cut off
    unthrottled_events: tuple[str, ...] = ("sos", "fall")  # never held back
    deadletter_payload_max: int = 65536
    throttle_log_interval_s: float = 10.0


class KafkaSettings(BaseModel):
    bootstrap: str = "127.0.0.1:9092"
    readings_topic: str = "readings"
    rejected_topic: str = "readings-rejected"
    status_topic: str = "device-status"
    alerts_topic: str = "alerts"
    alert_events_topic: str = "alert-events"
    commands_topic: str = "device-commands"
    # Detector-side lifecycle changes of alerts they raised (cancel, resolve) and wearer "ok"s.
    alert_updates_topic: str = "alert-updates"
    # Vital signs re-keyed by resident, so NEWS2 combines all of a resident's devices.
    vitals_topic: str = "vitals"
    partitions: int = 4


class FaustSettings(BaseModel):
    app_id: str = "anxin"
    data_dir: Path = Path(".run/faust")
    # Tansu's group join waits about half the rebalance timeout: these make a worker start in ~5 s.
    rebalance_timeout: float = 10.0
    session_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    web_port: int = 6066
    web_enabled: bool = False
    batch_size: int = 500
    batch_timeout: float = 0.05
    tick_interval: float = 1.0  # seconds between timer sweeps (silence, check windows)
    fetch_max_wait_ms: int = 100  # Faust hard-codes 1500; see anxin.app._cap_fetch_wait
    producer_linger_ms: int = 10  # batch table changelogs and outputs a little


class InfluxSettings(BaseModel):
    url: str = "http://127.0.0.1:8428"
    token: SecretStr = SecretStr("anxin-local")
    org: str = "anxin"
    bucket: str = "anxin"


class PostgresSettings(BaseModel):
    dsn: SecretStr = SecretStr("postgresql://anxin@127.0.0.1:5432/anxin")


class TwilioSettings(BaseModel):
    account_sid: str = "AC" + "0" * 32
    auth_token: SecretStr = SecretStr("local-test-token")
    from_number: str = "+15005550006"
    base_url: str | None = None  # set to the Prism mock locally; None means real Twilio
    public_base_url: str = "http://127.0.0.1:8000"


class Settings(BaseSettings):
    """Anxin settings; see the module docstring for where values come from."""

    model_config = SettingsConfigDict(
        env_prefix="ANXIN_", env_nested_delimiter="__", extra="ignore"
    )

    run_dir: Path = DEFAULT_RUN_DIR
    registry: Path = Path("registry.yaml")
    log_level: str = "INFO"
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    faust: FaustSettings = Field(default_factory=FaustSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    max_payload_bytes: int = 64 * 1024
    registry_reload_s: float = 5.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _FileSource(settings_cls),
            _ServicesFileSource(settings_cls),
        )


class _FileSource(PydanticBaseSettingsSource):
    """An optional YAML settings file named by ``ANXIN_SETTINGS_FILE`` (kept outside the repo)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("ANXIN_SETTINGS_FILE")
        if not path:
            return {}
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a settings file must be a mapping")
        return data


class _ServicesFileSource(PydanticBaseSettingsSource):
    """Addresses written by ``anxin services up`` so every CLI command finds the local services."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        run_dir = Path(os.environ.get("ANXIN_RUN_DIR", str(DEFAULT_RUN_DIR)))
        path = run_dir / "services.json"
        if not path.exists():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        settings = data.get("settings", {})
        return settings if isinstance(settings, dict) else {}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
