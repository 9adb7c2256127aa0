"""Plan summaries, and the reviewed-plan guard in front of tofu apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envctl.ci.plan import PlanError, changed_paths, differences, load_plan, summarize

from .plans import BEFORE, IAM, SERVICE, image_update, plan, resource


def test_summary_counts_like_tofu() -> None:
    summary = summarize(
        plan(
            image_update(),
            resource(IAM, ["create"], None, {"role": "roles/run.invoker"}),
            resource("google_service_account.old", ["delete"], {"id": "x"}, None),
            resource("google_secret_manager_secret_iam_member.a", ["delete", "create"], {}, {}),
            resource("data.google_project.this", ["read"], None, {}),
            resource("google_artifact_registry_repository.this", ["no-op"], {}, {}),
        )
    )
    assert (summary.add, summary.change, summary.destroy) == (2, 1, 2)
    assert summary.headline() == "Plan: 2 to add, 1 to change, 2 to destroy."
    text = summary.to_markdown()
    assert f"`~` `{SERVICE}` update (labels.commit, template.containers[0].image)" in text
    assert "`-/+` `google_secret_manager_secret_iam_member.a` replace" in text
    assert "data.google_project" not in text
    assert "artifact_registry" not in text


def test_an_empty_plan_says_so() -> None:
    summary = summarize(plan(resource(SERVICE, ["no-op"], BEFORE, BEFORE)))
    assert summary.empty
    assert summary.to_markdown().startswith("**No changes.")


def test_unknown_values_count_as_changed() -> None:
    paths = list(changed_paths({"uri": None, "a": 1}, {"uri": None, "a": 1}, {"uri": True}))
    assert paths == ["uri"]


def test_long_plans_are_cut_in_the_summary() -> None:
    many = [resource(f"google_x.r{i:03}", ["create"], None, {}) for i in range(80)]
    text = summarize(plan(*many)).to_markdown(limit=10)
    assert "… and 70 more" in text


def test_the_same_plan_has_no_differences() -> None:
    assert differences(plan(image_update()), plan(image_update())) == []


def test_unrelated_no_ops_do_not_count() -> None:
    quiet = resource("google_service_account.x", ["no-op"], {"a": 1}, {"a": 1})
    moved = resource("google_service_account.x", ["no-op"], {"a": 2}, {"a": 2})
    assert differences(plan(image_update(), quiet), plan(image_update(), moved)) == []


def test_a_different_value_is_named() -> None:
    found = differences(plan(image_update()), plan(image_update("registry/console@sha256:other")))
    assert found == [f"{SERVICE}: planned differently now: after (template.containers[0].image)"]


def test_added_and_dropped_changes_are_named() -> None:
    iam = resource(IAM, ["create"], None, {"role": "roles/run.invoker"})
    found = differences(plan(image_update()), plan(iam))
    assert found == [
        f"{IAM}: not in the reviewed plan, planned now",
        f"{SERVICE}: was in the reviewed plan, is no longer planned",
    ]


def test_outputs_count_too() -> None:
    a = plan(outputs={"url": {"actions": ["update"], "before": "a", "after": "b"}})
    b = plan(outputs={"url": {"actions": ["update"], "before": "a", "after": "c"}})
    assert differences(a, b) == ["output.url: planned differently now: after"]


def test_load_plan_refuses_what_is_not_a_plan(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such file"):
        load_plan(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PlanError, match="not JSON"):
        load_plan(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"values": {}}))
    with pytest.raises(PlanError, match="format_version"):
        load_plan(other)
