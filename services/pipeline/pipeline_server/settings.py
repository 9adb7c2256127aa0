"""Settings of the pipeline service, read once from the environment.

Every cap that protects the service from a hostile or broken upload is here,
with the environment variable that overrides it (each field's alias). Nonsense
(a negative cap, a port that is not a number) stops start-up with a message
naming the variable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUseDefault
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .store.blobs import BlobUrlError, parse_blob_url
from .store.database import DatabaseUrlError, parse_url

MIB = 1024 * 1024
# Google's signing certificates for ID tokens, x509 PEM by key id.
GOOGLE_ID_TOKEN_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"  # noqa: S105 (public URL)


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


# --- how one variable's text becomes a value ----------------------------------
# Each raises ValueError with the reason only; load_settings() puts the
# variable and its value in front: "PORT='http' is not an integer".


def _parsed_as(convert: Callable[[str], object], reason: str) -> Callable[[object], object]:
    """A before-validator: text through ``convert`` (int, float), else ``reason``."""

    def parse(raw: object) -> object:
        if isinstance(raw, str):
            try:
                return convert(raw)
            except ValueError:
                raise ValueError(reason) from None
        return raw

    return parse


_integer = _parsed_as(int, "is not an integer")
_number = _parsed_as(float, "is not a number")


def _positive[N: (int, float)](value: N) -> N:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _tcp_port(value: int) -> int:
    if value > 65535:
        raise ValueError("is not a TCP port (1-65535)")
    return value


def _boolean(raw: object) -> object:
    if isinstance(raw, str):
        value = raw.strip().lower()
        if value in {"true", "1", "yes"}:
            return True
        if value in {"false", "0", "no", ""}:
            return False
        raise ValueError("must be true or false")
    return raw


def _csv(raw: object) -> object:
    if isinstance(raw, str):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _lower(values: frozenset[str]) -> frozenset[str]:
    return frozenset(value.lower() for value in values)


def _blank_is_default(raw: object) -> object:
    # Deploy tooling writes empty strings for "not set".
    if isinstance(raw, str):
        if not raw.strip():
            raise PydanticUseDefault
        return raw.strip()
    return raw


def _blank_path_is_default(raw: object) -> object:
    # Only the empty string: a path made of blanks is a (strange) path.
    if raw == "":
        raise PydanticUseDefault
    return raw


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("is not a URL")
    return value


def _folder_name(value: str) -> str:
    if not value or "/" in value or value.startswith("."):
        raise ValueError("must be the name of one folder")
    return value


def _listen_host(value: str) -> str:
    value = value.strip()
    if not value or any(c.isspace() or c in "/," for c in value):
        raise ValueError("must be one host or address to bind: [::], 0.0.0.0 or 127.0.0.1")
    return value


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError("must not be negative (0 means no limit)")
    return value


def _database_url(value: str) -> str:
    value = value.strip()  # deploy tooling writes "" (or blanks) for "not set"
    if value:
        try:
            parse_url(value)
        except DatabaseUrlError as exc:
            raise ValueError(str(exc)) from None
    return value


def _output_url(value: str) -> str:
    value = value.strip()
    if value:
        try:
            parse_blob_url(value)
        except BlobUrlError as exc:
            raise ValueError(str(exc)) from None
    return value


def _default_pipelines_dir() -> Path:
    # From a checkout, the repository's pipelines/ folder; in the image,
    # PIPELINES_DIR is always set by the Dockerfile.
    return Path(__file__).resolve().parents[3] / "pipelines"


PositiveInt = Annotated[int, BeforeValidator(_integer), AfterValidator(_positive)]


class Settings(BaseSettings):
    """What the service reads from its environment; the alias is the variable."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="forbid", frozen=True)

    port: Annotated[PositiveInt, AfterValidator(_tcp_port)] = Field(
        default=50051, alias="PORT", description="TCP port to serve gRPC on (Cloud Run injects it)."
    )
    pipelines_dir: Annotated[Path, BeforeValidator(_blank_path_is_default)] = Field(
        default_factory=_default_pipelines_dir,
        alias="PIPELINES_DIR",
        description="Folder holding the pipeline folders (empty: the checkout's pipelines/).",
    )
    pipeline_name: Annotated[str, AfterValidator(_folder_name)] = Field(
        default="metro_schedule",
        alias="PIPELINE_NAME",
        description="Which folder of PIPELINES_DIR to serve: one folder name, no path.",
    )
    image_commit: str = Field(
        default="unknown",
        alias="IMAGE_COMMIT",
        description="Git commit the image was built from, reported as the version.",
    )
    max_upload_bytes: PositiveInt = Field(
        default=512 * MIB,
        alias="PIPELINE_MAX_UPLOAD_BYTES",
        description="Compressed size of one upload; more is RESOURCE_EXHAUSTED.",
    )
    max_uncompressed_bytes: Annotated[
        int, BeforeValidator(_integer), AfterValidator(_not_negative)
    ] = Field(
        default=0,
        alias="PIPELINE_MAX_UNCOMPRESSED_BYTES",
        description=(
            "Total uncompressed size of the .txt entries of one feed; more is"
            " RESOURCE_EXHAUSTED. 0: the largest feed a run fits in the instance's memory."
        ),
    )
    max_compression_ratio: PositiveInt = Field(
        default=200,
        alias="PIPELINE_MAX_COMPRESSION_RATIO",
        description=(
            "Uncompressed / compressed, per entry: real GTFS CSV compresses ~5-15x;"
            " a bomb compresses ~1000x."
        ),
    )
    max_zip_entries: PositiveInt = Field(
        default=1000,
        alias="PIPELINE_MAX_ZIP_ENTRIES",
        description="Entries in one zip: GTFS has ~30 files; thousands means something is off.",
    )
    memory_limit_bytes: Annotated[int, BeforeValidator(_integer), AfterValidator(_not_negative)] = (
        Field(
            default=0,
            alias="PIPELINE_MEMORY_LIMIT_BYTES",
            description=(
                "Memory runs are admitted against. 0: the cgroup's limit (Cloud Run's,"
                " docker --memory), else the machine's MemTotal."
            ),
        )
    )
    memory_reserve_bytes: PositiveInt = Field(
        default=160 * MIB,
        alias="PIPELINE_MEMORY_RESERVE_BYTES",
        description="Memory kept for the idle server (~70-125 MiB measured); runs get the rest.",
    )
    max_concurrent_runs: PositiveInt = Field(
        default=2,
        alias="PIPELINE_MAX_CONCURRENT_RUNS",
        description="Runs executing at once on this instance; more get RESOURCE_EXHAUSTED.",
    )
    data_dir: Path = Field(
        default=Path(tempfile.gettempdir()) / "pipeline-server",
        alias="PIPELINE_DATA_DIR",
        description=(
            "Where in-flight uploads are spooled, and the embedded run store lives when"
            " the two URLs below are not set (Cloud Run: in-memory tmpfs)."
        ),
    )
    database_url: Annotated[str, AfterValidator(_database_url)] = Field(
        default="",
        alias="PIPELINE_DATABASE_URL",
        description=(
            "Run history: a SQLAlchemy URL, sqlite:////… or postgresql+pg8000://…"
            " (Cloud SQL: ?cloud_sql_instance=PROJECT:REGION:INSTANCE, IAM user, no"
            " password). Empty: a SQLite file in PIPELINE_DATA_DIR."
        ),
    )
    output_url: Annotated[str, AfterValidator(_output_url)] = Field(
        default="",
        alias="PIPELINE_OUTPUT_URL",
        description=(
            "Input and output zips: file:///folder or gs://bucket/prefix."
            " Empty: a folder in PIPELINE_DATA_DIR."
        ),
    )
    retention_days: Annotated[int, BeforeValidator(_integer), AfterValidator(_not_negative)] = (
        Field(
            default=30,
            alias="PIPELINE_RETENTION_DAYS",
            description="Finished runs and their zips older than this are deleted; 0: no limit.",
        )
    )
    retention_runs: Annotated[int, BeforeValidator(_integer), AfterValidator(_not_negative)] = (
        Field(
            default=10_000,
            alias="PIPELINE_RETENTION_RUNS",
            description="At most this many runs are kept, newest first; 0: no count limit.",
        )
    )
    run_lease_seconds: Annotated[float, BeforeValidator(_number), AfterValidator(_positive)] = (
        Field(
            default=30.0,
            alias="PIPELINE_RUN_LEASE_SECONDS",
            description=(
                "A running run's lease, renewed every third of it: a run whose instance"
                " died is marked failed this long (plus one upkeep round) after."
            ),
        )
    )
    store_timeout_seconds: Annotated[float, BeforeValidator(_number), AfterValidator(_positive)] = (
        Field(
            default=5.0,
            alias="PIPELINE_STORE_TIMEOUT_SECONDS",
            description="Bound on one database connect or Cloud Storage call, retries included.",
        )
    )
    download_chunk_bytes: PositiveInt = Field(
        default=1 * MIB,
        alias="PIPELINE_DOWNLOAD_CHUNK_BYTES",
        description="Size of each DownloadOutput message; well under gRPC's 4 MiB default.",
    )
    shutdown_grace_seconds: Annotated[float, BeforeValidator(_number)] = Field(
        default=8.0,
        alias="PIPELINE_SHUTDOWN_GRACE_SECONDS",
        description="Seconds in-flight RPCs get to finish on SIGTERM (Cloud Run gives 10).",
    )
    max_workers: PositiveInt = Field(
        default=16,
        alias="PIPELINE_MAX_WORKERS",
        description=(
            "Worker threads for health, status, reads and refusals; uploads and"
            " downloads have their own (below), so slow callers never take these."
        ),
    )
    listen_host: Annotated[str, AfterValidator(_listen_host)] = Field(
        default="[::]",
        alias="PIPELINE_LISTEN_HOST",
        description=(
            "Interface to listen on: [::] (every interface, what Cloud Run needs) or"
            " 127.0.0.1 (the local environment, which runs with host networking)."
        ),
    )
    max_downloads: PositiveInt = Field(
        default=4,
        alias="PIPELINE_MAX_DOWNLOADS",
        description=(
            "DownloadOutput streams at once, on threads of their own; more get RESOURCE_EXHAUSTED."
        ),
    )
    stream_idle_seconds: Annotated[float, BeforeValidator(_number), AfterValidator(_positive)] = (
        Field(
            default=30.0,
            alias="PIPELINE_STREAM_IDLE_SECONDS",
            description=(
                "A RunPipeline stream that sends no message for this long is ended"
                " (DEADLINE_EXCEEDED) and its run slot freed."
            ),
        )
    )
    upload_seconds: Annotated[float, BeforeValidator(_number), AfterValidator(_positive)] = Field(
        default=300.0,
        alias="PIPELINE_UPLOAD_SECONDS",
        description=(
            "A whole upload (options to last chunk) takes at most this long:"
            " 512 MiB at 2 MB/s; more is DEADLINE_EXCEEDED."
        ),
    )
    # Defence in depth behind Cloud Run IAM (ADR 0018).
    require_id_token: Annotated[bool, BeforeValidator(_boolean)] = Field(
        default=False,
        alias="PIPELINE_REQUIRE_ID_TOKEN",
        description="Every RPC but health and reflection must carry a Google ID token.",
    )
    token_audiences: Annotated[tuple[str, ...], BeforeValidator(_csv)] = Field(
        default=(),
        alias="PIPELINE_TOKEN_AUDIENCE",
        description=(
            "Audiences a token may be for: the pipeline's URLs, comma-separated"
            " (a service answers on more than one URL)."
        ),
    )
    allowed_invokers: Annotated[frozenset[str], BeforeValidator(_csv), AfterValidator(_lower)] = (
        Field(
            default=frozenset(),
            alias="PIPELINE_ALLOWED_INVOKERS",
            description="Identities a token may be from: emails, comma-separated, any case.",
        )
    )
    id_token_certs_url: Annotated[str, BeforeValidator(_blank_is_default), AfterValidator(_url)] = (
        Field(
            default=GOOGLE_ID_TOKEN_CERTS_URL,
            alias="PIPELINE_ID_TOKEN_CERTS_URL",
            description="Where the signers' certificates are (tests point it at a local endpoint).",
        )
    )

    @model_validator(mode="after")
    def _auth_is_complete(self) -> Settings:
        # Refuse to start rather than refuse every call, or accept any.
        if self.require_id_token and not self.token_audiences:
            raise ValueError(
                "PIPELINE_REQUIRE_ID_TOKEN=true needs PIPELINE_TOKEN_AUDIENCE "
                "(the pipeline's URL, e.g. https://pipeline-123456789.europe-west1.run.app)"
            )
        if self.require_id_token and not self.allowed_invokers:
            raise ValueError(
                "PIPELINE_REQUIRE_ID_TOKEN=true needs PIPELINE_ALLOWED_INVOKERS "
                "(comma-separated service account emails)"
            )
        return self

    @property
    def pipeline_dir(self) -> Path:
        return self.pipelines_dir / self.pipeline_name

    @property
    def store_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'runs.sqlite3').resolve()}"

    @property
    def store_output_url(self) -> str:
        return self.output_url or (self.data_dir / "runs").resolve().as_uri()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment only: no .env file, no secrets directory.
        return init_settings, _Environment(settings_cls, _environ.get())


