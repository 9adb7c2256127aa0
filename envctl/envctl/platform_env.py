"""What the platform sets in a service's environment: one contract for both platforms.

``platform_env(env, service)`` lists every variable the platform owns for ``service`` of
``env``, each with where its value comes from and why. It is the only place that knows
these names; everything else reads them from here:

- ``envctl render`` (``envctl.render``) writes the ``RENDERED`` values into the service's
  ``env`` and the ``SERVICE_URL`` references into its ``url_env``; modules/stack passes
  ``env`` through as given and only turns each reference into the URL, because a Cloud
  Run URL holds the project *number*, which the stack reads at plan time;
- ``envctl.local`` starts docker containers with the ``RENDERED`` values;
- the policy rule ``reserved-env`` refuses a file that sets any of these names itself.

The names are the same on both platforms (a callee C, a called service S):

    ==================== ================================ ==============================
    variable             cloudrun                         docker
    ==================== ================================ ==============================
    PORT                 Cloud Run: the container port    envctl: ``port``
    S_LISTEN_HOST        unset (the service's default,    envctl: 127.0.0.1 (host
                         every interface)                 networking: loopback only)
    K_SERVICE,           Cloud Run                        unset
    K_REVISION,
    K_CONFIGURATION
    IMAGE_COMMIT         envctl: ``image.commit``         envctl: ``image.commit`` (for
                                                          'checkout': the image's own)
    GOOGLE_CLOUD_PROJECT envctl: ``project``              unset (no project)
    C_ADDR               stack: C's URL as HOST:443       envctl: 127.0.0.1:C's port
    C_TLS                envctl: true                     envctl: false
    C_AUDIENCE           stack: C's URL                   unset (no ID tokens locally)
    S_REQUIRE_ID_TOKEN   envctl: true                     unset
    S_ALLOWED_INVOKERS   envctl: the callers' accounts    unset
    S_TOKEN_AUDIENCE     stack: S's own URL               unset
    S_DATABASE_URL       envctl: S's Cloud SQL database   unset (the service's default:
                         (``storage.database``), below    SQLite in its data directory)
    S_OUTPUT_URL         envctl: gs://BUCKET/runs         unset (the service's default:
                         (``storage.bucket``)             a folder in its data directory)
    S_RETENTION_DAYS,    envctl: ``storage.retention``    envctl: ``storage.retention``
    S_RETENTION_RUNS     (0: no limit)                    (0: no limit)
    OTEL_TRACES_EXPORTER envctl: ``telemetry.export``     envctl: ``telemetry.export``
    OTEL_METRICS_EXPORTER  (gcp)                            (otlp or none)
    OTEL_EXPORTER_OTLP_  envctl: Google's Telemetry API   envctl: the harness's receiver,
    ENDPOINT             https://telemetry.googleapis.com http://127.0.0.1:4317
    OTEL_TRACES_SAMPLER, envctl: parentbased_traceidratio envctl: the same
    OTEL_TRACES_SAMPLER_ARG  and ``telemetry.trace_sampling``
    OTEL_METRIC_EXPORT_  envctl: ``telemetry.             envctl: the same
    INTERVAL             metric_interval_seconds`` in ms
    OTEL_RESOURCE_       envctl: the environment          envctl: the environment
    ATTRIBUTES           (service.namespace) and region
    ==================== ================================ ==============================

The OTEL_* names are every service's (the telemetry library reads them, ADR 0027); with
no ``telemetry`` section (docker only) they are left unset and nothing is exported.

The last four are for a service S with a ``storage`` section (the pipeline's run store).
The names of its cloud resources are derived here, once, for both the variables and the
stack (``envctl.render`` hands them to modules/cloud-sql-postgres and storage-bucket):

    Cloud SQL instance id   S-runs-ENV                          ``database_instance``
    database                runs                                ``DATABASE``
    IAM database user       svc-S@PROJECT.iam (the account's    ``database_user``
                            email without .gserviceaccount.com)
    bucket                  PROJECT-S-runs                      ``bucket_name``

    S_DATABASE_URL = postgresql+pg8000://svc-S%40PROJECT.iam@/runs?cloud_sql_instance=PROJECT:REGION:S-runs-ENV
    S_OUTPUT_URL   = gs://PROJECT-S-runs/runs

The database URL is a SQLAlchemy URL with no host and no password: the service connects
through the Cloud SQL Python Connector (private IP, IAM database authentication) to the
instance the ``cloud_sql_instance`` query parameter names, as the IAM user (its ``@``
written ``%40``, as SQLAlchemy renders it).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from envctl.model import CHECKOUT, Environment

# Cloud Run sets PORT to the container port; modules/cloud-run-service defaults it to 8080
# and the stack does not change it.
CLOUD_RUN_PORT = 8080
# The forms of a Cloud Run URL a variable can hold (url_env's ``form``; the stack knows both).
URL = "url"  # https://NAME-PROJECT_NUMBER.REGION.run.app (an ID-token audience)
ADDRESS = "address"  # NAME-PROJECT_NUMBER.REGION.run.app:443 (a gRPC target)
# canary---NAME-PROJECT_NUMBER.REGION.run.app:443: the revision tagged `canary`. Never
# rendered; only a gradual rollout's step 0 uses it (envctl.ci.rollout, ADR 0022).
CANARY_ADDRESS = "canary_address"


class Source(enum.Enum):
    RENDERED = "rendered"  # envctl computes the value; the platform passes it on as given
    SERVICE_URL = "service-url"  # a Cloud Run URL: envctl names it, modules/stack fills it in
    CLOUD_RUN = "cloud-run"  # Cloud Run sets it in every container; nothing renders it
    UNSET = "unset"  # the platform owns the name and leaves it unset on this platform


@dataclass(frozen=True)
class ServiceUrl:
    """A reference to ``service``'s Cloud Run URL in ``form`` (URL or ADDRESS)."""

    service: str
    form: str

    def as_dict(self) -> dict[str, str]:
        return {"service": self.service, "form": self.form}


