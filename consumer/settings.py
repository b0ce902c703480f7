"""Every option of the service, in one class, read from `OCPP_*` environment variables.

Each field's description is the text of the README's configuration table; keep the two in step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCPP_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    kafka_topics: str = Field("ocpp.events", description="Topics to consume, comma-separated.")
    kafka_group_id: str = Field("ocpp-state", min_length=1, description="Consumer group shared by all replicas.")
    kafka_client_id: str = Field("ocpp-state", description="Client id reported to the broker.")
    kafka_auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a group with no committed offset starts."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism, when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: str | None = Field(None, description="CA file that signs the brokers' certificates.")
    kafka_max_poll_interval_ms: int = Field(
        300_000, ge=1000,
        description="A replica that does not poll for this long is taken out of the group (it polls, paused, "
                    "while a batch waits on the database).",
    )
    dlq_topic: str = Field("ocpp.events.dlq", min_length=1, description="Dead-letter topic for invalid records.")

    database_url: SecretStr = Field(
        SecretStr("postgresql://ocpp:ocpp@127.0.0.1:5433/ocpp"), description="PostgreSQL DSN."
    )
    database_pool_size: int = Field(2, ge=1, le=64, description="Connections per replica.")
    database_statement_timeout_seconds: float = Field(
        60, gt=0,
        description="A statement that takes longer (a lock, a dead connection) is cancelled and retried.",
    )

    max_clock_skew_seconds: float = Field(
        300, ge=0,
        description="A charger timestamp more than this after `received_at` is replaced by `received_at`; a "
                    "`received_at` more than this after the Kafka record's timestamp, by that timestamp.",
    )
    max_delivery_delay_seconds: float = Field(
        604_800, gt=0,
        description="A charger timestamp this far before `received_at` is a reset clock: `received_at` is used instead.",
    )
    max_record_bytes: int = Field(
        1_000_000, ge=1024,
        description="Larger record values are dead-lettered as `too_large` (without their value).",
    )

    batch_max_records: int = Field(20000, ge=1, description="Most records fetched for one batch.")
    batch_max_bytes: int = Field(
        8_388_608, ge=1024,
        description="Most bytes fetched per partition at a time; one fetch returns at most 4 times this (memory bound).",
    )
    # At least 1: a zero wait makes an idle fetch return without ever yielding to the event loop.
    batch_max_wait_ms: int = Field(200, ge=1, description="How long a fetch waits to fill a batch.")

    retry_max_seconds: float = Field(
        30, gt=0, description="Longest wait between two retries of a database or broker call."
    )
    startup_timeout_seconds: float = Field(
        120, gt=0,
        description="How long start-up waits for PostgreSQL and Kafka to answer before it exits with one line saying which.",
    )
    stall_timeout_seconds: float = Field(
        300, gt=0,
        description="/readyz turns 503 when the replica has lag and has committed nothing for this long (a stall).",
    )
    shutdown_timeout_seconds: float = Field(
        30, gt=0, description="On SIGTERM/SIGINT, how long the in-flight batch may take to finish."
    )
    metrics_port: int = Field(9108, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz; 0 turns it off.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")

    @field_validator("kafka_topics")
    @classmethod
    def _topics_not_empty(cls, value: str) -> str:
        if not [t for t in value.split(",") if t.strip()]:
            raise ValueError("names no topic")
        return value

    @property
    def topics(self) -> list[str]:
        return [t.strip() for t in self.kafka_topics.split(",") if t.strip()]
