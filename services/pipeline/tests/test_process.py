"""`pipeline-server` as a process: start-up refusals name the folder and the
step, logs are JSON lines, SIGTERM drains and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipeline_server.server import start
from pipeline_server.settings import Settings, SettingsError, load_settings

FIXTURES = Path(__file__).parent / "fixtures" / "pipelines"


def run_server(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline_server"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def json_lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cyclic", ["cyclic", "Cycle detected", "first", "second"]),
        ("broken", ["broken", "bad_step.py:3", "deliberately broken step module"]),
        ("missing", ["missing", "does not exist"]),
    ],
)
def test_unloadable_pipeline_stops_startup(name: str, expected: list[str]) -> None:
    proc = run_server({"PORT": "50999", "PIPELINES_DIR": str(FIXTURES), "PIPELINE_NAME": name})
    assert proc.returncode == 1
    lines = json_lines(proc.stdout)
    error = next(line for line in lines if line["severity"] == "ERROR")
    for fragment in expected:
        assert fragment in str(error["message"])


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PIPELINE_MAX_UPLOAD_BYTES": "-5"}, "PIPELINE_MAX_UPLOAD_BYTES"),
        ({"PIPELINE_NAME": "../etc"}, "PIPELINE_NAME"),
    ],
)
def test_nonsense_settings_are_refused(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(env)


def test_every_nonsense_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"PORT": "70000", "PIPELINE_MAX_WORKERS": "many"})
    assert str(refused.value) == (
        "PORT='70000' is not a TCP port (1-65535); PIPELINE_MAX_WORKERS='many' is not an integer"
    )


def test_a_given_environment_is_the_only_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "1234")
    monkeypatch.setenv("PIPELINE_MAX_WORKERS", "nonsense")
    assert load_settings({}).port == 50051
    assert load_settings({"PORT": "4321"}).port == 4321
    monkeypatch.delenv("PIPELINE_MAX_WORKERS")
    assert load_settings().port == 1234


def test_nonsense_setting_stops_the_process_without_a_traceback() -> None:
    proc = run_server({"PORT": "http", "PIPELINES_DIR": str(FIXTURES), "PIPELINE_NAME": "simple"})
    assert proc.returncode == 1
    error = next(line for line in json_lines(proc.stdout) if line["severity"] == "ERROR")
    assert error["message"] == "cannot start: PORT='http' is not an integer"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_sigterm_drains_and_exits_cleanly(settings: Settings) -> None:
    port = settings.port  # a free loopback port
    env = {
        **os.environ,
        "PORT": str(port),
        "PIPELINES_DIR": str(FIXTURES),
        "PIPELINE_NAME": "simple",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_server"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    messages = [line["message"] for line in json_lines(out)]
    assert any("listening on" in str(m) for m in messages)
    assert "stopped" in messages


def test_second_server_on_same_port_fails(settings: Settings) -> None:
    first = start(settings, host="127.0.0.1")
    try:
        with pytest.raises(OSError, match="could not bind"):
            start(settings, host="127.0.0.1")
    finally:
        first.stop(None)
