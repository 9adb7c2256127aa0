"""The Cloud Run path: TLS with the address's host name, and a Google ID token
fetched by google-auth from the metadata server, on every call, refreshed
before it expires.

The console runs as a subprocess so GCE_METADATA_HOST / GCE_METADATA_IP are
in its environment before google.auth is imported (google-auth reads them at
import time). The metadata server and the pipeline are stand-ins in this
process: the pipeline records the metadata of every call it receives.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth import jwt

from testkit.keys import public_pem
from testkit.servers import (
    SERVICE_ACCOUNT,
    Launcher,
    MetadataServer,
    StandIn,
    self_signed_localhost,
    start_stand_in,
)

AUDIENCE = "https://pipeline-test-uc.a.run.app"
LIFETIME = 8  # seconds; the console refreshes a quarter early, at 6 s


@pytest.fixture
def tls_stand_in(tmp_path: Path) -> Iterator[tuple[StandIn, Path]]:
    key, cert = self_signed_localhost()
    roots = tmp_path / "roots.pem"
    roots.write_bytes(cert)
    server = start_stand_in(tls=(key, cert))
    yield server, roots
    server.stop()


def bearer_tokens(stand_in: StandIn) -> list[str]:
    tokens = []
    for call in stand_in.servicer.calls:
        header = call.metadata.get("authorization", "")
        assert header.startswith("Bearer "), call
        tokens.append(header.removeprefix("Bearer "))
    return tokens


def test_tls_and_id_token_on_every_call_refreshed_before_expiry(
    launch: Launcher, tls_stand_in: tuple[StandIn, Path]
) -> None:
    stand_in, roots = tls_stand_in
    with MetadataServer(lifetime=LIFETIME) as metadata:
        console = launch.console(
            # The certificate names "localhost": TLS must check that name.
            f"localhost:{stand_in.port}",
            PIPELINE_TLS="true",
            PIPELINE_AUDIENCE=AUDIENCE,
            # grpc's default roots, replaced by the test CA for this process.
            GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(roots),
            **metadata.metadata_env(),
        )
        console.wait_ready()
        with console.client() as client:
            for path in ("/api/status", "/api/steps", "/api/dag", "/api/runs"):
                assert client.get(path).status_code == 200, path

            # One token so far, carried by every call (health check included).
            assert len(metadata.issued) == 1
            assert metadata.audiences == [AUDIENCE]
            assert metadata.flavorless == 0
            first = metadata.issued[0]
            assert set(bearer_tokens(stand_in)) == {first}
            assert {"Health.Check", "GetStatus", "ListSteps", "GetDag", "ListRuns"} <= set(
                stand_in.servicer.methods()
            )
            claims = jwt.decode(first, certs=public_pem(metadata.key), audience=AUDIENCE)  # type: ignore[no-untyped-call]
            assert claims["email"] == SERVICE_ACCOUNT

            # Past the refresh point (exp minus a quarter of the lifetime) a
            # new token is fetched before the old one expires.
            issued_at = claims["iat"]
            time.sleep(max(0.0, issued_at + LIFETIME * 0.75 + 0.5 - time.time()))
            before = len(stand_in.servicer.calls)
            assert client.get("/api/status").status_code == 200
            assert time.time() < claims["exp"], "refreshed early, not after expiry"
            assert len(metadata.issued) == 2
            second = metadata.issued[1]
            assert second != first
            assert bearer_tokens(stand_in)[before:] == [second]
            assert metadata.audiences == [AUDIENCE, AUDIENCE]


def test_no_id_token_means_503_and_no_call(launch: Launcher) -> None:
    stand_in = start_stand_in()
    try:
        with MetadataServer(lifetime=LIFETIME, identity_status=404) as metadata:
            console = launch.console(
                f"127.0.0.1:{stand_in.port}", PIPELINE_AUDIENCE=AUDIENCE, **metadata.metadata_env()
            )
            with console.client() as client:
                response = client.get("/api/status")
                assert response.status_code == 503
                error = response.json()["error"]
                assert error["code"] == "pipeline_credentials_unavailable"
                assert AUDIENCE in error["message"]
                assert client.get("/readyz").status_code == 503
                assert client.get("/healthz").status_code == 200
        assert stand_in.servicer.calls == [], "no call leaves without its token"
    finally:
        stand_in.stop()


def test_plaintext_without_audience_sends_no_token(launch: Launcher) -> None:
    stand_in = start_stand_in()
    try:
        console = launch.console(f"127.0.0.1:{stand_in.port}")
        console.wait_ready()
        with console.client() as client:
            assert client.get("/api/status").status_code == 200
        assert stand_in.servicer.calls
        assert all("authorization" not in c.metadata for c in stand_in.servicer.calls)
    finally:
        stand_in.stop()


def test_tls_refuses_a_certificate_from_an_unknown_root(
    launch: Launcher, tls_stand_in: tuple[StandIn, Path], tmp_path: Path
) -> None:
    stand_in, _ = tls_stand_in
    other_roots = tmp_path / "other-roots.pem"
    other_roots.write_bytes(self_signed_localhost()[1])
    console = launch.console(
        f"localhost:{stand_in.port}",
        PIPELINE_TLS="true",
        GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(other_roots),
    )
    with console.client() as client:
        response = client.get("/api/status")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "pipeline_unavailable"
        assert client.get("/readyz").status_code == 503
    assert stand_in.servicer.calls == []
