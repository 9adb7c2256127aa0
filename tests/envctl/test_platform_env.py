"""The platform's variables (envctl/platform_env.py): one contract that `envctl render`,
envctl.local and the reserved-env policy rule all read, so a file cannot set a variable
the platform would silently override, and the render shows everything a service gets."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl.errors import Problem
from envctl.load import list_environments, load_environment
from envctl.local import local_service_settings
from envctl.platform_env import (
    ADDRESS,
    URL,
    PlatformVar,
    Source,
    declared_ports,
    platform_env,
    rendered_values,
    service_env,
)
from envctl.render import render

Cli = Callable[..., Any]  # the `cli` fixture (conftest.py)
EditEnv = Callable[..., str]  # the `edit_env` fixture (conftest.py)
Broken = Callable[..., list[Problem]]  # the `broken` fixture (conftest.py)

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = list_environments(ROOT)
CLOUD = [n for n in ENVIRONMENTS if load_environment(ROOT, n).is_cloud]
# Every (environment, service, variable) the platform owns: each must be refused in a file.
OWNED = [
    (env_name, service, var)
    for env_name in ENVIRONMENTS
    for service in sorted(load_environment(ROOT, env_name).services)
    for var in platform_env(load_environment(ROOT, env_name), service)
]


def test_google_cloud_project_in_a_file_is_refused_naming_file_field_and_line(
    env_repo: Path, cli: Cli, edit_env: EditEnv
) -> None:
    """The issue: dev's file said GOOGLE_CLOUD_PROJECT, validate passed, the stack overrode it."""
    text = edit_env(env_repo, "dev", ("put", "services.console.env.GOOGLE_CLOUD_PROJECT", "x-y"))
    (env_repo / "environments" / "dev.yaml").write_text(text)
    result = cli("--repo", env_repo, "validate")
    assert result.status == 1
    line = 1 + next(i for i, t in enumerate(text.splitlines()) if "GOOGLE_CLOUD_PROJECT" in t)
    assert result.err == (
        f"environments/dev.yaml:{line}: services.console.env.GOOGLE_CLOUD_PROJECT: console: "
        "GOOGLE_CLOUD_PROJECT is reserved: the platform sets it (from project, so log lines "
        "link to their traces); remove it from env\n"
    )


@pytest.mark.parametrize(("env_name", "service", "var"), OWNED, ids=["/".join(o) for o in OWNED])
def test_every_platform_variable_is_refused_in_env_and_secrets(
    repo_root: Path, broken: Broken, env_name: str, service: str, var: str
) -> None:
    places: list[tuple[str, Any]] = [("env", "x")]
    if env_name in CLOUD:  # docker services have no secrets
        places.append(("secrets", {"secret": "s", "version": "1"}))
    for where, value in places:
        field = f"services.{service}.{where}.{var}"
        found = broken(repo_root, env_name, ("put", field, value))
        reserved = [p for p in found if p.rule == "reserved-env" and p.field == field]
        assert reserved, f"{env_name}: {field} accepted; got {[str(p) for p in found]}"
        assert "the platform" in reserved[0].message
        assert reserved[0].line is not None


def test_a_variable_the_platform_does_not_own_is_accepted(repo_root: Path, broken: Broken) -> None:
    assert not broken(repo_root, "dev", ("put", "services.console.env.CONSOLE_TITLE", "x"))
    assert not broken(repo_root, "local", ("put", "services.console.env.GOOGLE_CLOUD_REGION", "x"))


def test_the_contract_names_the_same_variables_on_both_platforms(repo_root: Path) -> None:
    local, dev = load_environment(repo_root, "local"), load_environment(repo_root, "dev")
    for service in dev.services:
        assert set(platform_env(local, service)) == set(platform_env(dev, service))
    assert set(platform_env(dev, "console")) == {
        "CONSOLE_LISTEN_HOST",
        "GOOGLE_CLOUD_PROJECT",
        "IMAGE_COMMIT",
        "K_CONFIGURATION",
        "K_REVISION",
        "K_SERVICE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_METRICS_EXPORTER",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "PIPELINE_ADDR",
        "PIPELINE_AUDIENCE",
        "PIPELINE_TLS",
        "PORT",
    }
    assert set(platform_env(dev, "pipeline")) == {
        "GOOGLE_CLOUD_PROJECT",
        "IMAGE_COMMIT",
        "K_CONFIGURATION",
        "K_REVISION",
        "K_SERVICE",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_METRICS_EXPORTER",
        "OTEL_METRIC_EXPORT_INTERVAL",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_TRACES_EXPORTER",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "PIPELINE_ALLOWED_INVOKERS",
        "PIPELINE_DATABASE_URL",
        "PIPELINE_LISTEN_HOST",
        "PIPELINE_OUTPUT_URL",
        "PIPELINE_REQUIRE_ID_TOKEN",
        "PIPELINE_RETENTION_DAYS",
        "PIPELINE_RETENTION_RUNS",
        "PIPELINE_TOKEN_AUDIENCE",
        "PORT",
    }


