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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_RUN_DIR = Path(".run")


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None
    tls_ca: Path | None = None
    prefix: str = "anxin/v1"
    # The bridge's persistent session. Empty: "anxin-ingest", or "anxin-ingest-<host>" when
    # bridges share the load (each member of a share group needs its own id). A broker with
    # accounts replaces it with the username (use_username_as_clientid), so that no device can
    # take it over: there each bridge of a share group needs its own account.
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

    rate_per_s: float = Field(default=20.0, ge=0)  # per device, sustained; 0 turns it off
    burst: int = Field(default=2000, ge=1)  # a device catching up after hours offline passes
    unthrottled_events: tuple[str, ...] = ("sos", "fall")  # never held back
    deadletter_payload_max: int = Field(default=65536, ge=0)
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
    # The detector worker's state snapshots (anxin/live_state.py), one partition per readings
    # partition: what a worker that takes a partition over starts from.
    state_topic: str = "detector-state"
    # Accelerometer falls waiting for the wearer to answer (records.FallSuspicion), by resident.
    suspicions_topic: str = "fall-suspicions"
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
    # A batch agent wakes this often even with nothing to take, and takes what came meanwhile as
    # one batch. bench/worker paced, readings per worker CPU-s, two runs each: at 300/s (3,000
    # devices) 0.05 s 4,478/4,739, 0.1 s 5,034/4,854, 0.2 s 5,181/5,059; at 1,000/s (10,000)
    # 0.05 s 6,623/6,633, 0.1 s 6,897/7,018. 0.2 s took bench/pipeline's p99 publish -> alert
    # at 10,000 devices to 1.02 s (0.52-0.66 s at 0.05 s; 0.46 s at 0.1 s).
    batch_timeout: float = 0.1
    tick_interval: float = 1.0  # seconds between timer sweeps (silence, check windows)
    fetch_max_wait_ms: int = 100  # Faust hard-codes 1500; see anxin.app._cap_fetch_wait
    fetch_min_bytes: int = 256 * 1024  # held up to fetch_max_wait_ms; anxin.app._cap_fetch_wait
    producer_linger_ms: int = 10  # batch table changelogs and outputs a little
    # Live state is written to the changelog as snapshots this often (anxin/live_state.py):
    # the most a restarted worker reprocesses; alert and check transitions are written at once.
    snapshot_interval_s: float = 5.0
    snapshot_buckets: int = 256  # snapshot keys per partition, written in turn (live_state.py)
    stats_file: Path | None = None  # counters as JSON, rewritten about once a second
    # The cyclic garbage collector's thresholds in the worker (anxin/app.py run_worker).
    gc_thresholds: tuple[int, int, int] = (50_000, 20, 100)


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


class ConsoleSettings(BaseModel):
    """Where the console listens, who may log in, and how its session cookie is made."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Accounts (YAML, argon2id hashes); a relative path is taken beside the registry.
    users: Path = Path("console-users.yaml")
    # Signs the session cookie. Give it in the environment only (ANXIN_CONSOLE__SESSION_SECRET,
    # 32+ random bytes); unset, a random one is made at start and sessions end with the process.
    session_secret: SecretStr | None = None
    session_cookie: str = "anxin_console"
    session_max_age_s: int = Field(default=12 * 3600, gt=0)  # one shift
    same_site: Literal["lax", "strict"] = "strict"
    # Secure cookies (HTTPS only): on in production behind TLS; off for http://127.0.0.1.
    https_only: bool = False
    # How often the alert_events table is polled for changes pushed to the browsers.
    poll_s: float = Field(default=0.2, gt=0)
    # Positions on the alert page map, and how long store reads are cached for the board.
    positions: int = Field(default=30, ge=1, le=500)
    store_cache_s: float = Field(default=5.0, ge=0)
    # Reverse proxies whose X-Forwarded-For/-Proto are believed (addresses or networks, e.g.
    # ["10.0.0.5"]). None by default: the client address is the connection's own, so nobody can
    # choose the address the login throttle counts by sending a header.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Failed logins from one client address, across accounts, within a window: at the limit that
    # address is refused until its oldest failure leaves the window.
    login_failures: int = Field(default=10, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)
    # Per account: after this many failures in a row, an address that has itself failed must
    # wait login_backoff_s, doubling with each further failure (up to login_backoff_max_s);
    # an address without failures is never held back, so no stranger can lock a nurse out.
    login_backoff_after: int = Field(default=3, ge=1)
    login_backoff_s: float = Field(default=1.0, gt=0)
    login_backoff_max_s: float = Field(default=300.0, gt=0)


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
