"""``console-server``: serve the console on $CONSOLE_LISTEN_HOST:$PORT until SIGTERM."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from telemetry import configure_logging, setup_telemetry

from .app import create_app
from .settings import load_settings
from .shutdown import DrainingServer

log = logging.getLogger("console_server")

# Cloud Run sends SIGTERM and waits 10 s before SIGKILL; uvicorn stops
# accepting, lets in-flight requests finish for up to this long, then runs
# the lifespan shutdown (closing the channel).
GRACEFUL_SHUTDOWN_SECONDS = 8
# Requests still running this long after SIGTERM are cancelled and answered
# 503 shutting_down (shutdown.py), before uvicorn's own cancel at the end of
# the grace would answer them with a text/plain 500.
DRAIN_AFTER_SECONDS = GRACEFUL_SHUTDOWN_SECONDS - 1


def main() -> None:
    configure_logging("console")
    try:
        settings = load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        log.critical("invalid settings: %s", problems)
        sys.exit(2)
    # Never raises: a telemetry problem is a warning, not a failed start.
    telemetry = setup_telemetry("console", settings.image_commit)
    app = create_app(settings, telemetry)
    config = uvicorn.Config(
        app,
        host=settings.console_listen_host,
        port=settings.port,
        log_config=None,  # keep the JSON handler configured above
        # The C parser and libuv loop, named rather than "auto" so an image
        # without them fails at start instead of quietly serving on h11 and
        # asyncio's loop (ADR 0026: about a fifth of GET /api/dag).
        http="httptools",
        loop="uvloop",
        # Our middleware writes the access line (failed or slow requests, with
        # httpRequest, the trace and the request id); Cloud Run logs every request.
        access_log=False,
        # Cloud Run's front end is the only client; trust its X-Forwarded-*.
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
    )
    try:
        DrainingServer(config, drain=app.state.drain, drain_after=DRAIN_AFTER_SECONDS).run()
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
