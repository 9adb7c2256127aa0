"""What a person sees on the dashboard, in Debian's headless Chromium driven
by Playwright (the system browser; Playwright never downloads one)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

from testkit.servers import TINY_FEED, Launcher, Stack
from testkit.zips import make_zip

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI containers run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(os.environ.get("CONSOLE_SCREENSHOT", "/tmp/console-dashboard.png"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Chromium logs every non-2xx fetch ("Failed to load resource"); the
        # tests assert what the page shows for those. Script errors count.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))

    # Offline, like a console without internet: only the console itself answers.
    def only_the_console(route: Route) -> None:
        if route.request.url.startswith(stack.console.url):
            route.continue_()
        else:
            problems.append(f"requested {route.request.url}")
            route.abort()

    page.route("**/*", only_the_console)
    page.goto(stack.console.url + "/")
    expect(page.locator("body")).to_have_attribute("data-loaded", "true")
    yield page
    context.close()
    assert problems == [], "the page logged errors"


def test_steps_and_dag_are_shown(page: Page, client: httpx.Client) -> None:
    steps = [s["name"] for s in client.get("/api/steps").json()["steps"]]
    dag = client.get("/api/dag").json()

    expect(page.locator("#steps .step-name")).to_have_text(steps)
    expect(page.locator("#health")).to_have_text("healthy")
    expect(page.locator("#pipeline-name")).to_have_text("metro_schedule")

    graph = page.locator("#dag svg")
    expect(graph).to_be_visible()
    expect(graph.locator("g.node")).to_have_count(len(dag["nodes"]))
    expect(graph.locator("path.edge")).to_have_count(len(dag["edges"]))
    drawn = {
        (e.get_attribute("data-source"), e.get_attribute("data-target"))
        for e in graph.locator("path.edge").all()
    }
    assert drawn == {(e["source"], e["target"]) for e in dag["edges"]}
    # Every edge points forward (left to right) in the layered layout.
    for edge in graph.locator("path.edge").all():
        d = edge.get_attribute("d") or ""
        numbers = [float(t.rstrip(",")) for t in d.replace("M", "").replace("C", "").split()]
        assert numbers[0] < numbers[-2], d


def test_a_run_started_from_the_form_appears_in_history(
    page: Page, client: httpx.Client, tmp_path: Path
) -> None:
    feed = tmp_path / "metro-feed.zip"
    feed.write_bytes(make_zip(TINY_FEED))

    page.set_input_files("#feed", str(feed))
    page.click("#upload-button")

    result = page.locator("#upload-result [data-run]")
    expect(result).to_be_visible(timeout=30_000)
    run_id = result.get_attribute("data-run")
    assert run_id
    expect(result.locator(".badge")).to_have_text("completed")

    row = page.locator(f'#runs tbody tr[data-run="{run_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text("metro-feed.zip")
    expect(row.locator(".badge")).to_have_text("completed")
    expect(row.locator("a.download")).to_have_attribute("href", f"/api/runs/{run_id}/output")

    # The new run is selected: its per-step results, and the DAG in its colours.
    detail = page.locator(f'#run-detail [data-run="{run_id}"]')
    expect(detail.locator(".step-results tbody tr")).to_have_count(5)
    expect(detail).to_contain_text("stops_merged")
    expect(detail).to_contain_text("stops.txt 4→3")
    expect(page.locator("#dag g.node.status-success")).to_have_count(5)

    assert client.get(f"/api/runs/{run_id}").json()["label"] == "metro-feed.zip"
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_a_bad_upload_shows_the_error(page: Page, tmp_path: Path) -> None:
    not_a_zip = tmp_path / "stops.txt"
    not_a_zip.write_text("stop_id\n1\n")
    page.set_input_files("#feed", str(not_a_zip))
    page.click("#upload-button")
    error = page.locator("#upload-result [data-error]")
    expect(error).to_have_attribute("data-error", "not_a_zip")
    expect(error).to_contain_text("not a zip")


def test_history_shows_runs_from_before_the_pipeline_restarted(
    browser: Browser, launch: Launcher, tmp_path: Path
) -> None:
    """The run store outlives the pipeline process: after kill -9 and a new start on
    the same store, the history page still lists the earlier runs and serves their zip."""
    pipeline = launch.pipeline()
    console = launch.console(pipeline.addr)
    with console.client() as client:
        before = client.post(
            "/api/runs",
            files={"feed": ("before-restart.zip", make_zip(TINY_FEED), "application/zip")},
        ).json()
    assert before["status"] == "completed"

    pipeline.signal(signal.SIGKILL)
    pipeline.popen.wait(10)  # type: ignore[union-attr]
    launch.restart(pipeline)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(console.url + "/")
        expect(page.locator("body")).to_have_attribute("data-loaded", "true")
        row = page.locator(f'#runs tbody tr[data-run="{before["run_id"]}"]')
        expect(row).to_be_visible(timeout=15_000)
        expect(row).to_contain_text("before-restart.zip")
        expect(row.locator(".badge")).to_have_text("completed")
        href = row.locator("a.download").get_attribute("href")
        with console.client() as client:
            download = client.get(href or "")
        assert download.status_code == 200
        assert len(download.content) == before["output_size"]
    finally:
        context.close()
