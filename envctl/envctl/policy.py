"""Policy rules: what environments/schema.json cannot express.

Each rule is a function of one parsed environment that yields Problems naming the file,
the service and the field. They run after the schema passed, so they may rely on its
shape (required keys present, types right). ``RULES`` maps each rule id to its function;
``check`` runs them all. The ids appear in ``envctl validate --json`` output.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from envctl.clock import now_utc, parse_duration, parse_time
from envctl.errors import FieldPath, Problem, quote
from envctl.model import CHECKOUT, Environment
from envctl.platform_env import platform_env
from envctl.yamlio import parse

OVERRIDE_LIMIT = dt.timedelta(hours=24)  # envctl.freeze honours no override beyond it

Rule = Callable[[Environment], Iterator[Problem]]
RULES: dict[str, Rule] = {}


def rule(rule_id: str) -> Callable[[Rule], Rule]:
    def register(func: Rule) -> Rule:
        def tagged(env: Environment) -> Iterator[Problem]:
            for problem in func(env):
                yield Problem(problem.file, problem.path, problem.message, problem.line, rule_id)

        RULES[rule_id] = tagged
        return tagged

    return register


def check(env: Environment) -> list[Problem]:
    problems = [p for run in RULES.values() for p in run(env)]
    return sorted(problems, key=lambda p: (p.line or 0, p.field))


def _svc(name: str, *rest: str | int) -> FieldPath:
    return ("services", name, *rest)


# --- images -------------------------------------------------------------------

_SHA = re.compile(r"^[0-9a-f]{40}$")


@rule("commit-sha")
def _commit_sha(env: Environment) -> Iterator[Problem]:
    """A commit is a full 40-hex SHA; 'checkout' (build the working tree) is local only."""
    for name in env.services:
        commit = env.image(name).commit
        path = _svc(name, "image", "commit")
        if commit == CHECKOUT:
            if env.is_cloud:
                yield env.problem(
                    path,
                    f"{name}: 'checkout' (build from the working tree) is for the docker "
                    "platform only; a cloud environment runs an image CI built from a commit",
                )
        elif not _SHA.match(commit):
            hint = " (use lower-case hex)" if _SHA.match(commit.lower()) else ""
            yield env.problem(
                path, f"{name}: {quote(commit)} is not a full 40-hex commit SHA{hint}"
            )


@rule("digest-pinned")
def _digest_pinned(env: Environment) -> Iterator[Problem]:
    """Cloud environments pin the digest: a tag can be re-pushed, a digest cannot."""
    if not env.is_cloud:
        return
    for name in env.services:
        if env.image(name).digest is None:
            yield env.problem(
                _svc(name, "image", "digest"),
                f"{name}: a cloud environment pins the image digest (sha256:...) "
                "as well as the commit",
            )


_LATEST = re.compile(r"(^latest$|:latest\b)", re.IGNORECASE)


@rule("no-latest")
def _no_latest(env: Environment) -> Iterator[Problem]:
    """Nothing says 'latest': every environment names exact bytes."""
    for path, value in _strings(env.data):
        if _LATEST.search(value):
            yield env.problem(
                path,
                f"{_who(path)}says {quote(value)}; name an exact commit, digest or version instead",
            )


# --- exposure and secrets ---------------------------------------------------------

_PUBLIC = ("allUsers", "allAuthenticatedUsers")


@rule("internal-not-public")
def _internal_not_public(env: Environment) -> Iterator[Problem]:
    """A service others call, or with internal ingress, is never public."""
    if not env.is_cloud:
        return
    for name, svc in env.services.items():
        callers = env.callers(name)
        if callers and svc["ingress"] == "all":
            yield env.problem(
                _svc(name, "ingress"),
                f"{name}: ingress 'all' exposes it to the internet, but it is internal "
                f"({', '.join(callers)} call{'s' if len(callers) == 1 else ''} it): "
                "use 'internal'",
            )
        if callers or svc["ingress"] != "all":
            for i, member in enumerate(svc["invokers"]):
                if member in _PUBLIC:
                    yield env.problem(
                        _svc(name, "invokers", i),
                        f"{name}: {quote(member)} makes an internal service public; only the "
                        "services that call it (and named people) may invoke it",
                    )


_SECRET_NAME = re.compile(
    r"(^|_)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)(_|$)"
)
# Values that are switches or pointers, not secrets: "true", a mounted file, a resource name.
_NOT_A_SECRET = re.compile(r"^(|true|false|0|1|yes|no|on|off|/.*|projects/.*)$", re.IGNORECASE)
_SECRET_VALUES = (
    ("a PEM private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("an AWS access key", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[0-9A-Za-z]{36,}")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[0-9A-Za-z_-]{10,}\.eyJ[0-9A-Za-z_-]{10,}\.")),
    ("a service-account key", re.compile(r"\"private_key\"\s*:")),
    ("a password inside a URL", re.compile(r"://[^/\s:@]+:[^/\s@]+@")),
)


@rule("secrets-by-reference")
def _secrets_by_reference(env: Environment) -> Iterator[Problem]:
    """Secret values never appear; only Secret Manager references (under 'secrets')."""
    advice = "put it in Secret Manager and reference it under 'secrets'"
    for name, svc in env.services.items():
        for var, value in svc.get("env", {}).items():
            if _SECRET_NAME.search(var) and not _NOT_A_SECRET.match(value):
                yield env.problem(
                    _svc(name, "env", var),
                    f"{name}: {var} looks like a secret value in plain text; {advice}",
                )
    for path, value in _strings(env.data):
        for what, pattern in _SECRET_VALUES:
            if pattern.search(value):
                yield env.problem(path, f"{_who(path)}contains {what} in plain text; {advice}")
                break


# --- scaling and wiring ----------------------------------------------------------

# Services that must keep a warm instance in an environment, and why.
WARM = {"prod": {"pipeline": "a cold start is seconds every console call would wait"}}


@rule("warm-instance")
def _warm_instance(env: Environment) -> Iterator[Problem]:
    """The pipeline in prod keeps at least one warm instance."""
    for name, why in WARM.get(env.name, {}).items():
        svc = env.services.get(name)
        if svc is not None and env.is_cloud and svc["scaling"]["min_instances"] < 1:
            yield env.problem(
                _svc(name, "scaling", "min_instances"),
                f"{name}: {env.name} keeps at least one warm instance (min_instances >= 1): {why}",
            )


@rule("scaling-range")
def _scaling_range(env: Environment) -> Iterator[Problem]:
    if not env.is_cloud:
        return
    for name, svc in env.services.items():
        low, high = svc["scaling"]["min_instances"], svc["scaling"]["max_instances"]
        if low > high:
            yield env.problem(
                _svc(name, "scaling", "min_instances"),
                f"{name}: min_instances {low} is above max_instances {high}",
            )


@rule("calls-exist")
def _calls_exist(env: Environment) -> Iterator[Problem]:
    """Every called service exists in the same environment."""
    for name in env.services:
        for i, callee in enumerate(env.calls(name)):
            if callee == name:
                yield env.problem(_svc(name, "calls", i), f"{name}: a service does not call itself")
            elif callee not in env.services:
                known = ", ".join(env.services)
                yield env.problem(
                    _svc(name, "calls", i),
                    f"{name}: calls {quote(callee)}, which is not a service of {env.name} "
                    f"(it has: {known})",
                )


@rule("internal-callee-needs-vpc")
def _internal_callee_needs_vpc(env: Environment) -> Iterator[Problem]:
    """Calling an internal-ingress service from Cloud Run needs all egress through the VPC."""
    if not env.is_cloud:
        return
    for name, svc in env.services.items():
        for callee in env.calls(name):
            target = env.services.get(callee)
            if target is None or target["ingress"] == "all":
                continue
            vpc = svc.get("vpc")
            if vpc is None or vpc["egress"] != "all-traffic":
                path = _svc(name, "vpc", "egress") if vpc else _svc(name, "vpc")
                yield env.problem(
                    path,
                    f"{name}: calls {callee}, whose ingress is {quote(target['ingress'])}; "
                    "Cloud Run "
                    "lets the call in only when it leaves through the VPC "
                    "(vpc.egress: all-traffic)",
                )


def injected_env(env: Environment, name: str) -> dict[str, str]:
    """The names the platform owns for ``name`` (envctl.platform_env), each with why."""
    return {var: value.explanation for var, value in platform_env(env, name).items()}


@rule("reserved-env")
def _reserved_env(env: Environment) -> Iterator[Problem]:
    """A file does not set what the platform sets (envctl.platform_env), nor a name twice."""
    for name, svc in env.services.items():
        reserved = injected_env(env, name)
        secrets = svc.get("secrets", {})
        for var in svc.get("env", {}):
            if var in reserved:
                yield env.problem(
                    _svc(name, "env", var),
                    f"{name}: {var} is reserved: {reserved[var]}; remove it from env",
                )
            elif var in secrets:
                yield env.problem(
                    _svc(name, "env", var), f"{name}: {var} is set in both env and secrets"
                )
        for var in secrets:
            if var in reserved:
                yield env.problem(
                    _svc(name, "secrets", var),
                    f"{name}: {var} is reserved: {reserved[var]}; remove it from secrets",
                )


@rule("local-ports")
def _local_ports(env: Environment) -> Iterator[Problem]:
    """Host networking: two services cannot share a fixed port."""
    if env.is_cloud:
        return
    owner: dict[int, str] = {}
    for name, svc in env.services.items():
        port = svc["port"]
        if port and port in owner:
            yield env.problem(_svc(name, "port"), f"{name}: port {port} is also {owner[port]}'s")
        owner.setdefault(port, name)


@rule("rollout-revision")
def _rollout_revision(env: Environment) -> Iterator[Problem]:
    if not env.is_cloud:
        return
    for name, svc in env.services.items():
        rollout = svc.get("rollout")
        if rollout and not rollout["stable_revision"].startswith(f"{name}-"):
            yield env.problem(
                _svc(name, "rollout", "stable_revision"),
                f"{name}: {quote(rollout['stable_revision'])} is not a revision of {name} "
                f"(Cloud Run names them {name}-NNNNN-xxx)",
            )


# --- the run store ------------------------------------------------------------------

# Services whose state lives in a run store, and why it must be declared.
STORE = {"pipeline": "its run history and outputs are shared by every instance and outlive it"}
# Environments whose run store holds data that must survive a mistake.
PRODUCTION = {"prod"}


@rule("run-store")
def _run_store(env: Environment) -> Iterator[Problem]:
    """A service that keeps runs declares its store: retention everywhere; on cloudrun a
    database and a bucket (reached over its VPC), on docker neither (SQLite and a folder)."""
    for name, svc in env.services.items():
        storage = svc.get("storage")
        if storage is None:
            if name in STORE:
                yield env.problem(
                    _svc(name),
                    f"{name}: declares no storage, but {STORE[name]}: add storage "
                    "(retention, and on cloudrun database and bucket)",
                )
            continue
        for part, what in (("database", "Cloud SQL"), ("bucket", "Cloud Storage")):
            if env.is_cloud and part not in storage:
                yield env.problem(
                    _svc(name, "storage"),
                    f"{name}: storage.{part} is missing: on cloudrun the run store is "
                    f"{what}, shared by every instance (a container's disk is not)",
                )
            elif not env.is_cloud and part in storage:
                yield env.problem(
                    _svc(name, "storage", part),
                    f"{name}: storage.{part} is for cloudrun only; on docker the service "
                    "keeps its runs in its data directory (a SQLite file and a folder)",
                )
        if env.is_cloud and "database" in storage and svc.get("vpc") is None:
            yield env.problem(
                _svc(name, "storage", "database"),
                f"{name}: the run store's database has a private IP only; the service "
                "reaches it through Direct VPC egress: add vpc",
            )


@rule("retention-bounded")
def _retention_bounded(env: Environment) -> Iterator[Problem]:
    """At least one retention limit: an unbounded store grows (and costs) forever, and
    ListRuns, the bench and the disk size all assume a bound."""
    for name, svc in env.services.items():
        retention = (svc.get("storage") or {}).get("retention")
        if retention is not None and retention["days"] == 0 and retention["runs"] == 0:
            yield env.problem(
                _svc(name, "storage", "retention"),
                f"{name}: both retention limits are 0 (off): set days, runs or both, "
                "or the run store grows without end",
            )


@rule("bucket-outlives-rows")
def _bucket_outlives_rows(env: Environment) -> Iterator[Problem]:
    """The bucket's lifecycle never deletes a zip a retained run still points at."""
    for name, svc in env.services.items():
        storage = svc.get("storage") or {}
        bucket = storage.get("bucket")
        if bucket is None:
            continue
        days, lifecycle = storage["retention"]["days"], bucket["lifecycle_days"]
        path = _svc(name, "storage", "bucket", "lifecycle_days")
        if days > 0 and lifecycle <= days:
            yield env.problem(
                path,
                f"{name}: the bucket deletes zips after {lifecycle} days, but runs are kept "
                f"{days} days (storage.retention.days): set it above {days}, or runs "
                "would point at zips that are gone",
            )
        elif days == 0 and lifecycle > 0:
            yield env.problem(
                path,
                f"{name}: runs have no age limit (storage.retention.days: 0), so a bucket "
                f"lifecycle of {lifecycle} days would delete zips of runs still kept: set 0",
            )


