"""`pipeline-server`: serve the pipeline named by PIPELINE_NAME on $PORT."""

from __future__ import annotations

import logging
import sys

from . import logs
from .loader import PipelineLoadError
from .server import serve
from .settings import SettingsError, load_settings

log = logging.getLogger("pipeline_server")


def main() -> int:
    logs.configure("pipeline")
    try:
        settings = load_settings()
        serve(settings)
    except (SettingsError, PipelineLoadError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
