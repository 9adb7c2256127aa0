"""Who may impersonate which account, evaluated from bootstrap's .tf files (nothing here
restates a binding): the GitHub provider's attribute condition and mapping are evaluated
as CEL over realistic GitHub Actions OIDC claims, and each service account's
workloadIdentityUser members (resolved through the roots, their module arguments and the
remote state they read) are matched against the attributes that come out. ADR 0025."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from envctl import hcl

from . import tfeval
from .cel import NoSuchKey, evaluate

OWNER = "example-org"
REPOSITORY = f"{OWNER}/gtfs-gitops"
REPOSITORY_ID = "849302117"
OWNER_ID = "192837465"
# What the prod root's data sources would read from GitHub.
FACTS = {
    "data.github_repository.this.repo_id": REPOSITORY_ID,
    "data.github_repository.this.full_name": REPOSITORY,
    "data.github_user.owner.id": OWNER_ID,
}
DEPLOY_ACCOUNTS = {"deploy-dev", "deploy-staging", "deploy-prod"}


@dataclass(frozen=True)
class Binding:
    root: str
    account: str
    role: str
    member: str


@dataclass(frozen=True)
class Provider:
    pool: str
    mapping: dict[str, str]
    condition: str


def _instances() -> list[tfeval.Scope]:
    """Every module instance of every GCP root (one level: the roots call the modules)."""
    scopes = []
    for root in tfeval.GCP_ROOTS:
        scope = tfeval.root_scope(root, FACTS)
        scopes.append(scope)
        scopes += [scope.module(name) for name in tfeval.modules(root)]
    return scopes


def _ref(value: str) -> tuple[str, str]:
    """'${google_service_account.deploy.name}' -> ('google_service_account', 'deploy')."""
    rtype, name, _attr = str(hcl.unquote(value)).split(".")
    return rtype, name


@cache
def bindings() -> tuple[Binding, ...]:
    found = []
    for scope in _instances():
        here = tfeval.resources(scope.directory)
        for (rtype, _name), body in here.items():
            if rtype != "google_service_account_iam_member":
                continue
            account = here[_ref(body["service_account_id"])]
            found.append(
                Binding(
                    root=scope.root.name,
                    account=str(tfeval.resolve(account["account_id"], scope)),
                    role=str(tfeval.resolve(body["role"], scope)),
                    member=str(tfeval.resolve(body["member"], scope)),
                )
            )
    return tuple(found)


@cache
def provider() -> Provider:
    found = []
    for scope in _instances():
        here = tfeval.resources(scope.directory)
        for (rtype, _name), body in here.items():
            if rtype == "google_iam_workload_identity_pool_provider":
                pool_type, pool_name = _ref(body["workload_identity_pool_id"])
                found.append(
                    Provider(
                        pool=str(tfeval.expression(f"{pool_type}.{pool_name}.name", scope)),
                        mapping=tfeval.resolve(body["attribute_mapping"], scope),
                        condition=str(tfeval.resolve(body["attribute_condition"], scope)),
                    )
                )
    assert len(found) == 1, f"expected one GitHub provider in bootstrap/, found {len(found)}"
    return found[0]


def github_claims(
    *,
    workflow: str,
    ref: str = "refs/heads/main",
    environment: str | None = None,
    event: str = "push",
    repository: str = REPOSITORY,
    repository_id: str = REPOSITORY_ID,
    owner_id: str = OWNER_ID,
) -> dict[str, Any]:
    """The claims of a GitHub Actions OIDC token (docs: 'About security hardening with
    OpenID Connect'), for a job of `workflow` at `ref`, optionally in an Environment."""
    owner = repository.split("/")[0]
    workflow_ref = f"{repository}/.github/workflows/{workflow}@{ref}"
    if environment:
        sub = f"repo:{repository}:environment:{environment}"
    elif event == "pull_request":
        sub = f"repo:{repository}:pull_request"
    else:
        sub = f"repo:{repository}:ref:{ref}"
    claims: dict[str, Any] = {
        "iss": "https://token.actions.githubusercontent.com",
        "aud": f"https://github.com/{owner}",
        "sub": sub,
        "repository": repository,
        "repository_id": repository_id,
        "repository_owner": owner,
        "repository_owner_id": owner_id,
        "repository_visibility": "private",
        "ref": ref,
        "ref_type": "branch",
        "event_name": event,
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": workflow.removesuffix(".yml"),
        "workflow_ref": workflow_ref,
        "job_workflow_ref": workflow_ref,
        "run_id": "12345678901",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
    }
    if environment:
        claims["environment"] = environment
    return claims


def attributes(claims: dict[str, Any]) -> dict[str, str] | None:
    """The token's attributes, or None when the provider's condition refuses it."""
    p = provider()
    if evaluate(p.condition, assertion=claims) is not True:
        return None
    return {key: evaluate(expr, assertion=claims) for key, expr in p.mapping.items()}


def _matches(member: str, attrs: dict[str, str]) -> bool:
    prefix = f"principalSet://iam.googleapis.com/{provider().pool}/"
    if not member.startswith(prefix):
        return False
    rest = member[len(prefix) :]
    if rest == "*":
        return True
    kind, _, value = rest.partition("/")
    if kind.startswith("attribute."):
        return attrs.get(kind) == value
    raise AssertionError(f"unexpected principalSet form {member}")


def impersonable(claims: dict[str, Any]) -> set[str]:
    """The accounts a job with these claims may impersonate."""
    attrs = attributes(claims)
    if attrs is None:
        return set()
    return {
        b.account
        for b in bindings()
        if b.role == "roles/iam.workloadIdentityUser" and _matches(b.member, attrs)
    }


def test_the_bindings_found_are_every_ci_identity() -> None:
    accounts = {b.account for b in bindings()}
    assert accounts == DEPLOY_ACCOUNTS | {"ci-build", "ci-plan"}
    assert all(b.role == "roles/iam.workloadIdentityUser" for b in bindings())


def test_every_root_binds_to_the_one_provider_pool() -> None:
    pools = {b.member.split("/attribute.")[0] for b in bindings()}
    assert pools == {f"principalSet://iam.googleapis.com/{provider().pool}"}
    assert "<prod:bootstrap/modules/github-identity:" in provider().pool  # prod's root makes it


def test_each_deploy_account_has_exactly_one_binding_on_env_ref() -> None:
    """Two principalSets on one account are OR: one attribute must say ENV-on-main."""
    for account in DEPLOY_ACCOUNTS:
        env = account.removeprefix("deploy-")
        members = [b.member for b in bindings() if b.account == account]
        assert members == [
            f"principalSet://iam.googleapis.com/{provider().pool}/attribute.env_ref/{env}@refs/heads/main"
        ]
        assert [b.root for b in bindings() if b.account == account] == [env]


def test_the_mapping_sets_env_ref_as_the_contract_says() -> None:
    attrs = attributes(github_claims(workflow="deploy.yml", environment="staging"))
    assert attrs is not None
    assert attrs["attribute.env_ref"] == "staging@refs/heads/main"
    assert attrs["google.subject"] == f"repo:{REPOSITORY}:environment:staging"


def test_a_build_job_matches_no_deploy_binding() -> None:
    claims = github_claims(workflow="build.yml")
    assert "environment" not in claims
    assert impersonable(claims) == {"ci-build", "ci-plan"}
    # A job outside any Environment gets an env_ref naming none, not a mapping error.
    attrs = attributes(claims)
    assert attrs is not None
    assert attrs["attribute.env_ref"] == "@refs/heads/main"


def test_an_unguarded_mapping_would_fail_for_jobs_outside_an_environment() -> None:
    """Why the mapping guards `environment` with has(): CEL has no implicit empty value."""
    with pytest.raises(NoSuchKey):
        evaluate(
            'assertion.environment + "@" + assertion.ref',
            assertion=github_claims(workflow="build.yml"),
        )


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_a_deploy_job_matches_only_its_environments_deploy_binding(environment: str) -> None:
    accounts = impersonable(github_claims(workflow="deploy.yml", environment=environment))
    assert accounts & DEPLOY_ACCOUNTS == {f"deploy-{environment}"}
    assert "ci-build" not in accounts


def test_the_build_account_is_build_yml_on_main_only() -> None:
    assert "ci-build" not in impersonable(github_claims(workflow="build.yml", ref="refs/heads/fix"))
    assert "ci-build" not in impersonable(github_claims(workflow="promote.yml"))
    assert "ci-build" not in impersonable(
        github_claims(workflow="build.yml", ref="refs/pull/7/merge", event="pull_request")
    )


@pytest.mark.parametrize(
    ("ref", "event"),
    [
        ("refs/pull/42/merge", "pull_request"),
        ("refs/heads/feature/x", "push"),
        ("refs/tags/v1", "push"),
    ],
    ids=["pull-request", "other-branch", "tag"],
)
def test_a_job_in_environment_prod_off_main_matches_no_deploy_or_build_binding(
    ref: str, event: str
) -> None:
    accounts = impersonable(
        github_claims(workflow="deploy.yml", ref=ref, event=event, environment="prod")
    )
    assert accounts & (DEPLOY_ACCOUNTS | {"ci-build"}) == set()
    # Only the read-only plan identity, which every job of the repository may use.
    assert accounts == {"ci-plan"}


def test_pull_request_plans_and_drift_get_the_plan_account() -> None:
    pr = github_claims(workflow="plan.yml", ref="refs/pull/42/merge", event="pull_request")
    drift = github_claims(workflow="drift.yml", event="schedule")
    assert impersonable(pr) == {"ci-plan"}
    assert impersonable(drift) == {"ci-plan"}


@pytest.mark.parametrize(
    "other",
    [{"repository_id": "900000001"}, {"owner_id": "900000002"}],
    ids=["other-repository-id", "other-owner-id"],
)
def test_a_repository_with_the_same_name_but_other_ids_is_refused(other: dict[str, str]) -> None:
    """A repository deleted and re-created (or an owner renamed and its name taken over)
    keeps the name `example-org/gtfs-gitops` but not its ids."""
    claims = github_claims(workflow="deploy.yml", environment="prod", **other)
    assert claims["repository"] == REPOSITORY
    assert attributes(claims) is None
    assert impersonable(claims) == set()


def test_the_repository_name_alone_decides_nothing() -> None:
    """Renamed (same ids, new name): still this repository, still prod's deployer."""
    claims = github_claims(workflow="deploy.yml", environment="prod", repository=f"{OWNER}/renamed")
    assert impersonable(claims) & DEPLOY_ACCOUNTS == {"deploy-prod"}
