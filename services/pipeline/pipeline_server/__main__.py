"""`pipeline-server`: serve the pipeline named by PIPELINE_NAME on $PORT."""

from __future__ import annotations

import gc
import logging
import os
import sys

log = logging.getLogger("pipeline_server")


def main() -> int:
    # Start-up allocates hundreds of thousands of long-lived objects (modules,
    # classes, the pipeline's steps): the cyclic collector would walk them again
    # and again while they load and free nothing. Off until SERVING, when
    # server.serve freezes what start-up made and turns it back on (ADR 0026).
    gc.disable()
    # Imported here, after gc.disable(), rather than at the top of the module.
    from telemetry import configure_logging, setup_telemetry

    from .loader import PipelineLoadError
    from .server import serve
    from .settings import SettingsError, load_settings

    configure_logging("pipeline")
    try:
        settings = load_settings()
    except SettingsError as exc:
        log.error("cannot start: %s", exc)
        return 1
    # Never raises: a telemetry problem is a warning, not a failed start.
    telemetry = setup_telemetry("pipeline", settings.image_commit)
    abandoned = 0
    try:
        abandoned = serve(settings, telemetry)
    except (SettingsError, PipelineLoadError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    finally:
        gc.enable()  # a failed start-up never got to serve's
        telemetry.shutdown()
    if abandoned:
        # Their threads would hold the interpreter's exit until their step ends
        # (minutes, for a big feed) while Cloud Run kills us 10 s after SIGTERM.
        # They are recorded failed; leave now.
        logging.shutdown()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
