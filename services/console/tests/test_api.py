"""Every endpoint of the console against a real pipeline-server, and every
error the pipeline can answer mapped to the console's JSON error."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from pipeline.v1 import pipeline_pb2 as pb
from pipeline.v1 import pipeline_pb2_grpc as pb_grpc
from testkit.servers import (
    BROKEN_HIERARCHY,
    CONSOLE_CAP,
    PIPELINE_CAP,
    TINY_FEED,
    Stack,
    padded_zip,
)
from testkit.zips import make_zip

STEPS = [
    "init",
    "update_feed_info",
    "merge_stops",
    "remove_unused_stops",
    "validate_stop_hierarchy",
]


def upload(
    client: httpx.Client, data: bytes, name: str = "feed.zip", **form: Any
) -> httpx.Response:
    return client.post(
        "/api/runs", files={"feed": (name, data, "application/zip")}, data=form or None
    )


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return dict(body["error"])


@pytest.fixture(scope="module")
def completed_run(stack: Stack) -> dict[str, Any]:
    with stack.console.client() as client:
        response = upload(client, make_zip(TINY_FEED), name="tiny.zip")
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def pipeline_stub(stack: Stack) -> Iterator[pb_grpc.PipelineServiceStub]:
    with grpc.insecure_channel(stack.pipeline.addr) as channel:
        yield pb_grpc.PipelineServiceStub(channel)


# --- health ------------------------------------------------------------------


def test_healthz_reports_the_console_version(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "console-test-commit"}


def test_readyz_is_ready_when_the_pipeline_serves(client: httpx.Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "pipeline": "SERVING"}


# --- status, steps, DAG ------------------------------------------------------------


def test_status(client: httpx.Client) -> None:
    response = client.get("/api/status")
    assert response.status_code == 200
    status = response.json()
    assert status["healthy"] is True
    assert status["pipeline_name"] == "metro_schedule"
    assert status["step_count"] == len(STEPS)
    assert status["version"] == "pipeline-test-commit"
    assert status["console_version"] == "console-test-commit"
    assert status["framework_version"]
    assert status["active_runs"] == 0


def test_steps_in_execution_order(client: httpx.Client) -> None:
    response = client.get("/api/steps")
    assert response.status_code == 200
    steps = response.json()["steps"]
    assert [s["name"] for s in steps] == STEPS
    assert [s["index"] for s in steps] == list(range(len(STEPS)))
    by_name = {s["name"]: s for s in steps}
    assert by_name["init"]["type"] == "builtin"
    assert by_name["init"]["builtin_class"] == "InitScheduleOutput"
    assert by_name["merge_stops"]["type"] == "custom"
    assert by_name["merge_stops"]["builtin_class"] is None
    assert "stops.txt" in by_name["merge_stops"]["files"]


def test_dag_is_the_pipelines_reactflow_json_verbatim(
    client: httpx.Client, pipeline_stub: pb_grpc.PipelineServiceStub
) -> None:
    response = client.get("/api/dag")
    assert response.status_code == 200
    dag = response.json()
    assert dag == json.loads(pipeline_stub.GetDag(pb.GetDagRequest()).reactflow_json)
    assert {n["id"] for n in dag["nodes"]} == set(STEPS)
    for node in dag["nodes"]:
        assert {"id", "type", "builtin"} <= set(node)
        assert node["type"] in {"builtin", "custom"}
    assert dag["edges"], "metro_schedule's steps depend on each other"
    for edge in dag["edges"]:
        assert {"source", "target"} <= set(edge)


# --- runs ---------------------------------------------------------------------------


def test_a_run_completes_with_per_step_results(completed_run: dict[str, Any]) -> None:
    run = completed_run
    assert run["status"] == "completed"
    assert run["label"] == "tiny.zip"
    assert run["error"] is None
    assert run["input_size"] == len(make_zip(TINY_FEED))
    assert run["output_available"] is True
    assert run["output_url"] == f"/api/runs/{run['run_id']}/output"
    assert run["version"] == "pipeline-test-commit"
    assert run["started_at"]
    assert run["finished_at"]
    results = {r["step_name"]: r for r in run["step_results"]}
    assert list(results) == STEPS
    assert {r["status"] for r in results.values()} == {"success"}
    stops = {c["file"]: c for c in results["merge_stops"]["row_counts"]}["stops.txt"]
    assert (stops["rows_before"], stops["rows_after"]) == (4, 3)
    assert [f["code"] for f in results["merge_stops"]["findings"]] == ["stops_merged"]
    assert results["merge_stops"]["duration_ms"] >= 0


def test_run_history_and_one_run(client: httpx.Client, completed_run: dict[str, Any]) -> None:
    history = client.get("/api/runs")
    assert history.status_code == 200
    runs = history.json()["runs"]
    assert completed_run["run_id"] in [r["run_id"] for r in runs]
    one = client.get(f"/api/runs/{completed_run['run_id']}")
    assert one.status_code == 200
    assert one.json() == completed_run


def test_history_is_paged_newest_first(client: httpx.Client, tiny_feed: bytes) -> None:
    first = upload(client, tiny_feed, name="older.zip").json()["run_id"]
    second = upload(client, tiny_feed, name="newer.zip").json()["run_id"]
    page = client.get("/api/runs", params={"page_size": 1}).json()
    assert [r["run_id"] for r in page["runs"]] == [second]
    assert page["next_page_token"]
    page2 = client.get("/api/runs", params={"page_size": 1, "page_token": page["next_page_token"]})
    assert [r["run_id"] for r in page2.json()["runs"]] == [first]


def test_download_streams_the_output_zip(
    client: httpx.Client, completed_run: dict[str, Any]
) -> None:
    run_id = completed_run["run_id"]
    response = client.get(f"/api/runs/{run_id}/output")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == f'attachment; filename="{run_id}.zip"'
    assert len(response.content) == completed_run["output_size"]
    assert hashlib.sha256(response.content).hexdigest() == completed_run["output_sha256"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as zf:
        stops = zf.read("stops.txt").decode()
    assert "S4" not in stops, "the unused stop was removed"


def test_a_failing_step_fails_the_run_and_it_has_no_output(client: httpx.Client) -> None:
    response = upload(client, make_zip(BROKEN_HIERARCHY), name="broken.zip")
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "failed"
    assert run["error"]
    assert run["output_url"] is None
    statuses = {r["step_name"]: r["status"] for r in run["step_results"]}
    assert statuses["validate_stop_hierarchy"] == "failed"
    failed = next(r for r in run["step_results"] if r["status"] == "failed")
    assert failed["error"]
    assert any(f["severity"] == "error" for f in failed["findings"])
    download = client.get(f"/api/runs/{run['run_id']}/output")
    assert_error(download, 409, "failed_precondition")


def test_disabled_steps_are_skipped(client: httpx.Client, tiny_feed: bytes) -> None:
    response = upload(client, tiny_feed, disabled_steps=["remove_unused_stops"])
    assert response.status_code == 201, response.text
    statuses = {r["step_name"]: r["status"] for r in response.json()["step_results"]}
    assert statuses["remove_unused_stops"] == "skipped"


# --- errors: bad uploads (400) ----------------------------------------------------------


def test_upload_without_the_feed_field_is_400(client: httpx.Client, tiny_feed: bytes) -> None:
    response = client.post("/api/runs", files={"other": ("feed.zip", tiny_feed)})
    assert_error(response, 400, "missing_feed")
    assert_error(client.post("/api/runs"), 400, "missing_feed")


def test_upload_that_is_not_a_zip_is_400(client: httpx.Client) -> None:
    assert_error(upload(client, b"stop_id,stop_name\n1,a\n", "stops.txt"), 400, "not_a_zip")


def test_empty_upload_is_400(client: httpx.Client) -> None:
    assert_error(upload(client, b""), 400, "empty_feed")


def test_feed_sent_as_text_is_400(client: httpx.Client) -> None:
    response = client.post("/api/runs", data={"feed": "not a file"})
    error = assert_error(response, 400, "invalid_request")
    assert "feed" in error["message"]


def test_zip_that_is_not_gtfs_is_400_with_the_pipelines_message(client: httpx.Client) -> None:
    response = upload(client, make_zip({"readme.txt": "hello"}))
    error = assert_error(response, 400, "invalid_argument")
    assert error["message"].startswith("invalid feed:")


def test_unknown_disabled_step_is_400_with_the_pipelines_message(
    client: httpx.Client, tiny_feed: bytes
) -> None:
    response = upload(client, tiny_feed, disabled_steps=["no_such_step"])
    error = assert_error(response, 400, "invalid_argument")
    assert "no_such_step" in error["message"]


def test_bad_paging_is_400(client: httpx.Client) -> None:
    assert_error(client.get("/api/runs", params={"page_size": 0}), 400, "invalid_request")
    assert_error(client.get("/api/runs", params={"page_size": 101}), 400, "invalid_request")
    assert_error(client.get("/api/runs", params={"page_token": "garbage"}), 400, "invalid_argument")


# --- errors: unknown runs (404) -----------------------------------------------------------


def test_unknown_run_is_404(client: httpx.Client) -> None:
    assert_error(client.get("/api/runs/0123456789abcdef"), 404, "not_found")


def test_output_of_unknown_run_is_404_before_any_byte(client: httpx.Client) -> None:
    response = client.get("/api/runs/0123456789abcdef/output")
    assert_error(response, 404, "not_found")
    assert "content-disposition" not in response.headers


def test_unknown_path_and_method_are_json(client: httpx.Client) -> None:
    assert_error(client.get("/api/nothing"), 404, "not_found")
    assert_error(client.delete("/api/runs"), 405, "method_not_allowed")


# --- errors: too large (413) and busy (429) -------------------------------------------------


def test_upload_declared_over_the_console_cap_is_413_before_reading(client: httpx.Client) -> None:
    response = upload(client, padded_zip(CONSOLE_CAP + 256 * 1024))
    error = assert_error(response, 413, "upload_too_large")
    assert error["message"] == f"upload is larger than the limit of {CONSOLE_CAP} bytes"


def test_chunked_upload_over_the_console_cap_is_413(client: httpx.Client) -> None:
    # No Content-Length: the console counts bytes as they arrive.
    boundary = "testboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="feed"; filename="big.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + padded_zip(CONSOLE_CAP + 256 * 1024)
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    response = client.post(
        "/api/runs",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in response.request.headers
    error = assert_error(response, 413, "upload_too_large")
    assert error["message"] == f"upload is larger than the limit of {CONSOLE_CAP} bytes"


def test_file_just_over_the_console_cap_is_413(client: httpx.Client) -> None:
    # The body is within the multipart slack; the file itself is over.
    data = padded_zip(CONSOLE_CAP)
    assert CONSOLE_CAP < len(data) < CONSOLE_CAP + 16 * 1024
    error = assert_error(upload(client, data), 413, "upload_too_large")
    assert f"limit is {CONSOLE_CAP} bytes" in error["message"]


def test_upload_over_the_pipelines_cap_is_413_with_its_message(client: httpx.Client) -> None:
    # Repeated: the pipeline ends the upload while the console is still
    # writing, where grpc.aio can lose the status (grpc/grpc#36066; about one
    # upload in five before the console learned to ask again).
    data = padded_zip(PIPELINE_CAP + 1024)
    for _ in range(20):
        error = assert_error(upload(client, data), 413, "upload_too_large")
        assert f"limit {PIPELINE_CAP} bytes" in error["message"]


def test_busy_pipeline_is_429(
    client: httpx.Client, pipeline_stub: pb_grpc.PipelineServiceStub, tiny_feed: bytes
) -> None:
    # Hold the pipeline's only run slot with an upload that has not finished.
    release = threading.Event()

    def slow_upload() -> Iterator[pb.RunPipelineRequest]:
        yield pb.RunPipelineRequest(options=pb.RunOptions(label="slot holder"))
        release.wait(30)
        yield pb.RunPipelineRequest(chunk=tiny_feed)

    holder = pipeline_stub.RunPipeline.future(slow_upload(), timeout=60)
    try:
        deadline = time.monotonic() + 10
        while client.get("/api/status").json()["active_runs"] < 1:
            assert time.monotonic() < deadline, "the slot holder never started"
            time.sleep(0.05)
        error = assert_error(upload(client, tiny_feed), 429, "pipeline_busy")
        assert "in progress" in error["message"]
    finally:
        release.set()
    assert holder.result().status == pb.RUN_STATUS_COMPLETED


# --- OpenAPI and the page -------------------------------------------------------------------

CONTRACT = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/status"),
    ("get", "/api/steps"),
    ("get", "/api/dag"),
    ("post", "/api/runs"),
    ("get", "/api/runs"),
    ("get", "/api/runs/{run_id}"),
    ("get", "/api/runs/{run_id}/output"),
    ("get", "/"),
}


def test_openapi_documents_every_endpoint_and_its_errors(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    operations = {
        (method, path): op for path, ops in schema["paths"].items() for method, op in ops.items()
    }
    assert set(operations) >= CONTRACT
    error_ref = "#/components/schemas/ErrorBody"
    for (method, path), op in operations.items():
        responses = op["responses"]
        assert "422" not in responses, f"{method} {path} documents FastAPI's 422"
        if path.startswith("/api/") or path == "/readyz":
            assert "503" in responses, f"{method} {path}"
        for status, documented in responses.items():
            if status.startswith(("4", "5")):
                ref = documented["content"]["application/json"]["schema"]["$ref"]
                assert ref == error_ref, f"{method} {path} {status}"
    post_runs = operations[("post", "/api/runs")]["responses"]
    assert {"201", "400", "413", "429", "503"} <= set(post_runs)
    assert "404" in operations[("get", "/api/runs/{run_id}")]["responses"]
    assert "404" in operations[("get", "/api/runs/{run_id}/output")]["responses"]
    form = operations[("post", "/api/runs")]["requestBody"]["content"]["multipart/form-data"]
    body = schema["components"]["schemas"][form["schema"]["$ref"].rsplit("/", 1)[1]]
    assert body["required"] == ["feed"]
    feed = body["properties"]["feed"]
    assert feed["type"] == "string"
    assert feed.get("format") == "binary" or "contentMediaType" in feed
    run = schema["components"]["schemas"]["Run"]["properties"]
    assert run["status"]["enum"] == ["completed", "failed", "running"]


def test_dashboard_is_served_from_the_package_without_external_assets(
    client: httpx.Client,
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js">' in page.text
    assets = [page.text]
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = client.get(asset)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assets.append(response.text)
    for text in assets:
        # Offline: no CDN, no web fonts, nothing fetched from elsewhere.
        for marker in ("http://", "https://", "//cdn", "@import"):
            assert marker not in text.replace("http://www.w3.org/2000/svg", ""), marker


def test_console_logs_one_json_object_per_line_and_no_errors(
    stack: Stack, client: httpx.Client
) -> None:
    client.get("/healthz")
    lines = [line for line in stack.console.log().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"severity", "message", "time"} <= set(entry)
        # Client mistakes and pipeline answers are not console errors.
        assert entry["severity"] not in {"ERROR", "CRITICAL"}, entry
