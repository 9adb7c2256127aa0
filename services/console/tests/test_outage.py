"""The console outlives the pipeline: 503 while it is gone or hung, /readyz
flips, and it recovers on its own when the pipeline is back on the same port.
"""

from __future__ import annotations

import signal

import httpx

from testkit.servers import Launcher

# Short deadlines so a hung pipeline is noticed quickly.
FAST = {"CONSOLE_CALL_TIMEOUT_SECONDS": "1", "CONSOLE_READY_TIMEOUT_SECONDS": "1"}


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    code: str = response.json()["error"]["code"]
    return code


def test_console_started_before_the_pipeline_becomes_ready_when_it_comes(
    launch: Launcher,
) -> None:
    from testkit.net import free_port

    port = free_port()
    console = launch.console(f"127.0.0.1:{port}", **FAST)
    with console.client() as client:
        assert client.get("/healthz").status_code == 200
        assert error_code(client.get("/readyz"), 503) == "pipeline_not_ready"
        assert error_code(client.get("/api/status"), 503) == "pipeline_unavailable"
    launch.pipeline(port=port)
    assert console.wait_ready(timeout=15) < 15


def test_pipeline_hung_then_stopped_then_restarted(launch: Launcher) -> None:
    pipeline = launch.pipeline()
    console = launch.console(pipeline.addr, **FAST)
    console.wait_ready()
    console_pid = console.pid
    with console.client() as client:
        assert client.get("/api/status").status_code == 200

        # Hung: the process holds its socket but answers nothing.
        pipeline.signal(signal.SIGSTOP)
        try:
            assert error_code(client.get("/api/status"), 503) == "pipeline_timeout"
            readyz = client.get("/readyz")
            assert error_code(readyz, 503) == "pipeline_not_ready"
            assert "in time" in readyz.json()["error"]["message"]
            assert client.get("/healthz").status_code == 200, "liveness never follows the pipeline"
        finally:
            pipeline.signal(signal.SIGCONT)
        console.wait_ready(timeout=10)

        # Gone: connection refused.
        pipeline.stop()
        status = client.get("/api/status")
        assert error_code(status, 503) == "pipeline_unavailable"
        assert "unreachable" in status.json()["error"]["message"]
        run = "0" * 32  # well formed: a malformed id is 404 without asking the pipeline
        for path in (
            "/api/steps",
            "/api/dag",
            "/api/runs",
            f"/api/runs/{run}",
            f"/api/runs/{run}/output",
        ):
            assert error_code(client.get(path), 503) == "pipeline_unavailable", path
        upload = client.post("/api/runs", files={"feed": ("f.zip", b"PK\x05\x06" + bytes(18))})
        assert error_code(upload, 503) == "pipeline_unavailable"
        assert error_code(client.get("/readyz"), 503) == "pipeline_not_ready"
        assert client.get("/healthz").status_code == 200

        # Back on the same port: the console's channel reconnects by itself.
        launch.restart(pipeline)
        took = console.wait_ready(timeout=15)
        assert took < 10, f"reconnect took {took:.1f} s"
        assert client.get("/api/status").status_code == 200
    assert console.alive()
    assert console.pid == console_pid
