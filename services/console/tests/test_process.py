"""The console-server process: starts on $PORT, stops cleanly on SIGTERM
(what Cloud Run sends before SIGKILL, 10 s later)."""

from __future__ import annotations

import json
import signal
import subprocess

from testkit.net import free_port
from testkit.servers import Launcher


def test_sigterm_stops_the_console_gracefully(launch: Launcher) -> None:
    console = launch.console(f"127.0.0.1:{free_port()}")
    with console.client() as client:
        assert client.get("/healthz").status_code == 200
    console.signal(signal.SIGTERM)
    assert console.popen is not None
    try:
        code = console.popen.wait(timeout=9)
    except subprocess.TimeoutExpired:
        console.fail("still running 9 s after SIGTERM")
    # uvicorn re-raises the signal once shut down, so the exit status says
    # "terminated by SIGTERM" like any well-behaved process.
    assert code in (0, -signal.SIGTERM)
    messages = [json.loads(line)["message"] for line in console.log().splitlines()]
    assert "Application shutdown complete." in messages
    assert any(f":{console.port}" in m for m in messages), "listened on $PORT"
