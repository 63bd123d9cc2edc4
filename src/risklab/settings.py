"""Settings of a risklab process, read from `RISKLAB_*` environment variables.

One model for every process (CLI, actor groups, engine worker, projector, API) so that a
deployment configures them all the same way; the compose file's variables are checked against
the fields here by a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a risklab process can be told from its environment."""

    model_config = SettingsConfigDict(env_prefix="RISKLAB_", extra="ignore")

    home: Path = Field(
        default=Path(".risklab"),
        description="Folder for local state: the local stack's data, embedded PostgreSQL, artifacts.",
    )
    transport: Literal["memory", "kafka"] = Field(
        default="kafka", description="Event transport for distributed processes."
    )
    kafka_bootstrap: str | None = Field(
        default=None, description="Kafka bootstrap servers, host:port[,host:port]. Unset: the local stack."
    )
    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL (postgresql://user:pw@host:port/db). Unset: the local stack."
    )
    namespace: str | None = Field(
        default=None,
        description="Prefix of every topic and consumer group on the wire, so deployments can share a cluster.",
    )
    # Local-stack ports sit below the kernel's ephemeral range (32768+), so that a client's
    # outgoing connection can never hold a broker's port while it restarts.
    kafka_port: int = Field(default=29092, description="Port of the local stack's Kafka broker.")
    kafka_controller_port: int = Field(default=29093, description="KRaft controller port of the local stack.")
    postgres_port: int = Field(default=25432, description="Port of the local stack's PostgreSQL.")
    partitions: int = Field(default=6, ge=1, description="Partitions of each domain topic created from code.")
    max_message_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest event accepted on a topic, in bytes."
    )
    artifacts_dir: Path | None = Field(default=None, description="Local artifact folder. Unset: <home>/artifacts.")
    artifacts_s3_bucket: str | None = Field(
        default=None, description="S3 bucket for artifacts; when set, artifacts go to S3 through boto3."
    )
    artifacts_s3_prefix: str = Field(default="risklab/", description="Key prefix of artifacts in the S3 bucket.")
    artifacts_s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint URL (an S3-compatible server); unset: AWS's own endpoint."
    )
    artifacts_s3_region: str | None = Field(default=None, description="Region of the S3 bucket.")
    anthropic_api_key: SecretStr | None = Field(
        default=None, description="Anthropic API key; when set, agents' narratives are written by Claude."
    )
    anthropic_base_url: str | None = Field(default=None, description="Messages API base URL; unset: Anthropic's.")
    anthropic_model: str = Field(default="claude-sonnet-4-5", description="Model that writes the narratives.")
    narrator_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Longest wait for a narrative before the deterministic one is used."
    )
    handler_retries: int = Field(default=5, ge=0, description="Retries of a failing handler before dead-letter.")
    retry_backoff_seconds: float = Field(default=0.2, gt=0, description="First retry delay, doubled each time.")
    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API binds to.")
    api_port: int = Field(default=8600, description="Port of the HTTP API.")
    api_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Bearer tokens by role, JSON: {"reader": "...", "publisher": "...", "admin": "..."}.',
    )
    log_level: str = Field(default="INFO", description="Logging level of the process.")

    @property
    def artifacts_path(self) -> Path:
        return self.artifacts_dir or self.home / "artifacts"


def load_settings() -> Settings:
    """The settings of this process, from its environment."""
    return Settings()
