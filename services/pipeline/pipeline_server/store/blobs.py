"""Where the run store keeps zips: a local folder or a Cloud Storage bucket.

Chosen by PIPELINE_OUTPUT_URL: ``file:///abs/folder`` or ``gs://bucket/prefix``.
Both write a blob whole or not at all (a temporary file renamed into place; a
single Cloud Storage upload that is only visible once complete), so a reader
never sees half a zip, and both refuse to overwrite one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit


class BlobUrlError(ValueError):
    """PIPELINE_OUTPUT_URL cannot be used; the message says why."""


class BlobMissing(LookupError):
    """No blob under that key (deleted by retention or by hand)."""


class BlobStoreUnavailable(RuntimeError):
    """The folder or bucket cannot be reached; the message says why."""


class BlobStore(Protocol):
    def describe(self) -> str: ...

    def check(self) -> None:
        """Raise BlobStoreUnavailable unless blobs can be written and read now."""

    def put_file(self, key: str, source: Path) -> None: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def read(self, key: str, chunk_bytes: int) -> Iterator[bytes]:
        """The blob in chunks; BlobMissing before the first chunk if it is gone."""

    def delete(self, key: str) -> None:
        """Delete; a blob already gone is not an error."""

    def exists(self, key: str) -> bool: ...


@dataclass(frozen=True)
class BlobUrl:
    scheme: str  # file | gs
    path: Path | None = None  # file
    bucket: str = ""  # gs
    prefix: str = ""  # gs


def parse_blob_url(raw: str) -> BlobUrl:
    """Check PIPELINE_OUTPUT_URL's form without touching the folder or the bucket."""
    parts = urlsplit(raw)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise BlobUrlError("a file:// URL names a local folder: file:///abs/path")
        path = Path(unquote(parts.path))
        if not path.is_absolute():
            raise BlobUrlError("a file:// URL needs an absolute path: file:///abs/path")
        return BlobUrl("file", path=path)
    if parts.scheme == "gs":
        if not parts.netloc:
            raise BlobUrlError("a gs:// URL names a bucket: gs://BUCKET/prefix")
        return BlobUrl("gs", bucket=parts.netloc, prefix=parts.path.strip("/"))
    raise BlobUrlError("must be file:///abs/folder or gs://bucket/prefix")


