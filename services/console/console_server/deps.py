"""Shared dependencies, as ``Annotated`` aliases the routes declare.

They are ``async def`` although they never await: FastAPI runs a plain ``def``
dependency in its thread pool, and the hand-off there and back cost ~0.1 ms
per dependency per request, a third of the console's hop on a warm
``GET /api/dag`` (ADR 0026). Both only read ``app.state``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .grpc_client import PipelineClient
from .settings import Settings


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_pipeline(request: Request) -> PipelineClient:
    # Opened once by the lifespan (app.py); every request shares it.
    client: PipelineClient = request.app.state.pipeline
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[PipelineClient, Depends(get_pipeline)]
