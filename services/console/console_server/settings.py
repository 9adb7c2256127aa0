"""Settings of the console, read once from the environment.

Each field is read from the environment variable of the same name in upper
case (``pipeline_addr`` ← ``PIPELINE_ADDR``). Nonsense (no pipeline address, a
port that is not a number, a negative deadline) stops start-up with a message
naming the variable, instead of surfacing later as a confusing 503.

``PIPELINE_ADDR`` is one ``host:port``, or (plaintext only) several IP-literal
``host:port`` separated by commas, all IPv4 or all IPv6: the console then
balances its one channel over them with ``round_robin`` (``pipeline_target``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024

# host:port, where host is a DNS name, an IPv4 address or a bracketed IPv6
# address. No scheme: gRPC targets are not URLs, and "https://..." in
# PIPELINE_ADDR is the most likely mistake when copying a Cloud Run URL.
_ADDR = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
    r":(?P<port>\d{1,5})$"
)

# Several addresses: a comma-separated list, for one plaintext channel that
# spreads calls over every pipeline instance (round_robin). gRPC's ipv4: and
# ipv6: targets take IP literals of one family only, with a port each; the
# dns: target takes a single name:port, so it cannot name several ports.
ADDR_SEPARATOR = ","

Seconds = Annotated[float, Field(gt=0, le=3600)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # Cloud Run injects PORT; 8080 is its default too.
    port: int = Field(default=8080, ge=1, le=65535)
    # The address to listen on: every IPv4 interface by default (Cloud Run's
    # front end reaches the container on its own interface); the local
    # environment sets 127.0.0.1, host networking or not, so the console is
    # reachable from this machine only. "::" takes IPv6 and IPv4 both.
    console_listen_host: str = "0.0.0.0"
    # TLS with the system roots; required for *.run.app, off for loopback.
    # (Declared before pipeline_addr, whose check depends on it.)
    pipeline_tls: bool = False
    # host:port of the pipeline service (Cloud Run: "<service>-<hash>.a.run.app:443"),
    # or, plaintext only, several IP:port separated by commas (round_robin).
    pipeline_addr: str
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
    # A request body must keep arriving: no byte for this long ends the
    # request with 408 (a client that declared a body and sent nothing) ...
    console_body_idle_timeout_seconds: Seconds = 30.0
    # ... and all of it must be in within this, counted from the request's
    # headers (a body trickled a byte at a time). 32 MiB, Cloud Run's HTTP/1
    # cap, at 1 Mbit/s takes 270 s.
    console_body_timeout_seconds: Seconds = 300.0

    @field_validator("pipeline_addr")
    @classmethod
    def _host_port(cls, value: str, info: ValidationInfo) -> str:
        entries = [entry.strip() for entry in value.split(ADDR_SEPARATOR)]
        for entry in entries:
            _check_host_port(entry)
        if len(entries) == 1:
            return entries[0]
        if info.data.get("pipeline_tls"):
            raise ValueError(
                f"{len(entries)} addresses with PIPELINE_TLS=true: give the one Cloud Run URL "
                "(host:443); Cloud Run's own load balancer spreads calls over the instances. "
                "Several addresses are for plaintext pipelines on this machine"
            )
        first = _ip_family(entries[0])
        for entry in entries[1:]:
            if _ip_family(entry) != first:
                raise ValueError(
                    f"{entry!r} is not {first} like {entries[0]!r}: gRPC balances over one "
                    "address family per target (ipv4: or ipv6:), so list 127.0.0.1:… or "
                    "[::1]:… addresses only"
                )
        seen: set[str] = set()
        for entry in entries:
            if entry in seen:
                raise ValueError(f"{entry!r} is listed twice")
            seen.add(entry)
        return ADDR_SEPARATOR.join(entries)

    @field_validator("console_listen_host")
    @classmethod
    def _ip_literal(cls, value: str) -> str:
        host = value.strip().removeprefix("[").removesuffix("]")
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(
                f"{value!r} is not an IP address: 0.0.0.0 (every IPv4 interface, Cloud Run), "
                ":: (IPv6 and IPv4), 127.0.0.1 or ::1 (this machine only)"
            ) from None

    @field_validator("pipeline_audience")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # Deploy tooling writes empty strings for "not set".
        if value is None or not value.strip():
            return None
        return value.strip()

    @property
    def pipeline_addrs(self) -> tuple[str, ...]:
        """Every address in PIPELINE_ADDR (one, unless several are listed)."""
        return tuple(self.pipeline_addr.split(ADDR_SEPARATOR))

    @property
    def pipeline_host(self) -> str:
        """The host part of PIPELINE_ADDR's first address (TLS server name), without brackets."""
        host = self.pipeline_addrs[0].rsplit(":", 1)[0]
        return host.strip("[]")

    @property
    def pipeline_target(self) -> str:
        """The gRPC target: the address itself, or ``ipv4:``/``ipv6:`` and the list."""
        addrs = self.pipeline_addrs
        if len(addrs) == 1:
            return addrs[0]
        return f"{_ip_family(addrs[0])}:{self.pipeline_addr}"


def _check_host_port(entry: str) -> None:
    if not entry:
        raise ValueError("an empty entry between commas (host:port,host:port)")
    match = _ADDR.match(entry)
    if match is None:
        raise ValueError(
            f"{entry!r} is not host:port (e.g. 127.0.0.1:50051 or pipeline-abc.a.run.app:443)"
        )
    if not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{entry!r}: port must be 1-65535")


def _ip_family(entry: str) -> str:
    """``ipv4`` or ``ipv6`` for an IP-literal host:port; ValueError otherwise."""
    host = entry.rsplit(":", 1)[0]
    try:
        ip = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        raise ValueError(
            f"{entry!r}: with several addresses each host must be an IP address "
            "(127.0.0.1:50051 or [::1]:50051): gRPC's ipv4:/ipv6: targets resolve no names"
        ) from None
    if (ip.version == 6) != host.startswith("["):
        raise ValueError(f"{entry!r}: IPv6 addresses take brackets ([::1]:50051), IPv4 none")
    return f"ipv{ip.version}"


def load_settings() -> Settings:
    """Read the settings from the environment (raises pydantic.ValidationError)."""
    return Settings()  # type: ignore[call-arg]  # pipeline_addr comes from the environment
