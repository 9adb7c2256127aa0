"""Runs: start one by uploading a feed, list them, read one, download its output."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import PurePosixPath, PureWindowsPath
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from fastapi.responses import StreamingResponse

from pipeline.v1 import pipeline_pb2 as pb

from ..deps import PipelineDep, SettingsDep
from ..errors import PIPELINE_ERRORS, ConsoleError, error_responses
from ..grpc_client import UPLOAD_CHUNK_BYTES
from ..models import Run, RunList

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/runs", tags=["runs"])

# Local file header, or the end-of-central-directory of an empty archive.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_MAX_LABEL = 200
# What the pipeline's run ids are (uuid4().hex, its run store). Anything else
# is no run: 404 here, before a call whose error would echo it (a 16,000
# character id overflowed gRPC's metadata limit and came back as "busy").
RUN_ID = re.compile(r"[0-9a-f]{32}")


def valid_run_id(
    run_id: Annotated[str, Path(description="A run id: 32 lowercase hexadecimal digits")],
) -> str:
    if RUN_ID.fullmatch(run_id) is None:
        raise ConsoleError(404, "not_found", "no such run (a run id is 32 lowercase hex digits)")
    return run_id


RunId = Annotated[str, Depends(valid_run_id)]


def _label(filename: str | None) -> str:
    """The upload's base name: browsers on Windows used to send full paths."""
    if not filename:
        return "upload.zip"
    name = PureWindowsPath(PurePosixPath(filename).name).name
    return name[:_MAX_LABEL] or "upload.zip"


async def _chunks(feed: UploadFile) -> AsyncIterator[bytes]:
    # UploadFile spools to a temporary file past 1 MiB; reading it in chunks
    # (in a worker thread once it is on disk) keeps one chunk in memory.
    await feed.seek(0)
    while chunk := await feed.read(UPLOAD_CHUNK_BYTES):
        yield chunk


@router.post(
    "",
    status_code=201,
    summary="Run the pipeline on an uploaded GTFS zip",
    description=(
        "Multipart form: the GTFS zip in field `feed`. The feed is streamed to the "
        "pipeline in chunks; the response is the finished run (completed or failed)."
    ),
    responses=error_responses(400, 413, 429, *PIPELINE_ERRORS),
)
async def start_run(
    pipeline: PipelineDep,
    settings: SettingsDep,
    feed: Annotated[UploadFile, File(description="The GTFS schedule zip")],
    disabled_steps: Annotated[
        list[str] | None, Form(description="Steps to skip for this run (repeat the field)")
    ] = None,
) -> Run:
    cap = settings.console_max_upload_bytes
    if feed.size is not None and feed.size > cap:
        raise ConsoleError(
            413, "upload_too_large", f"upload is {feed.size} bytes; the limit is {cap} bytes"
        )
    head = await feed.read(4)
    if not head:
        raise ConsoleError(400, "empty_feed", "the uploaded feed is empty")
    if head not in _ZIP_MAGIC:
        raise ConsoleError(400, "not_a_zip", "the uploaded feed is not a zip archive")
    options = pb.RunOptions(
        label=_label(feed.filename),
        disabled_steps=disabled_steps or [],
        declared_size=feed.size or 0,
    )
    run = await pipeline.run_pipeline(options, _chunks(feed))
    log.info(
        "run %s %s (%s, %d bytes)",
        run.run_id,
        pb.RunStatus.Name(run.status),
        options.label,
        run.input_size,
    )
    return Run.from_pb(run)


@router.get(
    "", summary="Run history, newest first", responses=error_responses(400, *PIPELINE_ERRORS)
)
async def list_runs(
    pipeline: PipelineDep,
    page_size: Annotated[int, Query(ge=1, le=100, description="Runs per page")] = 20,
    page_token: Annotated[str, Query(max_length=1000, description="From next_page_token")] = "",
) -> RunList:
    response = await pipeline.list_runs(page_size, page_token)
    return RunList(
        runs=[Run.from_pb(r) for r in response.runs],
        next_page_token=response.next_page_token or None,
    )


@router.get("/{run_id}", summary="One run", responses=error_responses(404, *PIPELINE_ERRORS))
async def get_run(pipeline: PipelineDep, run_id: RunId) -> Run:
    return Run.from_pb(await pipeline.get_run(run_id))


@router.get(
    "/{run_id}/output",
    summary="Download a completed run's output zip",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The transformed GTFS zip, streamed",
        },
        **error_responses(404, 409, *PIPELINE_ERRORS),
    },
)
async def download_output(pipeline: PipelineDep, run_id: RunId) -> StreamingResponse:
    chunks = pipeline.download_output(run_id)
    # Read the first chunk before answering: NOT_FOUND / FAILED_PRECONDITION
    # arrive as the stream's status, and once the 200 is sent it is too late
    # to turn them into a 404 / 409.
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()

    return StreamingResponse(
        body(),
        media_type="application/zip",
        # run_id is hex (valid_run_id): safe in a header as it is.
        headers={"Content-Disposition": f'attachment; filename="{run_id}.zip"'},
    )
