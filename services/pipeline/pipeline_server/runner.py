"""Run the loaded pipeline on one feed with continuous-gtfs, and describe the
result in pipeline.v1 terms.

The framework does the work (parse → DAG execution → validate → package);
this module only adds what the service reports: rows before/after for each
file a step touches (through the executor's hooks), findings and log lines,
and what it observes: a span for the run and one per step (also through the
hooks), and each step's duration as a metric.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuous_gtfs.executor import PipelineExecutor
from continuous_gtfs.parsers import parse
from continuous_gtfs.pipelines import run_schedule_pipeline
from continuous_gtfs.step import Step
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from pipeline.v1 import pipeline_pb2 as pb
from telemetry import Telemetry
from telemetry.instruments import (
    RUN_DURATION,
    RUNS_ACTIVE,
    SIZE_BUCKETS_BYTES,
    STEP_DURATION,
    UPLOAD_SIZE,
    duration_histogram,
)

from .loader import LoadedPipeline

log = logging.getLogger(__name__)

_STEP_STATUS = {
    "success": pb.STEP_STATUS_SUCCESS,
    "error": pb.STEP_STATUS_FAILED,
    "skipped": pb.STEP_STATUS_SKIPPED,
}


# Asked before the feed is parsed and before each step: a reason to stop, or None.
StopCheck = Callable[[], str | None]


class RunStopped(BaseException):
    """Raised from the executor's before_step hook to stop a run between steps.

    A BaseException because the executor logs and swallows an ``Exception``
    from a hook; this one passes through it and out of run_schedule_pipeline
    before the step starts (no half-run step, no step span opened).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class RunOutcome:
    status: pb.RunStatus
    step_results: list[pb.StepResult]
    output: bytes | None
    error: str = ""


@dataclass
class _RowCounter:
    """Executor hooks that count rows of each touched file around a step."""

    before: dict[str, dict[str, int]] = field(default_factory=dict)
    after: dict[str, dict[str, int]] = field(default_factory=dict)

    @staticmethod
    def _rows(ctx: Any, step: Step) -> dict[str, int]:
        return {f: len(ctx.output[f]) for f in step.files if f in ctx.output}

    def before_step(self, ctx: Any, step: Step) -> None:
        self.before[step.name] = self._rows(ctx, step)

    def after_step(self, ctx: Any, step: Step, _result: Any) -> None:
        self.after[step.name] = self._rows(ctx, step)

    def counts(self, step: Step) -> list[pb.FileRowCount]:
        before, after = self.before.get(step.name, {}), self.after.get(step.name, {})
        return [
            pb.FileRowCount(file=f, rows_before=before.get(f, 0), rows_after=after.get(f, 0))
            for f in step.files
            if f in before or f in after
        ]


class RunTelemetry:
    """The tracer and instruments of pipeline runs, made once per server."""

    def __init__(self, telemetry: Telemetry, pipeline: str) -> None:
        self.pipeline = pipeline
        self.tracer = telemetry.tracer(__name__)
        meter = telemetry.meter(__name__)
        self.step_duration = duration_histogram(
            meter, STEP_DURATION, "Duration of one step of a pipeline run"
        )
        # Its count by pipeline.run.status is the runs' outcomes.
        self.run_duration = duration_histogram(
            meter, RUN_DURATION, "Duration of a pipeline run (parse, steps, validate, package)"
        )
        self.active = meter.create_up_down_counter(
            RUNS_ACTIVE, unit="{run}", description="Runs executing on this instance"
        )
        self.upload_size = meter.create_histogram(
            UPLOAD_SIZE,
            unit="By",
            description="Size of an uploaded feed zip, as received",
            explicit_bucket_boundaries_advisory=SIZE_BUCKETS_BYTES,
        )

    def uploaded(self, size: int) -> None:
        self.upload_size.record(size, {"pipeline.name": self.pipeline})


@dataclass
class _StepSpans:
    """Executor hooks: a span per step, current while the step runs (so the
    step's own log lines carry its span id), and the step's duration."""

    run: RunTelemetry
    parent: otel_context.Context
    _open: dict[str, tuple[trace.Span, object]] = field(default_factory=dict)

    def _attributes(self, step: Step) -> dict[str, str]:
        return {"pipeline.name": self.run.pipeline, "pipeline.step": step.name}

    def before_step(self, _ctx: Any, step: Step) -> None:
        span = self.run.tracer.start_span(
            f"step {step.name}", context=self.parent, attributes=self._attributes(step)
        )
        # The executor calls before_step and after_step on this thread, in pairs.
        token = otel_context.attach(trace.set_span_in_context(span))
        self._open[step.name] = (span, token)

    def after_step(self, _ctx: Any, step: Step, result: Any) -> None:
        opened = self._open.pop(step.name, None)
        if opened is None:  # skipped steps get after_step only
            span = self.run.tracer.start_span(
                f"step {step.name}", context=self.parent, attributes=self._attributes(step)
            )
        else:
            span, token = opened
            otel_context.detach(token)  # type: ignore[arg-type]
        status = str(getattr(result, "status", "unknown"))
        span.set_attribute("pipeline.step.status", status)
        if status == "error":
            span.set_status(Status(StatusCode.ERROR, str(getattr(result, "error_type", ""))))
        span.end()
        if status != "skipped":
            self.run.step_duration.record(
                float(getattr(result, "duration_ms", 0) or 0) / 1000,
                {**self._attributes(step), "pipeline.step.status": status},
            )


