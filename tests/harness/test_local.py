"""The local environment runner (`harness-up local`, which `make up` runs)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from harness import local, local_env
from harness.containers import STACK_LABEL
from harness.tree import REPO_ROOT

# environments/local.yaml with every port 0 (free ones), so the test neither
# needs 8080/50051 nor collides with a `make up` running on this machine.
RUN_WITH_FREE_PORTS = """
import re, sys
from envctl.load import parse_environment
from harness import local, local_env
text = local_env.load().text
text = re.sub(r"(?m)^(\\s+port:) \\d+", r"\\1 0", text)
sys.exit(local.run(parse_environment(local_env.REPO_ROOT, "local", text)))
"""


def test_harness_up_refuses_a_cloud_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert local.main(["prod"]) == 1
    err = capsys.readouterr().err
    assert "environments/prod.yaml: platform: prod runs on cloudrun;" in err
    assert "harness-up local" in err


def test_harness_up_passes_the_loaded_environment_to_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(local, "run", lambda env: seen.append(env.name) or 0)
    assert local.main([]) == 0
    assert seen == ["local"]


def test_callee_starts_first_and_the_console_gets_the_pipeline_address() -> None:
    env = local_env.load()
    services = local_env.docker_services(env, image_commit="abc")
    assert [s.name for s in services] == ["pipeline", "console"]
    pipeline, console = services
    assert console.env["PIPELINE_ADDR"] == f"127.0.0.1:{pipeline.port}"
    assert console.env["PIPELINE_TLS"] == "false"
    assert pipeline.probe.kind == "grpc"
    assert (console.probe.kind, console.probe.path) == ("http", "/readyz")
    assert all(s.env["PORT"] == str(s.port) for s in services)


@pytest.mark.docker
def test_up_prints_the_url_and_ctrl_c_removes_the_containers(built_images: object) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", RUN_WITH_FREE_PORTS],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TESTCONTAINERS_RYUK_DISABLED": "true"},
    ) as proc:
        assert proc.stderr is not None
        url = None
        lines = []
        deadline = time.monotonic() + 120
        try:
            for line in proc.stderr:
                lines.append(line)
                if match := re.search(r"console: (http://127\.0\.0\.1:\d+)/", line):
                    url = match.group(1)
                    break
                assert time.monotonic() < deadline, "".join(lines)
            assert url, "".join(lines)
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
            stack = _stack_of(url)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={STACK_LABEL}={stack}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert left == [], "Ctrl-C left containers behind"


def _stack_of(url: str) -> str:
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(
        ["docker", "ps", "--filter", f"label={STACK_LABEL}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in out:
        env = subprocess.run(
            ["docker", "inspect", "--format", "{{json .Config.Env}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        if f'"PORT={port}"' in env:
            return name.split("-")[2]
    raise AssertionError(f"no container serves {url}")
