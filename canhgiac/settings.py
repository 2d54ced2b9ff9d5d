"""The one settings object of the service, read from ``CANHGIAC_*`` environment variables.

Built once in the composition root (:mod:`canhgiac.cli`) and passed down explicitly; frozen.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.pseudonym import Pseudonymiser


class Settings(BaseSettings):
    # allow_inf_nan=False: nan and inf pass every ge/gt/le bound (inf >= 0), so they are refused
    model_config = SettingsConfigDict(env_prefix="CANHGIAC_", frozen=True, extra="ignore",
                                      allow_inf_nan=False)

    # personal data (models.pseudonym)
    pseudonym_key: SecretStr | None = Field(
        None, description="Key of the pseudonyms of account and customer ids in MLflow "
        "artifacts and logs (HMAC-SHA256). Default: a random key in <data_dir>/pseudonym.key")

    # storage locations
    data_dir: Path = Field(Path(".canhgiac"), description="Local state: MLflow, case store, keys")
    mlflow_tracking_uri: str = Field("", description="Default: SQLite file under data_dir")
    mlflow_artifact_location: str = Field(
        "", description="Artifact store of a new MLflow experiment (s3://..., gs://...). "
        "Default: the tracking server's (http(s) tracking URI), else <data_dir>/mlartifacts")
    case_store_url: str = Field("", description="SQLAlchemy URL. Default: SQLite under data_dir")
    model_uri: str = "models:/canhgiac-risk@champion"
    registered_model: str = "canhgiac-risk"

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    group_id: str = "canhgiac-scorer"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None

    topic_partitions: int = Field(4, ge=1, le=10_000,
                                  description="Partitions of every topic the service creates")
    topic_replication: int = Field(1, ge=1, le=32,
                                   description="Replication factor of the topics it creates")

    # scorer
    start_from: Literal["latest", "earliest"] = Field(
        "latest", description="Where a partition with no checkpoint and no committed group "
        "offset starts: latest (state warmed by the look-back, no outputs for it) or earliest "
        "(score the whole retained history)")
    warmup_lookback_s: float = Field(
        30 * 86400.0, ge=0, description="History replayed into the state, without outputs, "
        "before a partition's start point when it has no usable checkpoint")
    batch_size: int = Field(500, ge=1, le=100_000)
    poll_wait_ms: int = Field(
        5, ge=0, le=10_000, description="Max wait of one poll while payments are held back "
        "(waiting for the other topic or for reference data)")
    idle_poll_wait_ms: int = Field(
        1000, ge=0, le=10_000, description="Max wait of one poll when nothing is held back: "
        "an idle scorer sleeps here, and a record that arrives wakes it at once")
    fetch_max_wait_ms: int = Field(
        500, ge=0, le=10_000, description="Broker fetch wait (a long poll: Apache Kafka "
        "answers as soon as a record arrives, so this costs no latency there and keeps an idle "
        "scorer idle; 500 ms is Kafka's own default)")
    # a checkpoint snapshots every account of the partition: its cost grows with the state, so
    # not too often (a restart replays at most this much input)
    checkpoint_interval_s: float = Field(30.0, gt=0)
    max_poll_interval_ms: int = Field(300_000, ge=1_000)
    session_timeout_ms: int = Field(10_000, ge=1_000)
    allowed_lateness_s: float = Field(300.0, ge=0)
    stall_after_s: float = Field(
        30.0, gt=0, description="A partition whose high-water mark grows while its position "
        "does not move for this long is logged, counted and re-fetched")
    device_visibility_s: float = Field(
        60.0, ge=0, le=86_400, description="Shared devices/IPs: a sighting counts for a payment "
        "this long after it (the live table is asynchronous; training replay uses the same)")
    devices_in_score: bool = Field(
        True, description="`canhgiac score` also runs the device processor on a thread "
        "(false: run `canhgiac devices` apart)")
    max_clock_skew_s: float = Field(
        300.0, ge=0, description="An event dated further ahead of its Kafka record timestamp "
        "(or of the wall clock) is dead-lettered as 'from the future'")
    model_poll_interval_s: float = Field(30.0, gt=0, description="How often to check @champion")
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus port; 0 = off")
    metrics_host: str = Field("127.0.0.1", description="Address the metrics server binds "
                              "(0.0.0.0 to let a Prometheus on another host scrape it)")
    review_threshold: float | None = Field(None, ge=0, le=1, description="Override the model's")
    hold_threshold: float | None = Field(None, ge=0, le=1, description="Override the model's")

    # case-store projection (`canhgiac sink`, and inside `canhgiac serve`)
    sink_group_id: str = Field("canhgiac-case-store", description="Its own consumer group")
    sink_in_serve: bool = Field(True, description="`canhgiac serve` runs the projection too")
    sink_batch_size: int = Field(5000, ge=1, le=100_000, description="Records per write")
    sink_fetch_max_wait_ms: int = Field(
        500, ge=0, le=10_000, description="Broker fetch wait of the case-store projection (a "
        "long poll, as the scorer's: an idle projection sleeps)")
    sink_stall_timeout_s: float = Field(30.0, gt=0, description="Stalled-partition watch")
    sink_retry_max_s: float = Field(10.0, gt=0, description="Longest backoff between retries")
    sink_busy_timeout_ms: int = Field(2000, ge=0, description="SQLite lock wait per attempt")
    sink_metrics_port: int = Field(9109, ge=0, le=65535, description="`canhgiac sink`; 0 = off")

    # training / promotion
    promote_margin: float = Field(0.01, ge=0, description="Min gain in test AP to promote")
    seed: int = 7

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_max_page: int = Field(500, ge=1)
    retention_days: int = Field(180, ge=31, description="Case store: scored payments and logins "
                                "older than this are deleted by `canhgiac db purge`")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():  # Path("") is the current directory
            raise ValueError("must not be empty: unset it (default .canhgiac) or name a directory")
        return value

    @field_validator("mlflow_artifact_location")
    @classmethod
    def _artifact_location_is_a_uri(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]+:\S+", value):
            raise ValueError("expected a URI such as s3://bucket/path, gs://bucket/path or "
                             "file:///absolute/path (or empty)")
        return value

    sla_hours: str = Field("", description="Case deadlines per state, e.g. "
                           "'freeze_requested=4,open=24' (serving.sla has the defaults)")

    @field_validator("sla_hours")
    @classmethod
    def _sla_readable(cls, value: str) -> str:
        from serving.sla import SlaConfigError, parse  # noqa: PLC0415 - the root may import it

        try:
            parse(value)
        except SlaConfigError as exc:  # the CLI prefixes the variable's name itself
            raise ValueError(str(exc).removeprefix("CANHGIAC_SLA_HOURS: ")) from None
        return value

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        r, h = self.review_threshold, self.hold_threshold
        if r is not None and h is not None and r > h:
            raise ValueError("CANHGIAC_REVIEW_THRESHOLD must be <= CANHGIAC_HOLD_THRESHOLD")
        return self

    # ------------------------------------------------------------------ derived values
    def topic(self, name: str) -> str:
        """The full topic name for a fixed topic name (``payments`` → prefix + ``payments``)."""
        return f"{self.topic_prefix}{name}"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> str:
        return (self.data_dir / "mlartifacts").resolve().as_uri()

    @property
    def store_url(self) -> str:
        if self.case_store_url:
            return self.case_store_url
        return f"sqlite:///{(self.data_dir / 'cases.db').resolve()}"

    def pseudonymiser(self) -> Pseudonymiser:
        key = self.pseudonym_key.get_secret_value() if self.pseudonym_key else None
        return Pseudonymiser.for_data_dir(self.data_dir, key)

    def kafka_client_config(self) -> dict[str, object]:
        """Connection options shared by every kafka-python client."""
        cfg: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            cfg["sasl_mechanism"] = self.kafka_sasl_mechanism
            cfg["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                cfg["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        return cfg
