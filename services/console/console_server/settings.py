"""Settings of the console, read once from the environment.

Each field is read from the environment variable of the same name in upper
case (``pipeline_addr`` ← ``PIPELINE_ADDR``). Nonsense (no pipeline address, a
port that is not a number, a negative deadline) stops start-up with a message
naming the variable, instead of surfacing later as a confusing 503.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024

# host:port, where host is a DNS name, an IPv4 address or a bracketed IPv6
# address. No scheme: gRPC targets are not URLs, and "https://..." in
# PIPELINE_ADDR is the most likely mistake when copying a Cloud Run URL.
_ADDR = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r":(?P<port>\d{1,5})$"
)

Seconds = Annotated[float, Field(gt=0, le=3600)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # Cloud Run injects PORT; 8080 is its default too.
    port: int = Field(default=8080, ge=1, le=65535)
    # host:port of the pipeline service (Cloud Run: "<service>-<hash>.a.run.app:443").
    pipeline_addr: str
    # TLS with the system roots; required for *.run.app, off for loopback.
    pipeline_tls: bool = False
    # When set, every call carries a Google ID token for this audience (the
    # pipeline's URL on Cloud Run). Empty means unset.
    pipeline_audience: str | None = None
    # The git commit the image was built from, reported by /healthz.
    image_commit: str = "unknown"

    # Deadline of every short call (status, steps, DAG, one run, run history).
    console_call_timeout_seconds: Seconds = 10.0
    # Deadline of RunPipeline and DownloadOutput: a big feed takes minutes.
    # Keep it under the console's Cloud Run request timeout.
    console_run_timeout_seconds: Seconds = 600.0
    # /readyz answers within this; Cloud Run probes time out after 1-240 s.
    console_ready_timeout_seconds: Seconds = 2.0
    # Largest feed accepted by POST /api/runs; matches the pipeline's default
    # cap (PIPELINE_MAX_UPLOAD_BYTES) so a too-large feed is refused before
    # it crosses the network twice.
    console_max_upload_bytes: int = Field(default=512 * MIB, gt=0)

    @field_validator("pipeline_addr")
    @classmethod
    def _host_port(cls, value: str) -> str:
        value = value.strip()
        match = _ADDR.match(value)
        if match is None:
            raise ValueError(
                f"{value!r} is not host:port (e.g. 127.0.0.1:50051 or pipeline-abc.a.run.app:443)"
            )
        if not 1 <= int(match["port"]) <= 65535:
            raise ValueError(f"{value!r}: port must be 1-65535")
        return value

    @field_validator("pipeline_audience")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # Deploy tooling writes empty strings for "not set".
        if value is None or not value.strip():
            return None
        return value.strip()

    @property
    def pipeline_host(self) -> str:
        """The host part of PIPELINE_ADDR (TLS server name), without brackets."""
        host = self.pipeline_addr.rsplit(":", 1)[0]
        return host.strip("[]")


def load_settings() -> Settings:
    """Read the settings from the environment (raises pydantic.ValidationError)."""
    return Settings()  # type: ignore[call-arg]  # pipeline_addr comes from the environment
