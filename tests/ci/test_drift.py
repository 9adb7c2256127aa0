"""Drift reports with known noise dropped, and the one issue per environment."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest

from envctl.ci.comment import marker
from envctl.ci.drift import NoiseError, analyse, load_noise, sync
from envctl.ci.github import GitHub

from .conftest import REPO_ROOT, FakeServer, Route
from .fake_github import REPO, FakeGitHub
from .plans import BEFORE, IAM, SERVICE, image_update, plan, resource

Start = Callable[[Route], FakeServer]
NOISE = """
ignore:
  - address: 'module.services["*"].google_cloud_run_v2_service.this'
    attributes: [client, labels.commit]
    reason: stamped by gcloud and the console
  - address: 'google_project_iam_audit_config.*'
    reason: managed by the organisation
"""


def _client_only() -> dict[str, object]:
    after = copy.deepcopy(BEFORE)
    after["client"] = "gcloud"
    return resource(SERVICE, ["update"], BEFORE, after)


@pytest.fixture
def noise(tmp_path: Path) -> Path:
    path = tmp_path / "noise.yaml"
    path.write_text(NOISE)
    return path


def test_noise_alone_is_no_drift(noise: Path) -> None:
    report = analyse("prod", plan(_client_only()), load_noise(noise))
    assert not report.has_drift
    assert report.ignored == [(SERVICE, "client", "stamped by gcloud and the console")]


def test_real_changes_survive_the_noise_filter(noise: Path) -> None:
    audit = resource("google_project_iam_audit_config.x", ["delete"], {"a": 1}, None)
    report = analyse("prod", plan(image_update(), audit), load_noise(noise))
    assert [(d.address, d.attributes) for d in report.drifted] == [
        (SERVICE, ("template.containers[0].image",))
    ]
    assert (SERVICE, "labels.commit", "stamped by gcloud and the console") in report.ignored
    assert (
        "google_project_iam_audit_config.x",
        "(whole resource)",
        "managed by the organisation",
    ) in report.ignored


def test_the_issue_names_environment_resources_and_the_fix(noise: Path) -> None:
    iam = resource(IAM, ["create"], None, {"member": "group:ops"})
    report = analyse("prod", plan(image_update(), iam), load_noise(noise))
    body = report.body("https://run/9")
    assert report.title() == "Drift: prod differs from environments/prod.yaml"
    assert body.startswith(marker("drift", "prod"))
    assert f"| `+` create | `{IAM}` | (whole resource) |" in body
    assert "`template.containers[0].image`" in body
    assert "[this run](https://run/9)" in body


def test_issue_opened_updated_then_closed(http_server: Start, noise: Path) -> None:
    fake = FakeGitHub()
    github = GitHub(REPO, "t", http_server(fake.route).url)
    drifted = analyse("staging", plan(image_update()), load_noise(noise))
    action, number = sync(github, drifted)
    assert action == "opened"
    assert fake.issues[0]["labels"] == ["drift"]
    assert sync(github, drifted) == ("updated", number)
    # Another environment's drift is another issue.
    assert sync(github, analyse("prod", plan(image_update()), []))[0] == "opened"
    clean = analyse("staging", None, [])
    assert sync(github, clean, "https://run/10") == ("closed", number)
    assert sync(github, clean) == ("none", None)
    assert [i["state"] for i in fake.issues] == ["closed", "open"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ignore: {}", "must be a list"),
        ("ignore:\n  - address: x\n", "say why"),
        ("ignore:\n  - attributes: [a]\n    reason: r\n", "address"),
        ("ignore:\n  - address: x\n    attributes: a\n    reason: r\n", "list of strings"),
        ("ignore: [", "not YAML"),
    ],
)
def test_bad_noise_files_are_refused(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "noise.yaml"
    path.write_text(text)
    with pytest.raises(NoiseError, match=words):
        load_noise(path)


def test_the_committed_noise_file_loads() -> None:
    assert all(n.reason for n in load_noise(REPO_ROOT / ".github" / "drift-noise.yaml"))