@dataclass(frozen=True)
class PlatformVar:
    name: str
    source: Source
    reason: str  # where the value comes from, for messages: "from image.commit"
    value: str | None = None  # RENDERED; CLOUD_RUN when envctl can know it
    url: ServiceUrl | None = None  # SERVICE_URL

    @property
    def explanation(self) -> str:
        """Why a file must not set it: 'the platform sets it (...)'."""
        if self.source is Source.UNSET:
            return f"the platform owns it and leaves it unset on this platform ({self.reason})"
        return f"the platform sets it ({self.reason})"


def env_prefix(service: str) -> str:
    """PIPELINE for 'pipeline', FEED_STORE for 'feed-store'."""
    return service.upper().replace("-", "_")


def service_account_id(service: str) -> str:
    return f"svc-{service}"


def service_account_email(env: Environment, service: str) -> str:
    return f"{service_account_id(service)}@{env.project}.iam.gserviceaccount.com"


# The run store's database on its Cloud SQL instance, and the object prefix in its bucket.
DATABASE = "runs"
OUTPUT_PREFIX = "runs"
# Cloud SQL names a service account's IAM database user after its email without this.
_SA_EMAIL_SUFFIX = ".gserviceaccount.com"


def database_instance(env: Environment, service: str) -> str:
    """The Cloud SQL instance id of ``service``'s run store: pipeline-runs-dev."""
    return f"{service}-runs-{env.name}"


def database_user(env: Environment, service: str) -> str:
    """Cloud SQL's IAM database user for ``service``'s account: svc-pipeline@PROJECT.iam."""
    return service_account_email(env, service).removesuffix(_SA_EMAIL_SUFFIX)


