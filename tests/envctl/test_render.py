"""`envctl render`: deterministic JSON, checked against committed golden snapshots.

The snapshots under tests/envctl/golden/ answer "what does each environment actually
get?". After an intended change to an environment file or to the renderer, regenerate
them and review the diff like any other change:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/envctl/test_render.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from envctl.errors import EnvctlError
from envctl.load import list_environments, load_environment
from envctl.local import local_service_settings, resolve_ports
from envctl.render import backend_config, render, to_json

EditEnv = Callable[..., str]  # the `edit_env` fixture (conftest.py)

GOLDEN = Path(__file__).parent / "golden"
ENVIRONMENTS = ["local", "dev", "staging", "prod"]


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_render_matches_golden_snapshot(repo_root: Path, name: str) -> None:
    rendered = to_json(render(load_environment(repo_root, name)))
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert golden.exists(), f"no snapshot {golden}; run with UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(), (
        f"render of {name} changed; review and run with UPDATE_GOLDEN=1 (see module doc)"
    )


def test_every_environment_has_a_snapshot(repo_root: Path) -> None:
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(list_environments(repo_root))


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_render_is_deterministic_with_sorted_keys(repo_root: Path, name: str) -> None:
    first = to_json(render(load_environment(repo_root, name)))
    second = to_json(render(load_environment(repo_root, name)))
    assert first == second
    assert first == json.dumps(json.loads(first), indent=2, sort_keys=True) + "\n"


def test_cloud_render_pins_images_and_wires_calls(repo_root: Path) -> None:
    prod = render(load_environment(repo_root, "prod"))
    pipeline, console = prod["services"]["pipeline"], prod["services"]["console"]
    assert pipeline["image"] == (
        "europe-west1-docker.pkg.dev/gtfs-gitops-prod/services/pipeline@sha256:"
        "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"
    )
    assert pipeline["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    assert pipeline["http2"] is True
    assert pipeline["startup_probe"]["type"] == "grpc"
    assert console["startup_probe"]["path"] == "/readyz"
    assert console["liveness_probe"]["path"] == "/healthz"
    assert pipeline["callers"] == ["console"]
    assert console["calls"] == ["pipeline"]
    assert pipeline["env"]["PIPELINE_REQUIRE_ID_TOKEN"] == "true"
    assert pipeline["env"]["PIPELINE_ALLOWED_INVOKERS"] == (
        "svc-console@gtfs-gitops-prod.iam.gserviceaccount.com"
    )
    assert pipeline["env"]["IMAGE_COMMIT"] == pipeline["commit"]
    assert pipeline["min_instances"] >= 1


def test_rollout_renders_a_tagged_traffic_split(repo_root: Path, edit_env: EditEnv) -> None:
    from envctl.load import parse_environment

    text = edit_env(
        repo_root,
        "prod",
        (
            "put",
            "services.console.rollout",
            {"canary_percent": 10, "stable_revision": "console-00007-abc"},
        ),
    )
    rendered = render(parse_environment(repo_root, "prod", text))
    assert rendered["services"]["console"]["traffic"] == [
        {
            "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
            "percent": 10,
            "revision": None,
            "tag": "canary",
        },
        {
            "type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
            "percent": 90,
            "revision": "console-00007-abc",
            "tag": "stable",
        },
    ]


def test_backend_config_is_one_state_per_environment(repo_root: Path) -> None:
    configs = [backend_config(load_environment(repo_root, n)) for n in ["dev", "staging", "prod"]]
    assert len({(c["bucket"], c["prefix"]) for c in configs}) == 3
    assert configs[0] == {"bucket": "gtfs-gitops-dev-tfstate", "prefix": "environments/dev"}


def test_local_settings_wire_the_console_to_the_pipeline_on_loopback(repo_root: Path) -> None:
    env = load_environment(repo_root, "local")
    settings = local_service_settings(env, ports={"pipeline": 50100, "console": 50101})
    assert settings["pipeline"]["port"] == 50100
    assert settings["pipeline"]["env"]["PORT"] == "50100"
    assert settings["pipeline"]["env"]["PIPELINE_NAME"] == "metro_schedule"
    assert "IMAGE_COMMIT" not in settings["pipeline"]["env"]  # the image bakes it in
    console = settings["console"]["env"]
    assert console["PIPELINE_ADDR"] == "127.0.0.1:50100"
    assert console["PIPELINE_TLS"] == "false"
    assert "PIPELINE_AUDIENCE" not in console


def test_local_settings_pick_free_ports_for_zero(repo_root: Path, edit_env: EditEnv) -> None:
    from envctl.load import parse_environment

    text = edit_env(repo_root, "local", ("put", "services.pipeline.port", 0))
    env = parse_environment(repo_root, "local", text)
    ports = resolve_ports(env)
    assert ports["pipeline"] > 0
    assert ports["console"] == 8080
    settings = local_service_settings(env, commit="0" * 40)
    assert settings["console"]["env"]["PIPELINE_ADDR"].startswith("127.0.0.1:")
    assert settings["pipeline"]["env"]["IMAGE_COMMIT"] == "0" * 40


def test_local_settings_refuse_a_cloud_environment(repo_root: Path) -> None:
    with pytest.raises(EnvctlError, match="docker environments only"):
        local_service_settings(load_environment(repo_root, "dev"))


def test_environment_is_a_read_only_mapping_of_the_document(repo_root: Path) -> None:
    env = load_environment(repo_root, "local")
    assert env["platform"] == "docker"
    assert env.get("services") == env.data["services"]
    assert set(env) == set(env.data)
