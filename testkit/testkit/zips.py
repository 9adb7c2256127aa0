"""GTFS zips made in memory for tests."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping


def make_zip(files: Mapping[str, str | bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip holding ``files`` (name → content), in the order given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()