def bucket_name(env: Environment, service: str) -> str:
    """The run store's bucket; bucket names are global, so it starts with the project id."""
    return f"{env.project}-{service}-runs"


def database_url(env: Environment, service: str) -> str:
    """The SQLAlchemy URL of ``service``'s Cloud SQL database (see the module doc)."""
    user = database_user(env, service).replace("@", "%40")
    instance = f"{env.project}:{env.region}:{database_instance(env, service)}"
    return f"postgresql+pg8000://{user}@/{DATABASE}?cloud_sql_instance={instance}"


def output_url(env: Environment, service: str) -> str:
    """Where ``service`` writes its zips: gs://BUCKET/runs."""
    return f"gs://{bucket_name(env, service)}/{OUTPUT_PREFIX}"


def declared_ports(env: Environment) -> dict[str, int]:
    """Each docker service's port as the file says it (0: a free one is picked at start)."""
    return {name: int(svc.get("port", 0)) for name, svc in env.services.items()}


def platform_env(
    env: Environment,
    service: str,
    ports: Mapping[str, int] | None = None,
    commit: str | None = None,
) -> dict[str, PlatformVar]:
    """Every variable the platform owns for ``service`` of ``env``, by name (sorted).

    Docker only: ``ports`` are the services' ports (default: as declared, 0 included);
    ``commit`` is IMAGE_COMMIT for an image built from the working tree ('checkout'),
    which otherwise carries its own.
    """
    found = _cloud_run(env, service) if env.is_cloud else _docker(env, service, ports, commit)
    return {var.name: var for var in sorted(found, key=lambda v: v.name)}


def rendered_values(variables: Mapping[str, PlatformVar]) -> dict[str, str]:
    """The values envctl itself gives (``RENDERED``), by name."""
    return {
        name: var.value
        for name, var in variables.items()
        if var.source is Source.RENDERED and var.value is not None
    }


def url_references(variables: Mapping[str, PlatformVar]) -> dict[str, dict[str, str]]:
    """The variables modules/stack fills with a Cloud Run URL: name -> {service, form}."""
    return {
        name: var.url.as_dict()
        for name, var in variables.items()
        if var.source is Source.SERVICE_URL and var.url is not None
    }


def service_env(
    env: Environment,
    service: str,
    ports: Mapping[str, int] | None = None,
    commit: str | None = None,
) -> dict[str, str]:
    """The file's ``env`` of ``service`` plus the values envctl gives it, sorted by name.

    On docker this is the container's whole environment; on Cloud Run the stack adds
    the ``url_references`` and Cloud Run its own (PORT, K_SERVICE, ...).
    """
    injected = rendered_values(platform_env(env, service, ports, commit))
    variables = {**env.service(service).get("env", {}), **injected}
    return dict(sorted(variables.items()))


# --- the two platforms ------------------------------------------------------------


