"""Fixtures: a real pipeline gRPC server on a free loopback port, a real
channel to it, and tiny GTFS zips built in memory."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from harness.store_fixtures import gcs, gcs_emulator, postgres, postgres_server  # noqa: F401
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from pipeline_server.server import RunningServer, start
from pipeline_server.settings import Settings, load_settings
from testkit.net import free_port
from testkit.zips import make_zip

FIXTURE_PIPELINES = Path(__file__).parent / "fixtures" / "pipelines"

TINY_FEED: dict[str, str] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Agency,https://a.example,Europe/Berlin\n",
    "routes.txt": "route_id,agency_id,route_short_name,route_type\nR1,A,1,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\n",
    "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nS1,First,52.5,13.4\nS2,Second,52.51,13.41\nS3,,52.52,13.42\n",
    "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,1\nT1,08:05:00,08:05:00,S2,2\n",
    "calendar.txt": "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\nWK,1,1,1,1,1,0,0,20260101,20261231\n",
    "feed_info.txt": "feed_publisher_name,feed_publisher_url,feed_lang\nOld,https://old.example,en\n",
}


@pytest.fixture
def settings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Settings:
    # The server's main() logs at INFO; step log capture depends on that level.
    caplog.set_level(logging.INFO)
    return load_settings({}).model_copy(
        update={
            "port": free_port(),
            "pipelines_dir": FIXTURE_PIPELINES,
            "pipeline_name": "simple",
            "image_commit": "0123456789abcdef0123456789abcdef01234567",
            "data_dir": tmp_path,
        }
    )


@pytest.fixture
def serve(settings: Settings) -> Iterator[Callable[..., tuple[RunningServer, grpc.Channel]]]:
    """Start a server with settings overrides; returns (server, channel)."""
    started: list[tuple[RunningServer, grpc.Channel]] = []

    def _serve(**overrides: object) -> tuple[RunningServer, grpc.Channel]:
        # Each server gets its own port unless a test asks for one.
        overrides.setdefault("port", settings.port if not started else free_port())
        running = start(settings.model_copy(update=overrides), host="127.0.0.1")
        channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
        started.append((running, channel))
        return running, channel

    yield _serve
    for running, channel in started:
        channel.close()
        running.stop(None)


@pytest.fixture
def stub(serve: Callable[..., tuple[RunningServer, grpc.Channel]]) -> pb_grpc.PipelineServiceStub:
    _, channel = serve()
    return pb_grpc.PipelineServiceStub(channel)


@pytest.fixture
def tiny_feed() -> bytes:
    return make_zip(TINY_FEED)


@pytest.fixture
def feed_with() -> Callable[..., bytes]:
    """The tiny feed with some files replaced (value None removes a file)."""

    def _build(files: dict[str, str | bytes | None]) -> bytes:
        merged = {**TINY_FEED, **files}
        return make_zip({k: v for k, v in merged.items() if v is not None})

    return _build
