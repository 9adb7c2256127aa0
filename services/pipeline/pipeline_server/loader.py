"""Load one continuous-gtfs pipeline folder and resolve its DAG.

A folder that fails to import, declares no steps, has a cycle or an
unsupported feed type stops start-up: `PipelineLoadError` names the folder
and, where the framework tells us, the step.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from continuous_gtfs import export_reactflow, resolve_dag, scan_pipeline
from continuous_gtfs.scanner import load_feed_type, load_inputs_manifest
from continuous_gtfs.step import Step


class PipelineLoadError(RuntimeError):
    """The pipeline folder cannot be served."""


@dataclass(frozen=True)
class LoadedPipeline:
    name: str
    folder: Path
    # Steps in execution order (resolve_dag).
    steps: list[Step]
    # The one gtfs_schedule_zip input the uploaded feed is bound to.
    input_name: str
    # ReactFlow JSON, computed once: the DAG never changes while serving.
    reactflow: dict[str, Any]
    framework_version: str

    @cached_property
    def reactflow_json(self) -> str:
        """The DAG as compact JSON with sorted keys, serialized once (cached_property
        writes the instance's __dict__, so it works on a frozen dataclass): GetDag
        sends it on every call, and a dumps per call was ~20 µs of it (ADR 0026)."""
        return json.dumps(self.reactflow, sort_keys=True, separators=(",", ":"))

    def step_names(self) -> list[str]:
        return [s.name for s in self.steps]


def _framework_version() -> str:
    try:
        return version("continuous-gtfs")
    except PackageNotFoundError:  # pragma: no cover - running from a vendored copy
        return "unknown"


def _failing_pipeline_file(exc: BaseException, folder: Path) -> str | None:
    """The file inside the pipeline folder where an import error was raised."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        try:
            if Path(frame.filename).resolve().is_relative_to(folder):
                return f"{Path(frame.filename).name}:{frame.lineno}"
        except (OSError, ValueError):
            continue
    return None


def dedupe_edges(reactflow: dict[str, Any]) -> dict[str, Any]:
    """Drop repeated edges: a step listing the same dependency in `after` and
    its dependency listing it in `before` yields the same edge twice."""
    seen: set[tuple[str, str]] = set()
    edges = []
    for edge in reactflow.get("edges", []):
        key = (edge["source"], edge["target"])
        if key not in seen:
            seen.add(key)
            edges.append(edge)
    return {**reactflow, "edges": edges}


def load_pipeline(pipelines_dir: Path, name: str) -> LoadedPipeline:
    folder = (pipelines_dir / name).resolve()
    where = f"pipeline folder {folder}"
    if not folder.is_dir():
        raise PipelineLoadError(f"{where} does not exist (PIPELINES_DIR/PIPELINE_NAME)")
    try:
        feed_type = load_feed_type(folder)
        manifest = load_inputs_manifest(folder)
        steps = scan_pipeline(folder)
    except Exception as exc:
        at = _failing_pipeline_file(exc, folder)
        raise PipelineLoadError(
            f"{where}{f' ({at})' if at else ''} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if feed_type != "schedule":
        raise PipelineLoadError(f"{where}: FEED_TYPE {feed_type!r} is not served; only 'schedule'")
    zip_inputs = [k for k, spec in manifest.items() if spec["content_kind"] == "gtfs_schedule_zip"]
    if len(zip_inputs) != 1:
        raise PipelineLoadError(
            f"{where}: INPUTS must declare exactly one gtfs_schedule_zip input, found {zip_inputs}"
        )
    others = [k for k, spec in manifest.items() if k not in zip_inputs and not spec["optional"]]
    if others:
        raise PipelineLoadError(f"{where}: required inputs {others} cannot be supplied over gRPC")
    if not steps:
        raise PipelineLoadError(f"{where} declares no steps")
    try:
        ordered = resolve_dag(steps)
    except ValueError as exc:
        # The framework's message lists the steps caught in the cycle.
        raise PipelineLoadError(f"{where}: {exc}") from exc
    return LoadedPipeline(
        name=name,
        folder=folder,
        steps=ordered,
        input_name=zip_inputs[0],
        reactflow=dedupe_edges(export_reactflow(ordered)),
        framework_version=_framework_version(),
    )