def _cloud_run(env: Environment, name: str) -> list[PlatformVar]:
    rendered, runtime = Source.RENDERED, Source.CLOUD_RUN
    found = [
        PlatformVar(
            "PORT", runtime, "Cloud Run sets it to the container port", str(CLOUD_RUN_PORT)
        ),
        PlatformVar(
            f"{env_prefix(name)}_LISTEN_HOST",
            Source.UNSET,
            "the service's default: every interface, as Cloud Run needs",
        ),
        PlatformVar("K_SERVICE", runtime, "Cloud Run sets it to the service's name", name),
        PlatformVar("K_CONFIGURATION", runtime, "Cloud Run sets it to the service's name", name),
        PlatformVar("K_REVISION", runtime, "Cloud Run sets it to the revision's name"),
        PlatformVar("IMAGE_COMMIT", rendered, "from image.commit", env.image(name).commit),
        PlatformVar(
            "GOOGLE_CLOUD_PROJECT",
            rendered,
            "from project, so log lines link to their traces",
            str(env.project),
        ),
    ]
    for callee in env.calls(name):
        prefix, why = env_prefix(callee), f"because it calls {callee}"
        found += [
            PlatformVar(
                f"{prefix}_ADDR",
                Source.SERVICE_URL,
                f"{why}: host:443 of {callee}'s URL",
                url=ServiceUrl(callee, ADDRESS),
            ),
            PlatformVar(f"{prefix}_TLS", rendered, why, "true"),
            PlatformVar(
                f"{prefix}_AUDIENCE",
                Source.SERVICE_URL,
                f"{why}: {callee}'s URL, the audience of its ID tokens",
                url=ServiceUrl(callee, URL),
            ),
        ]
    callers = env.callers(name)
    if callers:
        # The callee checks the ID token itself too (defence in depth behind run.invoker).
        prefix = env_prefix(name)
        why = f"because {', '.join(callers)} {'calls' if len(callers) == 1 else 'call'} it"
        emails = ",".join(sorted(service_account_email(env, c) for c in callers))
        found += [
            PlatformVar(f"{prefix}_REQUIRE_ID_TOKEN", rendered, why, "true"),
            PlatformVar(
                f"{prefix}_ALLOWED_INVOKERS",
                rendered,
                f"{why}: its callers' service accounts",
                emails,
            ),
            PlatformVar(
                f"{prefix}_TOKEN_AUDIENCE",
                Source.SERVICE_URL,
                f"{why}: its own URL, the audience its callers' ID tokens carry",
                url=ServiceUrl(name, URL),
            ),
        ]
    return found + _storage(env, name) + _telemetry(env)


# Google's Telemetry API (OTLP): traces to Cloud Trace, metrics to Cloud Monitoring.
GCP_TELEMETRY_ENDPOINT = "https://telemetry.googleapis.com"
# The harness's OTLP receiver that `make up` starts (harness.telemetry), on the OTLP port.
LOCAL_OTLP_ENDPOINT = "http://127.0.0.1:4317"
DEFAULT_METRIC_INTERVAL_SECONDS = 60
TELEMETRY_VARS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_RESOURCE_ATTRIBUTES",
)


def _telemetry(env: Environment) -> list[PlatformVar]:
    """Where every service's traces and metrics go (``telemetry``), the same for all."""
    telemetry = env.data.get("telemetry")
    if telemetry is None:
        why = "no telemetry section: nothing is exported"
        return [PlatformVar(var, Source.UNSET, why) for var in TELEMETRY_VARS]
    rendered = Source.RENDERED
    export = str(telemetry["export"])
    found = [
        PlatformVar("OTEL_TRACES_EXPORTER", rendered, "from telemetry.export", export),
        PlatformVar("OTEL_METRICS_EXPORTER", rendered, "from telemetry.export", export),
    ]
    endpoint = {"gcp": GCP_TELEMETRY_ENDPOINT, "otlp": LOCAL_OTLP_ENDPOINT}.get(export)
    if endpoint is None:
        found.append(
            PlatformVar("OTEL_EXPORTER_OTLP_ENDPOINT", Source.UNSET, "telemetry.export is none")
        )
    else:
        found.append(
            PlatformVar(
                "OTEL_EXPORTER_OTLP_ENDPOINT", rendered, f"telemetry.export is {export}", endpoint
            )
        )
    interval = int(telemetry.get("metric_interval_seconds", DEFAULT_METRIC_INTERVAL_SECONDS))
    attributes = [f"deployment.environment.name={env.name}", f"service.namespace={env.name}"]
    if env.region:
        attributes.append(f"cloud.region={env.region}")
    found += [
        PlatformVar(
            "OTEL_TRACES_SAMPLER",
            rendered,
            "parent-based: the pipeline follows the console's decision",
            "parentbased_traceidratio",
        ),
        PlatformVar(
            "OTEL_TRACES_SAMPLER_ARG",
            rendered,
            "from telemetry.trace_sampling",
            format(float(telemetry["trace_sampling"]), "g"),
        ),
        PlatformVar(
            "OTEL_METRIC_EXPORT_INTERVAL",
            rendered,
            "from telemetry.metric_interval_seconds, in milliseconds",
            str(interval * 1000),
        ),
        PlatformVar(
            "OTEL_RESOURCE_ATTRIBUTES",
            rendered,
            "the environment (and region) every series and span is labelled with",
            ",".join(attributes),
        ),
    ]
    return found


