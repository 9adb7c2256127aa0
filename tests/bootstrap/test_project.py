"""What one project gets (bootstrap/modules/project and project-services), read from the
.tf files: the APIs the stack calls, a state bucket that keeps history and is never
public, the VPC the environment files name with Private Google Access and private
services access, the deploy identity's roles only from a reviewed list, and the
workflows README's identity table naming the same roles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from envctl import hcl
from testkit.scripts import load_tool

from . import tfeval

PROJECT = tfeval.BOOTSTRAP / "modules" / "project"
SERVICES = tfeval.BOOTSTRAP / "modules" / "project-services"
README = tfeval.REPO / ".github" / "workflows" / "README.md"


def _res(rtype: str, name: str, directory: Path = PROJECT) -> dict[str, Any]:
    body: dict[str, Any] = hcl.unquote(tfeval.resources(directory)[(rtype, name)])
    return body


def test_the_apis_the_stack_and_the_workflows_call_are_enabled() -> None:
    apis = hcl.unquote(tfeval.locals_(SERVICES)["apis"])
    needed = {
        f"{name}.googleapis.com"
        for name in [
            "run",
            "artifactregistry",
            "secretmanager",
            "iam",
            "iamcredentials",
            "sts",
            "cloudresourcemanager",
            "compute",
            "sqladmin",
            "servicenetworking",
            "storage",
            "monitoring",
            "logging",
            "cloudtrace",
            "serviceusage",
        ]
    }
    assert needed <= set(apis)
    assert all(len(why) > 15 for why in apis.values()), "every API says why"
    service = _res("google_project_service", "apis", SERVICES)
    assert service["disable_on_destroy"] is False


def test_the_state_bucket_keeps_history_and_is_never_public() -> None:
    bucket = _res("google_storage_bucket", "state")
    assert bucket["name"] == "var.state_bucket"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["force_destroy"] is False
    assert bucket["versioning"] == [{"enabled": True}]
    (rule,) = bucket["lifecycle_rule"]
    assert rule["condition"] == [
        {"days_since_noncurrent_time": "var.state_noncurrent_days", "with_state": "ARCHIVED"}
    ]
    assert rule["action"] == [{"type": "Delete"}]
    assert bucket["lifecycle"] == [{"prevent_destroy": True}]


def test_the_vpc_is_what_the_environment_files_name() -> None:
    for root in tfeval.GCP_ROOTS:
        env = yaml.safe_load((tfeval.REPO / "environments" / f"{root.name}.yaml").read_text())
        vpcs = {(s["vpc"]["network"], s["vpc"]["subnetwork"]) for s in env["services"].values()}
        assert vpcs == {("gtfs-services", "gtfs-services-europe-west1")}
        network = hcl.unquote(tfeval.modules(root)["project"]["network"])
        assert network == {
            "name": "module.file.vpc.network",
            "subnetwork": "module.file.vpc.subnetwork",
        }
    subnet = _res("google_compute_subnetwork", "services")
    assert subnet["name"] == "var.network.subnetwork"
    assert subnet["private_ip_google_access"] is True
    address = _res("google_compute_global_address", "private_services")
    assert address["purpose"] == "VPC_PEERING"
    connection = _res("google_service_networking_connection", "private_services")
    assert connection["service"] == "servicenetworking.googleapis.com"
    assert connection["reserved_peering_ranges"] == [
        "google_compute_global_address.private_services.name"
    ]


def _roles(name: str) -> set[str]:
    return set(hcl.unquote(tfeval.locals_(PROJECT)[name]))


def test_the_deploy_identity_gets_only_the_reviewed_roles() -> None:
    granted = {
        str(body.get("role"))
        for (rtype, _), body in tfeval.resources(PROJECT).items()
        if rtype == "google_project_iam_member" and "deploy" in str(body.get("member"))
    }
    assert granted == {
        "${each.key}",  # local.deploy_roles
        '"roles/resourcemanager.projectIamAdmin"',
        "${google_project_iam_custom_role.secret_access_granter.name}",
    }
    assert not {r for r in _roles("deploy_roles") if r in {"roles/owner", "roles/editor"}}
    condition = _res("google_project_iam_member", "deploy_grants")["condition"][0]
    assert "modifiedGrantsByRole" in condition["expression"]
    # What the deploy identity may grant is what the stack grants.
    stack_roles = set()
    for tf in (tfeval.REPO / "modules").rglob("*.tf"):
        stack_roles |= set(re.findall(r'"(roles/[a-zA-Z.]+)"', tf.read_text())) & {
            "roles/cloudtrace.agent",
            "roles/logging.logWriter",
            "roles/monitoring.metricWriter",
            "roles/telemetry.tracesWriter",
            "roles/telemetry.metricsWriter",
            "roles/cloudsql.client",
            "roles/cloudsql.instanceUser",
        }
    assert set(hcl.unquote(tfeval.locals_(PROJECT)["grantable_roles"])) == stack_roles


def _readme_row(variable: str) -> str:
    (row,) = [
        line for line in README.read_text().splitlines() if line.startswith(f"| `{variable}` |")
    ]
    return row


def test_the_identity_table_names_the_roles_the_code_grants() -> None:
    deploy = _readme_row("DEPLOY_SA")
    for role in _roles("deploy_roles"):
        assert f"`{role.removeprefix('roles/')}`" in deploy, f"README's DEPLOY_SA row lacks {role}"
    plan = _readme_row("PLAN_SA")
    for role in _roles("plan_roles"):
        assert f"`{role.removeprefix('roles/')}`" in plan, f"README's PLAN_SA row lacks {role}"
    assert "attribute.env_ref/ENV@refs/heads/main" in deploy


def test_the_database_privilege_stays_a_step_while_the_provider_cannot_grant_it(
    node_tools: Path,
) -> None:
    """bootstrap/README.md step 4 (gcloud sql users assign-roles) exists because the pinned
    provider's google_sql_user has no database-roles argument. When the bindings of a newer
    pin gain one, this fails: move the grant into modules/cloud-sql-postgres then."""
    schema_tool = load_tool("provider_schema.py")
    schema = schema_tool.Bindings(node_tools / "node_modules" / "@cdktf").schema(
        "resource", "google_sql_user"
    )
    assert schema is not None
    assert {"instance", "name", "type"} <= set(schema.fields)
    assert not {key for key in schema.fields if "role" in key}
    steps = (tfeval.BOOTSTRAP / "README.md").read_text()
    assert "--database-roles=cloudsqlsuperuser" in steps
