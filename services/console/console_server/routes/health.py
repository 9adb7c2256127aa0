"""Liveness and readiness, kept distinct.

``/healthz`` says the process is alive and checks nothing else: Cloud Run's
liveness probe restarts the container when it fails, and a pipeline outage is
no reason to restart the console. ``/readyz`` says the pipeline answers
SERVING within a short deadline: the startup probe and ``make up`` wait on it.

With several pipeline addresses (round_robin with client-side health
checking, see grpc_client) the check goes to one SERVING backend, so
``/readyz`` means "at least one backend is SERVING": the console can answer.
It is 503 only when none is (refused, reset, or NOT_SERVING, all of them).
"""

from __future__ import annotations

import grpc
from fastapi import APIRouter

from ..deps import PipelineDep, SettingsDep
from ..errors import ConsoleError, error_responses, from_rpc_error
from ..models import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The console process is alive")
async def healthz(settings: SettingsDep) -> Health:
    return Health(version=settings.image_commit)


@router.get(
    "/readyz",
    summary="The pipeline is reachable and SERVING",
    responses=error_responses(500, 503),
)
async def readyz(pipeline: PipelineDep, settings: SettingsDep) -> Ready:
    try:
        serving = await pipeline.health()
    except grpc.aio.AioRpcError as exc:
        mapped = from_rpc_error(exc, connection_failing=pipeline.connection_failing())
        message = mapped.message
        if (count := len(settings.pipeline_addrs)) > 1:
            message = f"none of the {count} pipeline backends is SERVING: {message}"
        # Whatever the pipeline said, "not ready" is a 503 for the probe.
        raise ConsoleError(503, "pipeline_not_ready", message) from exc
    if serving != "SERVING":
        raise ConsoleError(503, "pipeline_not_ready", f"pipeline health is {serving}")
    return Ready(pipeline=serving)
