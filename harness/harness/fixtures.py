"""pytest fixtures: images built once, the stack started, probed and torn down.

Under pytest-xdist every worker is its own process:

- images: `images.build` holds a file lock under .cache/locks/, so the first
  worker builds and the others wait and then reuse the same tags (content label);
- stacks: each worker starts its own stack on its own free loopback ports. Sharing
  one stack through a lock and a JSON state file would save a second or two of
  start-up, but fault tests stop and kill containers, and run history is
  per-instance: private stacks keep workers from seeing each other's runs and
  outages. Fault tests get a fresh stack per test for the same reason.

Every container started here is registered in `LIVE`, so the report hook in
tests/harness/conftest.py can attach its logs to a failing test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import grpc
import pytest

from harness import containers, images
from harness.engine import ensure_engine
from pipeline.v1 import pipeline_pb2_grpc

# Containers alive in this worker, by name, for log attachment on failure.
LIVE: dict[str, containers.ServiceContainer] = {}


def track(box: containers.ServiceContainer) -> containers.ServiceContainer:
    LIVE[f"{box.service} {box.addr} ({box.id[:12]})"] = box
    return box


def untrack(box: containers.ServiceContainer) -> None:
    for key in [k for k, v in LIVE.items() if v is box]:
        del LIVE[key]


class StackFactory:
    """Starts stacks (or single services) for one test and removes them after it."""

    def __init__(self, build: images.Build) -> None:
        self.build = build
        self._boxes: list[containers.ServiceContainer] = []

    def pipeline(
        self,
        stack: str,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
        mem_limit: str | None = None,
    ) -> containers.ServiceContainer:
        """A pipeline; ``data_dir``: a host folder for its run store (shareable);
        ``mem_limit``: its container's memory limit ("1g")."""
        box = containers.start_pipeline(
            self.build.ref("pipeline"), stack, port, env, data_dir=data_dir, mem_limit=mem_limit
        )
        self._boxes.append(track(box))
        return box

    def console(
        self, stack: str, pipeline_addr: str | Sequence[str]
    ) -> containers.ServiceContainer:
        """A console for one pipeline address, or several (round_robin over them)."""
        box = containers.start_console(self.build.ref("console"), stack, pipeline_addr)
        self._boxes.append(track(box))
        return box

    def stack(self) -> containers.Stack:
        stack = containers.new_stack_id()
        pipeline = self.pipeline(stack)
        return containers.Stack(stack, pipeline, self.console(stack, pipeline.addr))

    def close(self) -> None:
        for box in reversed(self._boxes):
            box.remove()
            untrack(box)
        self._boxes.clear()


@pytest.fixture(scope="session")
def built_images() -> images.Build:
    """Both images at the working tree (dirty accepted: tests run what is checked out).

    HARNESS_IMAGES=manifest uses the images named in .cache/images.json as they
    are, for a CI step or a bench that built them already.
    """
    ensure_engine()
    if os.environ.get("HARNESS_IMAGES") == "manifest":
        return images.load_manifest()
    return images.build(allow_dirty=True)


@pytest.fixture(scope="session")
def stack(built_images: images.Build) -> Iterator[containers.Stack]:
    """This worker's stack for read-mostly contract tests."""
    factory = StackFactory(built_images)
    try:
        yield factory.stack()
    finally:
        factory.close()


@pytest.fixture
def stacks(built_images: images.Build) -> Iterator[StackFactory]:
    """Fresh containers for one test (fault tests stop and kill them)."""
    factory = StackFactory(built_images)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def channel(stack: containers.Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.pipeline.addr) as chan:
        yield chan


@pytest.fixture
def pipeline_stub(channel: grpc.Channel) -> pipeline_pb2_grpc.PipelineServiceStub:
    return pipeline_pb2_grpc.PipelineServiceStub(channel)


@pytest.fixture
def console_url(stack: containers.Stack) -> str:
    return stack.console.url
