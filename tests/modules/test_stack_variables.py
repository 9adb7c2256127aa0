"""Every environment's `envctl render` output fits modules/stack's variables exactly
(names and types), and the pieces the stack hands on fit the modules it calls."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envctl import hcl, tftypes
from envctl.load import list_environments, load_environment
from envctl.render import render

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "modules" / "stack"
CLOUD = [n for n in list_environments(ROOT) if load_environment(ROOT, n).is_cloud]


def test_cloud_environments_are_the_three_expected() -> None:
    assert CLOUD == ["dev", "staging", "prod"]
    assert not load_environment(ROOT, "local").is_cloud  # docker: no stack, no tfvars


@pytest.mark.parametrize("name", CLOUD)
def test_rendered_tfvars_match_the_stack_variables(name: str) -> None:
    tfvars = render(load_environment(ROOT, name))
    declared = {v.name: v for v in hcl.variables(STACK)}
    assert set(tfvars) - set(declared) == set(), "render writes variables the stack lacks"
    missing = {n for n, v in declared.items() if v.required} - set(tfvars)
    assert not missing, f"render omits required variables {missing}"
    for key, value in tfvars.items():
        errors = tftypes.check(value, tftypes.parse_type(declared[key].type), key)
        assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", CLOUD)
def test_service_pieces_fit_the_cloud_run_module(name: str) -> None:
    module = {v.name: v for v in hcl.variables(ROOT / "modules" / "cloud-run-service")}
    for svc in render(load_environment(ROOT, name))["services"].values():
        for attr, variable in [
            ("startup_probe", "startup_probe"),
            ("liveness_probe", "liveness_probe"),
            ("secret_env", "secret_env"),
            ("traffic", "traffic"),
            ("env", "env"),
        ]:
            errors = tftypes.check(svc[attr], tftypes.parse_type(module[variable].type), attr)
            assert not errors, errors
        if svc["vpc_egress"] is not None:
            vpc = tftypes.parse_type(module["vpc_egress"].type)
            assert not tftypes.check(svc["vpc_egress"], vpc, "vpc_egress")
        assert re.fullmatch(r"[^@:]+/[^@:]+@sha256:[0-9a-f]{64}", svc["image"])


@pytest.mark.parametrize("name", CLOUD)
def test_storage_pieces_fit_the_run_store_modules(name: str) -> None:
    """What the stack passes to cloud-sql-postgres and storage-bucket, from the render,
    passes their validations' patterns (the stack itself only renames the keys)."""
    database = {v.name: v for v in hcl.variables(ROOT / "modules" / "cloud-sql-postgres")}
    assert {"tier", "availability", "disk_gb", "network", "name"} <= database.keys()
    rendered = render(load_environment(ROOT, name))
    stores = [s["storage"] for s in rendered["services"].values() if s["storage"]]
    assert stores, f"{name} has no run store"
    for storage in stores:
        db, bucket = storage["database"], storage["bucket"]
        assert re.fullmatch(
            r"db-(f1-micro|g1-small|custom-[1-9][0-9]*-[1-9][0-9]{2,5})", db["tier"]
        )
        assert db["availability"] in {"ZONAL", "REGIONAL"}
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", db["instance"])
        assert len(f"{rendered['project_id']}:{db['instance']}") <= 98  # Cloud SQL's limit
        assert re.fullmatch(r"[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]", bucket["name"])
        assert "goog" not in bucket["name"]
        if db["point_in_time_recovery"]:
            assert db["backups"]


def test_the_type_checker_catches_a_mismatch() -> None:
    declared = {v.name: v for v in hcl.variables(STACK)}
    tfvars = render(load_environment(ROOT, "dev"))
    tfvars["services"]["pipeline"]["min_instances"] = "1"
    del tfvars["services"]["console"]["cpu"]
    tfvars["services"]["console"]["cpus"] = "1"
    errors = tftypes.check(
        tfvars["services"], tftypes.parse_type(declared["services"].type), "services"
    )
    assert errors == [
        "services.console.cpus: not an attribute of the declared object",
        "services.console.cpu: required attribute missing",
        "services.pipeline.min_instances: expected number, got string",
    ]


def test_stack_sets_no_variable_of_its_own() -> None:
    """envctl.platform_env owns the names: the stack passes `env` on and fills `url_env`."""
    main = hcl.load_tf(STACK / "main.tf")
    (service,) = [m['"service"'] for m in main["module"] if '"service"' in m]
    assert hcl.unquote(service["env"]) == "merge(each.value.env, local.url_env[each.key])"
    text = (STACK / "main.tf").read_text()
    for computed in ("upper(", "GOOGLE_CLOUD_PROJECT", "_ADDR", "_TLS", "_AUDIENCE"):
        assert computed not in text, f"modules/stack/main.tf computes a variable: {computed}"
