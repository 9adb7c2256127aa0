"""The resolved DAG, as the pipeline's ReactFlow JSON."""

from __future__ import annotations

import json

from fastapi import APIRouter
from pydantic import ValidationError

from ..deps import PipelineDep
from ..errors import PIPELINE_ERRORS, ConsoleError, error_responses
from ..models import Dag

router = APIRouter(prefix="/api/dag", tags=["dag"])


@router.get(
    "",
    summary="The DAG as ReactFlow JSON",
    responses=error_responses(*PIPELINE_ERRORS),
)
async def get_dag(pipeline: PipelineDep) -> Dag:
    response = await pipeline.get_dag()
    try:
        return Dag.model_validate(json.loads(response.reactflow_json))
    except (ValueError, ValidationError) as exc:
        raise ConsoleError(
            502, "pipeline_bad_response", f"pipeline sent a DAG that is not ReactFlow JSON: {exc}"
        ) from exc
