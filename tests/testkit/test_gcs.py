"""The real google-cloud-storage client against testkit's emulator: every
operation the run store uses, and what an outage looks like to the client."""

from __future__ import annotations

import io
import itertools
import os
import time
from pathlib import Path

import pytest
import requests
from google.api_core import exceptions as gexc

from testkit.gcs import GcsBucket, GcsEmulator, bounded_retry, start_gcs_emulator

PAYLOAD = os.urandom(3 * 1024 * 1024 + 123)  # several resumable chunks, not aligned
CHUNK = 256 * 1024  # the smallest chunk size GCS accepts for resumable uploads


def test_upload_from_filename_and_download(gcs: GcsBucket, tmp_path: Path) -> None:
    src = tmp_path / "out.zip"
    src.write_bytes(PAYLOAD)
    blob = gcs.bucket.blob("runs/r1/output.zip")
    blob.upload_from_filename(src, content_type="application/zip")
    assert blob.generation
    assert blob.size == len(PAYLOAD)
    assert gcs.bucket.blob("runs/r1/output.zip").download_as_bytes() == PAYLOAD
    assert gcs.bucket.get_blob("runs/r1/output.zip").content_type == "application/zip"


def test_resumable_upload_from_file_in_chunks(gcs: GcsBucket) -> None:
    blob = gcs.bucket.blob("runs/r2/input.zip", chunk_size=CHUNK)
    blob.upload_from_file(io.BytesIO(PAYLOAD), if_generation_match=0)
    assert gcs.bucket.blob("runs/r2/input.zip").download_as_bytes() == PAYLOAD


@pytest.mark.parametrize("chunk_size", [None, CHUNK], ids=["multipart", "resumable"])
def test_if_generation_match_0_creates_only_when_absent(
    gcs: GcsBucket, chunk_size: int | None
) -> None:
    gcs.bucket.blob("once.zip", chunk_size=chunk_size).upload_from_file(
        io.BytesIO(b"first"), if_generation_match=0
    )
    with pytest.raises(gexc.PreconditionFailed):
        gcs.bucket.blob("once.zip", chunk_size=chunk_size).upload_from_file(
            io.BytesIO(PAYLOAD), if_generation_match=0
        )
    assert gcs.bucket.blob("once.zip").download_as_bytes() == b"first"


def test_generation_match_on_overwrite_and_delete(gcs: GcsBucket) -> None:
    blob = gcs.bucket.blob("g.zip")
    blob.upload_from_string(b"1")
    first = blob.generation
    assert first is not None
    with pytest.raises(gexc.PreconditionFailed):
        gcs.bucket.blob("g.zip").upload_from_string(b"x", if_generation_match=first + 1)
    gcs.bucket.blob("g.zip").upload_from_string(b"2", if_generation_match=first)
    second = gcs.bucket.get_blob("g.zip").generation
    assert second != first
    with pytest.raises(gexc.PreconditionFailed):
        gcs.bucket.blob("g.zip").delete(if_generation_match=first)
    gcs.bucket.blob("g.zip").delete(if_generation_match=second)
    assert not gcs.bucket.blob("g.zip").exists()


def test_the_published_emulator_ignores_preconditions(tmp_path: Path) -> None:
    """Why testkit.gcs_emulator patches it: if this starts failing, an emulator
    release enforces them itself and the patch can go."""
    emu = start_gcs_emulator(log_dir=tmp_path, preconditions=False)
    try:
        with emu.client() as client:
            bucket = client.bucket(emu.create_bucket())
            bucket.blob("once").upload_from_string(b"first", if_generation_match=0)
            bucket.blob("once").upload_from_string(b"second", if_generation_match=0)
            assert bucket.blob("once").download_as_bytes() == b"second"
    finally:
        emu.stop()


