"""Settings: one frozen object, read once at the entry point.

Sources, highest priority first: keyword arguments, ``RISKMON_*`` environment variables, the
YAML file named by ``RISKMON_SETTINGS_FILE``, then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from monitor import districts
from monitor.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKMON_", frozen=True, extra="ignore")

    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/riskmon",
        description="PostgreSQL (or TimescaleDB) URL; postgresql:// or postgresql+psycopg://",
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883", description="mqtt://host:port; empty turns MQTT off"
    )
    mqtt_client_id: str = Field(
        default="riskmon", description="MQTT client id; fixed so the broker keeps the session"
    )
    mqtt_topic: str = Field(
        default="riskmon/v1/+/+/readings", description="MQTT subscription filter"
    )
    mqtt_share_group: str = Field(
        default="riskmon",
        description="MQTT v5 shared subscription group: processes of one group split the "
        "stream; empty subscribes the plain filter (every process gets every message)",
    )
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: bool = Field(default=False, description="TLS to the broker (mqtts:// also sets it)")
    mqtt_ca_file: Path | None = None
    mqtt_max_intake: int = Field(
        default=2000,
        ge=10,
        description="MQTT messages taken and not yet stored before reading pauses (bounded memory)",
    )
    kafka_ssl_ca_file: Path | None = None
    kafka_bootstrap_servers: str = Field(default="", description="empty turns Kafka off")
    kafka_topic: str = "riskmon.readings"
    kafka_dlq_topic: str = "riskmon.readings.dlq"
    kafka_group_id: str = "riskmon-processor"
    kafka_client_id: str = "riskmon"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_session_timeout_ms: int = Field(default=10_000, gt=0)
    kafka_pause_at: int = Field(default=5000, gt=0, description="queued messages: pause")
    kafka_resume_at: int = Field(default=1000, ge=0, description="queued messages: resume")
    role: Literal["all", "gateway", "processor"] = Field(
        default="all", description="all (single node), gateway or processor"
    )
    snapshot_interval_s: float = Field(default=30.0, gt=0)
    malloc_mmap_threshold: int = Field(
        default=4_194_304,
        ge=0,
        le=33_554_432,
        description="bytes: glibc serves larger allocations from their own mappings, returned "
        "to the system when freed (fixed, not glibc's adaptive default that rises to 32 MiB; "
        "0 leaves the default)",
    )
    admin_token: str | None = Field(default=None, description="bearer token of the admin role")
    tokens: list[dict[str, Any]] = Field(
        default_factory=list,
        description='[{"token", "name", "role": viewer|operator|admin|ingest, "tenant"}]',
    )
    auth_failures_max: int = Field(
        default=20, ge=1, description="failed sign-ins per client address before 429"
    )
    auth_failure_window_s: float = Field(
        default=60.0, gt=0, description="the window of auth_failures_max, seconds"
    )
    notify_routes: list[dict[str, Any]] = Field(
        default_factory=list,
        description='routes: [{"channel": "webhook|wecom|dingtalk", "url": ..., "tenant": ..., '
        '"site": ..., "max_level": 1-4}]',
    )
    startup_grace_s: float = Field(default=120.0, ge=0)
    flap_changes: int = Field(default=6, ge=1)
    flap_window_s: float = Field(default=600.0, gt=0)
    sla_ack_s: dict[int, float] = Field(
        default={1: 300.0, 2: 900.0, 3: 1800.0, 4: 7200.0},
        description="seconds to acknowledge, per level (1 red .. 4 blue)",
    )
    sla_dispose_s: dict[int, float] = Field(
        default={1: 1800.0, 2: 7200.0, 3: 28800.0, 4: 86400.0},
        description="seconds from acknowledgement to disposal, per level",
    )
    console_time_zone: str = Field(
        default="Asia/Shanghai", description="IANA time zone of the times the console shows"
    )
    console_districts: Path | None = Field(
        default=None, description="GeoJSON outline of districts drawn under the console's map"
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    config: Path | None = Field(
        default=None, description="YAML of sites, sensors and rules loaded at start"
    )
    rule_packs: tuple[str, ...] = Field(
        default=("common", "hazchem", "tailings", "mine_slope", "city_gas"),
        description="shipped rule packs loaded before RISKMON_CONFIG",
    )
    batch_max_readings: int = Field(default=20_000, gt=0)
    batch_linger_ms: float = Field(default=20.0, ge=0)
    queue_max_messages: int = Field(default=10_000, gt=0)
    tick_interval_s: float = Field(default=1.0, gt=0)
    # every site's risk is reassessed this often (sites whose alerts change: at each tick)
    risk_interval_s: float = Field(default=60.0, gt=0)
    # a site's risk level is notified once it has held this long (risk routes only)
    risk_hold_s: float = Field(default=300.0, ge=0)
    max_future_s: float = Field(default=300.0, ge=0)
    allowed_lateness_s: float = Field(
        default=300.0, ge=0, description="late readings within this are judged in their place"
    )
    duplicate_near_s: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="a late reading with the value of a stored one of its sensor within this "
        "many seconds is a resend: dropped before any judgement (0: the same time only)",
    )
    partition_days_ahead: int = Field(default=3, ge=1)
    rollup_interval_s: float = Field(
        default=10.0,
        gt=0,
        description="plain PostgreSQL: how often the 1 min and 1 h rollups catch up with the "
        "stored readings",
    )
    rollup_lag_s: float = Field(
        default=120.0,
        ge=0,
        description="plain PostgreSQL: the rollups catch up to this long before the newest "
        "stored reading (whole minutes); a reading older than that when it is stored is folded "
        "in as it is written",
    )
    retention_days: int = Field(
        default=90, ge=30, description="raw readings kept (DOMAIN.md 2.1: at least 30 days)"
    )
    store_copy: bool = Field(
        default=True, description="binary COPY for readings; false for servers without it"
    )
    shutdown_timeout_s: float = Field(default=10.0, gt=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt(cls, value: str) -> str:
        if value and urlparse(value).scheme not in ("mqtt", "mqtts", "tcp"):
            raise ValueError("RISKMON_MQTT_URL must look like mqtt://host:port")
        return value

    @field_validator("console_time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"RISKMON_CONSOLE_TIME_ZONE {value!r} is no IANA time zone") from err
        return value

    @field_validator("console_districts")
    @classmethod
    def _check_districts(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                districts.read(value)
            except ValueError as err:
                raise ValueError(f"RISKMON_CONSOLE_DISTRICTS: {err}") from err
        return value

    @property
    def mqtt_host_port(self) -> tuple[str, int] | None:
        if not self.mqtt_url:
            return None
        parsed = urlparse(self.mqtt_url)
        return parsed.hostname or "127.0.0.1", parsed.port or 1883

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("RISKMON_SETTINGS_FILE")
        if path:
            if not Path(path).is_file():
                raise ConfigError(f"RISKMON_SETTINGS_FILE {path!r} does not exist")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)
