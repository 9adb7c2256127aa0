"""The resolved DAG, as the pipeline's ReactFlow JSON.

The pipeline's DAG does not change while its instance lives, so the console
validates a given DAG once: the JSON body made from it is kept beside the
exact text it came from, and the next answer carrying the same text is sent
as those bytes, without parsing, validating and serializing it again (ADR
0026). Any other text (another pipeline instance, a new revision) is
validated and becomes the one kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from ..deps import PipelineDep
from ..errors import PIPELINE_ERRORS, ConsoleError, error_responses
from ..models import Dag

router = APIRouter(prefix="/api/dag", tags=["dag"])


@dataclass(frozen=True)
class _Rendered:
    source: str  # the pipeline's reactflow_json, verbatim
    body: bytes  # what the route answers for it


class RenderedDag:
    """The last DAG text seen and its validated JSON body (one per process).

    One slot is enough: every pipeline instance behind the console serves the
    same DAG except for the minutes of a rollout, when two texts alternate
    and each miss costs one validation, as every call did before."""

    def __init__(self) -> None:
        self._last: _Rendered | None = None

    def body(self, source: str) -> bytes:
        last = self._last  # one read: another request may replace it meanwhile
        if last is not None and last.source == source:
            return last.body
        try:
            dag = Dag.model_validate(json.loads(source))
        except (ValueError, ValidationError) as exc:
            raise ConsoleError(
                502,
                "pipeline_bad_response",
                f"pipeline sent a DAG that is not ReactFlow JSON: {exc}",
            ) from exc
        body = dag.model_dump_json().encode()
        self._last = _Rendered(source, body)
        return body


RENDERED = RenderedDag()


@router.get(
    "",
    summary="The DAG as ReactFlow JSON",
    # The body is built from this model (RenderedDag); declared here for the
    # OpenAPI schema, since a returned Response is not validated again.
    response_model=Dag,
    responses=error_responses(*PIPELINE_ERRORS),
)
async def get_dag(pipeline: PipelineDep) -> Response:
    response = await pipeline.get_dag()
    return Response(RENDERED.body(response.reactflow_json), media_type="application/json")
