"""`python -m testkit.gcs_emulator --port N`: gcp-storage-emulator, plus the
generation preconditions real Cloud Storage enforces and the emulator ignores.

The emulator (2026.7.19) accepts `ifGenerationMatch` / `ifGenerationNotMatch` and
does nothing with them: an upload with `if_generation_match=0` ("create, never
overwrite") silently overwrites, a delete with a stale generation deletes. The
run store relies on exactly that precondition, so this entry point checks both
on every object write and delete and answers 412 `conditionNotMet` as GCS does
(google-cloud-storage raises `google.api_core.exceptions.PreconditionFailed`).
A resumable upload is checked when its session is created and again when its
last chunk lands. Everything else is the emulator, unchanged.

`--no-preconditions` runs the emulator exactly as published (for the test that
shows the gap). Storage is in memory unless `--data-dir` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import urllib.parse
from http import HTTPStatus
from typing import Any

from gcp_storage_emulator import server as emulator  # type: ignore[import-untyped]
from gcp_storage_emulator.exceptions import NotFound  # type: ignore[import-untyped]
from gcp_storage_emulator.storage import Storage  # type: ignore[import-untyped]

CONDITIONS = ("ifGenerationMatch", "ifGenerationNotMatch")
_request = threading.local()
# Resumable upload id -> the preconditions its session was created with.
_sessions: dict[str, dict[str, int]] = {}


class ConditionNotMet(Exception):
    """A generation precondition of the current request does not hold."""


def _conditions_of(path: str) -> dict[str, int]:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return {name: int(query[name][0]) for name in CONDITIONS if name in query}


def _check(storage: Any, bucket: str, name: str, conditions: dict[str, int]) -> None:
    try:
        generation = int(storage.get_file_obj(bucket, name).get("generation") or 0)
    except NotFound:
        generation = 0  # what GCS compares against for an absent object
    match = conditions.get("ifGenerationMatch")
    not_match = conditions.get("ifGenerationNotMatch")
    if (match is not None and generation != match) or (
        not_match is not None and generation == not_match
    ):
        raise ConditionNotMet(
            f"{bucket}/{name}: generation {generation} does not satisfy {conditions}"
        )


def _current() -> dict[str, int]:
    conditions: dict[str, int] = getattr(_request, "conditions", {})
    return conditions


def install_preconditions() -> None:
    """Patch the emulator's Storage and Router (in this process only)."""
    create_file = Storage.create_file
    create_resumable = Storage.create_resumable_upload
    delete_file = Storage.delete_file
    handle = emulator.Router.handle

    def checked_create_file(
        self: Any, bucket: str, name: str, content: bytes, obj: Any, file_id: Any = None
    ) -> Any:
        conditions = _sessions.pop(file_id, {}) if file_id else _current()
        if conditions:
            _check(self, bucket, name, conditions)
        return create_file(self, bucket, name, content, obj, file_id)

    def checked_create_resumable(self: Any, bucket: str, name: str, obj: Any) -> Any:
        conditions = _current()
        if conditions:
            _check(self, bucket, name, conditions)
        file_id = create_resumable(self, bucket, name, obj)
        if conditions:
            _sessions[file_id] = conditions
        return file_id

    def checked_delete_file(self: Any, bucket: str, name: str) -> Any:
        if conditions := _current():
            _check(self, bucket, name, conditions)
        return delete_file(self, bucket, name)

    def handle_with_conditions(self: Any, method: str) -> None:
        _request.conditions = _conditions_of(self._request_handler.path)
        try:
            handle(self, method)
        except ConditionNotMet as err:
            response = emulator.Response(self._request_handler)
            response.status = HTTPStatus.PRECONDITION_FAILED
            error = {
                "code": 412,
                "message": str(err),
                "errors": [{"reason": "conditionNotMet", "message": str(err), "domain": "global"}],
            }
            response.json({"error": error})
            response.close()
        finally:
            _request.conditions = {}

    Storage.create_file = checked_create_file
    Storage.create_resumable_upload = checked_create_resumable
    Storage.delete_file = checked_delete_file
    emulator.Router.handle = handle_with_conditions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.gcs_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", help="keep objects on disk here (default: in memory)")
    parser.add_argument("--no-preconditions", action="store_true", help="the emulator as is")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL)
    if not args.no_preconditions:
        install_preconditions()
    server = emulator.create_server(
        args.host, args.port, in_memory=args.data_dir is None, data_dir=args.data_dir
    )
    print(json.dumps({"listening": f"http://{args.host}:{args.port}"}), flush=True)  # noqa: T201
    server.run()  # until SIGINT; SIGTERM/SIGKILL end the process anyway
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
