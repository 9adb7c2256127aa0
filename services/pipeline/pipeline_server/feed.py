"""Checks an uploaded GTFS zip before the pipeline sees it.

The upload is untrusted: it may not be a zip, may be a zip bomb, may carry
entry names that climb out of a folder, or may lack the files a schedule
needs. `inspect_feed` rejects all of that with `FeedError` (mapped to
INVALID_ARGUMENT), reading every entry through a bounded decompressor so the
declared sizes in the zip's headers are never trusted.

Whatever the bytes, inspect_feed returns a FeedSummary or raises FeedError: a
damaged archive makes zipfile and zlib raise a dozen kinds of exception (zlib.error
for a corrupt deflate stream, NotImplementedError for an unknown method or version,
EOFError, struct.error, OSError...), each becomes a FeedError with a reason in our
own words. Their text is never passed on: it can quote raw header bytes.
"""

from __future__ import annotations

import logging
import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .bounds import shown

# The files run_schedule_pipeline's validate_gtfs requires; checked up front so
# a feed missing one is a clear INVALID_ARGUMENT, not a failed run.
REQUIRED_FILES = ("agency.txt", "routes.txt", "trips.txt", "stops.txt", "stop_times.txt")
_READ_BLOCK = 1024 * 1024

log = logging.getLogger(__name__)


class FeedError(ValueError):
    """The upload is not a usable GTFS zip; the message says why."""


class FeedTooLarge(FeedError):
    """The feed uncompresses to more than this instance takes: a size limit
    (RESOURCE_EXHAUSTED, like the upload cap), not a malformed feed."""


@dataclass(frozen=True)
class FeedLimits:
    max_uncompressed_bytes: int
    max_compression_ratio: int
    max_entries: int


@dataclass(frozen=True)
class FeedSummary:
    files: tuple[str, ...]
    uncompressed_bytes: int
    # Commas and newlines of the .txt entries: about the number of CSV fields,
    # which with the bytes is what a run's memory follows (memory.MODEL).
    fields: int = 0


def _reason(exc: BaseException) -> str:
    """What a zipfile / zlib exception says about the archive, in our words."""
    if isinstance(exc, NotImplementedError):
        version = str(exc).removeprefix("zip file version ")
        if version != str(exc) and len(version) <= 8:
            return f"it needs zip version {version} to extract (this server reads up to 6.3)"
        return "it uses a compression method this server does not support"
    if isinstance(exc, zlib.error):
        return "its compressed data is corrupt"
    if isinstance(exc, EOFError):
        return "it ends in the middle of an entry"
    if isinstance(exc, zipfile.BadZipFile | struct.error):
        return "its headers are corrupt"
    if isinstance(exc, RuntimeError):  # zipfile: "File ... is encrypted, password required"
        return "an entry is encrypted"
    return "it could not be read"


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
            f"zip entry {shown(name)} has a path outside the feed; GTFS files sit at the root"
        )


def inspect_feed(path: Path, limits: FeedLimits) -> FeedSummary:
    """Validate the zip at `path`; return the GTFS files it holds.

    Raises FeedError (FeedTooLarge past the uncompressed cap) and nothing else.
    """
    try:
        return _inspect(path, limits)
    except FeedError:
        raise
    except Exception as exc:  # a damaged archive: any exception is the upload's doing
        log.info("feed %s unreadable: %s: %.200s", path.name, type(exc).__name__, exc)
        raise FeedError(f"upload is not a usable zip: {_reason(exc)}") from None


def _inspect(path: Path, limits: FeedLimits) -> FeedSummary:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise FeedError("upload is not a zip archive (bad or missing central directory)") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise FeedError(f"zip has {len(infos)} entries; the limit is {limits.max_entries}")
        total = fields = 0
        files: list[str] = []
        for info in infos:
            _check_name(info.filename)
            if info.is_dir():
                continue
            if "/" in info.filename.rstrip("/"):
                raise FeedError(
                    f"zip entry {shown(info.filename)} is inside a folder;"
                    " GTFS files sit at the root"
                )
            if info.flag_bits & 0x1:
                raise FeedError(f"zip entry {shown(info.filename)} is encrypted")
            if not info.filename.endswith(".txt"):
                continue  # ignored by the pipeline, like any GTFS consumer does
            size, separators = _bounded_size(archive, info, limits, already=total)
            total += size
            fields += separators
            files.append(info.filename)
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise FeedError(f"feed is missing required GTFS files: {', '.join(missing)}")
    return FeedSummary(files=tuple(sorted(files)), uncompressed_bytes=total, fields=fields)


def _bounded_size(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: FeedLimits, *, already: int
) -> tuple[int, int]:
    """Decompress one entry counting real bytes and field separators; stop at the
    first cap crossed."""
    ratio_cap = max(info.compress_size, 1) * limits.max_compression_ratio
    size = separators = 0
    try:
        with archive.open(info) as stream:
            while block := stream.read(_READ_BLOCK):
                size += len(block)
                separators += block.count(b",") + block.count(b"\n")
                if already + size > limits.max_uncompressed_bytes:
                    raise FeedTooLarge(
                        f"feed too large: it uncompresses to more than"
                        f" {limits.max_uncompressed_bytes} bytes (stopped in"
                        f" {shown(info.filename)}), the most this instance takes"
                    )
                # Small entries compress badly; only judge the ratio past 1 MiB.
                if size > _READ_BLOCK and size > ratio_cap:
                    raise FeedError(
                        f"zip entry {shown(info.filename)} expands more than "
                        f"{limits.max_compression_ratio}x; refusing a possible zip bomb"
                    )
    except FeedError:
        raise
    except Exception as exc:
        log.info("zip entry %.80r unreadable: %s: %.200s", info.filename, type(exc).__name__, exc)
        raise FeedError(f"zip entry {shown(info.filename)} is corrupt: {_reason(exc)}") from None
    return size, separators
