"""GTFS feeds for the container tests, from tools/generate_feed.py.

tools/ is not a package; the generator is loaded from its file so the tests use
exactly the feeds the pipeline's own tests and the bench use.
"""

from __future__ import annotations

import functools
import io
import zipfile
from pathlib import Path
from types import ModuleType

from testkit.scripts import load_tool

SMALL_ROWS = 2_000
MIB = 1024 * 1024


def generator() -> ModuleType:
    return load_tool("generate_feed.py")


@functools.cache
def feed(rows: int = SMALL_ROWS, broken_hierarchy: bool = False) -> bytes:
    data: bytes = generator().build_feed(rows, broken_hierarchy=broken_hierarchy)
    return data


# Rows of the padding files, by shape: %d is the row number.
PADDING_ROWS = {
    # 61 eight-letter fields: ~130x compression; as issue 17 row 7's feed, a run
    # of 400 MiB of it peaks near 1.9 GB
    "row7": b"E%07d" + b",repeated" * 60 + b"\n",
    # few long fields: ~116x compression, the least DataFrame per CSV byte
    "wide": b"E%07d," + b"repetitive value " * 45 + b",1\n",
    # 27 one-letter fields: the most DataFrame per CSV byte (~23x compression)
    "narrow": b"%d,a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z\n",
}


def write_padded_feed(
    path: Path,
    files: int = 40,
    file_bytes: int = 10 * MIB,
    rows: int = SMALL_ROWS,
    shape: str = "row7",
) -> int:
    """The generated feed of ``rows`` plus ``files`` extra CSV files of ``file_bytes``
    each of rows shaped as ``PADDING_ROWS[shape]`` (inside every per-entry cap): at
    the defaults the feed of issue 17 row 7, 400 MiB uncompressed in a ~3 MB zip. The
    pipeline parses and repackages every .txt, so the padding costs what real data
    would. Written entry by entry, never whole in memory; returns the uncompressed
    bytes of its .txt entries."""
    total = 0
    with (
        zipfile.ZipFile(io.BytesIO(feed(rows))) as base,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in base.infolist():
            data = base.read(info)
            out.writestr(info.filename, data)
            total += len(data)
        for i in range(files):
            template = PADDING_ROWS[shape]
            header = b",".join(b"c%d" % c for c in range(template.count(b",") + 1)) + b"\n"
            lines = [header]
            size, n = len(header), 0
            while size < file_bytes:
                # Repeated text with a counter: compresses like a real (if dull)
                # table, not like a zip bomb.
                line = template % n
                lines.append(line)
                size += len(line)
                n += 1
            data = b"".join(lines)[:file_bytes]
            data = data[: data.rfind(b"\n") + 1]
            out.writestr(f"extra_{i:02d}.txt", data)
            total += len(data)
    return total
