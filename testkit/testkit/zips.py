"""GTFS zips made in memory for tests."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Mapping

_CENTRAL_HEADER = b"PK\x01\x02"


def make_zip(files: Mapping[str, str | bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding ``files`` (name → content), in the order given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def corrupt_first_deflate(zip_bytes: bytes) -> bytes:
    """The zip with its first entry's compressed data starting 0xFF: deflate block
    type 3, which is reserved, so zlib fails on the first read of that entry."""
    raw = bytearray(zip_bytes)
    name_len, extra_len = struct.unpack("<HH", raw[26:30])  # the first local header
    raw[30 + name_len + extra_len] = 0xFF
    return bytes(raw)


def with_extract_version(zip_bytes: bytes, version: int) -> bytes:
    """The zip with every central directory entry's "version needed to extract"
    (offset 6) set to ``version`` (228 means 22.8)."""
    raw = bytearray(zip_bytes)
    at = raw.find(_CENTRAL_HEADER)
    while at != -1:
        raw[at + 6 : at + 8] = struct.pack("<H", version)
        at = raw.find(_CENTRAL_HEADER, at + 4)
    return bytes(raw)
