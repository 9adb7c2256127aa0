"""A stand-in for Google as an ID-token issuer, on 127.0.0.1.

It serves what the pipeline verifies against and what the console fetches from:
- ``/oauth2/v1/certs``: the signing certificates in Google's format,
  ``{key id: x509 PEM}``, with ``Cache-Control: max-age`` like Google's;
- the Cloud Run metadata server's paths (``/``, the default service account
  and ``.../identity?audience=``), so google-auth's ``fetch_id_token`` in the
  console (pointed here by ``GCE_METADATA_HOST`` / ``GCE_METADATA_IP``) gets
  tokens this issuer signed.

``token(...)`` mints tokens for the auth table: right or wrong audience,
expired, signed by a key whose certificate is not served.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import Any

from google.auth import crypt
from google.auth import jwt as google_jwt

from testkit.http_stub import LoopbackHttpStub
from testkit.keys import private_pem, rsa_key, self_signed

ISSUER = "https://accounts.google.com"
CERTS_PATH = "/oauth2/v1/certs"
IDENTITY_PATH = "/computeMetadata/v1/instance/service-accounts/default/identity"
SERVICE_ACCOUNT_PATH = "/computeMetadata/v1/instance/service-accounts/default/"
ACCESS_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105
CONSOLE_ACCOUNT = "svc-console@test-project.iam.gserviceaccount.com"
KEY_ID = "test-key-1"


class FakeIssuer(LoopbackHttpStub):
    def __init__(self, *, email: str = CONSOLE_ACCOUNT, max_age: int = 3600) -> None:
        self.key = rsa_key()
        self.email = email
        self.max_age = max_age
        self.cert_fetches = 0
        self.issued: list[str] = []
        self.access_tokens: list[str] = []  # OAuth tokens handed out (.../token)
        self._signer = crypt.RSASigner.from_string(private_pem(self.key), KEY_ID)  # type: ignore[no-untyped-call]
        super().__init__(self._handler())

    @property
    def certs_url(self) -> str:
        return f"http://{self.host}{CERTS_PATH}"

    def token(
        self,
        audience: str,
        *,
        email: str | None = None,
        lifetime: int = 3600,
        issued_ago: int = 0,
        signer: crypt.Signer | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time()) - issued_ago
        payload = {
            "iss": ISSUER,
            "aud": audience,
            "sub": "1234567890",
            "email": email or self.email,
            "email_verified": True,
            "iat": now,
            "exp": now + lifetime,
            "jti": str(len(self.issued)),  # two tokens of one second still differ
            **claims,
        }
        token: str = google_jwt.encode(signer or self._signer, payload).decode()  # type: ignore[no-untyped-call]
        self.issued.append(token)
        return token

    @staticmethod
    def other_signer() -> crypt.Signer:
        """A key the certificates endpoint does not serve, claiming the served key id."""
        return crypt.RSASigner.from_string(private_pem(rsa_key()), KEY_ID)  # type: ignore[no-untyped-call,no-any-return]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self
        certs = json.dumps({KEY_ID: self_signed(self.key, "test-issuer").decode()}).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

            def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
                self.send_response(status)
                self.send_header("Metadata-Flavor", "Google")
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == CERTS_PATH:
                    issuer.cert_fetches += 1
                    self._send(
                        200,
                        certs,
                        "application/json",
                        Cache_Control=f"public, max-age={issuer.max_age}, must-revalidate",
                    )
                elif self.headers.get("Metadata-Flavor") != "Google":
                    self._send(403, b"Missing Metadata-Flavor:Google header.", "text/plain")
                elif url.path == "/":
                    self._send(200, b"", "application/text")
                elif url.path == SERVICE_ACCOUNT_PATH:
                    info = {"email": issuer.email, "aliases": ["default"], "scopes": []}
                    self._send(200, json.dumps(info).encode(), "application/json")
                elif url.path == ACCESS_TOKEN_PATH:
                    token = f"test-access-token-{len(issuer.access_tokens) + 1}"
                    issuer.access_tokens.append(token)
                    body = {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}
                    self._send(200, json.dumps(body).encode(), "application/json")
                elif url.path == IDENTITY_PATH:
                    audience = urllib.parse.parse_qs(url.query).get("audience", [""])[0]
                    self._send(200, issuer.token(audience).encode(), "text/html")
                else:
                    self._send(404, b"not found", "text/plain")

        return Handler