def _storage(env: Environment, name: str) -> list[PlatformVar]:
    """The run store's variables, for a service with a ``storage`` section."""
    storage = env.service(name).get("storage")
    if storage is None:
        return []
    prefix, rendered, unset = env_prefix(name), Source.RENDERED, Source.UNSET
    found = [
        PlatformVar(
            f"{prefix}_RETENTION_{key.upper()}",
            rendered,
            f"from storage.retention.{key}",
            str(storage["retention"][key]),
        )
        for key in ("days", "runs")
    ]
    if env.is_cloud and "database" in storage:
        why = "from storage.database: the run store's Cloud SQL database"
        found.append(PlatformVar(f"{prefix}_DATABASE_URL", rendered, why, database_url(env, name)))
    else:
        why = "the service's default: a SQLite file in its data directory"
        found.append(PlatformVar(f"{prefix}_DATABASE_URL", unset, why))
    if env.is_cloud and "bucket" in storage:
        why = "from storage.bucket: the run store's bucket"
        found.append(PlatformVar(f"{prefix}_OUTPUT_URL", rendered, why, output_url(env, name)))
    else:
        why = "the service's default: a folder in its data directory"
        found.append(PlatformVar(f"{prefix}_OUTPUT_URL", unset, why))
    return found


def _docker(
    env: Environment, name: str, ports: Mapping[str, int] | None, commit: str | None
) -> list[PlatformVar]:
    rendered, unset = Source.RENDERED, Source.UNSET
    chosen = declared_ports(env) if ports is None else ports
    image_commit = env.image(name).commit
    if image_commit == CHECKOUT:
        image_commit = commit or ""
    found = [
        PlatformVar("PORT", rendered, "from port", str(chosen[name])),
        # Host networking: loopback only, never this machine's other interfaces.
        PlatformVar(
            f"{env_prefix(name)}_LISTEN_HOST", rendered, "host networking: loopback", "127.0.0.1"
        ),
        *(PlatformVar(var, unset, "only Cloud Run sets it") for var in _CLOUD_RUN_ONLY),
        PlatformVar("IMAGE_COMMIT", rendered, "from image.commit", image_commit)
        if image_commit
        else PlatformVar("IMAGE_COMMIT", unset, "an image built from the checkout carries its own"),
        PlatformVar("GOOGLE_CLOUD_PROJECT", unset, "docker has no Cloud project"),
    ]
    for callee in env.calls(name):
        prefix, why = env_prefix(callee), f"because it calls {callee}"
        port = chosen.get(callee)  # None only for an unknown callee, which calls-exist reports
        address = None if port is None else f"127.0.0.1:{port}"
        found += [
            PlatformVar(f"{prefix}_ADDR", rendered if address else unset, why, address),
            PlatformVar(f"{prefix}_TLS", rendered, why, "false"),
            PlatformVar(f"{prefix}_AUDIENCE", unset, f"{why}; docker has no ID tokens"),
        ]
    if env.callers(name):
        prefix = env_prefix(name)
        for suffix in _CALLEE_SUFFIXES:
            found.append(PlatformVar(f"{prefix}_{suffix}", unset, "docker has no ID tokens"))
    return found + _storage(env, name) + _telemetry(env)


_CLOUD_RUN_ONLY = ("K_SERVICE", "K_CONFIGURATION", "K_REVISION")
_CALLEE_SUFFIXES = ("REQUIRE_ID_TOKEN", "ALLOWED_INVOKERS", "TOKEN_AUDIENCE")
