"""What modules/stack hands each Cloud Run service as its environment, evaluated by
`tofu`/`terraform` itself: exactly envctl's `env`, plus each `url_env` reference filled
with the service's URL, and nothing else.

The stack reads the project number from the google provider, which is not installed
here; so the test copies the stack's variables and its env expressions (taken from
main.tf, not rewritten) into a provider-free module, with a made-up project number in
place of the data source, and applies it to every cloud environment's render.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envctl import hcl
from envctl.load import list_environments, load_environment
from envctl.platform_env import ADDRESS, URL, Source, platform_env, service_env
from envctl.render import render, to_json

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "modules" / "stack"
CLOUD = [n for n in list_environments(ROOT) if load_environment(ROOT, n).is_cloud]
NUMBER = "123456789012"
NUMBER_REF = "${data.google_project.this.number}"


def _stack_env_module() -> str:
    """A module with the stack's env expressions and an output of each service's env."""
    main = hcl.load_tf(STACK / "main.tf")
    (locals_,) = main["locals"]
    (service,) = [m['"service"'] for m in main["module"] if '"service"' in m]
    urls = hcl.unquote(locals_["service_urls"])
    assert NUMBER_REF in urls
    env = hcl.unquote(service["env"]).replace("each.value", "svc").replace("each.key", "name")
    return f"""
locals {{
  service_urls      = {urls.replace(NUMBER_REF, NUMBER)}
  service_endpoints = {hcl.unquote(locals_["service_endpoints"])}
  url_env           = {hcl.unquote(locals_["url_env"])}
}}

output "env" {{
  value = {{ for name, svc in var.services : name => {env} }}
}}
"""


def _run(binary: str, workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
    return subprocess.run(
        [binary, *args], cwd=workdir, capture_output=True, text=True, env=env, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}{result.stderr}"
    return result.stdout


def _apply(
    binary: str, workdir: Path, name: str, tfvars: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    path = workdir / f"{name}.tfvars.json"
    path.write_text(to_json(tfvars))
    state = f"-state={workdir / f'{name}.tfstate'}"
    args = ["-input=false", "-no-color", f"-var-file={path}", state]
    return _run(binary, workdir, "apply", "-auto-approve", *args)


@pytest.fixture(scope="module")
def stack_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The tofu/terraform binary and an initialised copy of the stack's env expressions."""
    binary = shutil.which("tofu") or shutil.which("terraform")
    if binary is None:
        pytest.skip("neither tofu nor terraform is on PATH")
    workdir = tmp_path_factory.mktemp("stack-env")
    shutil.copy(STACK / "variables.tf", workdir / "variables.tf")
    (workdir / "main.tf").write_text(_stack_env_module())
    _ok(_run(binary, workdir, "init", "-input=false", "-no-color"))
    return binary, workdir


@pytest.fixture(scope="module")
def stack_env(stack_module: tuple[str, Path]) -> dict[str, dict[str, dict[str, str]]]:
    """Environment name -> service -> the env the stack gives module.service."""
    binary, workdir = stack_module
    found = {}
    for name in CLOUD:
        _ok(_apply(binary, workdir, name, render(load_environment(ROOT, name))))
        state = f"-state={workdir / f'{name}.tfstate'}"
        found[name] = json.loads(_ok(_run(binary, workdir, "output", "-json", state, "env")))
    return found


def _url(service: str, region: str) -> str:
    return f"https://{service}-{NUMBER}.{region}.run.app"


@pytest.mark.parametrize("name", CLOUD)
def test_the_stack_gives_each_service_envctls_variables_and_only_those(
    stack_env: dict[str, dict[str, dict[str, str]]], name: str
) -> None:
    env = load_environment(ROOT, name)
    for service in env.services:
        expected = service_env(env, service)
        for var, owned in platform_env(env, service).items():
            if owned.source is Source.SERVICE_URL:
                assert owned.url is not None
                url = _url(owned.url.service, str(env.region))
                form = {URL: url, ADDRESS: f"{url.removeprefix('https://')}:443"}
                expected[var] = form[owned.url.form]
        assert stack_env[name][service] == expected


def test_the_console_reaches_the_pipeline_at_its_cloud_run_url(
    stack_env: dict[str, dict[str, dict[str, str]]],
) -> None:
    console, pipeline = stack_env["prod"]["console"], stack_env["prod"]["pipeline"]
    url = _url("pipeline", "europe-west1")
    assert console["PIPELINE_ADDR"] == f"pipeline-{NUMBER}.europe-west1.run.app:443"
    assert console["PIPELINE_AUDIENCE"] == pipeline["PIPELINE_TOKEN_AUDIENCE"] == url
    assert console["GOOGLE_CLOUD_PROJECT"] == "gtfs-gitops-prod"


@pytest.mark.parametrize(
    ("case", "edit"),
    [
        ("in-env-too", lambda svc: svc["env"].update(PIPELINE_ADDR="10.0.0.1:443")),
        ("unknown-service", lambda svc: svc["url_env"]["PIPELINE_ADDR"].update(service="feeds")),
        ("unknown-form", lambda svc: svc["url_env"]["PIPELINE_ADDR"].update(form="host")),
    ],
)
def test_the_stack_refuses_a_url_env_it_cannot_fill(
    stack_module: tuple[str, Path], case: str, edit: Callable[[dict[str, Any]], None]
) -> None:
    binary, workdir = stack_module
    tfvars = render(load_environment(ROOT, "dev"))
    edit(tfvars["services"]["console"])
    result = _apply(binary, workdir, f"bad-{case}", tfvars)
    assert result.returncode != 0
    assert "services[*].url_env must name services of this environment" in " ".join(
        result.stderr.split()
    )
