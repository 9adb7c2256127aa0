"""The images: tagged with the commit, labelled, non-root, no build tools inside."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from harness import images, wheelhouse

pytestmark = pytest.mark.docker


def _inspect(ref: str) -> dict[str, object]:
    out = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=True)
    data: dict[str, object] = json.loads(out.stdout)[0]
    return data


def _sh(ref: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", ref, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("service", ["pipeline", "console"])
def test_tag_is_the_commit_and_labels_say_where_from(
    built_images: images.Build, service: str
) -> None:
    ref = built_images.ref(service)
    commit = built_images.commit
    assert ref.split(":", 1)[1] in (commit, f"{commit}-dirty")
    config = _inspect(ref)["Config"]
    assert isinstance(config, dict)
    labels = config["Labels"]
    assert labels["org.opencontainers.image.revision"] == commit
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["org.opencontainers.image.source"]
    assert labels[images.CONTENT_LABEL]
    assert f"IMAGE_COMMIT={commit}" in config["Env"]
    assert "PORT=8080" in config["Env"]


@pytest.mark.parametrize("service", ["pipeline", "console"])
def test_runs_as_non_root(built_images: images.Build, service: str) -> None:
    ref = built_images.ref(service)
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--entrypoint", "id", ref],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "uid=0(" not in done.stdout
    assert "uid=10001" in done.stdout


@pytest.mark.parametrize("service", ["pipeline", "console"])
def test_final_stage_has_no_build_tools_or_wheel_caches(
    built_images: images.Build, service: str
) -> None:
    done = _sh(
        built_images.ref(service),
        # The venv carries no pip (installed from pip's wheel in the builder);
        # no compiler, no wheelhouse, no pip cache were copied over.
        "for t in gcc cc make g++; do command -v $t && echo FOUND-$t; done;"
        " ls /opt/venv/bin | grep -x 'pip.*' && echo FOUND-venv-pip;"
        " test -e /wheels && echo FOUND-wheels;"
        " find / -xdev -type d -path '*/.cache/pip' 2>/dev/null | grep . && echo FOUND-cache;"
        " echo done",
    )
    assert done.returncode == 0, done.stderr
    assert "FOUND" not in done.stdout, done.stdout
    assert done.stdout.strip().endswith("done")


def test_unchanged_tree_reuses_the_images() -> None:
    # Build twice in a row: the second must find the first's images by tag and
    # content label (the fixture's build may predate an edit in this tree).
    before = images.current_digest()
    first = images.build(allow_dirty=True)
    second = images.build(allow_dirty=True)
    if images.current_digest() != before:
        pytest.skip("the working tree changed while the test ran (someone is editing it)")
    assert all(image.reused for image in second.images.values())
    assert {s: i.id for s, i in second.images.items()} == {s: i.id for s, i in first.images.items()}
    assert images.load_manifest().tag == second.tag


# What each image holds, read from its own Python: every distribution with its
# version, and which of our import packages it can find.
_INVENTORY = """
import importlib.metadata as m, importlib.util as u, json
dists = {d.metadata["Name"].lower().replace("_", "-").replace(".", "-"): d.version
         for d in m.distributions()}
ours = [p for p in ("pipeline_server", "console_server", "envctl", "harness", "bench",
                    "testkit", "telemetry", "pipeline") if u.find_spec(p)]
print(json.dumps({"dists": dists, "ours": ours}))
"""


def _inventory(ref: str) -> dict[str, Any]:
    done = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "python",
            ref,
            "-c",
            _INVENTORY,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("service", ["pipeline", "console"])
def test_versions_inside_the_image_are_the_locks(built_images: images.Build, service: str) -> None:
    inside = _inventory(built_images.ref(service))["dists"]
    locked = wheelhouse.pins(service)
    members = {"pipeline-proto", "service-telemetry", wheelhouse.COMPONENTS[service]}
    third_party = {name: version for name, version in inside.items() if name not in members}
    assert third_party == locked
    assert members <= set(inside)


def test_each_image_carries_only_its_own_service(built_images: images.Build) -> None:
    pipeline = _inventory(built_images.ref("pipeline"))
    console = _inventory(built_images.ref("console"))
    assert pipeline["ours"] == ["pipeline_server", "telemetry", "pipeline"]
    assert console["ours"] == ["console_server", "telemetry", "pipeline"]
    assert not {"fastapi", "starlette", "uvicorn", "console-server"} & set(pipeline["dists"])
    assert not {"polars", "pyarrow", "continuous-gtfs", "pipeline-server"} & set(console["dists"])
