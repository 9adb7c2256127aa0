"""The pipeline verifies its callers' Google ID tokens itself (ADR 0018).

Defence in depth behind Cloud Run IAM: with ``PIPELINE_REQUIRE_ID_TOKEN=true``
every RPC except health and reflection must carry a Google-signed ID token
whose audience is the pipeline's URL and whose ``email`` is in
``PIPELINE_ALLOWED_INVOKERS``.

Which header: Cloud Run checks the token in the header it uses for IAM and
removes its signature before the request reaches us. The console therefore
sends the same token twice: ``x-serverless-authorization`` (used, and
stripped, by IAM) and ``authorization`` (passed through untouched). We verify
``authorization``, falling back to ``x-serverless-authorization`` when that one
still carries a signature (no Cloud Run in front, e.g. locally).

Answers: no token, or one that fails verification (signature, expiry, issuer,
audience) → UNAUTHENTICATED; a valid token from an identity not on the list →
PERMISSION_DENIED. The caller gets a short message; the reason goes to the log.
The token itself is never logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import google.auth.transport
import google.auth.transport.requests
import google.oauth2.id_token
import grpc
from opentelemetry import trace

from telemetry.grpc_server import (
    QUIET_SERVICES,
    Behavior,
    metadata_dict,
    split_method,
    wrap_handler,
)

log = logging.getLogger(__name__)

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"
# Tolerated clock difference between the issuer and this instance.
CLOCK_SKEW_SECONDS = 10
# Certificates are kept this long when the response says nothing (Google's say
# max-age of several hours) ...
DEFAULT_CERTS_TTL_SECONDS = 300.0
# ... and never longer than this, whatever it says.
MAX_CERTS_TTL_SECONDS = 24 * 3600.0
# A token whose key id is unknown may be signed by a freshly rotated key:
# refetch the certificates, at most this often.
MIN_REFETCH_SECONDS = 30.0
# Verified tokens remembered (by hash) until they expire: the console reuses
# one token for most of an hour, and a signature check costs far more than a
# warm RPC.
VERIFIED_CACHE_SIZE = 256

CERTS_TIMEOUT_SECONDS = 10.0

_MAX_AGE = re.compile(r"max-age=(\d+)")


class CachingCertsRequest(google.auth.transport.Request):
    """A google-auth transport that caches successful GETs, honouring
    ``Cache-Control: max-age`` (``no-store`` / ``no-cache``: not kept).

    When a refetch fails, the previous certificates are served: keys rotate
    rarely, and a blip at the issuer must not lock every caller out.
    """

    def __init__(
        self,
        transport: Callable[..., Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport or google.auth.transport.requests.Request()
        self._clock = clock
        self._lock = threading.Lock()
        # url → (response, fetched_at, expires_at)
        self._cache: dict[str, tuple[Any, float, float]] = {}
        self.fetches = 0

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        # A hanging issuer must not hold an RPC thread forever.
        kwargs.update(headers=headers, timeout=timeout or CERTS_TIMEOUT_SECONDS)
        if method != "GET" or body is not None:
            return self._transport(url, method=method, body=body, **kwargs)
        with self._lock:
            now = self._clock()
            cached = self._cache.get(url)
            if cached is not None and now < cached[2]:
                return cached[0]
            try:
                response = self._transport(url, method="GET", **kwargs)
                self.fetches += 1
            except google.auth.exceptions.TransportError:
                if cached is not None:
                    log.warning("could not refresh certificates from %s; using cached", url)
                    return cached[0]
                raise
            if response.status != 200:
                if cached is not None:
                    log.warning(
                        "certificates at %s answered %s; using cached", url, response.status
                    )
                    return cached[0]
                return response
            ttl = _ttl(response.headers)
            if ttl > 0:
                self._cache[url] = (response, now, now + ttl)
            return response

    def invalidate(self, url: str, older_than: float) -> bool:
        """Forget `url` if fetched more than `older_than` seconds ago."""
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and self._clock() - cached[1] > older_than:
                del self._cache[url]
                return True
            return False


def _ttl(headers: Mapping[str, str] | None) -> float:
    control = ""
    for key, value in (headers or {}).items():
        if key.lower() == "cache-control":
            control = value.lower()
    if "no-store" in control or "no-cache" in control:
        return 0.0
    match = _MAX_AGE.search(control)
    if match is None:
        return DEFAULT_CERTS_TTL_SECONDS
    return min(float(match[1]), MAX_CERTS_TTL_SECONDS)


@dataclass(frozen=True)
class Verdict:
    """The outcome for one call: `code` None means let it through."""

    code: grpc.StatusCode | None
    message: str = ""  # what the caller is told
    reason: str = ""  # what the log is told
    email: str | None = None


def bearer_tokens(metadata: Mapping[str, str]) -> list[str]:
    """Tokens to try, in order: ``authorization``, then
    ``x-serverless-authorization``; ones whose signature Cloud Run removed are
    left out."""
    tokens = []
    for header in ("authorization", "x-serverless-authorization"):
        scheme, _, token = metadata.get(header, "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            continue
        if token.rsplit(".", 1)[-1] == SIGNATURE_REMOVED:
            continue
        tokens.append(token)
    return tokens


class IdTokenVerifier:
    def __init__(
        self,
        audiences: tuple[str, ...],
        allowed: frozenset[str],
        certs_url: str,
        *,
        request: CachingCertsRequest | None = None,
    ) -> None:
        self._audiences = list(audiences)
        self._allowed = allowed
        self._certs_url = certs_url
        self._request = request or CachingCertsRequest()
        self._lock = threading.Lock()
        # sha256(token) → claims, oldest first.
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def verify(self, metadata: Mapping[str, str]) -> Verdict:
        tokens = bearer_tokens(metadata)
        if not tokens:
            present = [h for h in ("authorization", "x-serverless-authorization") if h in metadata]
            return Verdict(
                grpc.StatusCode.UNAUTHENTICATED,
                "a Google ID token is required (authorization: Bearer ...)",
                f"no usable bearer token (headers present: {present or 'none'})",
            )
        try:
            claims = self._claims(tokens[0])
        except google.auth.exceptions.TransportError as exc:
            return Verdict(
                grpc.StatusCode.UNAVAILABLE,
                "cannot verify ID tokens right now",
                f"certificates unavailable from {self._certs_url}: {exc}",
            )
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            # MalformedError / InvalidValue are ValueErrors: bad signature,
            # expired, wrong audience, unknown key, not a JWT at all.
            # google-auth quotes a malformed token in its message; never log it.
            reason = str(exc).replace(tokens[0], "<token>")
            return Verdict(grpc.StatusCode.UNAUTHENTICATED, "invalid ID token", reason)
        issuer = claims.get("iss")
        if issuer not in GOOGLE_ISSUERS:
            return Verdict(
                grpc.StatusCode.UNAUTHENTICATED, "invalid ID token", f"issuer {issuer!r}"
            )
        email = str(claims.get("email", "")).lower()
        if not email:
            return Verdict(
                grpc.StatusCode.PERMISSION_DENIED,
                "caller is not allowed",
                f"token for subject {claims.get('sub')!r} carries no email",
            )
        if claims.get("email_verified") is False:
            return Verdict(
                grpc.StatusCode.PERMISSION_DENIED,
                "caller is not allowed",
                f"email {email} is not verified",
                email,
            )
        if email not in self._allowed:
            return Verdict(
                grpc.StatusCode.PERMISSION_DENIED,
                "caller is not allowed",
                f"{email} is not in PIPELINE_ALLOWED_INVOKERS",
                email,
            )
        return Verdict(None, email=email)

    def _claims(self, token: str) -> dict[str, Any]:
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            claims = self._verified.get(key)
        # A remembered token is still checked for expiry on every call.
        if claims is not None and time.time() < float(claims.get("exp", 0)) + CLOCK_SKEW_SECONDS:
            return claims
        try:
            claims = self._verify_signature(token)
        except ValueError as exc:
            if "key id" not in str(exc) or not self._request.invalidate(
                self._certs_url, MIN_REFETCH_SECONDS
            ):
                raise
            claims = self._verify_signature(token)  # once more with fresh certificates
        with self._lock:
            self._verified[key] = claims
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def _verify_signature(self, token: str) -> dict[str, Any]:
        claims = google.oauth2.id_token.verify_token(
            token,
            self._request,
            audience=self._audiences,
            certs_url=self._certs_url,
            clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
        )
        return dict(claims)


class IdTokenInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses every RPC, except health and reflection, without an acceptable token."""

    def __init__(self, verifier: IdTokenVerifier) -> None:
        self._verifier = verifier

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        service, method = split_method(handler_call_details.method)
        if handler is None or service in QUIET_SERVICES:
            return handler

        def wrap(behavior: Behavior, _response_streaming: bool) -> Behavior:
            def checked(request: Any, context: grpc.ServicerContext) -> Any:
                verdict = self._verifier.verify(metadata_dict(context))
                if verdict.code is not None:
                    log.warning(
                        "refused %s: %s: %s",
                        method,
                        verdict.code.name,
                        verdict.reason,
                        extra={"auth": {"code": verdict.code.name, "reason": verdict.reason,
                                        "email": verdict.email}},
                    )  # fmt: skip
                    context.abort(verdict.code, verdict.message)
                trace.get_current_span().set_attribute("enduser.id", verdict.email or "")
                return behavior(request, context)

            return checked

        return wrap_handler(handler, wrap)
