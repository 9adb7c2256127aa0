"""The run store: run history in a database, input and output zips in a blob store.

``open_store(settings)`` builds it from PIPELINE_DATABASE_URL and
PIPELINE_OUTPUT_URL; ``RunStore`` is the interface the servicer uses;
``StoreMonitor`` keeps health and upkeep current. ADR 0020 says why.
"""

from __future__ import annotations

from .blobs import BlobUrlError, open_blob_store
from .database import DatabaseUrlError, create_engine, parse_url
from .monitor import StoreMonitor
from .run_store import (
    BadPageToken,
    OutputMissing,
    Retention,
    RunNotFound,
    RunStore,
    StoreUnavailable,
    TooManyRuns,
)

__all__ = [
    "BadPageToken",
    "BlobUrlError",
    "DatabaseUrlError",
    "OutputMissing",
    "Retention",
    "RunNotFound",
    "RunStore",
    "StoreMonitor",
    "StoreUnavailable",
    "TooManyRuns",
    "create_engine",
    "open_blob_store",
    "parse_url",
]
