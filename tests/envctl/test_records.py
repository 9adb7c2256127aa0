"""envctl record and the deploy records it writes, in real temporary git repositories:
what a record holds, every refusal, and how reading treats a tag that is not a record."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl import records
from envctl.ci.__main__ import main as ci_main
from envctl.ci.drift import pending
from envctl.errors import EnvctlError
from envctl.history import Ledger
from envctl.records import SCHEMA, RecordError, parse_record, read_records

Cli = Callable[..., Any]
Git = Callable[..., str]
SHA = "5d1a7c3e9b2f4a6c8e0d1f3a5c7e9b2d4f6a8c0e"
DIGEST = "sha256:" + "a1" * 32


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    records._warned.clear()


def _record(cli: Cli, repo: Path, *extra: str, name: str = "dev") -> Any:
    return cli("--repo", repo, "record", name, *extra)


def test_a_record_is_an_annotated_tag_with_the_release_as_json(
    env_repo: Path, cli: Cli, run_git: Git
) -> None:
    made = _record(cli, env_repo, "--result", "succeeded", "--run-url", "https://ci/1")
    assert made.status == 0, made.err
    assert made.out == "deploy/dev/20260610T100000Z\n"
    head = run_git(env_repo, "rev-parse", "HEAD").strip()
    kind = run_git(env_repo, "cat-file", "-t", "deploy/dev/20260610T100000Z").strip()
    assert kind == "tag"
    assert run_git(env_repo, "rev-parse", "deploy/dev/20260610T100000Z^{commit}").strip() == head
    body = json.loads(
        run_git(env_repo, "tag", "-l", "--format=%(contents)", "deploy/dev/20260610T100000Z")
    )
    assert body["schema"] == SCHEMA
    assert body["environment"] == "dev"
    assert body["result"] == "succeeded"
    assert body["time"] == "2026-06-10T10:00:00Z"
    assert body["commit"] == head
    assert body["release"] == head  # the only commit that touched dev.yaml
    assert body["run_url"] == "https://ci/1"
    assert body["verification"] == []
    assert set(body["services"]) == {"pipeline", "console"}
    assert len(body["state_sha256"]) == len(body["render_sha256"]) == 64
    [found] = read_records(env_repo, "dev")
    assert found.succeeded
    assert found.commit == head


def test_record_refusals_change_nothing(
    env_repo: Path, cli: Cli, run_git: Git, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad_result = _record(cli, env_repo, "--result", "passed")
    assert bad_result.status == 1
    assert bad_result.err == "--result 'passed': must be succeeded or failed\n"
    missing = _record(cli, env_repo, "--result", "failed", "--evidence", str(tmp_path / "no.json"))
    assert missing.status == 1
    assert "no.json: cannot read the evidence file" in missing.err
    kindless = tmp_path / "kindless.json"
    kindless.write_text('{"ok": true}')
    unnamed = _record(cli, env_repo, "--result", "failed", "--evidence", str(kindless))
    assert unnamed.status == 1
    assert "kindless.json: kind: say what this evidence is" in unnamed.err
    dev = env_repo / "environments" / "dev.yaml"
    dev.write_text(dev.read_text() + "# not committed\n")
    dirty = _record(cli, env_repo, "--result", "failed")
    assert dirty.status == 1
    assert dirty.err.startswith("environments/dev.yaml: uncommitted changes; a record says")
    run_git(env_repo, "checkout", "--", "environments/dev.yaml")
    assert run_git(env_repo, "tag", "-l") == ""
    assert _record(cli, env_repo, "--result", "failed").status == 0
    twice = _record(cli, env_repo, "--result", "succeeded")
    assert twice.status == 1
    assert "refs/tags/deploy/dev/20260610T100000Z: exists already" in twice.err
    assert [r.result for r in read_records(env_repo, "dev")] == ["failed"]


def test_evidence_from_files_and_a_folder(env_repo: Path, cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    folder.mkdir()
    (folder / "b-smoke.json").write_text(json.dumps({"kind": "smoke", "ok": True}))
    (folder / "a-canary.json").write_text(json.dumps({"kind": "data-canary", "ok": True}))
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"kind": "metrics", "ok": True}))
    made = _record(
        cli, env_repo, "--result", "succeeded", "--evidence", str(metrics),
        "--evidence-dir", str(folder), "--json",
    )  # fmt: skip
    assert made.status == 0, made.err
    assert [e["kind"] for e in json.loads(made.out)["verification"]] == [
        "metrics",
        "data-canary",
        "smoke",
    ]
    absent = _record(cli, env_repo, "--result", "failed", "--evidence-dir", str(tmp_path / "x"))
    assert absent.status == 1  # the same second: the folder was fine, the tag exists
    assert "exists already" in absent.err


def _message(**changes: Any) -> str:
    record = {
        "schema": SCHEMA,
        "environment": "dev",
        "result": "succeeded",
        "time": "2026-06-10T10:00:00Z",
        "commit": "c" * 40,
        "release": "d" * 40,
        "state_sha256": "e" * 64,
        "render_sha256": "f" * 64,
        "services": {"pipeline": {"commit": SHA, "digest": DIGEST}},
        "run_url": None,
        "verification": [],
    }
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


@pytest.mark.parametrize(
    ("tag", "message", "words"),
    [
        ("deploy/dev/2026-06-10", _message(), "the name is not deploy/ENV/YYYYMMDDTHHMMSSZ"),
        ("deploy/dev/20260610T100000Z", "succeeded", "the message is not a JSON record"),
        ("deploy/dev/20260610T100000Z", "[]", "is not a envctl.deploy-record/v1 record"),
        ("deploy/dev/20260610T100000Z", _message(environment="prod"), "environment: must be 'dev'"),
        (
            "deploy/dev/20260610T100000Z",
            _message(result="ok"),
            "result: must be succeeded or failed",
        ),
        ("deploy/dev/20260610T100001Z", _message(), "is not the time in the tag's name"),
        ("deploy/dev/20260610T100000Z", _message(commit="b" * 40), "must be the tagged commit"),
        ("deploy/dev/20260610T100000Z", _message(release="HEAD"), "release: must be a SHA"),
        ("deploy/dev/20260610T100000Z", _message(services={}), "services: must be a mapping"),
        ("deploy/dev/20260610T100000Z", _message(services={"p": "x"}), "services.p: must be"),
        ("deploy/dev/20260610T100000Z", _message(verification=[{}]), "verification[0]: must be"),
        ("deploy/dev/20260610T100000Z", _message(state_sha256=...), "state_sha256: must be hex"),
    ],
)
def test_a_malformed_record_says_what_is_wrong(tag: str, message: str, words: str) -> None:
    with pytest.raises(RecordError, match=None) as caught:
        parse_record(tag, "c" * 40, message)
    assert words in str(caught.value)


def test_a_signed_tag_keeps_its_record(env_repo: Path) -> None:
    signed = _message() + "\n-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
    assert parse_record("deploy/dev/20260610T100000Z", "c" * 40, signed).succeeded


def test_pending_reasons_come_from_the_records(
    env_repo: Path, cli: Cli, run_git: Git, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pending(env_repo, "dev") == "dev has no deploy record yet"
    assert _record(cli, env_repo, "--result", "failed").status == 0
    assert pending(env_repo, "dev") is not None
    assert "the last deploy (" in str(pending(env_repo, "dev"))
    assert "failed" in str(pending(env_repo, "dev"))
    monkeypatch.setenv("ENVCTL_NOW", "2026-06-10T10:05:00Z")
    assert _record(cli, env_repo, "--result", "succeeded").status == 0
    assert pending(env_repo, "dev") is None
    (env_repo / "modules" / "stack").mkdir(parents=True)
    (env_repo / "modules" / "stack" / "main.tf").write_text("# new\n")
    run_git(env_repo, "add", "--all")
    run_git(env_repo, "commit", "--quiet", "-m", "stack")
    assert str(pending(env_repo, "dev")).startswith("modules/ changed since the last deploy")


def test_failed_names_the_environments_whose_deploy_of_a_commit_failed(
    env_repo: Path, cli: Cli, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert _record(cli, env_repo, "--result", "succeeded").status == 0
    assert _record(cli, env_repo, "--result", "failed", name="staging").status == 0
    capsys.readouterr()
    assert ci_main(["failed", "--repo", str(env_repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["staging"]
    monkeypatch.setenv("ENVCTL_NOW", "2026-06-10T10:05:00Z")
    assert _record(cli, env_repo, "--result", "succeeded", name="staging").status == 0
    assert ci_main(["failed", "--repo", str(env_repo), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_set_image_forms_and_their_errors(env_repo: Path, cli: Cli, run_git: Git) -> None:
    def set_image(*argv: str) -> Any:
        return cli("--repo", env_repo, "set-image", *argv)

    cases = [
        (("dev", "pipeline"), "give --commit SHA, or pipeline=SHA@sha256:DIGEST"),
        (("dev", f"pipeline={SHA}@{DIGEST}", "--commit", SHA), "--commit/--digest go with one"),
        (("dev", f"pipeline={SHA}@"), "must be SERVICE=SHA@sha256:DIGEST"),
        (("dev", f"={SHA}@{DIGEST}"), "must be SERVICE=SHA@sha256:DIGEST"),
        (
            ("dev", f"pipeline={SHA}@{DIGEST}", f"pipeline={SHA}@{DIGEST}"),
            "pipeline is named twice",
        ),
        (("dev", f"pipeline={SHA}", f"console={SHA}@{DIGEST}"), "services.pipeline.image.digest"),
        (("dev", f"feeds={SHA}@{DIGEST}"), "has no service 'feeds'"),
    ]
    before = run_git(env_repo, "rev-parse", "HEAD")
    for argv, words in cases:
        result = set_image(*argv)
        assert result.status == 1, argv
        assert words in result.err, (argv, result.err)
    assert run_git(env_repo, "rev-parse", "HEAD") == before
    local = set_image("local", f"pipeline={SHA}")  # docker: no digest needed
    assert local.status == 0, local.err
    assert (
        run_git(env_repo, "log", "-1", "--format=%s").strip() == f"local: set pipeline@{SHA[:12]}"
    )


def test_history_shows_merged_and_deployed_side_by_side(
    env_repo: Path, cli: Cli, tmp_path: Path
) -> None:
    smoke = tmp_path / "smoke.json"
    smoke.write_text(json.dumps({"kind": "smoke", "ok": True}))
    made = _record(
        cli,
        env_repo,
        "--result",
        "succeeded",
        "--run-url",
        "https://ci/7",
        "--evidence",
        str(smoke),
    )
    assert made.status == 0, made.err
    shown = cli("--repo", env_repo, "history", "dev")
    lines = shown.out.splitlines()
    assert "Release Bot <release-bot@example.org>  environments as in the checkout" in lines[0]
    assert lines[1] == "    deployed: succeeded at 2026-06-10T10:00:00Z, verified: smoke"
    assert lines[2] == "    run: https://ci/7"
    data = json.loads(cli("--repo", env_repo, "--json", "history", "dev").out)
    [release] = data["releases"]
    assert release["deployed_at"] == "2026-06-10T10:00:00Z"
    assert release["verified"] == ["smoke"]
    assert release["records"][0]["tag"] == "deploy/dev/20260610T100000Z"
    assert data["records"][0]["result"] == "succeeded"


def test_a_record_that_does_not_match_its_commit_is_skipped(
    env_repo: Path, cli: Cli, run_git: Git, capsys: pytest.CaptureFixture[str]
) -> None:
    head = run_git(env_repo, "rev-parse", "HEAD").strip()
    forged = _message(commit=head, release=head)  # well formed, but another state
    run_git(env_repo, "tag", "-a", "-m", forged, "deploy/dev/20260610T100000Z", head)
    assert [r.tag for r in read_records(env_repo, "dev")] == ["deploy/dev/20260610T100000Z"]
    shown = cli("--repo", env_repo, "--json", "history", "dev")
    assert shown.status == 0
    assert json.loads(shown.out)["releases"][0]["result"] is None
    assert (
        "refs/tags/deploy/dev/20260610T100000Z: skipped: its state does not match "
        f"environments/dev.yaml at {head[:12]}"
    ) in shown.err


def test_a_record_off_main_first_parent_line_belongs_to_no_release(
    env_repo: Path, cli: Cli, run_git: Git
) -> None:
    """A commit inside a merged branch never ran as main: a record there is ignored."""
    run_git(env_repo, "checkout", "--quiet", "-b", "side")
    dev = env_repo / "environments" / "dev.yaml"
    dev.write_text(
        dev.read_text().replace("max_instances: 2  # dev sees", "max_instances: 3  # dev sees", 1)
    )
    run_git(env_repo, "commit", "--quiet", "-am", "dev: 3 on a branch")
    assert _record(cli, env_repo, "--result", "succeeded").status == 0
    run_git(env_repo, "checkout", "--quiet", "main")
    run_git(env_repo, "merge", "--quiet", "--no-ff", "side", "-m", "Merge side")
    data = json.loads(cli("--repo", env_repo, "--json", "history", "dev").out)
    assert len(data["records"]) == 1  # the tag is there...
    assert [r["result"] for r in data["releases"]] == [None, None]  # ...but no release has it
    merge = run_git(env_repo, "rev-parse", "HEAD").strip()
    assert data["releases"][0]["release"] == merge  # the merge commit is the release


def test_a_full_main_commit_names_the_release_in_effect_there(env_repo: Path, run_git: Git) -> None:
    seed = run_git(env_repo, "rev-parse", "HEAD").strip()
    dev = env_repo / "environments" / "dev.yaml"
    dev.write_text(dev.read_text() + "# a comment is not a release\n")
    run_git(env_repo, "commit", "--quiet", "-am", "dev: a comment")
    comment = run_git(env_repo, "rev-parse", "HEAD").strip()
    ledger = Ledger(env_repo, "dev")
    assert [s.id for s in ledger.statuses] == [seed]
    assert ledger.find(comment).id == seed
    with pytest.raises(EnvctlError, match="is not a release id or commit SHA"):
        ledger.find("HEAD")