@rule("production-storage")
def _production_storage(env: Environment) -> Iterator[Problem]:
    """Production's run store has backups, point-in-time recovery and deletion protection."""
    if env.name not in PRODUCTION or not env.is_cloud:
        return
    stores = [name for name, svc in env.services.items() if "database" in svc.get("storage", {})]
    for name in stores:
        database = env.services[name]["storage"]["database"]
        for key, what in (
            ("backups", "backups"),
            ("point_in_time_recovery", "point-in-time recovery"),
        ):
            if not database[key]:
                yield env.problem(
                    _svc(name, "storage", "database", key),
                    f"{name}: {env.name}'s run store keeps {what} (true): a bad migration "
                    "or a wrong delete must be recoverable",
                )
    if stores and not env.data["deletion_protection"]:
        yield env.problem(
            ("deletion_protection",),
            f"{env.name} holds a run store ({', '.join(stores)}): deletion_protection must be "
            "true, so no plan destroys its database or empties its bucket",
        )


# --- telemetry (ADR 0027) -------------------------------------------------------

# Where each platform's telemetry can go: gcp needs a project and a service account,
# otlp a collector, and only `make up` starts one (the harness's receiver).
EXPORTS = {"cloudrun": {"gcp", "none"}, "docker": {"otlp", "none"}}
# Production samples: the dashboard polls GetDag and status all day, and every span
# kept is billed; errors and latency come from the metrics, which count every request.
PRODUCTION_MAX_SAMPLING = 0.25


