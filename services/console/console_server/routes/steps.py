"""The steps of the loaded pipeline, in execution order."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import PipelineDep
from ..errors import PIPELINE_ERRORS, error_responses
from ..models import StepInfo, StepList

router = APIRouter(prefix="/api/steps", tags=["steps"])


@router.get("", summary="Steps in execution order", responses=error_responses(*PIPELINE_ERRORS))
async def list_steps(pipeline: PipelineDep) -> StepList:
    response = await pipeline.list_steps()
    return StepList(steps=[StepInfo.from_pb(s) for s in response.steps])
