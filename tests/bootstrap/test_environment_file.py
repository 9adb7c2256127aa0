"""bootstrap/modules/environment-file evaluated by a real OpenTofu (or Terraform) binary,
when one is on PATH: the module has no provider, so `init` and `apply` run offline. Each
environment file gives what bootstrap creates, and a file bootstrap cannot serve fails
with a message naming the file and the field, before anything would be created."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from . import tfeval

MODULE = tfeval.BOOTSTRAP / "modules" / "environment-file"
BINARY = shutil.which("tofu") or shutil.which("terraform")
pytestmark = pytest.mark.skipif(BINARY is None, reason="neither tofu nor terraform is on PATH")


def _apply(tmp_path: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "main.tf").write_text(
        f'module "file" {{\n  source = "{MODULE}"\n  path   = "{env_file}"\n}}\n\n'
        'output "file" {\n  value = module.file\n}\n'
    )
    # An empty CLI config: no plugin cache or credentials of this machine are read.
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
    assert BINARY is not None
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color"],
    ):
        result = subprocess.run(
            [BINARY, f"-chdir={root}", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            return result
    return subprocess.run(
        [BINARY, f"-chdir={root}", "output", "-json", "file"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_each_environment_file_gives_what_bootstrap_creates(tmp_path: Path, name: str) -> None:
    path = tfeval.REPO / "environments" / f"{name}.yaml"
    result = _apply(tmp_path, path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    data = yaml.safe_load(path.read_text())
    assert out["environment"] == name
    assert out["project_id"] == data["project"]
    assert out["state_bucket"] == data["state_bucket"]
    location, project, repository = data["registry"].replace("-docker.pkg.dev", "").split("/")
    assert out["registry"] == {
        "location": location,
        "project": project,
        "repository_id": repository,
    }
    assert out["vpc"] == {"network": "gtfs-services", "subnetwork": "gtfs-services-europe-west1"}
    assert out["promotion_source"] == data["promotion"]["from"]


def _broken(
    tmp_path: Path, change: dict[str, object], service_vpc: dict[str, str] | None = None
) -> Path:
    data = yaml.safe_load((tfeval.REPO / "environments" / "staging.yaml").read_text())
    data.update(change)
    if service_vpc is not None:
        data["services"]["console"]["vpc"].update(service_vpc)
    path = tmp_path / "staging.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "vpc", "field"),
    [
        (
            {"registry": "europe-west1-docker.pkg.dev/gtfs-gitops-dev/services"},
            None,
            "registry: must be in the environment's own project",
        ),
        (
            {"registry": "us-east1-docker.pkg.dev/gtfs-gitops-staging/services"},
            None,
            "registry: must be in the environment's region",
        ),
        (
            {"registry": "gcr.io/gtfs-gitops-staging/services"},
            None,
            "registry: must be LOCATION-docker.pkg.dev/PROJECT/REPOSITORY",
        ),
        (
            {},
            {"subnetwork": "elsewhere"},
            "services.*.vpc: every service must name the same network and subnetwork",
        ),
        ({"platform": "docker"}, None, "platform: bootstrap prepares cloud environments only"),
    ],
    ids=["foreign-project", "other-region", "not-artifact-registry", "two-vpcs", "docker"],
)
def test_a_file_bootstrap_cannot_serve_names_file_and_field(
    tmp_path: Path, change: dict[str, object], vpc: dict[str, str] | None, field: str
) -> None:
    path = _broken(tmp_path, change, vpc)
    result = _apply(tmp_path, path)
    assert result.returncode != 0
    message = " ".join(result.stderr.split())
    assert f"{path}: {field}" in message, result.stderr


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    result = _apply(tmp_path, tmp_path / "nowhere.yaml")
    assert result.returncode != 0
    assert "path must name an existing environments/ENV.yaml file" in " ".join(
        result.stderr.split()
    )