@rule("telemetry-export")
def _telemetry_export(env: Environment) -> Iterator[Problem]:
    """A platform exports where it can; a cloud environment sets what its alerts compare."""
    telemetry = env.data.get("telemetry")
    if telemetry is None:
        return
    allowed = EXPORTS[env.platform]
    if telemetry["export"] not in allowed:
        where = {
            "gcp": "gcp needs a project and a service account (cloudrun)",
            "otlp": "otlp needs a collector, and only make up starts one (docker)",
        }.get(telemetry["export"], "")
        yield env.problem(
            ("telemetry", "export"),
            f"{env.platform} exports to {' or '.join(sorted(allowed))}, not "
            f"{quote(telemetry['export'])}: {where}",
        )
    if env.is_cloud:
        for key, what in (
            ("thresholds", "the alert policies and the deploy's metrics check"),
            ("verification", "the deploy's metrics check"),
        ):
            if key not in telemetry:
                yield env.problem(
                    ("telemetry",), f"a cloud environment sets telemetry.{key} ({what})"
                )
    elif "notification_channels" in telemetry or "thresholds" in telemetry:
        key = "notification_channels" if "notification_channels" in telemetry else "thresholds"
        yield env.problem(
            ("telemetry", key),
            f"{key} is for cloud environments: docker has no alert policies",
        )


