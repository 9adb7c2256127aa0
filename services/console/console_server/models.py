"""The JSON the console answers with, and its translation from pipeline.v1.

These models are the HTTP contract (they make the OpenAPI schema); the
``from_pb`` functions are the one place that knows the proto's shape, so a
proto field added later shows up here and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field

from pipeline.v1 import pipeline_pb2 as pb

from .errors import ConsoleError

RunStatus = Literal["completed", "failed", "running"]
StepStatus = Literal["success", "failed", "skipped"]
StepType = Literal["builtin", "custom"]

_RUN_STATUS: dict[int, RunStatus] = {
    pb.RUN_STATUS_RUNNING: "running",
    pb.RUN_STATUS_COMPLETED: "completed",
    pb.RUN_STATUS_FAILED: "failed",
}
_STEP_STATUS: dict[int, StepStatus] = {
    pb.STEP_STATUS_SUCCESS: "success",
    pb.STEP_STATUS_FAILED: "failed",
    pb.STEP_STATUS_SKIPPED: "skipped",
}
_STEP_TYPE: dict[int, StepType] = {
    pb.STEP_TYPE_BUILTIN: "builtin",
    pb.STEP_TYPE_CUSTOM: "custom",
}


def _enum[T](table: dict[int, T], value: int, what: str) -> T:
    try:
        return table[value]
    except KeyError:
        # UNSPECIFIED or a value added to the proto after this console was
        # built: the pipeline said something we cannot represent.
        raise ConsoleError(
            502, "pipeline_bad_response", f"pipeline sent an unknown {what} ({value})"
        ) from None


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    return ts.ToDatetime(tzinfo=UTC)


# --- health -------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str = Field(description="The console's IMAGE_COMMIT")


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    pipeline: str = Field(description="The pipeline's health status, SERVING")


# --- status and steps -----------------------------------------------------------


class Status(BaseModel):
    healthy: bool
    pipeline_name: str
    step_count: int
    last_run_time: datetime | None
    version: str = Field(description="The pipeline's IMAGE_COMMIT")
    active_runs: int
    framework_version: str = Field(description="continuous-gtfs version of the pipeline")
    console_version: str = Field(description="The console's IMAGE_COMMIT")

    @classmethod
    def from_pb(cls, msg: pb.GetStatusResponse, console_version: str) -> Status:
        return cls(
            healthy=msg.healthy,
            pipeline_name=msg.pipeline_name,
            step_count=msg.step_count,
            last_run_time=_time(msg, "last_run_time"),
            version=msg.version,
            active_runs=msg.active_runs,
            framework_version=msg.framework_version,
            console_version=console_version,
        )


class StepInfo(BaseModel):
    name: str
    type: StepType
    builtin_class: str | None = Field(description="Builtin class; null for custom steps")
    files: list[str]
    description: str
    index: int = Field(description="Zero-based position in execution order")
    enabled: bool

    @classmethod
    def from_pb(cls, msg: pb.Step) -> StepInfo:
        return cls(
            name=msg.name,
            type=_enum(_STEP_TYPE, msg.type, "step type"),
            builtin_class=msg.builtin_class or None,
            files=list(msg.files),
            description=msg.description,
            index=msg.index,
            enabled=msg.enabled,
        )


class StepList(BaseModel):
    steps: list[StepInfo]


# --- DAG ------------------------------------------------------------------------


class DagNode(BaseModel):
    # The pipeline's ReactFlow export carries more (label, files, source
    # location, findings vocabulary); passed through untouched.
    model_config = ConfigDict(extra="allow")

    id: str
    type: StepType
    builtin: str | None = Field(description="Builtin class name; null for custom steps")


class DagEdge(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str
    target: str


class Dag(BaseModel):
    """The pipeline's ReactFlow JSON, as the pipeline produced it."""

    model_config = ConfigDict(extra="allow")

    nodes: list[DagNode]
    edges: list[DagEdge]


# --- runs -----------------------------------------------------------------------


class RowCount(BaseModel):
    file: str
    rows_before: int
    rows_after: int


class Finding(BaseModel):
    code: str
    severity: str = Field(description='"error", "warning" or "info"')
    message: str
    context: dict[str, str]
    occurrence_count: int


class StepResult(BaseModel):
    step_name: str
    status: StepStatus
    duration_ms: float
    row_counts: list[RowCount]
    findings: list[Finding]
    messages: list[str]
    error: str | None

    @classmethod
    def from_pb(cls, msg: pb.StepResult) -> StepResult:
        return cls(
            step_name=msg.step_name,
            status=_enum(_STEP_STATUS, msg.status, "step status"),
            duration_ms=msg.duration_ms,
            row_counts=[
                RowCount(file=r.file, rows_before=r.rows_before, rows_after=r.rows_after)
                for r in msg.row_counts
            ],
            findings=[
                Finding(
                    code=f.code,
                    severity=f.severity,
                    message=f.message,
                    context=dict(f.context),
                    occurrence_count=f.occurrence_count,
                )
                for f in msg.findings
            ],
            messages=list(msg.messages),
            error=msg.error or None,
        )


class Run(BaseModel):
    run_id: str
    status: RunStatus
    label: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float
    step_results: list[StepResult]
    input_size: int
    input_sha256: str
    output_size: int
    output_sha256: str
    output_available: bool
    output_url: str | None = Field(description="Where to download the output, when kept")
    error: str | None = Field(description="Why a failed run failed, in one line")
    version: str = Field(description="The pipeline version that produced the run")

    @classmethod
    def from_pb(cls, msg: pb.Run) -> Run:
        return cls(
            run_id=msg.run_id,
            status=_enum(_RUN_STATUS, msg.status, "run status"),
            label=msg.label,
            started_at=_time(msg, "started_at"),
            finished_at=_time(msg, "finished_at"),
            duration_ms=msg.duration_ms,
            step_results=[StepResult.from_pb(r) for r in msg.step_results],
            input_size=msg.input_size,
            input_sha256=msg.input_sha256,
            output_size=msg.output_size,
            output_sha256=msg.output_sha256,
            output_available=msg.output_available,
            output_url=f"/api/runs/{msg.run_id}/output" if msg.output_available else None,
            error=msg.error or None,
            version=msg.version,
        )


class RunList(BaseModel):
    runs: list[Run] = Field(description="Newest first")
    next_page_token: str | None = Field(description="Pass as page_token for the next page")