# The environment load_settings() was given; None means os.environ.
_environ: ContextVar[Mapping[str, str] | None] = ContextVar(
    "pipeline_settings_environ", default=None
)


class _Environment(EnvSettingsSource):
    """The environment source, over a given mapping and with every value as text.

    The text goes to the field's validators as it is: pydantic-settings would
    otherwise parse the list fields as JSON, where they are comma-separated.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None) -> None:
        self._environ = os.environ if environ is None else environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Names as they are: case-sensitive, as os.environ is on Linux.
        return self._environ

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        return value


def _problem(error: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """One validation error as a sentence naming the variable and its value."""
    if error["type"] == "value_error":  # raised by a check above: its reason
        reason = str(error["ctx"]["error"])
    else:  # pydantic's own
        reason = f"is not valid: {error['msg']}"
    if not error["loc"]:  # a rule across variables: the reason names them
        return reason
    variable = str(error["loc"][0])
    return f"{variable}={env.get(variable, error['input'])!r} {reason}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (``os.environ`` by default).

    Raises SettingsError naming each variable that holds nonsense.
    """
    token = _environ.set(environ)
    try:
        return Settings()
    except ValidationError as exc:
        env = os.environ if environ is None else environ
        problems = [_problem(error, env) for error in exc.errors()]
        raise SettingsError("; ".join(problems)) from None
    finally:
        _environ.reset(token)