@rule("trace-sampling")
def _trace_sampling(env: Environment) -> Iterator[Problem]:
    """Production keeps a share of its traces, not every one."""
    telemetry = env.data.get("telemetry")
    if env.name not in PRODUCTION or telemetry is None or telemetry["export"] == "none":
        return
    if float(telemetry["trace_sampling"]) > PRODUCTION_MAX_SAMPLING:
        yield env.problem(
            ("telemetry", "trace_sampling"),
            f"{env.name} samples at most {PRODUCTION_MAX_SAMPLING} of its traces, not "
            f"{telemetry['trace_sampling']}: the dashboard polls GetDag all day and every "
            "kept span is billed; the metrics still count every request",
        )


@rule("alerts-reach-someone")
def _alerts_reach_someone(env: Environment) -> Iterator[Problem]:
    """A production alert that notifies nobody is no alert."""
    telemetry = env.data.get("telemetry")
    if env.name not in PRODUCTION or not env.is_cloud or telemetry is None:
        return
    if not telemetry.get("notification_channels"):
        yield env.problem(
            ("telemetry", "notification_channels"),
            f"{env.name}'s alerts notify at least one channel (an email address): "
            "an alert nobody receives is not watched",
        )


@rule("pitr-needs-backups")
def _pitr_needs_backups(env: Environment) -> Iterator[Problem]:
    """Cloud SQL recovers to a point in time from a backup plus the log: no backup, no PITR."""
    for name, svc in env.services.items():
        database = svc.get("storage", {}).get("database")
        if database and database["point_in_time_recovery"] and not database["backups"]:
            yield env.problem(
                _svc(name, "storage", "database", "point_in_time_recovery"),
                f"{name}: point-in-time recovery starts from a backup: set backups: true",
            )


