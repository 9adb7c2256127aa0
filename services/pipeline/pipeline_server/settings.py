"""Settings of the pipeline service, read once from the environment.

Every cap that protects the service from a hostile or broken upload is here,
with the environment variable that overrides it. Nonsense (a negative cap, a
port that is not a number) stops start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
# Google's signing certificates for ID tokens, x509 PEM by key id.
GOOGLE_ID_TOKEN_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"  # noqa: S105 (public URL)


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    port: int
    pipelines_dir: Path
    pipeline_name: str
    image_commit: str
    # Compressed size of one upload (PIPELINE_MAX_UPLOAD_BYTES).
    max_upload_bytes: int = 512 * MIB
    # Total uncompressed size of the .txt entries of one feed: the zip-bomb cap.
    max_uncompressed_bytes: int = 4096 * MIB
    # Uncompressed / compressed, per entry: real GTFS CSV compresses ~5-15x;
    # a bomb compresses ~1000x.
    max_compression_ratio: int = 200
    # Entries in one zip: GTFS has ~30 files; thousands means something is off.
    max_zip_entries: int = 1000
    # Runs executing at once on this instance; more get RESOURCE_EXHAUSTED.
    max_concurrent_runs: int = 2
    # Finished runs kept in memory (newest kept).
    max_history_runs: int = 200
    # Total bytes of run outputs kept on local disk (oldest evicted first).
    max_output_bytes: int = 2048 * MIB
    # Where outputs and in-flight uploads live (Cloud Run: in-memory tmpfs).
    data_dir: Path = Path(tempfile.gettempdir()) / "pipeline-server"
    # Size of each DownloadOutput message; well under gRPC's 4 MiB default.
    download_chunk_bytes: int = 1 * MIB
    # Seconds in-flight RPCs get to finish on SIGTERM (Cloud Run gives 10).
    shutdown_grace_seconds: float = 8.0
    # Worker threads of the gRPC server.
    max_workers: int = 16
    # Defence in depth behind Cloud Run IAM (ADR 0018): every RPC but health and
    # reflection must carry a Google ID token (PIPELINE_REQUIRE_ID_TOKEN) ...
    require_id_token: bool = False
    # ... for one of these audiences, the pipeline's URL (PIPELINE_TOKEN_AUDIENCE,
    # comma-separated: a service answers on more than one URL) ...
    token_audiences: tuple[str, ...] = ()
    # ... from one of these identities (PIPELINE_ALLOWED_INVOKERS, emails).
    allowed_invokers: frozenset[str] = frozenset()
    # Where the signers' certificates are (PIPELINE_ID_TOKEN_CERTS_URL; tests
    # point it at a local endpoint).
    id_token_certs_url: str = GOOGLE_ID_TOKEN_CERTS_URL

    @property
    def pipeline_dir(self) -> Path:
        return self.pipelines_dir / self.pipeline_name


# Environment variable → (field, parser). One table so the README and the
# error messages name the same variables.
_INT_VARS: dict[str, str] = {
    "PIPELINE_MAX_UPLOAD_BYTES": "max_upload_bytes",
    "PIPELINE_MAX_UNCOMPRESSED_BYTES": "max_uncompressed_bytes",
    "PIPELINE_MAX_COMPRESSION_RATIO": "max_compression_ratio",
    "PIPELINE_MAX_ZIP_ENTRIES": "max_zip_entries",
    "PIPELINE_MAX_CONCURRENT_RUNS": "max_concurrent_runs",
    "PIPELINE_MAX_HISTORY_RUNS": "max_history_runs",
    "PIPELINE_MAX_OUTPUT_BYTES": "max_output_bytes",
    "PIPELINE_DOWNLOAD_CHUNK_BYTES": "download_chunk_bytes",
    "PIPELINE_MAX_WORKERS": "max_workers",
}


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be greater than 0")
    return value


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no", ""}:
        return False
    raise SettingsError(f"{name}={raw!r} must be true or false")


def _csv(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _auth_values(env: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {
        "require_id_token": _bool(
            "PIPELINE_REQUIRE_ID_TOKEN", env.get("PIPELINE_REQUIRE_ID_TOKEN", "false")
        ),
        "token_audiences": tuple(_csv(env.get("PIPELINE_TOKEN_AUDIENCE", ""))),
        "allowed_invokers": frozenset(
            e.lower() for e in _csv(env.get("PIPELINE_ALLOWED_INVOKERS", ""))
        ),
    }
    certs_url = env.get("PIPELINE_ID_TOKEN_CERTS_URL", "").strip()
    if certs_url:
        if not certs_url.startswith(("https://", "http://")):
            raise SettingsError(f"PIPELINE_ID_TOKEN_CERTS_URL={certs_url!r} is not a URL")
        values["id_token_certs_url"] = certs_url
    if values["require_id_token"]:
        # Refuse to start rather than refuse every call, or accept any.
        if not values["token_audiences"]:
            raise SettingsError(
                "PIPELINE_REQUIRE_ID_TOKEN=true needs PIPELINE_TOKEN_AUDIENCE "
                "(the pipeline's URL, e.g. https://pipeline-123456789.europe-west1.run.app)"
            )
        if not values["allowed_invokers"]:
            raise SettingsError(
                "PIPELINE_REQUIRE_ID_TOKEN=true needs PIPELINE_ALLOWED_INVOKERS "
                "(comma-separated service account emails)"
            )
    return values


def _default_pipelines_dir() -> Path:
    # From a checkout, the repository's pipelines/ folder; in the image,
    # PIPELINES_DIR is always set by the Dockerfile.
    return Path(__file__).resolve().parents[3] / "pipelines"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    port_raw = env.get("PORT", "50051")
    port = _positive_int("PORT", port_raw)
    if port > 65535:
        raise SettingsError(f"PORT={port_raw!r} is not a TCP port (1-65535)")
    values: dict[str, object] = {
        "port": port,
        "pipelines_dir": Path(env.get("PIPELINES_DIR") or _default_pipelines_dir()),
        "pipeline_name": env.get("PIPELINE_NAME", "metro_schedule"),
        "image_commit": env.get("IMAGE_COMMIT", "unknown"),
    }
    for var, field_name in _INT_VARS.items():
        if var in env:
            values[field_name] = _positive_int(var, env[var])
    if "PIPELINE_DATA_DIR" in env:
        values["data_dir"] = Path(env["PIPELINE_DATA_DIR"])
    if "PIPELINE_SHUTDOWN_GRACE_SECONDS" in env:
        raw = env["PIPELINE_SHUTDOWN_GRACE_SECONDS"]
        try:
            values["shutdown_grace_seconds"] = float(raw)
        except ValueError:
            raise SettingsError(
                f"PIPELINE_SHUTDOWN_GRACE_SECONDS={raw!r} is not a number"
            ) from None
    values.update(_auth_values(env))
    name = str(values["pipeline_name"])
    if not name or "/" in name or name.startswith("."):
        raise SettingsError(f"PIPELINE_NAME={name!r} must be the name of one folder")
    return Settings(**values)  # type: ignore[arg-type]