def _finding(raw: dict[str, Any]) -> pb.Finding:
    return pb.Finding(
        code=str(raw.get("code", "")),
        severity=str(raw.get("severity", "")),
        message=str(raw.get("message", "")),
        context={str(k): str(v) for k, v in (raw.get("context") or {}).items()},
        occurrence_count=int(raw.get("occurrence_count", 1)),
    )


def execute(
    loaded: LoadedPipeline,
    feed_path: Path,
    disabled_steps: list[str],
    observe: RunTelemetry | None = None,
    should_stop: StopCheck | None = None,
) -> RunOutcome:
    """Run the pipeline on the (already inspected) zip at `feed_path`.

    ``should_stop`` is asked before the feed is parsed and before every step; a
    reason stops the run there: a failed outcome with that reason, the steps
    not run marked skipped."""
    observe = observe or RunTelemetry(Telemetry.noop(), loaded.name)
    start = time.perf_counter()
    active = {"pipeline.name": loaded.name}
    observe.active.add(1, active)
    with observe.tracer.start_as_current_span(
        f"run {loaded.name}", attributes={"pipeline.name": loaded.name}
    ) as span:
        try:
            outcome = _execute(loaded, feed_path, disabled_steps, observe, should_stop)
        finally:
            observe.active.add(-1, active)
        status = pb.RunStatus.Name(outcome.status)
        span.set_attribute("pipeline.run.status", status)
        if outcome.status != pb.RUN_STATUS_COMPLETED:
            # A failed run is the feed's or a step's doing, not an RPC error,
            # but it is what someone reading the trace looks for.
            span.set_status(Status(StatusCode.ERROR, outcome.error[:200]))
    observe.run_duration.record(
        time.perf_counter() - start,
        {"pipeline.name": loaded.name, "pipeline.run.status": status},
    )
    return outcome


def _execute(
    loaded: LoadedPipeline,
    feed_path: Path,
    disabled_steps: list[str],
    observe: RunTelemetry,
    should_stop: StopCheck | None,
) -> RunOutcome:
    def check(*_: Any) -> None:
        reason = should_stop() if should_stop is not None else None
        if reason is not None:
            raise RunStopped(reason)

    counter = _RowCounter()
    spans = _StepSpans(observe, otel_context.get_current())
    # fail_fast: a step that errors leaves the data in a state later steps
    # were not written for; they are reported as skipped instead.
    executor = PipelineExecutor(fail_fast=True)
    # First, so a stopped run opens no span and counts no rows for the step it skips.
    executor.add_hook("before_step", check)
    finished: dict[str, Any] = {}
    executor.add_hook("after_step", lambda _ctx, step, r: finished.__setitem__(step.name, r))
    executor.add_hook("before_step", counter.before_step)
    executor.add_hook("after_step", counter.after_step)
    executor.add_hook("before_step", spans.before_step)
    executor.add_hook("after_step", spans.after_step)

    stopped: str | None = None
    try:
        check()
        inputs = {loaded.input_name: parse("gtfs_schedule_zip", feed_path.read_bytes())}
        result = run_schedule_pipeline(
            inputs, loaded.steps, executor=executor, disabled_steps=disabled_steps
        )
        del inputs  # the DataFrames are large; the result holds what we still need
    except RunStopped as stop:
        stopped = stop.reason
        log.info("run stopped before its next step: %s", stop.reason)

    if stopped is not None:
        executed = {name: r for name, r in finished.items() if r.status != "skipped"}
    else:
        executed = {
            r.name: r for r in (result.execution_result.steps if result.execution_result else [])
        }
    step_results = []
    for step in loaded.steps:
        r = executed.get(step.name)
        if r is None:
            step_results.append(
                pb.StepResult(
                    step_name=step.name,
                    status=pb.STEP_STATUS_SKIPPED,
                    messages=[
                        "not run: the run was stopped"
                        if stopped is not None
                        else "not run: an earlier step failed"
                    ],
                )
            )
            continue
        messages = [f"{rec.get('level', 'info')}: {rec.get('message', '')}" for rec in r.logs]
        step_results.append(
            pb.StepResult(
                step_name=step.name,
                status=_STEP_STATUS.get(r.status, pb.STEP_STATUS_FAILED),
                duration_ms=float(r.duration_ms),
                row_counts=counter.counts(step),
                findings=[_finding(f) for f in r.findings],
                messages=messages,
                error=r.error or "",
            )
        )

    if stopped is not None:
        return RunOutcome(pb.RUN_STATUS_FAILED, step_results, None, stopped)
    failed = [s.step_name for s in step_results if s.status == pb.STEP_STATUS_FAILED]
    validation_errors: list[str] = []
    for stage in result.stages:
        if stage.name == "validate_output":
            validation_errors = list(stage.metadata.get("errors", []))
    if failed:
        first = executed[failed[0]]
        return RunOutcome(
            pb.RUN_STATUS_FAILED,
            step_results,
            None,
            f"step {failed[0]} failed: {first.error_type}: {first.error}",
        )
    if validation_errors:
        return RunOutcome(
            pb.RUN_STATUS_FAILED,
            step_results,
            None,
            "output is not a valid GTFS feed: " + "; ".join(validation_errors[:5]),
        )
    return RunOutcome(pb.RUN_STATUS_COMPLETED, step_results, result.output_zip)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def now_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000
