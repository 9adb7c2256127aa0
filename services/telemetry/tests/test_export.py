"""The exporters over real gRPC: ``gcp`` speaks TLS with the service account's
access token (from a metadata-server stand-in) to a local OTLP sink, as it does
to Google's Telemetry API; an endpoint that fails is one warning, not a flood,
and never an exception in the caller; sampling and the resource come from the
environment the platform renders (ADR 0027)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import sampling

from telemetry import setup_telemetry
from telemetry.setup import resource_attributes, sampler_from
from testkit.id_tokens import FakeIssuer
from testkit.otlp_sink import OtlpSink


@pytest.fixture
def tls_sink(tmp_path: Path) -> Iterator[OtlpSink]:
    with OtlpSink(tls_dir=tmp_path) as sink:
        yield sink


def test_gcp_export_sends_tls_and_the_service_accounts_token(
    tls_sink: OtlpSink, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**tls_sink.gcp_env(), **issuer.metadata_env()}.items():
        monkeypatch.setenv(name, value)
    env = {
        **tls_sink.gcp_env(),
        "GOOGLE_CLOUD_PROJECT": "test-project",
        "K_REVISION": "console-00042-abc",
    }
    telemetry = setup_telemetry("console", "v1", environ=env, install_globals=False)
    assert telemetry.trace_exporters == ["gcp"]
    assert telemetry.metric_exporters == ["gcp"]
    with telemetry.tracer("t").start_as_current_span("GET /api/status"):
        pass
    telemetry.meter("m").create_counter("c").add(1)
    spans = tls_sink.wait_for(lambda s: s.spans)
    assert spans[0].name == "GET /api/status"
    tls_sink.wait_for(lambda s: s.metrics.get(("console", "c")))
    telemetry.shutdown(timeout=2)
    # Every export carried a token the metadata server handed out (one per exporter).
    assert issuer.access_tokens
    assert tls_sink.authorizations
    assert set(tls_sink.authorizations) <= {f"Bearer {t}" for t in issuer.access_tokens}


def test_gcp_export_without_https_is_refused_at_start(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_TRACES_EXPORTER": "gcp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    telemetry = setup_telemetry("svc", environ=env, install_globals=False)
    assert telemetry.trace_exporters == []
    assert "gcp export needs an https:// endpoint" in caplog.text


def test_a_failing_endpoint_warns_once_and_says_when_it_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")  # seconds: retries end quickly
    with OtlpSink(refuse=True) as sink:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint)
        env = {**sink.env(), "OTEL_METRICS_EXPORTER": "none"}
        telemetry = setup_telemetry("svc", environ=env, install_globals=False)
        tracer = telemetry.tracer("t")
        for batch in range(3):
            with tracer.start_as_current_span(f"request {batch}"):
                pass  # a request never waits for the export
            sink.wait_for(lambda s, n=batch: s.exports > n)
        sink.wait_for(lambda s: "failed" in caplog.text)
        failures = [r for r in caplog.records if "export to otlp failed" in r.getMessage()]
        assert len(failures) == 1
        # The exporter's own words come once too (the first), not once per batch.
        exporter_lines = [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
        assert len(exporter_lines) <= 1
        sink.refuse = False
        with tracer.start_as_current_span("after"):
            pass
        sink.wait_for(lambda s: [x for x in s.spans if x.name == "after"])
        sink.wait_for(lambda s: "works again" in caplog.text)
        telemetry.shutdown(timeout=2)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "ParentBased{root:AlwaysOnSampler"),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            "ParentBased{root:TraceIdRatioBased{0.1}",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
            "TraceIdRatioBased{0.0}",
        ),
    ],
)
def test_sampler_from_the_environment(env: dict[str, str], expected: str) -> None:
    assert sampler_from(env).get_description().startswith(expected)


@pytest.mark.parametrize(
    ("env", "warning"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER=sometimes is not one of"),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10%"},
            "OTEL_TRACES_SAMPLER_ARG=10% is not a ratio",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "OTEL_TRACES_SAMPLER_ARG=1.5 is not a ratio",
        ),
    ],
)
def test_a_bad_sampler_warns_and_samples_everything(
    env: dict[str, str], warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    sampler = sampler_from(env)
    assert warning in caplog.text
    assert isinstance(sampler, sampling.ParentBased)


def test_an_unsampled_request_still_has_ids_for_the_logs() -> None:
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    telemetry = setup_telemetry("svc", environ=env, install_globals=False)
    with telemetry.tracer("t").start_as_current_span("GetDag") as span:
        context = span.get_span_context()
    assert context.is_valid
    assert not context.trace_flags.sampled


def test_resource_names_the_revision_and_project() -> None:
    attributes = resource_attributes(
        "pipeline",
        "abc",
        {"GOOGLE_CLOUD_PROJECT": "p", "K_REVISION": "pipeline-00007-xyz", "K_SERVICE": "pipeline"},
    )
    assert attributes["service.instance.id"].startswith("pipeline-00007-xyz-")
    assert attributes["gcp.project_id"] == "p"
    assert attributes["cloud.platform"] == "gcp_cloud_run"
    assert attributes["faas.version"] == "pipeline-00007-xyz"
    local = resource_attributes("pipeline", "abc", {})
    assert local["service.instance.id"].startswith("local-")
    assert "gcp.project_id" not in local


def test_no_metadata_server_neither_delays_start_up_nor_a_request(
    tls_sink: OtlpSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import time

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{closed.getsockname()[1]}"
    for name, value in {
        **tls_sink.gcp_env(),
        "GCE_METADATA_HOST": host,
        "GCE_METADATA_IP": host,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    started = time.monotonic()
    telemetry = setup_telemetry(
        "svc",
        environ={**tls_sink.gcp_env(), "OTEL_METRICS_EXPORTER": "none"},
        install_globals=False,
    )
    assert time.monotonic() - started < 1.0  # no token is fetched at start-up
    before = time.monotonic()
    with telemetry.tracer("t").start_as_current_span("a request"):
        pass
    assert time.monotonic() - before < 0.1  # nor on the request's path
    tls_sink.wait_for(lambda _s: "trace export to gcp failed" in caplog.text, timeout=60)
    assert tls_sink.spans == []  # nothing got through without a token
    telemetry.shutdown(timeout=2)
