"""Gradual rollout: the steps, their variables, and running them with smoke checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from envctl.ci.rollout import (
    canary_reaches_pipeline,
    execute,
    expected_commits,
    service_url,
    step_variables,
    steps,
    tagged_url,
)
from envctl.ci.smoke import Check, SmokeReport
from envctl.load import load_environment
from envctl.model import Environment
from envctl.render import render

from .conftest import EditEnv

URL = "https://console-123456789.europe-west1.run.app"


def _with_rollout(repo: Path, edit_env: EditEnv, *services: str) -> Environment:
    def change(doc: Any) -> None:
        for name in services:
            doc["services"][name]["rollout"] = {
                "canary_percent": 10,
                "stable_revision": f"{name}-00041-abc",
            }

    edit_env(repo, "staging", change)
    return load_environment(repo, "staging")


def test_no_rollout_no_steps(env_repo: Path) -> None:
    assert steps(load_environment(env_repo, "staging")) == []


def test_zero_first_then_exactly_what_was_rendered(env_repo: Path, edit_env: EditEnv) -> None:
    env = _with_rollout(env_repo, edit_env, "console")
    first, last = steps(env)
    assert (first.percents, first.final) == ({"console": 0}, False)
    assert (last.percents, last.final) == ({"console": 10}, True)
    rendered = render(env)
    zero = step_variables(env, rendered, first)["services"]["console"]["traffic"]
    assert [(t["percent"], t["tag"], t["revision"]) for t in zero] == [
        (0, "canary", None),
        (100, "stable", "console-00041-abc"),
    ]
    assert step_variables(env, rendered, last) == rendered
    # Step 0 changes the traffic and nothing else.
    assert {k: v for k, v in step_variables(env, rendered, first).items() if k != "services"} == {
        k: v for k, v in rendered.items() if k != "services"
    }
    assert rendered["services"]["console"]["traffic"][0]["percent"] == 10


def test_tagged_url() -> None:
    assert tagged_url(URL, "canary") == "https://canary---console-123456789.europe-west1.run.app"
    with pytest.raises(ValueError, match="not a URL"):
        tagged_url("console", "canary")


@pytest.mark.parametrize(
    "outputs",
    [
        {"service_urls": {"value": {"console": URL}}},
        {"service_uris": {"value": {"console": URL}}},
        {"services": {"value": {"console": {"uri": URL}}}},
        {"console_url": {"value": URL}},
    ],
)
def test_service_url_from_stack_outputs(outputs: dict[str, Any]) -> None:
    assert service_url(outputs, "console") == URL


def test_service_url_names_what_it_expected() -> None:
    with pytest.raises(KeyError, match="service_urls"):
        service_url({"registry": {"value": "x"}}, "console")


def test_split_services_are_not_held_to_one_commit(env_repo: Path, edit_env: EditEnv) -> None:
    env = _with_rollout(env_repo, edit_env, "pipeline")
    first, _ = steps(env)
    assert set(expected_commits(env, first, via_canary_url=False)) == {"console"}
    assert set(expected_commits(env, None, via_canary_url=False)) == {"console", "pipeline"}


class Recorder:
    def __init__(self, fail_at: int | None = None) -> None:
        self.commands: list[list[str]] = []
        self.smoked: list[tuple[str, dict[str, str]]] = []
        self.fail_at = fail_at

    def run(self, args: Sequence[str]) -> str:
        self.commands.append(list(args))
        return ""

    def smoke(self, url: str, expect: dict[str, str]) -> SmokeReport:
        self.smoked.append((url, expect))
        ok = len(self.smoked) - 1 != self.fail_at
        return SmokeReport(url, [Check("/readyz", ok, "ok" if ok else "HTTP 503")])


def test_each_step_is_applied_then_smoke_checked(
    env_repo: Path, edit_env: EditEnv, tmp_path: Path
) -> None:
    env = _with_rollout(env_repo, edit_env, "console")
    rec = Recorder()
    results = execute(env, render(env), Path("modules/stack"), tmp_path, URL, rec.smoke, rec.run)
    assert [r.report.ok for r in results] == [True, True]
    assert [c[:4] for c in rec.commands] == [
        ["tofu", "-chdir=modules/stack", "apply", "-input=false"]
    ] * 2
    files = [Path(c[-1].removeprefix("-var-file=")) for c in rec.commands]
    traffic = [
        json.loads(f.read_text())["services"]["console"]["traffic"][0]["percent"] for f in files
    ]
    assert traffic == [0, 10]
    # The console's canary is checked at its tag URL while it has no traffic.
    assert [url for url, _ in rec.smoked] == [tagged_url(URL, "canary"), URL]
    console_sha = env.image("console").commit
    assert rec.smoked[0][1]["console"] == console_sha
    assert "console" not in rec.smoked[1][1]  # 10/90 split: either revision may answer


def test_a_failed_smoke_check_stops_the_rollout(
    env_repo: Path, edit_env: EditEnv, tmp_path: Path
) -> None:
    env = _with_rollout(env_repo, edit_env, "console", "pipeline")
    rec = Recorder(fail_at=0)
    results = execute(env, render(env), Path("stack"), tmp_path, URL, rec.smoke, rec.run)
    assert len(results) == 1
    assert not results[0].report.ok
    assert len(rec.commands) == 1  # traffic never moved to the canary


def test_step_0_points_the_console_canary_at_the_pipeline_canary(
    env_repo: Path, edit_env: EditEnv
) -> None:
    env = _with_rollout(env_repo, edit_env, "console", "pipeline")
    first, last = steps(env)
    rendered = render(env)
    zero = step_variables(env, rendered, first)["services"]["console"]["url_env"]
    assert zero["PIPELINE_ADDR"] == {"service": "pipeline", "form": "canary_address"}
    # The audience stays the pipeline's URL: its token check and run.invoker expect it.
    assert zero["PIPELINE_AUDIENCE"] == {"service": "pipeline", "form": "url"}
    assert rendered["services"]["console"]["url_env"]["PIPELINE_ADDR"]["form"] == "address"
    assert step_variables(env, rendered, last) == rendered
    assert canary_reaches_pipeline(env)


def test_a_console_alone_reaches_the_new_pipeline_without_repointing(
    env_repo: Path, edit_env: EditEnv
) -> None:
    env = _with_rollout(env_repo, edit_env, "console")
    first, _ = steps(env)
    zero = step_variables(env, render(env), first)["services"]["console"]["url_env"]
    assert zero["PIPELINE_ADDR"]["form"] == "address"  # the pipeline takes 100 % at once
    assert canary_reaches_pipeline(env)


def test_a_pipeline_rolled_out_alone_is_out_of_the_canary_s_reach(
    env_repo: Path, edit_env: EditEnv
) -> None:
    env = _with_rollout(env_repo, edit_env, "pipeline")
    assert not canary_reaches_pipeline(env)


def test_the_data_canary_runs_at_step_0_through_the_console_tag_url(
    env_repo: Path, edit_env: EditEnv, tmp_path: Path
) -> None:
    env = _with_rollout(env_repo, edit_env, "console", "pipeline")
    rec = Recorder()
    verified: list[str] = []

    def verify(url: str) -> bool:
        verified.append(url)
        return True

    results = execute(env, render(env), Path("stack"), tmp_path, URL, rec.smoke, rec.run, verify)
    assert verified == [tagged_url(URL, "canary")]  # once, before any traffic moved
    assert [r.canary for r in results] == [True, None]
    assert all(r.ok for r in results)


def test_a_disagreeing_canary_stops_the_rollout_before_traffic(
    env_repo: Path, edit_env: EditEnv, tmp_path: Path
) -> None:
    env = _with_rollout(env_repo, edit_env, "console", "pipeline")
    rec = Recorder()
    results = execute(
        env, render(env), Path("stack"), tmp_path, URL, rec.smoke, rec.run, lambda url: False
    )
    assert len(results) == 1
    assert results[0].report.ok  # the smoke check passed; the data did not
    assert not results[0].ok
    assert len(rec.commands) == 1  # step 1 (traffic) was never applied


def test_rollout_refuses_a_canary_it_cannot_run_before_applying_anything(
    env_repo: Path, edit_env: EditEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from envctl.ci.__main__ import main

    _with_rollout(env_repo, edit_env, "pipeline")
    rendered = tmp_path / "vars.json"
    rendered.write_text(json.dumps(render(load_environment(env_repo, "staging"))))
    args = ["rollout", "staging", "--stack", str(tmp_path / "no-stack"), "--vars", str(rendered)]
    args += ["--console-url", URL, "--workdir", str(tmp_path), "--canary-report", "c.json"]
    assert main([*args, "--repo", str(env_repo)]) == 1
    assert "cannot reach the new pipeline during this rollout" in capsys.readouterr().err
    assert not list(tmp_path.glob("*rollout-step*"))  # no step was even written
