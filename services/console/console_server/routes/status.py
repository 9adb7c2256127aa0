"""What the pipeline has loaded and whether it is healthy."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import PipelineDep, SettingsDep
from ..errors import PIPELINE_ERRORS, error_responses
from ..models import Status

router = APIRouter(prefix="/api/status", tags=["status"])


@router.get("", summary="Pipeline status", responses=error_responses(*PIPELINE_ERRORS))
async def get_status(pipeline: PipelineDep, settings: SettingsDep) -> Status:
    return Status.from_pb(await pipeline.get_status(), settings.image_commit)