def open_blob_store(raw: str, timeout_s: float) -> BlobStore:
    url = parse_blob_url(raw)
    if url.path is not None:
        return LocalBlobStore(url.path)
    return GcsBlobStore(url.bucket, url.prefix, timeout_s)


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob key {key!r} leaves the store")
        return path

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".check-"):
                pass
        except OSError as exc:
            raise BlobStoreUnavailable(f"{self.describe()}: {exc.strerror or exc}") from None

    def _write(self, key: str, fill: Any) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fill(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                # link, not rename: fails when the key exists, like ifGenerationMatch=0.
                os.link(tmp, path)
            finally:
                os.unlink(tmp)
        except FileExistsError:
            raise
        except OSError as exc:
            raise BlobStoreUnavailable(
                f"could not write {key} under {self.describe()}: {exc.strerror or exc}"
            ) from None

    def put_file(self, key: str, source: Path) -> None:
        def fill(fh: Any) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, fh, 1024 * 1024)

        self._write(key, fill)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda fh: fh.write(data))

    def read(self, key: str, chunk_bytes: int) -> Iterator[bytes]:
        try:
            fh = self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobMissing(key) from None
        except OSError as exc:
            raise BlobStoreUnavailable(f"could not read {key}: {exc.strerror or exc}") from None
        return _chunks(fh, chunk_bytes)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the run's folder, once empty
                path.parent.rmdir()
        except OSError as exc:
            raise BlobStoreUnavailable(f"could not delete {key}: {exc.strerror or exc}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def _chunks(fh: Any, chunk_bytes: int) -> Iterator[bytes]:
    with fh:
        while chunk := fh.read(chunk_bytes):
            yield chunk


class GcsBlobStore:
    """Cloud Storage through google-cloud-storage (STORAGE_EMULATOR_HOST for tests).

    Every call is bounded: ``timeout_s`` per HTTP request and the same for the
    client's retries in all, so an unreachable bucket fails a run in seconds.
    """

    def __init__(self, bucket: str, prefix: str, timeout_s: float) -> None:
        # Imported here: a file:// store (local, tests) never loads the client.
        from google.api_core import exceptions
        from google.cloud import storage  # type: ignore[attr-defined]
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._exceptions = exceptions
        self._bucket_name, self._prefix = bucket, prefix
        self._timeout = timeout_s
        self._retry = DEFAULT_RETRY.with_timeout(timeout_s)
        self._client: Any = None
        self._storage = storage

    def describe(self) -> str:
        return f"gs://{self._bucket_name}/{self._prefix}".rstrip("/")

    @property
    def _bucket(self) -> Any:
        if self._client is None:  # credentials are looked up on first use, not at import
            self._client = self._storage.Client()
        return self._client.bucket(self._bucket_name)

    def _blob(self, key: str) -> Any:
        return self._bucket.blob(f"{self._prefix}/{key}" if self._prefix else key)

    def _unavailable(self, doing: str, exc: Exception) -> BlobStoreUnavailable:
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return BlobStoreUnavailable(f"{doing} {self.describe()}: {reason.splitlines()[0][:300]}")

    def check(self) -> None:
        try:
            # A list needs storage.objects.list, which the pipeline's identity holds;
            # bucket metadata (get_bucket) would need more than it is given.
            list(self._client_list(max_results=1))
        except Exception as exc:
            raise self._unavailable("cannot list", exc) from None

    def _client_list(self, max_results: int) -> Any:
        return self._bucket.list_blobs(
            prefix=self._prefix or None,
            max_results=max_results,
            timeout=self._timeout,
            retry=self._retry,
        )

    def put_file(self, key: str, source: Path) -> None:
        self._create(key, lambda blob, **kw: blob.upload_from_filename(str(source), **kw))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._create(key, lambda blob, **kw: blob.upload_from_string(data, **kw))

    def _create(self, key: str, upload: Callable[..., None]) -> None:
        """One upload that only creates (ifGenerationMatch=0): FileExistsError if the
        key exists, BlobStoreUnavailable for anything else."""
        try:
            upload(
                self._blob(key),
                content_type="application/zip",
                if_generation_match=0,
                timeout=self._timeout,
                retry=self._retry,
            )
        except self._exceptions.PreconditionFailed:
            raise FileExistsError(key) from None
        except Exception as exc:
            raise self._unavailable(f"could not write {key} to", exc) from None

    def read(self, key: str, chunk_bytes: int) -> Iterator[bytes]:
        blob = self._blob(key)
        try:
            blob.reload(timeout=self._timeout, retry=self._retry)
        except self._exceptions.NotFound:
            raise BlobMissing(key) from None
        except Exception as exc:
            raise self._unavailable(f"could not read {key} from", exc) from None
        return self._ranges(blob, chunk_bytes)

    def _ranges(self, blob: Any, chunk_bytes: int) -> Iterator[bytes]:
        # Ranged reads of the generation found above: a blob replaced meanwhile
        # cannot splice two versions into one download.
        size, start = int(blob.size or 0), 0
        while start < size:
            end = min(start + chunk_bytes, size) - 1
            try:
                yield blob.download_as_bytes(
                    start=start,
                    end=end,
                    if_generation_match=blob.generation,
                    checksum=None,
                    timeout=self._timeout,
                    retry=self._retry,
                )
            except Exception as exc:
                raise self._unavailable("download interrupted from", exc) from None
            start = end + 1

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete(timeout=self._timeout, retry=self._retry)
        except self._exceptions.NotFound:
            return
        except Exception as exc:
            raise self._unavailable(f"could not delete {key} from", exc) from None

    def exists(self, key: str) -> bool:
        try:
            return bool(self._blob(key).exists(timeout=self._timeout, retry=self._retry))
        except Exception as exc:
            raise self._unavailable(f"could not look for {key} in", exc) from None
