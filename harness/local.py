"""The local environment in containers (`make up`, `envctl up local`).

Builds (or reuses) both images at the current commit — a dirty tree is accepted
here and only here — starts the pipeline, then the console with the pipeline's
address injected, waits until both are ready, prints the console URL and stays
in the foreground following both logs. Ctrl-C (SIGINT) or SIGTERM removes the
containers; so does either container exiting on its own.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

from harness import containers, images, local_env


class _Stop(Exception):
    """Raised in the main thread by the signal handler."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    del frame
    raise _Stop(signal.Signals(signum).name)


def _follow(box: containers.ServiceContainer) -> None:
    # Daemon thread: the docker log stream ends when the container is removed.
    try:
        stream = box.container.get_wrapped_container().logs(stream=True, follow=True)
        for line in stream:
            text = line.decode(errors="replace").rstrip("\n")
            sys.stdout.write(f"{box.service:>8} | {text}\n")
            sys.stdout.flush()
    except Exception:  # noqa: S110 - the stream dies with its container; nothing to do
        pass


def _say(message: str) -> None:
    sys.stderr.write(f"local: {message}\n")
    sys.stderr.flush()


def run(env: Mapping[str, Any] | None = None) -> int:
    """Run the stack described by `env` (default: environments/local.yaml) until stopped."""
    services = {s.name: s for s in local_env.docker_services(env or local_env.load())}
    started = time.monotonic()
    build = images.build(allow_dirty=True)
    for image in build.images.values():
        _say(f"image {image.ref} ({'reused' if image.reused else 'built'})")
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack_id = containers.new_stack_id()
    boxes: list[containers.ServiceContainer] = []
    try:
        pipe = services["pipeline"]
        boxes.append(
            containers.start_pipeline(build.ref("pipeline"), stack_id, pipe.port or None, pipe.env)
        )
        _say(f"pipeline (gRPC) serving on {boxes[0].addr}")
        cons = services["console"]
        boxes.append(
            containers.start_console(
                build.ref("console"), stack_id, boxes[0].addr, cons.port or None, cons.env
            )
        )
        for box in boxes:
            threading.Thread(target=_follow, args=(box,), daemon=True).start()
        _say(f"ready in {time.monotonic() - started:.1f}s")
        _say(f"console: {boxes[1].url}/   (Ctrl-C stops and removes both containers)")
        while all(box.running() for box in boxes):
            time.sleep(1)
        gone = [box.service for box in boxes if not box.running()]
        _say(f"{', '.join(gone)} exited on its own; stopping")
        return 1
    except _Stop as stop:
        _say(f"{stop} received; removing containers")
        return 0
    except containers.ContainerFailed as err:
        _say(str(err))
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for box in reversed(boxes):
            box.remove()


def main() -> int:
    try:
        return run()
    except (local_env.LocalEnvError, images.DirtyTreeError, RuntimeError) as err:
        _say(str(err))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
