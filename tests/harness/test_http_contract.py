"""The console's HTTP API against the running stack: every endpoint, each
response checked against the console's own OpenAPI schema."""

from __future__ import annotations

import hashlib

import httpx
import pytest
import schemathesis
from schemathesis.schemas import BaseSchema

from harness import feeds

pytestmark = pytest.mark.docker

TIMEOUT = 60


@pytest.fixture
def api(console_url: str) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{console_url}/openapi.json")


def _checked(api: BaseSchema, method: str, path: str, response: httpx.Response) -> httpx.Response:
    """Fail unless `response` matches what the schema declares for method+path+status."""
    operation = api[path][method]
    # Multipart bodies are streamed by httpx; the validator reads the request too.
    response.request.read()
    operation.validate_response(response)
    declared = set(operation.definition.raw["responses"])
    assert str(response.status_code) in declared, (response.status_code, declared)
    return response


def _upload(console_url: str, feed: bytes, **data: object) -> httpx.Response:
    return httpx.post(
        f"{console_url}/api/runs",
        files={"feed": ("feed.zip", feed, "application/zip")},
        data=data,
        timeout=TIMEOUT,
    )


def test_health_and_readiness(api: BaseSchema, console_url: str) -> None:
    assert _checked(api, "GET", "/healthz", httpx.get(f"{console_url}/healthz")).status_code == 200
    ready = _checked(api, "GET", "/readyz", httpx.get(f"{console_url}/readyz", timeout=TIMEOUT))
    assert ready.status_code == 200


@pytest.mark.parametrize("path", ["/api/status", "/api/steps", "/api/dag", "/api/runs"])
def test_reads(api: BaseSchema, console_url: str, path: str) -> None:
    response = _checked(api, "GET", path, httpx.get(f"{console_url}{path}", timeout=TIMEOUT))
    assert response.status_code == 200


def test_dag_is_reactflow_json(console_url: str) -> None:
    dag = httpx.get(f"{console_url}/api/dag", timeout=TIMEOUT).json()
    for node in dag["nodes"]:
        assert node["type"] in ("builtin", "custom")
        assert (node["builtin"] is None) == (node["type"] == "custom")
    assert all({"source", "target"} <= set(edge) for edge in dag["edges"])


def test_a_run_through_the_console(api: BaseSchema, console_url: str) -> None:
    feed = feeds.feed()
    created = _checked(api, "POST", "/api/runs", _upload(console_url, feed))
    assert created.status_code == 201, created.text
    run = created.json()
    assert run["status"] == "completed", run
    assert {r["status"] for r in run["step_results"]} == {"success"}
    one = _checked(
        api, "GET", "/api/runs/{run_id}", httpx.get(f"{console_url}/api/runs/{run['run_id']}")
    )
    assert one.json()["run_id"] == run["run_id"]
    listed = httpx.get(f"{console_url}/api/runs", params={"page_size": 5}, timeout=TIMEOUT)
    assert run["run_id"] in {
        r["run_id"] for r in _checked(api, "GET", "/api/runs", listed).json()["runs"]
    }
    output = httpx.get(f"{console_url}/api/runs/{run['run_id']}/output", timeout=TIMEOUT)
    _checked(api, "GET", "/api/runs/{run_id}/output", output)
    assert output.status_code == 200
    assert output.headers["content-type"] == "application/zip"
    assert output.content[:4] == b"PK\x03\x04"
    assert hashlib.sha256(output.content).hexdigest() == run["output_sha256"]


def test_a_failed_run_and_its_missing_output(api: BaseSchema, console_url: str) -> None:
    created = _checked(
        api, "POST", "/api/runs", _upload(console_url, feeds.feed(broken_hierarchy=True))
    )
    assert created.status_code == 201
    run = created.json()
    assert run["status"] == "failed"
    assert "failed" in {r["status"] for r in run["step_results"]}
    output = httpx.get(f"{console_url}/api/runs/{run['run_id']}/output", timeout=TIMEOUT)
    assert _checked(api, "GET", "/api/runs/{run_id}/output", output).status_code == 409


@pytest.mark.parametrize(
    ("case", "files", "data", "status"),
    [
        ("no feed field", None, {"x": "1"}, 400),
        ("empty feed", {"feed": ("f.zip", b"", "application/zip")}, {}, 400),
        ("not a zip", {"feed": ("f.zip", b"hello world", "application/zip")}, {}, 400),
        ("unknown step disabled", "feed", {"disabled_steps": "no_such_step"}, 400),
    ],
)
def test_bad_uploads_are_400_with_an_error_body(
    api: BaseSchema,
    console_url: str,
    case: str,
    files: object,
    data: dict[str, str],
    status: int,
) -> None:
    if files == "feed":
        files = {"feed": ("f.zip", feeds.feed(), "application/zip")}
    response = httpx.post(f"{console_url}/api/runs", files=files, data=data, timeout=TIMEOUT)  # type: ignore[arg-type]
    _checked(api, "POST", "/api/runs", response)
    assert response.status_code == status, (case, response.text)
    body = response.json()["error"]
    assert body["code"]
    assert body["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/runs/no-such-run", 404),
        ("/api/runs/no-such-run/output", 404),
        ("/api/runs?page_size=0", 400),
        ("/api/runs?page_token=forged", 400),
    ],
)
def test_bad_reads(api: BaseSchema, console_url: str, path: str, status: int) -> None:
    response = httpx.get(f"{console_url}{path}", timeout=TIMEOUT)
    template = path.split("?")[0].replace("no-such-run", "{run_id}")
    _checked(api, "GET", template, response)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) >= {"code", "message"}


def test_dashboard_is_self_contained_html(api: BaseSchema, console_url: str) -> None:
    page = _checked(api, "GET", "/", httpx.get(f"{console_url}/", timeout=TIMEOUT))
    assert page.headers["content-type"].startswith("text/html")
    # Offline: nothing fetched from another origin.
    assert "https://" not in page.text
    assert "http://" not in page.text
