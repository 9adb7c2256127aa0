"""Deploy records: what ran where, and whether it succeeded (the observed state).

A record is an annotated git tag ``deploy/ENV/YYYYMMDDTHHMMSSZ`` (UTC) on the main
commit that was deployed; the tag message is the record as JSON (:data:`SCHEMA`). The
deploy workflow writes one after each apply and verification (``envctl record``) and
pushes it with the release App's token; a tag ruleset lets nobody else create one and
nobody at all move or delete one. So a plain clone (``git fetch --tags``, or
``actions/checkout`` with ``fetch-depth: 0``) holds every record and ``envctl`` decides
from it with no API call.

Reading is strict about shape and lenient about presence: a tag under ``deploy/`` that
is not a well-formed record (a lightweight tag, foreign JSON, a record whose commit is
not the tagged one) is skipped with one warning on stderr naming it. Skipping is always
the safe direction: a missing record never allows anything (promotion, rollback and the
freeze gate all need a record that says ``succeeded``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl import gitrepo
from envctl.clock import parse_time, rfc3339
from envctl.errors import EnvctlError, one_line, quote
from envctl.model import Image

SCHEMA = "envctl.deploy-record/v1"
TAG_ROOT = "refs/tags/deploy/"
RESULTS = ("succeeded", "failed")
_TAG = re.compile(r"^deploy/(?P<env>[a-z][a-z0-9-]{0,30})/(?P<stamp>\d{8}T\d{6}Z)$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_STAMP = "%Y%m%dT%H%M%SZ"
MAX_EVIDENCE_BYTES = 256 * 1024  # one report; a tag message is no place for logs


def tag_name(environment: str, moment: dt.datetime) -> str:
    return f"deploy/{environment}/{moment.astimezone(dt.UTC).strftime(_STAMP)}"


def state_digest(data: dict[str, Any]) -> str:
    """sha256 of what an environment file says, comments and ``override`` left out.

    Two versions with the same digest deploy the same thing: the freeze gate, rollback
    and "rolled back" all compare versions by it. ``override`` is left out because it
    only says who may deploy during a freeze, never what is deployed.
    """
    kept = {k: v for k, v in data.items() if k != "override"}
    canonical = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Record:
    tag: str  # deploy/ENV/STAMP
    environment: str
    result: str  # succeeded | failed
    time: dt.datetime
    commit: str  # the main commit that was deployed (the tag points at it)
    release: str  # the release: the main commit that made this version of the file
    state: str  # state_digest of the file at ``commit``
    render_sha256: str  # sha256 of `envctl render ENV` at ``commit``
    services: dict[str, Image]
    run_url: str | None = None
    verification: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"

    def evidence_kinds(self) -> list[str]:
        return [str(e["kind"]) for e in self.verification]

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "environment": self.environment,
            "result": self.result,
            "time": rfc3339(self.time),
            "commit": self.commit,
            "release": self.release,
            "state_sha256": self.state,
            "render_sha256": self.render_sha256,
            "services": {name: i.as_dict() for name, i in sorted(self.services.items())},
            "run_url": self.run_url,
            "verification": list(self.verification),
        }


class RecordError(ValueError):
    """A tag under deploy/ that is not a well-formed record (the message says why)."""


def parse_record(tag: str, target: str, message: str) -> Record:
    """The record in tag ``tag`` (peeled to commit ``target``) with message ``message``."""
    match = _TAG.match(tag)
    if match is None:
        raise RecordError("the name is not deploy/ENV/YYYYMMDDTHHMMSSZ")
    signature = message.find("-----BEGIN ")  # a signed tag's signature follows the JSON
    text = (message[:signature] if signature >= 0 else message).strip()
    try:
        data = json.loads(text)
    except ValueError:
        raise RecordError("the message is not a JSON record") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise RecordError(f"the message is not a {SCHEMA} record")

    def need(key: str, ok: Any, what: str) -> Any:
        value = data.get(key)
        if not ok(value):
            raise RecordError(f"{key}: must be {what} (got {quote(value)})")
        return value

    env = need("environment", lambda v: v == match["env"], f"{match['env']!r} (the tag's)")
    result = need("result", lambda v: v in RESULTS, "succeeded or failed")
    when = parse_time(need("time", lambda v: isinstance(v, str), "an RFC 3339 time"))
    if when is None or when.tzinfo is None or tag_name(env, when) != tag:
        raise RecordError(f"time: {quote(data['time'])} is not the time in the tag's name")
    commit = need("commit", lambda v: v == target, f"the tagged commit {target[:12]}")
    release = need("release", lambda v: isinstance(v, str) and bool(_SHA.match(v)), "a SHA")
    state = need("state_sha256", lambda v: isinstance(v, str) and bool(_HEX64.match(v)), "hex")
    render = need("render_sha256", lambda v: isinstance(v, str) and bool(_HEX64.match(v)), "hex")
    run_url = need("run_url", lambda v: v is None or isinstance(v, str), "a URL or null")
    services = need("services", lambda v: isinstance(v, dict) and bool(v), "a mapping")
    images: dict[str, Image] = {}
    for name, image in services.items():
        commit_of = image.get("commit") if isinstance(image, dict) else None
        digest = image.get("digest") if isinstance(image, dict) else None
        if not isinstance(commit_of, str) or not (digest is None or isinstance(digest, str)):
            raise RecordError(f"services.{name}: must be {{commit, digest}}")
        images[str(name)] = Image(commit_of, digest)
    evidence = need("verification", lambda v: isinstance(v, list), "a list")
    for i, item in enumerate(evidence):
        if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
            raise RecordError(f"verification[{i}]: must be an object with a 'kind'")
    return Record(
        tag,
        env,
        result,
        when.astimezone(dt.UTC),
        commit,
        release,
        state,
        render,
        images,
        run_url,
        tuple(evidence),
    )


_FIELD, _END = "%1f", "%1e"
_warned: set[str] = set()


def warn(message: str) -> None:
    """One line on stderr, once per process (several commands read the same tags)."""
    if message not in _warned:
        _warned.add(message)
        sys.stderr.write(f"envctl: warning: {one_line(message)}\n")


def read_records(repo_root: Path, environment: str) -> list[Record]:
    """Every well-formed record of ``environment`` in this clone, newest first."""
    fmt = _FIELD.join(["%(refname)", "%(objecttype)", "%(*objectname)", "%(contents)"]) + _END
    try:
        out = gitrepo.git(repo_root, "for-each-ref", f"--format={fmt}", f"{TAG_ROOT}{environment}/")
    except EnvctlError:
        return []  # not a git repository (a copy of the files): no records to read
    found: list[Record] = []
    for entry in out.split("\x1e"):
        parts = entry.lstrip("\n").split("\x1f")
        if len(parts) != 4:
            continue
        ref, kind, target, message = parts
        tag = ref.removeprefix("refs/tags/")
        if kind != "tag":
            warn(f"{ref}: skipped: a lightweight tag, not an annotated deploy record")
            continue
        try:
            found.append(parse_record(tag, target, message))
        except RecordError as exc:
            warn(f"{ref}: skipped: not a deploy record ({exc})")
    return sorted(found, key=lambda r: r.time, reverse=True)


def read_evidence(path: Path) -> dict[str, Any]:
    """One ``--evidence`` file: a JSON object with a non-empty string ``kind``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EnvctlError(f"{path}: cannot read the evidence file: {exc.strerror}") from None
    if len(data) > MAX_EVIDENCE_BYTES:
        raise EnvctlError(
            f"{path}: {len(data):,} bytes; evidence is at most {MAX_EVIDENCE_BYTES:,}"
        )
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvctlError(f"{path}: not JSON ({one_line(str(exc))})") from None
    if not isinstance(value, dict):
        raise EnvctlError(f'{path}: evidence must be a JSON object {{"kind": ..., ...}}')
    kind = value.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise EnvctlError(f'{path}: kind: say what this evidence is (e.g. "smoke")')
    return value


def write_tag(repo_root: Path, record: Record) -> None:
    """Create the annotated tag of ``record`` in this clone (the workflow pushes it)."""
    ref = f"refs/tags/{record.tag}"
    try:
        gitrepo.git(repo_root, "rev-parse", "--verify", "--quiet", ref)
    except EnvctlError:
        pass
    else:
        raise EnvctlError(
            f"{ref}: exists already: one record per environment per second, and records "
            "are never replaced"
        )
    message = json.dumps(record.as_dict(), indent=2, sort_keys=True) + "\n"
    gitrepo.git_input(
        repo_root,
        message.encode(),
        "tag",
        "-a",
        "--cleanup=verbatim",
        "-F",
        "-",
        record.tag,
        record.commit,
    )
