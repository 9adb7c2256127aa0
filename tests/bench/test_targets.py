"""Targets (local or Cloud Run) and the ID token cache."""

from __future__ import annotations

import base64
import json

import pytest

from bench.targets import (
    IdTokens,
    TargetError,
    console_audience,
    is_loopback,
    parse_grpc_target,
    require_loopback,
)


def test_host_port_is_plaintext_without_a_token() -> None:
    t = parse_grpc_target("127.0.0.1:50051")
    assert (t.addr, t.tls, t.audience, t.host) == ("127.0.0.1:50051", False, None, "127.0.0.1")


def test_a_cloud_run_url_means_tls_on_443_and_the_url_as_audience() -> None:
    t = parse_grpc_target("https://pipeline-abc-ew.a.run.app")
    assert t.addr == "pipeline-abc-ew.a.run.app:443"
    assert t.tls
    assert t.audience == "https://pipeline-abc-ew.a.run.app"


def test_explicit_tls_and_audience_win() -> None:
    t = parse_grpc_target("pipeline.internal:8443", tls=True, audience="https://aud")
    assert (t.tls, t.audience) == (True, "https://aud")


@pytest.mark.parametrize("bad", ["", "no-port", "ftp://x", "host:port", "https://"])
def test_malformed_targets_are_refused(bad: str) -> None:
    with pytest.raises(TargetError):
        parse_grpc_target(bad)


def test_console_audience_is_the_https_origin() -> None:
    assert console_audience("https://console-x.a.run.app/") == "https://console-x.a.run.app"
    assert console_audience("http://127.0.0.1:8080") is None
    assert console_audience("http://127.0.0.1:8080", "https://given") == "https://given"


def test_only_loopback_is_allowed_without_allow_remote() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("[::1]")
    assert is_loopback("localhost")
    assert not is_loopback("pipeline-abc.a.run.app")
    require_loopback("target", "127.0.0.1", allow_remote=False)
    require_loopback("target", "pipeline-abc.a.run.app", allow_remote=True)
    with pytest.raises(TargetError, match="--allow-remote"):
        require_loopback("target", "10.0.0.7", allow_remote=False)


def _jwt(exp: float) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).rstrip(b"=").decode()
    return f"header.{payload}.signature"


def test_id_tokens_are_cached_until_shortly_before_they_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BENCH_ID_TOKEN", raising=False)
    now = [1000.0]
    fetched: list[str] = []

    def fetch(audience: str) -> str:
        fetched.append(audience)
        return _jwt(now[0] + 3600)

    tokens = IdTokens("https://aud", fetch=fetch, clock=lambda: now[0])
    first = tokens.header()
    assert first.startswith("Bearer header.")
    now[0] += 3000  # 10 minutes left: still fine
    assert tokens.header() == first
    now[0] += 400  # inside the refresh margin
    assert tokens.header() != first
    assert fetched == ["https://aud", "https://aud"]


def test_bench_id_token_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_ID_TOKEN", "from-gcloud")

    def fetch(audience: str) -> str:
        raise AssertionError("must not fetch when BENCH_ID_TOKEN is set")

    assert IdTokens("https://aud", fetch=fetch).header() == "Bearer from-gcloud"