def test_streaming_download_in_chunks(gcs: GcsBucket) -> None:
    gcs.bucket.blob("big.zip").upload_from_string(PAYLOAD)
    reads = []
    with gcs.bucket.blob("big.zip").open("rb", chunk_size=CHUNK) as stream:
        while piece := stream.read(100_000):
            reads.append(piece)
    assert b"".join(reads) == PAYLOAD
    assert len(reads) == -(-len(PAYLOAD) // 100_000)


def test_ranged_downloads(gcs: GcsBucket) -> None:
    gcs.bucket.blob("big.zip").upload_from_string(PAYLOAD)
    blob = gcs.bucket.blob("big.zip")
    # end is inclusive, as HTTP Range is.
    assert blob.download_as_bytes(start=10, end=19) == PAYLOAD[10:20]
    assert blob.download_as_bytes(start=len(PAYLOAD) - 5) == PAYLOAD[-5:]
    pieces = [
        blob.download_as_bytes(start=offset, end=min(offset + CHUNK, len(PAYLOAD)) - 1)
        for offset in range(0, len(PAYLOAD), CHUNK)
    ]
    assert b"".join(pieces) == PAYLOAD


def test_exists_and_delete(gcs: GcsBucket) -> None:
    blob = gcs.bucket.blob("runs/r3/output.zip")
    assert not blob.exists()
    blob.upload_from_string(b"zip")
    assert blob.exists()
    blob.delete()
    assert not blob.exists()
    with pytest.raises(gexc.NotFound):
        blob.delete()
    with pytest.raises(gexc.NotFound):
        blob.download_as_bytes()


def test_list_blobs_with_a_prefix(gcs: GcsBucket) -> None:
    for name in ["runs/a/in.zip", "runs/a/out.zip", "runs/b/in.zip", "runsx/c", "other/d"]:
        gcs.bucket.blob(name).upload_from_string(name.encode())
    names = [b.name for b in gcs.client.list_blobs(gcs.name, prefix="runs/")]
    assert sorted(names) == ["runs/a/in.zip", "runs/a/out.zip", "runs/b/in.zip"]
    listing = gcs.client.list_blobs(gcs.name, prefix="runs/", delimiter="/")
    assert list(listing) == []
    assert listing.prefixes == {"runs/a/", "runs/b/"}


def test_list_blobs_ignores_max_results(gcs: GcsBucket) -> None:
    """Emulator quirk: no server-side paging (maxResults, pageToken): one page
    holds everything. Cut client-side (itertools.islice) where a cap matters."""
    for i in range(5):
        gcs.bucket.blob(f"p/{i}").upload_from_string(b"x")
    assert len(list(gcs.client.list_blobs(gcs.name, max_results=2))) == 5
    assert len(list(itertools.islice(gcs.client.list_blobs(gcs.name), 2))) == 2


def test_a_fresh_bucket_per_test(gcs: GcsBucket) -> None:
    assert list(gcs.client.list_blobs(gcs.name)) == []
    assert gcs.url == f"gs://{gcs.name}"
    assert gcs.env() == {"STORAGE_EMULATOR_HOST": gcs.emulator.endpoint}


def test_the_env_var_alone_reaches_the_emulator(
    gcs: GcsBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a pipeline process given only STORAGE_EMULATOR_HOST does."""
    from google.cloud import storage

    for key, value in gcs.env().items():
        monkeypatch.setenv(key, value)
    with storage.Client(project="p") as client:
        client.bucket(gcs.name).blob("via-env").upload_from_string(b"ok")
    assert gcs.bucket.blob("via-env").download_as_bytes() == b"ok"


@pytest.fixture
def down_emulator(tmp_path: Path) -> GcsEmulator:
    emu = start_gcs_emulator(log_dir=tmp_path)
    emu.create_bucket("gone")
    emu.stop()
    return emu


def test_emulator_down_fails_at_once_without_retry(down_emulator: GcsEmulator) -> None:
    with down_emulator.client() as client:
        blob = client.bucket("gone").blob("x")
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ConnectionError):
            blob.upload_from_string(b"x", retry=None, timeout=5)
        with pytest.raises(requests.exceptions.ConnectionError):
            blob.exists(retry=None, timeout=5)
        assert time.monotonic() - started < 2


def test_emulator_down_with_a_bounded_retry(down_emulator: GcsEmulator) -> None:
    with down_emulator.client() as client:
        blob = client.bucket("gone").blob("x")
        started = time.monotonic()
        with pytest.raises(gexc.RetryError) as caught:
            blob.download_as_bytes(retry=bounded_retry(2.0), timeout=5)
        took = time.monotonic() - started
        assert 0.5 < took < 5, took
        assert isinstance(caught.value.cause, requests.exceptions.ConnectionError)


def test_stop_and_start_again_on_the_same_port(tmp_path: Path) -> None:
    emu = start_gcs_emulator(log_dir=tmp_path, data_dir=tmp_path / "data")
    try:
        name = emu.create_bucket()
        with emu.client() as client:
            client.bucket(name).blob("kept").upload_from_string(b"on disk")
        port = emu.port
        emu.stop()
        assert not emu.alive()
        emu.start()
        assert emu.port == port
        with emu.client() as client:
            assert client.bucket(name).blob("kept").download_as_bytes() == b"on disk"
    finally:
        emu.stop()
