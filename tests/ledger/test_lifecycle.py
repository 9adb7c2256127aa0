"""Release lifecycle scenarios: from a build to prod and back, in real git repositories,
for each merge method GitHub offers, through the entry points the workflows call.

Each test names the bullet of issue 12 (or the case of the task) it plays."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from envctl.errors import EnvctlError
from envctl.history import Ledger, ReleaseStatus

from .world import Clone, World, build, built_commit, digest, edit, old_build, promote

FRIDAY_AFTERNOON = dt.datetime(2026, 6, 12, 16, 0, tzinfo=dt.UTC)  # prod's weekly freeze


def to_prod(world: World, label: str) -> str:
    """Build at a new commit and take it dev → staging → prod, every deploy succeeding."""
    commit = built_commit(world, label)
    deployed = world.ship(f"build-{label}", build(commit))
    assert [d.environment for d in deployed] == ["dev"], deployed
    for source, target in (("dev", "staging"), ("staging", "prod")):
        world.tick(5)
        deployed = world.ship(f"promote-{target}-{label}", promote(source, target))
        assert [(d.environment, d.refused) for d in deployed] == [(target, False)], deployed
    return commit


def file_at_main(world: World, name: str) -> str:
    return (world.clone("look").path / "environments" / f"{name}.yaml").read_text()


def message_at_main(world: World) -> str:
    return world.clone("look").git("log", "-1", "--format=%B")


# --- a release is one commit; history along the first parent -----------------------------


def test_a_build_is_one_release_in_one_commit(world: World) -> None:
    commit = built_commit(world, "one")
    branch = world.pull_request("build-one", build(commit))
    assert branch
    work = world.clone("count")
    work.git("fetch", "--quiet", "origin", branch)
    assert work.git("rev-list", "--count", "origin/main..FETCH_HEAD").strip() == "1"
    before, after = world.merge(branch)
    [dev] = world.deploy(before, after)
    assert dev.environment == "dev"
    assert dev.record is not None
    [newest, *_] = world.history("dev")
    assert newest["result"] == "succeeded"
    assert newest["images"]["pipeline"] == {"commit": commit, "digest": digest("pipeline", commit)}
    assert newest["images"]["console"] == {"commit": commit, "digest": digest("console", commit)}


def test_two_services_built_at_different_commits_are_one_release(squash_world: World) -> None:
    world = squash_world
    first = built_commit(world, "a")
    second = built_commit(world, "b")
    world.ship("build-ab", build(second, pipeline=first))
    [newest, *_] = world.history("dev")
    assert newest["images"]["pipeline"]["commit"] == first
    assert newest["images"]["console"]["commit"] == second
    assert newest["result"] == "succeeded"


def test_an_old_two_commit_build_never_offers_its_mixed_state(world: World) -> None:
    """Issue 12, bullet 1: with merge-commit or rebase merges, rollback chose a state that
    never ran (pipeline new, console old). Only recorded states are candidates now."""
    good = to_prod(world, "good")
    bad = built_commit(world, "bad")
    world.ship("build-bad", old_build(bad), dev="failed")
    rolled = world.deploys[-1].rollback
    assert rolled is not None
    assert rolled.status == 0, rolled.err
    world.merge_rollback()
    history = world.history("dev")
    restored = history[0]["images"]
    assert restored["pipeline"] == {"commit": good, "digest": digest("pipeline", good)}
    assert restored["console"] == {"commit": good, "digest": digest("console", good)}
    assert history[0]["result"] == "succeeded"
    assert history[0]["restores"] is not None
    mixed = [
        r for r in history
        if r["images"]["pipeline"]["commit"] == bad and r["images"]["console"]["commit"] == good
    ]  # fmt: skip
    # Rebase puts the half-way commit on main; merge and squash keep it off the first parent.
    assert len(mixed) == (1 if world.method == "rebase" else 0)
    for release in mixed:
        assert release["result"] is None  # never deployed, so never a rollback target
        refused = world.clone("person").envctl("rollback", "dev", "--to", release["release"])
        assert refused.status == 1
        assert "not recorded as succeeded in dev (not deployed yet)" in refused.err


def test_to_never_matches_an_image_commit_or_several_releases(squash_world: World) -> None:
    world = squash_world
    good = to_prod(world, "good")
    person = world.clone("person")
    by_image = person.envctl("rollback", "prod", "--to", good[:12])
    assert by_image.status == 1
    assert "is not a release of prod" in by_image.err
    ledger = Ledger(person.path, "dev")
    newest = ledger.statuses[0]
    # A second release whose id starts with the same 7 digits (rare, so made here):
    # the prefix is refused, never guessed.
    twin = replace(newest.release, id=newest.id[:7] + "f" * 33)
    ledger.statuses.append(ReleaseStatus(twin))
    with pytest.raises(EnvctlError, match="names 2 releases of dev"):
        ledger.find(newest.id[:7])
    assert ledger.find(newest.id[:8] if newest.id[7] != "f" else newest.id).id == newest.id


# --- promotion of verified releases only ----------------------------------------------------


def test_a_release_whose_staging_deploy_failed_is_not_promoted(squash_world: World) -> None:
    """Issue 12, bullet 2."""
    world = squash_world
    to_prod(world, "good")
    bad = built_commit(world, "bad")
    world.ship("build-bad", build(bad))
    world.tick(5)
    world.ship("promote-staging-bad", promote("dev", "staging"), staging="failed")
    world.pending_rollback = None  # leave staging's rollback PR open
    world.tick(5)
    person = world.clone("person")
    refused = person.envctl("promote", "staging", "prod")
    assert refused.status == 0, refused.err  # falls back to the last good release...
    assert "already runs that" in refused.out  # ...which prod runs already
    named = person.envctl(
        "promote", "staging", "prod", "--release", world.history("staging")[0]["release"]
    )
    assert named.status == 1
    assert "failed in staging at 2026-06-10T" in named.err


def test_validate_refuses_prod_images_staging_never_ran_well(squash_world: World) -> None:
    """Issue 12, item 3: a hand-edited prod file is caught on its PR."""
    world = squash_world
    to_prod(world, "good")
    person = world.clone("person")
    person.git("checkout", "--quiet", "-b", "sneak")

    def sneak(doc: Any) -> None:
        image = doc["services"]["pipeline"]["image"]
        image["commit"] = "7" * 40
        image["digest"] = digest("pipeline", "7" * 40)

    person.edit("prod", sneak)
    checked = person.envctl("validate", "prod", "--json")
    assert checked.status == 1
    [problem] = checked.json()["environments"]["prod"]["problems"]
    assert problem["rule"] == "promoted-from-verified"
    assert problem["field"] == "services.pipeline.image"
    assert "succeeded in staging" in problem["message"]
    assert person.envctl("validate", "staging").status == 0


def test_the_seed_files_validate_until_their_first_promotion(squash_world: World) -> None:
    """A new project: before any record nothing can be checked; after staging's first
    deploy, prod's untouched seed images do not fail every PR's validate, but any other
    image in prod is checked."""
    world = squash_world
    assert world.clone("person").envctl("validate").status == 0
    commit = built_commit(world, "first")
    world.ship("build-first", build(commit))
    world.tick(5)
    world.ship("promote-staging", promote("dev", "staging"))
    person = world.clone("person")
    checked = person.envctl("validate")
    assert checked.status == 0, checked.err
    person.edit("prod", lambda d: d["services"]["console"]["image"].update(commit=commit))
    edited = person.envctl("validate", "prod", "--json")
    assert edited.status == 1
    [problem] = edited.json()["environments"]["prod"]["problems"]
    assert problem["field"] == "services.console.image"


def test_promote_after_a_soak(squash_world: World) -> None:
    world = squash_world
    to_prod(world, "one")
    world.tick(60)  # release one has soaked in staging for an hour
    prod = world.clone("soak")
    prod.git("checkout", "--quiet", "-b", "soak")
    prod.edit("prod", lambda doc: doc["promotion"].insert(1, "soak", "30m"))
    prod.commit_all("prod: a release soaks 30 minutes in staging first")
    prod.git("push", "--quiet", "origin", "soak")
    before, after = world.merge("soak")
    world.deploy(before, after)
    two = built_commit(world, "two")
    world.ship("build-two", build(two))
    world.tick(5)
    world.ship("promote-staging-two", promote("dev", "staging"))
    world.tick(10)
    person = world.clone("person")
    early = person.envctl("promote", "staging", "prod", "--json")
    assert early.status == 0, early.err
    outcome = early.json()
    assert outcome["changed"] is False  # the newest soaked release is what prod runs
    [skipped] = outcome["skipped"]
    assert "soaking in staging until 2026-06-10T" in skipped
    named = person.envctl(
        "promote", "staging", "prod", "--release", world.history("staging")[0]["release"]
    )
    assert named.status == 1
    assert "soaking in staging until" in named.err
    world.tick(25)
    [deployed] = world.ship("promote-prod-two", promote("staging", "prod"))
    assert deployed.environment == "prod"
    assert not deployed.refused
    assert world.history("prod")[0]["images"]["pipeline"]["commit"] == two


def test_nothing_deployed_upstream_refuses_with_reasons(squash_world: World) -> None:
    world = squash_world
    commit = built_commit(world, "one")
    world.pull_request("build-one", build(commit))
    before, after = world.merge("build-one")  # merged, never deployed
    refused = world.clone("person").envctl("promote", "dev", "staging")
    assert refused.status == 1
    assert "no release of dev can be promoted to staging" in refused.err
    assert "not deployed to dev yet" in refused.err
    world.deploy(before, after, dev="failed")
    refused = world.clone("person").envctl("promote", "dev", "staging")
    assert refused.status == 1
    assert "failed in dev at" in refused.err


def test_a_release_prod_rolled_back_is_not_offered_again(world: World) -> None:
    """Issue 12, bullet 4: the next promote re-shipped what prod just rolled back."""
    to_prod(world, "good")
    bad = built_commit(world, "bad")
    world.ship("build-bad", build(bad))
    world.tick(5)
    world.ship("promote-staging-bad", promote("dev", "staging"))
    world.tick(5)
    world.ship("promote-prod-bad", promote("staging", "prod"), prod="failed")
    world.merge_rollback()
    assert world.history("prod")[1]["rolled_back_by"] == world.history("prod")[0]["release"]
    world.tick(5)
    person = world.clone("person")
    refused = person.envctl("promote", "staging", "prod")
    assert refused.status == 1
    assert "prod rolled back release" in refused.err
    assert "--allow-rolled-back --reason TEXT" in refused.err
    no_reason = person.envctl("promote", "staging", "prod", "--allow-rolled-back")
    assert no_reason.status == 1
    assert "needs --reason" in no_reason.err
    forced = person.envctl(
        "promote",
        "staging",
        "prod",
        "--allow-rolled-back",
        "--reason",
        "the bad config is fixed in prod",
    )
    assert forced.status == 0, forced.err
    message = person.git("log", "-1", "--format=%B")
    assert "reason: the bad config is fixed in prod" in message
    assert "ships again the images prod rolled back" in message


# --- rollback to the last known good ------------------------------------------------------


def test_a_config_only_change_that_fails_is_undone_with_its_config(world: World) -> None:
    """Issue 12, bullet 3: the automatic rollback reverted images and kept the bad config."""
    to_prod(world, "good")
    good_file = file_at_main(world, "staging")
    world.tick(5)
    world.ship(
        "staging-memory",
        edit(
            "staging",
            "staging: less memory",
            lambda d: d["services"]["pipeline"]["resources"].update(memory="256Mi"),
        ),
        staging="failed",
    )
    rolled = world.deploys[-1].rollback
    assert rolled is not None
    assert rolled.status == 0, rolled.err
    world.merge_rollback()
    assert file_at_main(world, "staging") == good_file  # images and config, byte for byte
    [undo, bad, *_] = world.history("staging")
    assert undo["restores"] is not None
    assert undo["result"] == "succeeded"
    assert bad["rolled_back_by"] == undo["release"]
    assert bad["result"] == "failed"


def test_rollback_twice_in_a_row_goes_further_back(world: World) -> None:
    one = to_prod(world, "one")
    world.tick(5)
    two = to_prod(world, "two")
    three = built_commit(world, "three")
    world.ship("build-three", build(three), dev="failed")
    world.merge_rollback()
    assert world.history("dev")[0]["images"]["pipeline"]["commit"] == two
    world.tick(5)
    again = world.clone("person")
    again.git("checkout", "--quiet", "-b", "again")
    rolled = again.envctl("rollback", "dev", "--json")
    assert rolled.status == 0, rolled.err
    again.git("push", "--quiet", "origin", "again")
    world.merge("again")
    now = world.history("dev")
    assert now[0]["images"]["pipeline"]["commit"] == one
    message = message_at_main(world) if world.method != "squash" else rolled.out
    assert world.history("dev")[0]["release"] != now[1]["release"]
    assert message


def test_rollback_across_a_config_change_restores_the_whole_file(squash_world: World) -> None:
    world = squash_world
    to_prod(world, "one")
    before_config = file_at_main(world, "dev")
    world.tick(5)
    world.ship(
        "dev-scale",
        edit(
            "dev",
            "dev: three instances",
            lambda d: d["services"]["console"]["scaling"].update(max_instances=3),
        ),
    )
    two = built_commit(world, "two")
    world.ship("build-two", build(two))
    # Roll back twice: past the build (to the scaling change), then past the scaling change.
    for _ in range(2):
        world.tick(5)
        person = world.clone("person")
        person.git("checkout", "--quiet", "-b", f"rb-{world._serial}")
        assert person.envctl("rollback", "dev").status == 0
        person.git("push", "--quiet", "origin", "HEAD")
        before, after = world.merge(person.git("rev-parse", "--abbrev-ref", "HEAD").strip())
        world.deploy(before, after)
    assert file_at_main(world, "dev") == before_config


def test_a_failed_first_deploy_has_nothing_to_roll_back_to(squash_world: World) -> None:
    """Issue 13, item 3: no rollback target before the first success; never the seed's
    placeholder digests."""
    world = squash_world
    seed = file_at_main(world, "dev")
    commit = built_commit(world, "first")
    world.ship("build-first", build(commit), dev="failed")
    rolled = world.deploys[-1].rollback
    assert rolled is not None
    assert rolled.status == 3
    assert "nothing to roll back to" in rolled.err
    assert "fix forward" in rolled.err
    assert world.pending_rollback is None
    assert file_at_main(world, "dev") != seed


# --- freezes ---------------------------------------------------------------------------


def test_a_forged_trailer_does_not_pass_a_freeze(world: World) -> None:
    """Issue 12, bullet 5 (first half)."""
    to_prod(world, "good")
    world.at(FRIDAY_AFTERNOON)

    def scale(work: Clone) -> None:
        work.edit("prod", lambda d: d["services"]["console"]["scaling"].update(max_instances=9))
        work.commit_all("prod: console to 9\n\nEnvctl-Action: rollback\n")

    [prod] = world.ship("forged", scale)
    assert prod.refused
    assert "frozen until 24:00 UTC" in prod.gate.err
    assert "not a release the deploy record shows succeeded" in prod.gate.err


def test_a_real_rollback_passes_a_freeze_whatever_its_message(world: World) -> None:
    """Issue 12, bullet 5 (second half): squash-merged with a title-only message."""
    to_prod(world, "one")
    world.tick(5)
    to_prod(world, "two")
    world.at(FRIDAY_AFTERNOON)
    person = world.clone("person")
    person.git("checkout", "--quiet", "-b", "undo")
    assert person.envctl("rollback", "prod").status == 0
    person.git("push", "--quiet", "origin", "undo")
    before, after = world.merge("undo", title="prod: undo")
    [prod] = world.deploy(before, after)
    assert not prod.refused, prod.gate.err
    assert "a return to a known good release" in prod.gate.out


def test_a_module_change_does_not_ride_a_rollback_through_a_freeze(squash_world: World) -> None:
    world = squash_world
    to_prod(world, "one")
    world.tick(5)
    to_prod(world, "two")
    world.at(FRIDAY_AFTERNOON)

    def both(work: Clone) -> None:
        assert work.envctl("rollback", "prod").status == 0
        (work.path / "modules" / "stack" / "main.tf").write_text("# changed\n")
        work.commit_all("stack: a change")

    deployed = world.ship("both", both)
    prod = next(d for d in deployed if d.environment == "prod")
    assert prod.refused
    assert "modules/stack/main.tf changed as well" in prod.gate.err


def test_an_override_lets_a_change_through_and_is_shown(squash_world: World) -> None:
    world = squash_world
    to_prod(world, "good")
    world.at(FRIDAY_AFTERNOON)
    expires = "2026-06-13T06:00:00Z"

    def urgent(work: Clone) -> None:
        def change(doc: Any) -> None:
            doc["services"]["console"]["scaling"]["max_instances"] = 9
            doc.insert(
                len(doc) - 1,
                "override",
                {"reason": "INC-7 needs more consoles", "by": "ops-lead", "expires": expires},
            )

        work.edit("prod", change)
        shown = work.envctl("diff", "prod")
        assert "freeze override: ops-lead lets this change through" in shown.out
        work.commit_all("prod: console to 9 during INC-7")

    [prod] = world.ship("urgent", urgent)
    assert not prod.refused, prod.gate.err
    assert "override by ops-lead until 2026-06-13T06:00:00Z" in prod.gate.out


def test_an_override_beyond_24_hours_is_refused(squash_world: World) -> None:
    person = squash_world.clone("person")
    entry = {"reason": "a long weekend", "by": "ops-lead", "expires": "2026-06-12T10:00:01Z"}
    person.edit("prod", lambda d: d.insert(len(d) - 1, "override", entry))
    checked = person.envctl("validate", "prod")
    assert checked.status == 1
    assert (
        "override.expires: is 48.0 hours from now; an override lasts at most 24 hours"
        in checked.err
    )


def test_set_image_and_promote_follow_the_freeze(squash_world: World) -> None:
    world = squash_world
    to_prod(world, "one")
    two = built_commit(world, "two")
    world.ship("build-two", build(two))
    world.tick(5)
    world.ship("promote-two", promote("dev", "staging"))
    world.at(FRIDAY_AFTERNOON)
    refused = world.clone("person").envctl("promote", "staging", "prod")
    assert refused.status == 1
    assert "promote refused" in refused.err


# --- records in a clone -------------------------------------------------------------------


def test_a_clone_without_tags_promotes_nothing(squash_world: World) -> None:
    world = squash_world
    to_prod(world, "one")
    bare = world.clone("no-tags", tags=False)
    refused = bare.envctl("promote", "dev", "staging")
    assert refused.status == 1
    assert "not deployed to dev yet" in refused.err
    bare.git("fetch", "--quiet", "--tags", "origin")
    assert bare.envctl("promote", "dev", "staging").status == 0


def test_a_foreign_or_malformed_tag_is_skipped_with_a_warning(squash_world: World) -> None:
    world = squash_world
    to_prod(world, "one")
    person = world.clone("person")
    person.git("tag", "deploy/dev/20260610T120000Z")  # lightweight
    person.git("tag", "-a", "-m", "not json", "deploy/dev/20260610T120001Z")
    person.git(
        "tag", "-a", "-m", json.dumps({"schema": "something/else"}), "deploy/dev/20260610T120002Z"
    )
    shown = person.envctl("history", "dev")
    assert shown.status == 0
    assert "refs/tags/deploy/dev/20260610T120000Z: skipped: a lightweight tag" in shown.err
    assert "refs/tags/deploy/dev/20260610T120001Z: skipped: not a deploy record" in shown.err
    assert "deploy/dev/20260610T120002Z: skipped" in shown.err
    assert "Traceback" not in shown.err
    assert "succeeded at 2026-06-10T" in shown.out


def test_a_record_carries_the_release_and_its_evidence(squash_world: World, tmp_path: Path) -> None:
    world = squash_world
    commit = built_commit(world, "one")
    world.pull_request("build-one", build(commit))
    world.merge("build-one")
    runner = world.clone("runner")
    smoke = tmp_path / "smoke.json"
    smoke.write_text(json.dumps({"kind": "smoke", "ok": True, "report": {}}))
    world.tick()
    made = world.record(runner, "dev", "succeeded", smoke)
    body = json.loads(runner.git("tag", "-l", "--format=%(contents)", made.out.strip()))
    assert body["release"] == runner.head()
    assert body["commit"] == runner.head()
    assert body["verification"] == [{"kind": "smoke", "ok": True, "report": {}}]
    assert body["services"]["pipeline"] == {"commit": commit, "digest": digest("pipeline", commit)}
    assert body["time"] == "2026-06-10T10:03:00Z" or body["time"].startswith("2026-06-10T")
    failed = tmp_path / "failed.json"
    failed.write_text(json.dumps({"kind": "data-canary", "ok": False}))
    world.tick()
    refused = runner.envctl("record", "dev", "--result", "succeeded", "--evidence", str(failed))
    assert refused.status == 1
    assert "data-canary did not pass" in refused.err
    world.tick()
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    refused = runner.envctl("record", "dev", "--result", "failed", "--evidence", str(bad))
    assert refused.status == 1
    assert "evidence must be a JSON object" in refused.err
    [dev, *_] = world.history("dev")
    assert dev["verified"] == ["smoke"]


# --- drift that knows about pending deploys --------------------------------------------------


def test_a_merged_change_not_yet_deployed_is_pending_not_drift(
    squash_world: World, tmp_path: Path
) -> None:
    world = squash_world
    to_prod(world, "one")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "resource_changes": [{
        "address": 'module.services["console"].google_cloud_run_v2_service.this',
        "change": {"actions": ["update"], "before": {"max": 5}, "after": {"max": 9}},
    }]}))  # fmt: skip
    world.pull_request(
        "scale",
        edit(
            "prod",
            "prod: console to 9",
            lambda d: d["services"]["console"]["scaling"].update(max_instances=9),
        ),
    )
    before, after = world.merge("scale")  # waiting for prod's reviewers
    reader = world.clone("drift")
    waiting = reader.ci("drift", "prod", "--exitcode", "2", "--plan", str(plan), "--json")
    assert waiting.status == 0, waiting.err
    assert waiting.json()["drift"] is False
    assert "is not deployed yet" in waiting.json()["pending"]
    world.deploy(before, after)
    deployed = world.clone("drift").ci(
        "drift", "prod", "--exitcode", "2", "--plan", str(plan), "--json"
    )
    assert deployed.json()["drift"] is True
    assert deployed.json()["pending"] is None


# --- a new environment, and two PRs to one environment --------------------------------


def _add_qa(work: Clone) -> None:
    staging = (work.path / "environments" / "staging.yaml").read_text()
    qa = staging.replace("gtfs-gitops-staging", "gtfs-gitops-qa").replace(
        "  from: dev\n", "  from: staging\n"
    )
    (work.path / "environments" / "qa.yaml").write_text(qa)
    work.commit_all("qa: a new environment after staging")


def test_a_new_environment_has_nothing_to_roll_back_to_until_it_succeeds(
    squash_world: World,
) -> None:
    """Issue 13, item 3, for an environment added later: its first deploy fails."""
    world = squash_world
    to_prod(world, "good")
    world.tick(5)
    [qa] = world.ship("add-qa", _add_qa, qa="failed")
    assert qa.environment == "qa"
    assert qa.rollback is not None
    assert qa.rollback.status == 3
    assert "environments/qa.yaml: nothing to roll back to: no release of qa" in qa.rollback.err
    world.tick(5)

    def scale(n: int) -> Callable[[Clone], None]:
        return edit(
            "qa",
            f"qa: console to {n}",
            lambda d: d["services"]["console"]["scaling"].update(max_instances=n),
        )

    world.ship("qa-fix", scale(4))  # fixed forward: qa's first success
    fixed = file_at_main(world, "qa")
    world.tick(5)
    [bad] = world.ship("qa-bad", scale(1), qa="failed")
    assert bad.rollback is not None
    assert bad.rollback.status == 0, bad.rollback.err
    world.merge_rollback()
    assert file_at_main(world, "qa") == fixed


def test_two_prs_to_one_environment_deployed_once(world: World) -> None:
    """Two merges whose first deploy never ran on its own (GitHub replaced the pending
    job): the first is in history, never deployed, never a rollback target."""
    to_prod(world, "good")
    world.tick(5)
    world.pull_request(
        "console-6",
        edit(
            "prod",
            "prod: console to 6",
            lambda d: d["services"]["console"]["scaling"].update(max_instances=6),
        ),
    )
    world.pull_request(
        "pipeline-9",
        edit(
            "prod",
            "prod: pipeline to 9",
            lambda d: d["services"]["pipeline"]["scaling"].update(max_instances=9),
        ),
    )
    first_before, _ = world.merge("console-6")
    _, second_after = world.merge("pipeline-9")
    [prod] = world.deploy(first_before, second_after)  # the one deploy that ran
    assert not prod.refused
    history = world.history("prod")
    [second, first] = history[:2]
    assert second["result"] == "succeeded"
    assert first["result"] is None
    world.tick(5)
    world.ship(
        "console-1",
        edit(
            "prod",
            "prod: console to 1",
            lambda d: d["services"]["console"]["scaling"].update(max_instances=1),
        ),
        prod="failed",
    )
    world.merge_rollback()
    restored = world.history("prod")[0]
    assert restored["restores"] == second["release"]
    refused = world.clone("person").envctl("rollback", "prod", "--to", first["release"])
    assert refused.status == 1
    assert "not recorded as succeeded in prod (not deployed yet)" in refused.err
