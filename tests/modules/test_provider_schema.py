"""Every .tf in modules/ (and bootstrap/) against the google and github providers' real
schemas, read from the pinned @cdktf provider bindings (tools/provider_schema.py); and
proof that each kind of mistake is caught, naming file, resource, path and the bad name."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKED = [p for p in (REPO / "modules", REPO / "bootstrap") if p.exists()]


def test_modules_match_the_provider_schemas(provider_schema: ModuleType, bindings: Any) -> None:
    started = time.monotonic()
    problems = provider_schema.check(CHECKED, bindings)
    assert [str(p) for p in problems] == []
    files = provider_schema.tf_files(CHECKED)
    assert len(files) >= 30, files  # the walk found the modules
    assert time.monotonic() - started < 30


def test_bindings_are_generated_from_the_expected_provider_versions(
    provider_schema: ModuleType, node_tools: Path
) -> None:
    cdktf = node_tools / "node_modules" / "@cdktf"
    pins = json.loads((REPO / ".github" / "tools" / "package.json").read_text())
    for package, release in provider_schema.GENERATED_FROM.items():
        source, version = release.split()
        readme = (cdktf / package / "README.md").read_text().splitlines()
        title = next(line for line in readme if line.strip())
        assert title == f"# CDKTF prebuilt bindings for {source} provider version {version}"
        installed = json.loads((cdktf / package / "package.json").read_text())["version"]
        assert pins["devDependencies"][f"@cdktf/{package}"] == installed  # exact pin


def test_the_schema_is_read_not_guessed(bindings: Any) -> None:
    sql = bindings.schema("resource", "google_sql_database_instance")
    assert sql.fields["database_version"].required
    assert not sql.fields["name"].required
    settings = sql.fields["settings"]
    assert settings.is_block
    assert not settings.required
    assert settings.nested.fields["tier"].required
    assert settings.nested.fields["ip_configuration"].is_block
    assert not settings.nested.fields["user_labels"].is_block
    run = bindings.schema("resource", "google_cloud_run_v2_service")
    assert "INGRESS_TRAFFIC_INTERNAL_ONLY" in run.fields["ingress"].enum
    env = bindings.schema("resource", "github_repository_environment")
    assert env.fields["repository"].required
    assert env.fields["reviewers"].is_block
    assert bindings.schema("data", "google_project") is not None
    assert bindings.schema("resource", "google_no_such_thing") is None


SQL = """
resource "google_sql_database_instance" "this" {
  database_version = "POSTGRES_16"
  settings {
    tier = "db-custom-1-3840"
%s
  }
}
"""

CASES = {
    "misspelled attribute": (
        SQL % "    disk_autoresize_limt = 10",
        "google_sql_database_instance.this",
        "settings",
        "disk_autoresize_limt",
        'unknown argument or block "disk_autoresize_limt" (did you mean "disk_autoresize_limit"?)',
    ),
    "block used as an argument": (
        SQL % "    ip_configuration = {\n      ipv4_enabled = false\n    }",
        "google_sql_database_instance.this",
        "settings",
        "ip_configuration",
        '"ip_configuration" is a nested block: write `ip_configuration { ... }`',
    ),
    "argument used as a block": (
        SQL % '    user_labels {\n      team = "x"\n    }',
        "google_sql_database_instance.this",
        "settings",
        "user_labels",
        '"user_labels" is an argument: write `user_labels = ...`, not a block',
    ),
    "missing required argument": (
        'resource "github_repository_environment" "prod" {\n  environment = "prod"\n}\n',
        "github_repository_environment.prod",
        "",
        "repository",
        'required argument "repository" is missing',
    ),
    "missing required argument in a nested block": (
        SQL.replace('    tier = "db-custom-1-3840"\n', "") % '    edition = "ENTERPRISE"',
        "google_sql_database_instance.this",
        "settings",
        "tier",
        'required argument "tier" is missing',
    ),
    "wrong enum value": (
        'resource "google_cloud_run_v2_service" "s" {\n  name = "s"\n  location = "eu"\n'
        '  ingress = "INGRESS_TRAFFIC_EVERYONE"\n  template {\n    containers {\n'
        '      image = "x"\n    }\n  }\n}\n',
        "google_cloud_run_v2_service.s",
        "",
        "ingress",
        '"ingress" = "INGRESS_TRAFFIC_EVERYONE" is not one of the possible values: '
        "INGRESS_TRAFFIC_ALL,",
    ),
    "misspelled attribute inside a dynamic block's content": (
        'resource "google_cloud_run_v2_service" "s" {\n  name = "s"\n  location = "eu"\n'
        '  template {\n    dynamic "containers" {\n      for_each = var.c\n      content {\n'
        "        image = containers.value\n        portss = []\n      }\n    }\n  }\n}\n",
        "google_cloud_run_v2_service.s",
        "template.containers",
        "portss",
        'unknown argument or block "portss"',
    ),
    "unknown resource type": (
        'resource "google_storage_buckett" "b" {\n  name = "b"\n}\n',
        "google_storage_buckett.b",
        "",
        "google_storage_buckett",
        'unknown resource type "google_storage_buckett"',
    ),
    "unknown data source": (
        'data "google_projekt" "this" {}\n',
        "data.google_projekt.this",
        "",
        "google_projekt",
        'unknown data source "google_projekt"',
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_mistake_is_caught(
    case: str, provider_schema: ModuleType, bindings: Any, tmp_path: Path
) -> None:
    text, address, path, name, message = CASES[case]
    tf = tmp_path / "main.tf"
    tf.write_text(text)
    problems = provider_schema.check([tf], bindings)
    assert len(problems) == 1, [str(p) for p in problems]
    (problem,) = problems
    assert (problem.file, problem.address, problem.path, problem.name) == (
        str(tf),
        address,
        path,
        name,
    )
    assert message in str(problem)
    assert str(tf) in str(problem)
    assert address in str(problem)
    assert name in str(problem)


def test_meta_arguments_expressions_and_other_blocks_are_left_alone(
    provider_schema: ModuleType, bindings: Any, tmp_path: Path
) -> None:
    tf = tmp_path / "main.tf"
    tf.write_text(
        'terraform {\n  required_version = ">= 1.6"\n}\n'
        'variable "v" {\n  type = string\n}\n'
        "locals {\n  a = 1\n}\n"
        'module "m" {\n  source = "./m"\n  anything = 1\n}\n'
        'output "o" {\n  value = 1\n}\n'
        'resource "google_cloud_run_v2_service" "s" {\n  count = 1\n  provider = google\n'
        "  depends_on = [module.m]\n  name = var.v\n  location = local.a\n"
        '  ingress = "${var.v}"\n  lifecycle {\n    ignore_changes = [client]\n  }\n'
        "  template {\n    containers {\n      image = var.v\n    }\n  }\n}\n"
    )
    assert [str(p) for p in provider_schema.check([tf], bindings)] == []
