"""Checks an uploaded GTFS zip before the pipeline sees it.

The upload is untrusted: it may not be a zip, may be a zip bomb, may carry
entry names that climb out of a folder, or may lack the files a schedule
needs. `inspect_feed` rejects all of that with `FeedError` (mapped to
INVALID_ARGUMENT), reading every entry through a bounded decompressor so the
declared sizes in the zip's headers are never trusted.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path

# The files run_schedule_pipeline's validate_gtfs requires; checked up front so
# a feed missing one is a clear INVALID_ARGUMENT, not a failed run.
REQUIRED_FILES = ("agency.txt", "routes.txt", "trips.txt", "stops.txt", "stop_times.txt")
_READ_BLOCK = 1024 * 1024


class FeedError(ValueError):
    """The upload is not a usable GTFS zip; the message says why."""


@dataclass(frozen=True)
class FeedLimits:
    max_uncompressed_bytes: int
    max_compression_ratio: int
    max_entries: int


@dataclass(frozen=True)
class FeedSummary:
    files: tuple[str, ...]
    uncompressed_bytes: int


def _check_name(name: str) -> None:
    # Absolute paths, drive letters, backslashes and ".." are how a zip writes
    # outside its folder ("zip slip"); GTFS files sit at the root anyway.
    if (
        name.startswith(("/", "\\"))
        or "\\" in name
        or (len(name) > 1 and name[1] == ":")
        or ".." in posixpath.normpath(name).split("/")
    ):
        raise FeedError(
            f"zip entry {name!r} has a path outside the feed; GTFS files sit at the root"
        )


def inspect_feed(path: Path, limits: FeedLimits) -> FeedSummary:
    """Validate the zip at `path`; return the GTFS files it holds."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FeedError("upload is not a zip archive (bad or missing central directory)") from None
    except OSError as exc:
        raise FeedError(f"upload could not be read as a zip: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise FeedError(f"zip has {len(infos)} entries; the limit is {limits.max_entries}")
        total = 0
        files: list[str] = []
        for info in infos:
            _check_name(info.filename)
            if info.is_dir():
                continue
            if "/" in info.filename.rstrip("/"):
                raise FeedError(
                    f"zip entry {info.filename!r} is inside a folder; GTFS files sit at the root"
                )
            if info.flag_bits & 0x1:
                raise FeedError(f"zip entry {info.filename!r} is encrypted")
            if not info.filename.endswith(".txt"):
                continue  # ignored by the pipeline, like any GTFS consumer does
            total += _bounded_size(archive, info, limits, already=total)
            files.append(info.filename)
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise FeedError(f"feed is missing required GTFS files: {', '.join(missing)}")
    return FeedSummary(files=tuple(sorted(files)), uncompressed_bytes=total)


def _bounded_size(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: FeedLimits, *, already: int
) -> int:
    """Decompress one entry counting real bytes; stop at the first cap crossed."""
    ratio_cap = max(info.compress_size, 1) * limits.max_compression_ratio
    size = 0
    try:
        with archive.open(info) as stream:
            while block := stream.read(_READ_BLOCK):
                size += len(block)
                if already + size > limits.max_uncompressed_bytes:
                    raise FeedError(
                        f"feed uncompresses to more than {limits.max_uncompressed_bytes} bytes "
                        f"(stopped in {info.filename!r}); refusing a possible zip bomb"
                    )
                # Small entries compress badly; only judge the ratio past 1 MiB.
                if size > _READ_BLOCK and size > ratio_cap:
                    raise FeedError(
                        f"zip entry {info.filename!r} expands more than "
                        f"{limits.max_compression_ratio}x; refusing a possible zip bomb"
                    )
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise FeedError(f"zip entry {info.filename!r} is corrupt: {exc}") from None
    return size
