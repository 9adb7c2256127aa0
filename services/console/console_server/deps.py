"""Shared dependencies, as ``Annotated`` aliases the routes declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .grpc_client import PipelineClient
from .settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pipeline(request: Request) -> PipelineClient:
    # Opened once by the lifespan (app.py); every request shares it.
    client: PipelineClient = request.app.state.pipeline
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
PipelineDep = Annotated[PipelineClient, Depends(get_pipeline)]
