"""The local environment in containers: `make up`, which runs `harness-up local`.

envctl only reads and writes environment files; starting containers is the
harness's job (dependencies point one way: harness uses envctl, never back).

Builds (or reuses) both images at the current commit — a dirty tree is accepted
here and only here — starts the services callee first with the ports and env vars
envctl resolves from the environment file (the console gets the pipeline's
address), waits for each startup probe, prints the console URL and stays in the
foreground following the logs. Ctrl-C (SIGINT) or SIGTERM removes the
containers; so does any container exiting on its own. When the file's
``telemetry.export`` is ``otlp``, the harness's OTLP receiver (harness.telemetry)
runs beside them for as long, and its page shows their traces and metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

from envctl.errors import EnvctlError
from envctl.model import Environment
from harness import containers, images, local_env, telemetry


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


def _start_all(
    env: Environment, build: images.Build, stack_id: str, boxes: list[containers.ServiceContainer]
) -> None:
    # The tag, not the bare commit: a dirty tree reports "<sha>-dirty" as its version.
    for svc in local_env.docker_services(env, image_commit=build.tag):
        if svc.name not in build.images:
            raise EnvctlError(f"{env.file}: services.{svc.name}: no image is built for it")
        box = containers.start_service(
            svc.name,
            build.ref(svc.name),
            stack_id,
            svc.port,
            svc.env,
            svc.probe,
            svc.ready_within_s,
            svc.data_dir,
        )
        boxes.append(box)
        kept = f" (run store in {svc.data_dir})" if svc.data_dir else ""
        _say(f"{svc.name} ready on {box.addr}{kept}")


@contextlib.contextmanager
def _receiver(env: Environment) -> Iterator[None]:
    """The local OTLP receiver while the containers run, when the file exports otlp."""
    if (env.data.get("telemetry") or {}).get("export") != "otlp":
        yield
        return
    try:
        receiver = telemetry.Receiver()
    except OSError as exc:  # another make up holds the port: its receiver gets the data
        _say(f"telemetry: not collecting here ({exc})")
        yield
        return
    with receiver:
        _say(f"telemetry: traces and metrics at {receiver.url} (OTLP on {receiver.endpoint})")
        yield


def run(env: Environment | None = None) -> int:
    """Run the docker environment `env` (default: environments/local.yaml) until stopped."""
    env = env or local_env.load()
    started = time.monotonic()
    build = images.build(allow_dirty=True)
    for image in build.images.values():
        _say(f"image {image.ref} ({'reused' if image.reused else 'built'})")
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    boxes: list[containers.ServiceContainer] = []
    collecting = _receiver(env)
    try:
        collecting.__enter__()
        _start_all(env, build, containers.new_stack_id(), boxes)
        for box in boxes:
            threading.Thread(target=_follow, args=(box,), daemon=True).start()
        _say(f"ready in {time.monotonic() - started:.1f}s")
        console = next((b for b in boxes if b.service == "console"), None)
        if console is not None:
            _say(f"console: {console.url}/   (Ctrl-C stops and removes the containers)")
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
        collecting.__exit__(None, None, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="harness-up", description="Run a docker environment in the foreground (make up)."
    )
    parser.add_argument("env", metavar="ENV", nargs="?", default="local", help="default: local")
    args = parser.parse_args(argv)
    try:
        env = local_env.load(args.env)
        if env.is_cloud:
            raise EnvctlError(
                f"{env.file}: platform: {env.name} runs on cloudrun; harness-up starts docker "
                f"environments only (try: harness-up local). Cloud environments deploy "
                f"through OpenTofu from: envctl render {env.name}"
            )
        return run(env)
    except (EnvctlError, images.DirtyTreeError, RuntimeError) as err:
        _say(str(err))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