@pytest.mark.parametrize("env_name", CLOUD)
def test_cloud_render_shows_every_variable_the_deploy_sets(repo_root: Path, env_name: str) -> None:
    env = load_environment(repo_root, env_name)
    for name, svc in render(env)["services"].items():
        owned = platform_env(env, name)
        deployed = {
            k for k, v in owned.items() if v.source in {Source.RENDERED, Source.SERVICE_URL}
        }
        file_env = set(env.services[name]["env"])
        assert set(svc["env"]) | set(svc["url_env"]) == file_env | deployed
        assert not set(svc["env"]) & set(svc["url_env"])
        # What the render leaves to Cloud Run is what Cloud Run sets, and only that.
        left = {k for k, v in owned.items() if v.source is Source.CLOUD_RUN}
        assert left == {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"}


def test_prod_render_shows_what_the_stack_used_to_add(repo_root: Path) -> None:
    prod = render(load_environment(repo_root, "prod"))["services"]
    console, pipeline = prod["console"], prod["pipeline"]
    assert console["env"]["GOOGLE_CLOUD_PROJECT"] == "gtfs-gitops-prod"
    assert pipeline["env"]["GOOGLE_CLOUD_PROJECT"] == "gtfs-gitops-prod"
    assert console["env"]["PIPELINE_TLS"] == "true"
    assert console["url_env"] == {
        "PIPELINE_ADDR": {"service": "pipeline", "form": ADDRESS},
        "PIPELINE_AUDIENCE": {"service": "pipeline", "form": URL},
    }
    assert pipeline["url_env"] == {"PIPELINE_TOKEN_AUDIENCE": {"service": "pipeline", "form": URL}}
    assert pipeline["env"]["PIPELINE_REQUIRE_ID_TOKEN"] == "true"


def test_local_render_and_local_settings_agree(repo_root: Path) -> None:
    env = load_environment(repo_root, "local")
    rendered = render(env)["services"]
    settings = local_service_settings(env, ports=declared_ports(env))
    for name in env.services:
        expected = {**env.services[name]["env"], **rendered_values(platform_env(env, name))}
        assert rendered[name]["env"] == settings[name]["env"] == expected
        assert service_env(env, name) == expected
    assert rendered["console"]["env"]["PIPELINE_ADDR"] == "127.0.0.1:50051"
    assert rendered["console"]["env"]["PIPELINE_TLS"] == "false"


def test_docker_owns_the_id_token_variables_but_leaves_them_unset(repo_root: Path) -> None:
    env = load_environment(repo_root, "local")
    settings = local_service_settings(env, ports={"pipeline": 50100, "console": 50101})
    console, pipeline = platform_env(env, "console"), platform_env(env, "pipeline")
    for owned, name in [(console, "PIPELINE_AUDIENCE"), (pipeline, "PIPELINE_REQUIRE_ID_TOKEN")]:
        assert owned[name].source is Source.UNSET
    for name in (
        "PIPELINE_REQUIRE_ID_TOKEN",
        "PIPELINE_ALLOWED_INVOKERS",
        "PIPELINE_TOKEN_AUDIENCE",
    ):
        assert name not in settings["pipeline"]["env"]
    assert "PIPELINE_AUDIENCE" not in settings["console"]["env"]
    assert "GOOGLE_CLOUD_PROJECT" not in settings["console"]["env"]


def test_image_commit_of_a_checkout_image_is_the_images_own_unless_given(repo_root: Path) -> None:
    env = load_environment(repo_root, "local")
    assert platform_env(env, "pipeline")["IMAGE_COMMIT"].source is Source.UNSET
    given = platform_env(env, "pipeline", commit="0" * 40)["IMAGE_COMMIT"]
    assert (given.source, given.value) == (Source.RENDERED, "0" * 40)


def test_explanations_say_who_sets_it(repo_root: Path) -> None:
    dev = platform_env(load_environment(repo_root, "dev"), "console")
    assert dev["PIPELINE_ADDR"].explanation == (
        "the platform sets it (because it calls pipeline: host:443 of pipeline's URL)"
    )
    assert dev["PORT"] == PlatformVar(
        "PORT", Source.CLOUD_RUN, "Cloud Run sets it to the container port", "8080"
    )
    local = platform_env(load_environment(repo_root, "local"), "console")
    assert local["PIPELINE_AUDIENCE"].explanation.startswith(
        "the platform owns it and leaves it unset on this platform"
    )


def test_the_readme_table_lists_the_contracts_names(repo_root: Path) -> None:
    """environments/README.md's table of what the platform sets names what the code does."""
    readme = (repo_root / "environments" / "README.md").read_text()
    section = readme.split("## What the platform sets", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {
        re.sub(r"^[SC]_", "PIPELINE_", name)  # S: the service, C: a service it calls
        for row in rows
        for name in re.findall(r"`([A-Z_]+)`", row)
    }
    dev = load_environment(repo_root, "dev")
    assert documented == {var for service in dev.services for var in platform_env(dev, service)}


def test_the_run_store_variables_name_the_stacks_resources(repo_root: Path) -> None:
    """What the pipeline is told to use is what modules/stack creates (render's storage)."""
    dev = load_environment(repo_root, "dev")
    pipeline = service_env(dev, "pipeline")
    assert pipeline["PIPELINE_DATABASE_URL"] == (
        "postgresql+pg8000://svc-pipeline%40gtfs-gitops-dev.iam@/runs"
        "?cloud_sql_instance=gtfs-gitops-dev:europe-west1:pipeline-runs-dev"
    )
    assert pipeline["PIPELINE_OUTPUT_URL"] == "gs://gtfs-gitops-dev-pipeline-runs/runs"
    assert (pipeline["PIPELINE_RETENTION_DAYS"], pipeline["PIPELINE_RETENTION_RUNS"]) == (
        "14",
        "2000",
    )
    storage = render(dev)["services"]["pipeline"]["storage"]
    assert storage["database"]["instance"] == "pipeline-runs-dev"
    assert storage["database"]["database"] == "runs"
    assert storage["bucket"]["name"] == "gtfs-gitops-dev-pipeline-runs"
    assert render(dev)["services"]["console"]["storage"] is None


@pytest.mark.parametrize("env_name", CLOUD)
def test_the_database_url_is_a_sqlalchemy_url_for_the_iam_user(
    repo_root: Path, env_name: str
) -> None:
    """Parsed the way the pipeline parses it: no host, no password, the IAM user and the
    instance connection name PROJECT:REGION:INSTANCE."""
    make_url = pytest.importorskip("sqlalchemy.engine").make_url  # the pipeline's parser

    env = load_environment(repo_root, env_name)
    url = make_url(service_env(env, "pipeline")["PIPELINE_DATABASE_URL"])
    assert url.drivername == "postgresql+pg8000"
    assert url.username == f"svc-pipeline@{env.project}.iam"
    assert (url.password, url.host, url.port, url.database) == (None, None, None, "runs")
    instance = render(env)["services"]["pipeline"]["storage"]["database"]["instance"]
    assert dict(url.query) == {"cloud_sql_instance": f"{env.project}:{env.region}:{instance}"}


def test_docker_leaves_the_store_to_the_pipelines_defaults(repo_root: Path) -> None:
    local = load_environment(repo_root, "local")
    owned = platform_env(local, "pipeline")
    assert owned["PIPELINE_DATABASE_URL"].source is Source.UNSET
    assert owned["PIPELINE_OUTPUT_URL"].source is Source.UNSET
    pipeline = local_service_settings(local, ports=declared_ports(local))["pipeline"]["env"]
    assert "PIPELINE_DATABASE_URL" not in pipeline
    assert "PIPELINE_OUTPUT_URL" not in pipeline
    assert (pipeline["PIPELINE_RETENTION_DAYS"], pipeline["PIPELINE_RETENTION_RUNS"]) == (
        "7",
        "500",
    )
