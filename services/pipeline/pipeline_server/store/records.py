"""pipeline.v1 messages to table rows and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import RowMapping

from pipeline.v1 import pipeline_pb2 as pb


def micros(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def timestamp(us: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMicroseconds(us)
    return ts


def status_name(status: int) -> str:
    return pb.RunStatus.Name(status).removeprefix("RUN_STATUS_")


def status_value(name: str) -> Any:
    # The generated stubs type enum values as their own class; the message takes ints.
    return pb.RunStatus.Value(f"RUN_STATUS_{name}")


RUNNING = status_name(pb.RUN_STATUS_RUNNING)
COMPLETED = status_name(pb.RUN_STATUS_COMPLETED)
FAILED = status_name(pb.RUN_STATUS_FAILED)


def run_row(run: pb.Run) -> dict[str, Any]:
    """The columns a new run is inserted with (no output yet)."""
    return {
        "run_id": run.run_id,
        "status": status_name(run.status),
        "label": run.label,
        "version": run.version,
        "error": run.error,
        "started_us": micros(run.started_at),
        "input_size": run.input_size,
        "input_sha256": run.input_sha256,
    }


def outcome_row(run: pb.Run) -> dict[str, Any]:
    """The columns a finished run updates."""
    return {
        "status": status_name(run.status),
        "error": run.error,
        "finished_us": micros(run.finished_at),
        "duration_ms": run.duration_ms,
        "output_size": run.output_size,
        "output_sha256": run.output_sha256,
    }


def step_rows(run: pb.Run) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run.run_id,
            "position": i,
            "step_name": step.step_name,
            "status": pb.StepStatus.Name(step.status).removeprefix("STEP_STATUS_"),
            "result": json_format.MessageToJson(step, indent=None),
        }
        for i, step in enumerate(run.step_results)
    ]


MAX_LABEL_CHARS = 256


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def run_message(row: RowMapping, steps: Sequence[RowMapping]) -> pb.Run:
    run = pb.Run(
        run_id=row["run_id"],
        status=status_value(row["status"]),
        # Labels are bounded on the way in (RunPipeline); one stored before that
        # bound is cut here, so no run read back can fill a message.
        label=_cut(row["label"], MAX_LABEL_CHARS),
        version=row["version"],
        error=row["error"],
        started_at=timestamp(row["started_us"]),
        duration_ms=row["duration_ms"],
        input_size=row["input_size"],
        input_sha256=row["input_sha256"],
        output_size=row["output_size"],
        output_sha256=row["output_sha256"],
        output_available=row["output_key"] is not None,
    )
    if row["finished_us"] is not None:
        run.finished_at.CopyFrom(timestamp(row["finished_us"]))
    for step in sorted(steps, key=lambda s: s["position"]):
        run.step_results.append(json_format.Parse(step["result"], pb.StepResult()))
    return run