# --- environment-wide -------------------------------------------------------------

_REGISTRY = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/")


@rule("registry-in-project")
def _registry_in_project(env: Environment) -> Iterator[Problem]:
    """The stack creates the registry in the environment's own project and region."""
    match = _REGISTRY.match(env.registry or "")
    if not env.is_cloud or match is None:
        return
    if match["project"] != env.project:
        yield env.problem(
            ("registry",),
            f"is in project {quote(match['project'])}, but {env.name} is {quote(env.project)}: "
            "each "
            "environment pulls from the registry its stack creates in its own project",
        )
    if match["location"] != env.region:
        yield env.problem(
            ("registry",),
            f"is in {quote(match['location'])}, but {env.name} runs in {quote(env.region)}: "
            "keep images "
            "beside the services that pull them",
        )


# Environments whose deploys must prove the pipeline with the data canary, and why.
CANARY_REQUIRED = {"prod": "riders get prod's feeds: a step that drops rows must never reach them"}


@rule("canary-required")
def _canary_required(env: Environment) -> Iterator[Problem]:
    """prod declares the data canary (verification.canary) when it runs a pipeline."""
    why = CANARY_REQUIRED.get(env.name)
    canary = (env.data.get("verification") or {}).get("canary")
    if why and env.is_cloud and "pipeline" in env.services and not canary:
        yield env.problem(
            ("verification",),
            f"{env.name} declares verification.canary (reference feeds and row tolerance): {why}",
        )


