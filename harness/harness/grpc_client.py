"""Small helpers to drive pipeline.v1 from the tests and the bench."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc

CHUNK_BYTES = 1024 * 1024


def run_requests(
    feed: bytes | Path,
    label: str = "harness.zip",
    disabled_steps: Sequence[str] = (),
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[pb.RunPipelineRequest]:
    """Options first, then the zip in chunks, as RunPipeline requires.

    A Path is read block by block as the stream goes, so a feed of hundreds of MB
    never sits in the caller's memory whole (the memory and large-feed benches)."""
    size = feed.stat().st_size if isinstance(feed, Path) else len(feed)
    yield pb.RunPipelineRequest(
        options=pb.RunOptions(label=label, disabled_steps=list(disabled_steps), declared_size=size)
    )
    if isinstance(feed, Path):
        with feed.open("rb") as fh:
            while block := fh.read(chunk_bytes):
                yield pb.RunPipelineRequest(chunk=block)
        return
    for start in range(0, len(feed), chunk_bytes):
        yield pb.RunPipelineRequest(chunk=feed[start : start + chunk_bytes])


def download(
    stub: pipeline_pb2_grpc.PipelineServiceStub, run_id: str, timeout: float = 60
) -> bytes:
    return b"".join(
        m.chunk
        for m in stub.DownloadOutput(pb.DownloadOutputRequest(run_id=run_id), timeout=timeout)
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
