"""The FastAPI application: routes, error handlers, and the pipeline channel."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from telemetry import Telemetry

from .errors import install_error_handlers
from .grpc_client import PipelineClient
from .limits import BodyTimeoutMiddleware, UploadLimitMiddleware
from .observability import instrument
from .routes import api_router
from .settings import Settings, load_settings
from .shutdown import Drain, DrainMiddleware

log = logging.getLogger(__name__)

# In-flight calls get this long to finish when the console shuts down.
CHANNEL_CLOSE_GRACE_SECONDS = 5.0


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 on every route with parameters; this console
    answers validation errors with 400 in the common error shape instead."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings | None = None, telemetry: Telemetry | None = None) -> FastAPI:
    settings = settings if settings is not None else load_settings()
    telemetry = telemetry or Telemetry.noop()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = PipelineClient(settings, telemetry=telemetry)
        app.state.pipeline = client
        log.info(
            "pipeline at %s (tls=%s, id token=%s)",
            settings.pipeline_target,
            settings.pipeline_tls,
            "for " + settings.pipeline_audience if settings.pipeline_audience else "off",
        )
        if settings.pipeline_audience and not settings.pipeline_tls:
            # Fine on loopback; anywhere else the token is readable in transit.
            log.warning(
                "PIPELINE_AUDIENCE is set but PIPELINE_TLS is off: ID tokens travel in clear"
            )
        try:
            yield
        finally:
            await client.close(CHANNEL_CLOSE_GRACE_SECONDS)

    app = FastAPI(
        title="Pipeline console",
        version=settings.image_commit,
        description="Watch and drive the GTFS pipeline service over its gRPC API.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(
        UploadLimitMiddleware,
        path="/api/runs",
        max_upload_bytes=settings.console_max_upload_bytes,
    )
    app.add_middleware(
        BodyTimeoutMiddleware,
        idle_seconds=settings.console_body_idle_timeout_seconds,
        total_seconds=settings.console_body_timeout_seconds,
    )
    # Started by the server shortly before its graceful shutdown ends
    # (shutdown.DrainingServer): requests still running then get a JSON 503.
    app.state.drain = Drain()
    app.add_middleware(DrainMiddleware, drain=app.state.drain)
    # Added last, so it runs outermost of our middlewares: the 413 of the
    # upload limit, a 408 and a 503 of the drain are logged and counted like
    # any other answer.
    instrument(app, telemetry)
    app.include_router(api_router)
    app.mount(
        "/static",
        StaticFiles(directory=str(files("console_server") / "static")),
        name="static",
    )
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    return app
