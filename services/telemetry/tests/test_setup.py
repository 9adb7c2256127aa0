"""Telemetry set-up from OTEL_* variables: defaults export nothing, and bad
configuration is a warning, never a failed start."""

from __future__ import annotations

import logging

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from telemetry import Telemetry, setup_telemetry


def make(env: dict[str, str]) -> Telemetry:
    return setup_telemetry("svc", "v1", environ=env, install_globals=False)


def test_nothing_set_exports_nothing_but_still_traces() -> None:
    telemetry = make({})
    assert telemetry.trace_exporters == []
    assert telemetry.metric_exporters == []
    # Spans still exist, so logs and traceparent carry ids.
    assert isinstance(telemetry.tracer_provider, TracerProvider)
    with telemetry.tracer("t").start_as_current_span("s") as span:
        assert span.get_span_context().is_valid
    telemetry.shutdown()


def test_none_wins() -> None:
    telemetry = make({"OTEL_TRACES_EXPORTER": "console,none", "OTEL_METRICS_EXPORTER": "none"})
    assert telemetry.trace_exporters == []
    assert telemetry.metric_exporters == []


def test_console_and_otlp_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens there: building the exporter must not connect or fail.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    telemetry = make(
        {
            "OTEL_TRACES_EXPORTER": "otlp,console",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        }
    )
    assert telemetry.trace_exporters == ["otlp", "console"]
    assert telemetry.metric_exporters == ["otlp"]
    telemetry.shutdown(timeout=2)


@pytest.mark.parametrize(
    ("env", "warning"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "unknown exporter 'zipkin'"),
        ({"OTEL_METRICS_EXPORTER": "prometheus"}, "unknown exporter 'prometheus'"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "'http/protobuf' is not supported",
        ),
        (
            {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/json"},
            "'http/json' is not supported",
        ),
    ],
)
def test_bad_configuration_warns_and_continues(
    env: dict[str, str], warning: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="telemetry")
    telemetry = make(env)
    assert warning in caplog.text
    assert telemetry.trace_exporters == []
    assert telemetry.metric_exporters == []
    with telemetry.tracer("t").start_as_current_span("still works"):
        pass


def test_exporter_that_cannot_be_built_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:9")
    telemetry = make({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "soon"})
    # Either the exporter is left out with a warning, or it is built and fails
    # later at export time; start-up goes on in both cases.
    assert telemetry.trace_exporters in ([], ["otlp"])
    telemetry.shutdown(timeout=2)


def test_sdk_disabled_is_noop() -> None:
    telemetry = make({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"})
    assert isinstance(telemetry.tracer_provider, trace.NoOpTracerProvider)


def test_setup_failure_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("resource detection exploded")

    monkeypatch.setattr("telemetry.setup.Resource.create", broken)
    telemetry = make({})
    assert "telemetry disabled" in caplog.text
    assert isinstance(telemetry.tracer_provider, trace.NoOpTracerProvider)


def test_shutdown_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    import threading
    import time

    release = threading.Event()

    class Stuck(TracerProvider):
        def shutdown(self) -> None:
            release.wait(10)

    telemetry = Telemetry(Stuck(), make({}).meter_provider)
    start = time.monotonic()
    telemetry.shutdown(timeout=0.2)
    assert time.monotonic() - start < 2
    assert "gave up flushing" in caplog.text
    release.set()