@rule("canary-tolerance")
def _canary_tolerance(env: Environment) -> Iterator[Problem]:
    """A per-file tolerance names a file once and says something the default does not."""
    rows = ((env.data.get("verification") or {}).get("canary") or {}).get("rows") or {}
    default = rows.get("default_percent", 0)
    for name, percent in (rows.get("files") or {}).items():
        if percent == default:
            yield env.problem(
                ("verification", "canary", "rows", "files", name),
                f"equals default_percent ({default:g}); drop it or say why it differs",
            )


@rule("freeze-windows")
def _freeze_windows(env: Environment) -> Iterator[Problem]:
    for i, window in enumerate(env.data.get("freeze", [])):
        if "start" in window:
            start, end = parse_time(window["start"]), parse_time(window["end"])
            if start is None or end is None:
                bad = "start" if start is None else "end"
                yield env.problem(("freeze", i, bad), "is not a real date and time")
            elif end <= start:
                yield env.problem(("freeze", i, "end"), "the window ends before it starts")
        elif window["until"] <= window["from"]:
            yield env.problem(("freeze", i, "until"), "the window ends before it starts")


@rule("override-expiry")
def _override_expiry(env: Environment) -> Iterator[Problem]:
    """A freeze override is short-lived: it expires at most 24 hours from now.

    An expired one is inert, not an error: the file stays valid and the gate ignores it.
    """
    entry = env.data.get("override")
    if not isinstance(entry, dict):
        return
    expires = parse_time(entry["expires"])
    if expires is None:
        yield env.problem(("override", "expires"), "is not a real date and time")
        return
    ahead = expires - now_utc()
    if ahead > OVERRIDE_LIMIT:
        yield env.problem(
            ("override", "expires"),
            f"is {_hours(ahead)} from now; an override lasts at most 24 hours "
            "(write a new one, reviewed again, to go on)",
        )


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} hours"


_SOAK_LIMIT = dt.timedelta(days=30)


@rule("promotion-soak")
def _promotion_soak(env: Environment) -> Iterator[Problem]:
    """A soak time is a real duration, no longer than 30 days (a release that old is
    history, not a candidate)."""
    soak = (env.data.get("promotion") or {}).get("soak")
    if soak is None:
        return
    duration = parse_duration(soak)
    if duration is None or duration > _SOAK_LIMIT:
        yield env.problem(("promotion", "soak"), f"{quote(soak)} is not between 1m and 30d")


@rule("promotion-chain")
def _promotion_chain(env: Environment) -> Iterator[Problem]:
    """The chain of sources exists and has no cycle (local -> dev -> staging -> prod)."""
    source = env.promotion_source
    if source is None:
        return
    path: FieldPath = ("promotion", "from")
    if source == env.name:
        yield env.problem(path, f"{env.name} cannot promote from itself")
        return
    if not _env_path(env.repo_root, source).is_file():
        yield env.problem(
            path, f"{quote(source)} is not an environment (no environments/{source}.yaml)"
        )
        return
    chain = [env.name, source]
    current: str | None = source
    while current is not None:
        current = _source_of(env.repo_root, current)
        if current in chain:
            loop = " <- ".join([*chain[chain.index(current) :], current])
            yield env.problem(path, f"the promotion chain has a cycle: {loop}")
            return
        if current is not None:
            chain.append(current)


def _env_path(repo_root: Path, name: str) -> Path:
    return repo_root / "environments" / f"{name}.yaml"


def _source_of(repo_root: Path, name: str) -> str | None:
    """``promotion.from`` of another environment, read leniently: a broken file ends the
    walk here (its own validation reports it)."""
    try:
        data = parse(_env_path(repo_root, name).read_text(encoding="utf-8"), name)
    except Exception:  # missing, unreadable or invalid: not this environment's problem
        return None
    promotion = data.get("promotion")
    source = promotion.get("from") if isinstance(promotion, dict) else None
    return source if isinstance(source, str) else None


def _who(path: FieldPath) -> str:
    """'pipeline: ' for a field of service pipeline, '' for an environment-wide field."""
    return f"{path[1]}: " if len(path) > 1 and path[0] == "services" else ""


def _strings(node: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, node
