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

Order (issue 17): everything the token says about itself is checked first,
with no network (structure, ``alg``, ``kid``, ``iss``, ``aud``, ``iat`` /
``exp`` within a Google token's one-hour lifetime, claim types); only a token
that passes costs a look at the certificates, which are fetched single-flight,
in the background, with a short timeout, a failure remembered briefly. So
garbage is refused in microseconds even while the issuer hangs.

Answers: no token, or one that fails verification (structure, signature,
expiry, lifetime, issuer, audience) → UNAUTHENTICATED; a valid token from an
identity not on the list, or whose email is not verified → PERMISSION_DENIED;
a plausible token while the certificates cannot be fetched → UNAVAILABLE. The
caller gets a short message; the reason goes to the log. The token itself is
never logged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import google.auth.exceptions
import google.auth.jwt
import grpc
import requests
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
# Google signs ID tokens with RS256 only; anything else ("none", HS256 keyed
# with the public certificate, ...) is refused before any key is looked at.
ALGORITHMS = frozenset({"RS256"})
# Google's ID tokens last exactly one hour (exp = iat + 3600), whoever asks and
# however. A token claiming longer, or expiring more than an hour from now, was
# not minted by Google: refused, so a leaked or forged token cannot be "valid
# for 100 years" (issue 17). The skew allows for this instance's clock, not for
# longer tokens.
MAX_TOKEN_LIFETIME_SECONDS = 3600
# Google's ID tokens are about 1 KB (1.5 KB with format=full claims); gRPC
# itself refuses metadata beyond 8 KiB with RESOURCE_EXHAUSTED.
MAX_TOKEN_CHARS = 4096
MAX_KEY_ID_CHARS = 128
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
# The whole certificate fetch (connect, TLS, body) gets this long. Google's
# endpoint answers in well under a second, also through Private Google Access;
# callers that need the certificates wait at most this long, once, together.
CERTS_TIMEOUT_SECONDS = 3.0
# A failed fetch is remembered this long: meanwhile callers that need the
# certificates are told UNAVAILABLE at once, and the issuer is not hammered.
FAILED_FETCH_MEMORY_SECONDS = 5.0
# Google's certificates are a few KB.
MAX_CERTS_BYTES = 1 << 20

_MAX_AGE = re.compile(r"max-age=(\d+)")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class CertificatesUnavailable(Exception):
    """The issuer's certificates could not be fetched (and none are at hand)."""


class Refused(Exception):
    """The token fails a check; the message is the reason for the log."""


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


def _short(value: object, limit: int = 64) -> str:
    """A claim quoted in the log, at most `limit` characters of it."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class _Fetch:
    deadline: float  # monotonic; waiters give up then
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


class Certificates:
    """The issuer's signing certificates (``{key id: x509 PEM}``), fetched
    single-flight in a background thread and cached as ``Cache-Control:
    max-age`` says.

    No lock is held across the network: a caller that needs certificates it
    does not have waits for the one fetch in flight, at most until that fetch's
    deadline. A failed fetch is remembered for `failure_memory` seconds, during
    which callers are told at once. Expired certificates that hold the key a
    token names are used while a refresh runs, and kept if it fails: keys
    rotate rarely, and a blip at the issuer must not lock every caller out.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = CERTS_TIMEOUT_SECONDS,
        failure_memory: float = FAILED_FETCH_MEMORY_SECONDS,
        min_refetch: float = MIN_REFETCH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._timeout = timeout
        self._failure_memory = failure_memory
        self._min_refetch = min_refetch
        self._clock = clock
        self._session = requests.Session()
        self._lock = threading.Lock()  # guards the fields below; never held across I/O
        self._certs: dict[str, str] = {}
        self._fetched_at = -math.inf
        self._expires_at = -math.inf
        self._failed_until = -math.inf
        self._failure = "not fetched yet"
        self._fetch: _Fetch | None = None

    def for_key(self, kid: str) -> str | None:
        """The certificate for `kid`, or None when the issuer does not list it.

        Raises CertificatesUnavailable when they are needed and cannot be had.
        """
        with self._lock:
            now = self._clock()
            pem = self._certs.get(kid)
            if pem is not None:
                if now >= self._expires_at:
                    self._start_fetch(now)  # refresh behind the caller's back
                return pem
            if now < self._expires_at and now - self._fetched_at < self._min_refetch:
                return None  # fresh from the issuer, and this key is not in them
            fetch = self._start_fetch(now)
            if fetch is None:
                raise CertificatesUnavailable(self._failure)
        fetch.done.wait(max(0.0, fetch.deadline - self._clock()))
        with self._lock:
            if fetch.ok:
                return self._certs.get(kid)
            if not fetch.done.is_set():
                self._failed(fetch, f"no answer within {self._timeout:g} s")
            raise CertificatesUnavailable(self._failure)

    def _start_fetch(self, now: float) -> _Fetch | None:
        """The fetch in flight, a new one, or None while a failure is remembered.
        Called with the lock held."""
        if self._fetch is not None:
            return self._fetch if now < self._fetch.deadline else None
        if now < self._failed_until:
            return None
        # A little past the fetch's own timeout, so that it can report first.
        fetch = _Fetch(deadline=now + self._timeout + 0.25)
        self._fetch = fetch
        threading.Thread(
            target=self._run, args=(fetch,), name="id-token-certs", daemon=True
        ).start()
        return fetch

    def _failed(self, fetch: _Fetch, reason: str) -> None:
        """Remember a failure (called with the lock held)."""
        if self._clock() >= self._failed_until:
            log.warning("certificates unavailable from %s: %s", self.url, reason)
        self._failure = f"certificates unavailable from {self.url}: {reason}"
        self._failed_until = self._clock() + self._failure_memory

    def _run(self, fetch: _Fetch) -> None:
        try:
            certs, ttl = self._download(self._clock() + self._timeout)
        except (requests.RequestException, CertificatesUnavailable, ValueError) as exc:
            with self._lock:
                self._failed(fetch, _short(str(exc), 200))
                self._fetch = None
            fetch.done.set()
            return
        with self._lock:
            now = self._clock()
            self._certs = certs
            self._fetched_at = now
            self._expires_at = now + ttl
            self._failed_until = -math.inf
            self._fetch = None
            fetch.ok = True
        fetch.done.set()

    def _download(self, deadline: float) -> tuple[dict[str, str], float]:
        """GET the certificates, the whole exchange bounded by `deadline`."""
        with self._session.get(
            self.url, timeout=self._timeout, stream=True, headers={"accept": "application/json"}
        ) as response:
            if response.status_code != 200:
                raise CertificatesUnavailable(f"HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_content(16384):
                body += chunk
                if len(body) > MAX_CERTS_BYTES:
                    raise CertificatesUnavailable(f"more than {MAX_CERTS_BYTES} bytes")
                if self._clock() > deadline:
                    raise CertificatesUnavailable(f"body not read within {self._timeout:g} s")
            certs = json.loads(body)
            if not isinstance(certs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in certs.items()
            ):
                raise CertificatesUnavailable("not a JSON object of key id to PEM")
            return certs, _ttl(response.headers)


def _segment(part: str, what: str) -> Any:
    if not _BASE64URL.fullmatch(part):
        raise Refused(f"{what} segment is not base64url")
    try:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, RecursionError) as exc:  # binascii.Error, UnicodeDecodeError, JSON
        raise Refused(f"{what} segment is not JSON") from exc


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refused(f"claim {name} missing or not a number: {_short(value)}")
    return float(value)


def check_locally(token: str, audiences: frozenset[str], now: float) -> tuple[str, dict[str, Any]]:
    """Everything a token says about itself, checked with no network and no key:
    structure, ``alg``, ``kid``, ``iss``, ``aud``, ``iat`` / ``exp`` (with a
    maximum lifetime), and the types of ``email`` / ``email_verified``.

    Returns (key id, unverified claims); raises Refused. Passing proves nothing
    (the signature is checked afterwards); failing is enough to refuse.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise Refused(f"token longer than {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise Refused(f"Wrong number of segments in token: {len(parts)}, not 3")
    header = _segment(parts[0], "header")
    if not isinstance(header, dict):
        raise Refused("header segment is not a JSON object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise Refused(f"algorithm {_short(alg)} is not accepted (only RS256)")
    if "crit" in header:
        raise Refused("header has crit extensions")
    kid = header.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KEY_ID_CHARS:
        raise Refused(f"no usable key id (kid {_short(kid)})")
    claims = _segment(parts[1], "payload")
    if not isinstance(claims, dict):
        raise Refused("payload segment is not a JSON object")
    if not _BASE64URL.fullmatch(parts[2]):
        raise Refused("signature segment is empty or not base64url")
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise Refused(f"issuer {_short(claims.get('iss'))}")
    audience = claims.get("aud")
    if not isinstance(audience, str) or audience not in audiences:
        raise Refused(f"Token has wrong audience {_short(audience)}")
    issued, expires = _number(claims, "iat"), _number(claims, "exp")
    if expires + CLOCK_SKEW_SECONDS < now:
        raise Refused(f"Token expired {now - expires:.0f} s ago")
    if issued - CLOCK_SKEW_SECONDS > now:
        raise Refused(f"Token issued {issued - now:.0f} s in the future")
    if expires - issued > MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise Refused(f"Token lifetime {expires - issued:.0f} s exceeds a Google ID token's")
    if expires - now > MAX_TOKEN_LIFETIME_SECONDS + CLOCK_SKEW_SECONDS:
        raise Refused(f"Token lifetime: expires {expires - now:.0f} s from now")
    if "email" in claims and not isinstance(claims["email"], str):
        raise Refused(f"claim email is not a string: {_short(claims['email'])}")
    if "email_verified" in claims and not isinstance(claims["email_verified"], bool):
        raise Refused(f"claim email_verified is not a boolean: {_short(claims['email_verified'])}")
    return kid, claims


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
    """Decides one call's token: locally first (`check_locally`), then the
    signature with google-auth against the issuer's certificates, then the
    allow-list. Garbage never costs a fetch; a verified token is remembered."""

    def __init__(
        self,
        audiences: tuple[str, ...],
        allowed: frozenset[str],
        certs_url: str,
        *,
        certificates: Certificates | None = None,
    ) -> None:
        self._audiences = frozenset(audiences)
        self._allowed = allowed
        self._certificates = certificates or Certificates(certs_url)
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
        except CertificatesUnavailable as exc:
            return Verdict(
                grpc.StatusCode.UNAVAILABLE, "cannot verify ID tokens right now", str(exc)
            )
        except (Refused, ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            # google-auth's MalformedError / InvalidValue are ValueErrors: bad
            # signature, unsupported key. It may quote the token; never log it.
            reason = str(exc).replace(tokens[0], "<token>")
            return Verdict(grpc.StatusCode.UNAUTHENTICATED, "invalid ID token", reason)
        email = str(claims.get("email", "")).lower()
        if not email:
            return Verdict(
                grpc.StatusCode.PERMISSION_DENIED,
                "caller is not allowed",
                f"token for subject {_short(claims.get('sub'))} carries no email",
            )
        # Strictly True: a missing claim proves nothing about the address.
        if claims.get("email_verified") is not True:
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
        if len(token) > MAX_TOKEN_CHARS:
            raise Refused(f"token longer than {MAX_TOKEN_CHARS} characters")
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            claims = self._verified.get(key)
        # A remembered token is still checked for expiry on every call.
        if claims is not None and time.time() < float(claims["exp"]) + CLOCK_SKEW_SECONDS:
            return claims
        kid, _ = check_locally(token, self._audiences, time.time())
        pem = self._certificates.for_key(kid)
        if pem is None:
            raise Refused(f"Certificate for key id {kid!r} not found at the issuer")
        verified = google.auth.jwt.decode(  # type: ignore[no-untyped-call]
            token,
            certs={kid: pem},
            audience=sorted(self._audiences),
            clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
        )
        claims = dict(verified)
        with self._lock:
            self._verified[key] = claims
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims


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
