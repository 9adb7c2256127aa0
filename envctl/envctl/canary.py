"""The data canary's comparison: does a new pipeline transform the reference feeds as the
last good one did?

A canary run sends each committed reference feed (``verification.canary.feeds`` in the
environment file) through the candidate pipeline and summarises what came back
(:class:`FeedOutput`: the run's status, each step's status, the rows of every output
file, the published ``feed_info.txt``, and the stop_times stops missing from stops.txt).
:func:`compare` holds that summary against the baseline, the same feed's summary from
the previous succeeded release, on four invariants:

    steps       the run completed and every step succeeded (candidate alone)
    stops       every stop_id in stop_times.txt exists in stops.txt (candidate alone)
    rows        rows per output file within ``rows`` tolerance of the baseline's
    feed_info   the published feed_info.txt rows equal the baseline's

A summary is small (counts, not data), so it travels inside the deploy record's
``verification`` evidence (``{"kind": "canary", ...}``) and the next deploy reads its
baseline from there, from a plain clone (ADR 0022). Where the summary comes from (gRPC to
containers in ``harness.canary``, the console's HTTP API in ``envctl.ci canary``) is not
this module's business: it only reads zips and compares.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl.model import Environment

EVIDENCE_KIND = "canary"
# Stops named in a report; the count says how many more there are.
SHOWN = 10
# A tolerance of 100 % leaves a file's rows unbounded: it may appear or disappear.
UNBOUNDED = 100.0
PASS, FAIL, SKIPPED = "pass", "fail", "skipped"


class CanaryError(ValueError):
    """A canary input that cannot be used: a feed, an output zip or a stored baseline."""


# --- summarising one run -------------------------------------------------------------


@dataclass(frozen=True)
class StepOutcome:
    name: str
    status: str  # "success" | "failed" | "skipped"
    error: str = ""


@dataclass(frozen=True)
class FeedOutput:
    """What one run of one reference feed produced, as counts (no feed data)."""

    feed: str  # the reference feed's file name
    feed_sha256: str
    status: str  # the run's: "completed" | "failed"
    error: str
    steps: tuple[StepOutcome, ...]
    rows: dict[str, int] = field(default_factory=dict)  # data rows per output .txt
    feed_info: tuple[dict[str, str], ...] = ()
    missing_stops: tuple[str, ...] = ()  # the first SHOWN, sorted
    missing_stop_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "feed_sha256": self.feed_sha256,
            "status": self.status,
            "error": self.error,
            "steps": [{"name": s.name, "status": s.status, "error": s.error} for s in self.steps],
            "rows": dict(sorted(self.rows.items())),
            "feed_info": [dict(r) for r in self.feed_info],
            "missing_stops": list(self.missing_stops),
            "missing_stop_count": self.missing_stop_count,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str) -> FeedOutput:
        """A summary read back from stored evidence; ``where`` names it in errors."""

        def need(key: str, kind: type | tuple[type, ...]) -> Any:
            if not isinstance(data, dict) or not isinstance(data.get(key), kind):
                raise CanaryError(f"{where}: field {key!r} is missing or not a {_kind(kind)}")
            return data[key]

        steps = []
        for i, step in enumerate(need("steps", list)):
            if not isinstance(step, dict) or not all(
                isinstance(step.get(k), str) for k in ("name", "status")
            ):
                raise CanaryError(f"{where}: steps[{i}] needs string fields name and status")
            steps.append(StepOutcome(step["name"], step["status"], str(step.get("error") or "")))
        rows = need("rows", dict)
        if not all(isinstance(k, str) and _count(v) for k, v in rows.items()):
            raise CanaryError(f"{where}: rows must map file names to non-negative integers")
        info = need("feed_info", list)
        if not all(isinstance(r, dict) for r in info):
            raise CanaryError(f"{where}: feed_info must be a list of rows (objects)")
        return cls(
            feed=need("feed", str),
            feed_sha256=need("feed_sha256", str),
            status=need("status", str),
            error=str(data.get("error") or ""),
            steps=tuple(steps),
            rows=dict(rows),
            feed_info=tuple({str(k): str(v) for k, v in r.items()} for r in info),
            missing_stops=tuple(str(s) for s in data.get("missing_stops") or ()),
            missing_stop_count=int(data.get("missing_stop_count") or 0),
        )


def _kind(kind: type | tuple[type, ...]) -> str:
    names: dict[type, str] = {dict: "object", list: "list", str: "string"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _csv_rows(archive: zipfile.ZipFile, name: str, where: str) -> Iterator[dict[str, str]]:
    try:
        with archive.open(name) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            yield from csv.DictReader(text)
    except (UnicodeDecodeError, csv.Error, zipfile.BadZipFile) as exc:
        raise CanaryError(f"{where}: {name} is not readable CSV ({exc})") from None


def summarize(
    feed: str,
    feed_sha256: str,
    status: str,
    error: str,
    steps: Sequence[StepOutcome],
    output_zip: bytes | None,
) -> FeedOutput:
    """Summarise one run; ``output_zip`` None when the run kept no output (a failed run)."""
    rows: dict[str, int] = {}
    feed_info: tuple[dict[str, str], ...] = ()
    missing: set[str] = set()
    if output_zip is not None:
        where = f"output of {feed}"
        try:
            archive = zipfile.ZipFile(io.BytesIO(output_zip))
        except zipfile.BadZipFile:
            raise CanaryError(f"{where}: not a zip ({len(output_zip)} bytes)") from None
        with archive:
            names = [n for n in archive.namelist() if n.endswith(".txt") and "/" not in n]
            stop_ids: set[str] = set()
            used: set[str] = set()
            for name in sorted(names):
                count = 0
                for row in _csv_rows(archive, name, where):
                    count += 1
                    if name == "stops.txt":
                        stop_ids.add(row.get("stop_id") or "")
                    elif name == "stop_times.txt":
                        used.add(row.get("stop_id") or "")
                rows[name] = count
            if "feed_info.txt" in names:
                feed_info = tuple(dict(r) for r in _csv_rows(archive, "feed_info.txt", where))
            missing = used - stop_ids
    shown = tuple(sorted(missing)[:SHOWN])
    return FeedOutput(
        feed, feed_sha256, status, error, tuple(steps), rows, feed_info, shown, len(missing)
    )


# --- the tolerance the environment file sets ---------------------------------------------


@dataclass(frozen=True)
class Settings:
    """``verification.canary`` of one environment file."""

    feeds: tuple[str, ...]  # repo-relative paths of the reference feeds
    default_percent: float = 0.0
    files: dict[str, float] = field(default_factory=dict)

    def percent(self, name: str) -> float:
        return self.files.get(name, self.default_percent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds": list(self.feeds),
            "rows": {"default_percent": self.default_percent, "files": dict(self.files)},
        }


def settings(env: Environment) -> Settings | None:
    """The environment's canary settings (the schema and policy checked them); None when
    the file declares no canary."""
    canary = (env.data.get("verification") or {}).get("canary")
    if not canary:
        return None
    rows = canary.get("rows") or {}
    return Settings(
        tuple(str(f) for f in canary["feeds"]),
        float(rows.get("default_percent", 0)),
        {str(k): float(v) for k, v in (rows.get("files") or {}).items()},
    )


# --- comparing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    feed: str
    name: str  # steps | stops | rows | feed_info
    status: str  # pass | fail | skipped
    detail: str
    differences: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "differences": list(self.differences),
        }


def _steps(new: FeedOutput) -> Check:
    bad = [s for s in new.steps if s.status != "success"]
    lines = [f"{s.name}: {s.status}" + (f" ({s.error})" if s.error else "") for s in bad]
    if new.status != "completed":
        lines.insert(0, f"the run {new.status}" + (f": {new.error}" if new.error else ""))
    if not new.steps:
        lines.append("the run reported no step results")
    if lines:
        return Check(
            new.feed,
            "steps",
            FAIL,
            f"{len(bad)} of {len(new.steps)} steps did not succeed",
            tuple(lines),
        )
    return Check(new.feed, "steps", PASS, f"all {len(new.steps)} steps succeeded")


def _stops(new: FeedOutput) -> Check:
    if new.status != "completed" or not new.rows:
        return Check(new.feed, "stops", SKIPPED, "no output to check (the run did not complete)")
    absent = [f for f in ("stops.txt", "stop_times.txt") if f not in new.rows]
    if absent:
        return Check(
            new.feed, "stops", FAIL, "the output lacks " + " and ".join(absent), tuple(absent)
        )
    if new.missing_stop_count:
        more = new.missing_stop_count - len(new.missing_stops)
        shown = [
            f"stop_times.txt uses stop_id {s!r}, which stops.txt does not have"
            for s in new.missing_stops
        ]
        if more > 0:
            shown.append(f"… and {more} more")
        return Check(
            new.feed,
            "stops",
            FAIL,
            f"{new.missing_stop_count} stop_times stops do not exist",
            tuple(shown),
        )
    return Check(
        new.feed,
        "stops",
        PASS,
        f"every stop_times stop is in stops.txt ({new.rows['stops.txt']} stops)",
    )


def _change(old: int, new: int) -> float:
    """Percent change from ``old`` to ``new`` (inf when a file grows from nothing)."""
    if old == 0:
        return 0.0 if new == 0 else math.inf
    return abs(new - old) * 100.0 / old


def _rows(old: FeedOutput, new: FeedOutput, tolerance: Settings) -> Check:
    if new.status != "completed":
        return Check(new.feed, "rows", SKIPPED, "no output to compare (the run did not complete)")
    lines, compared = [], 0
    for name in sorted(set(old.rows) | set(new.rows)):
        allowed = tolerance.percent(name)
        if allowed >= UNBOUNDED:
            continue
        compared += 1
        if name not in new.rows:
            lines.append(
                f"{name}: missing from the output (the baseline had {old.rows[name]} rows)"
            )
        elif name not in old.rows:
            lines.append(
                f"{name}: new in the output ({new.rows[name]} rows; the baseline had no such file)"
            )
        elif (change := _change(old.rows[name], new.rows[name])) > allowed:
            lines.append(
                f"{name}: {new.rows[name]} rows, the baseline {old.rows[name]} "
                f"({new.rows[name] - old.rows[name]:+d}, {change:.2f} % > {allowed:g} % allowed)"
            )
    if lines:
        return Check(
            new.feed,
            "rows",
            FAIL,
            f"{len(lines)} of {compared} files outside tolerance",
            tuple(lines),
        )
    return Check(new.feed, "rows", PASS, f"{compared} files within tolerance of the baseline")


def _feed_info(old: FeedOutput, new: FeedOutput) -> Check:
    if new.status != "completed":
        return Check(
            new.feed, "feed_info", SKIPPED, "no output to compare (the run did not complete)"
        )
    if old.feed_info == new.feed_info:
        return Check(
            new.feed,
            "feed_info",
            PASS,
            f"feed_info.txt as the baseline published it ({len(new.feed_info)} rows)",
        )
    lines = []
    if len(old.feed_info) != len(new.feed_info):
        lines.append(
            f"feed_info.txt has {len(new.feed_info)} rows, the baseline {len(old.feed_info)}"
        )
    for i, (a, b) in enumerate(zip(old.feed_info, new.feed_info, strict=False)):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                lines.append(f"row {i + 1} {key}: {b.get(key)!r}, the baseline {a.get(key)!r}")
    return Check(
        new.feed, "feed_info", FAIL, "feed_info.txt differs from the baseline", tuple(lines)
    )


def compare(
    baseline: Mapping[str, FeedOutput] | None,
    candidate: Sequence[FeedOutput],
    tolerance: Settings,
) -> list[Check]:
    """Every check of every candidate feed. ``baseline`` maps feed name to the previous
    good release's summary (None: there is none yet, so only the candidate-only
    invariants can be checked, and the report says so)."""
    checks: list[Check] = []
    for new in candidate:
        checks += [_steps(new), _stops(new)]
        old = (baseline or {}).get(new.feed)
        why = None
        if baseline is None:
            why = "no baseline: no earlier succeeded release ran the canary"
        elif old is None:
            why = "no baseline: the previous release did not run this feed"
        elif old.feed_sha256 != new.feed_sha256:
            why = "no baseline: the previous release ran a different version of this feed"
        elif old.status != "completed":
            why = f"no baseline: the previous release's run {old.status}"
        if why is not None or old is None:
            checks += [Check(new.feed, n, SKIPPED, str(why)) for n in ("rows", "feed_info")]
            continue
        checks += [_rows(old, new, tolerance), _feed_info(old, new)]
    return checks


# --- the report ----------------------------------------------------------------------------


@dataclass
class Report:
    environment: str
    baseline: str  # what the baseline is, in words ("release deploy/dev/… (abc123)")
    candidate: str  # what ran ("pipeline 0123abcd… at https://canary---…")
    tolerance: Settings
    outputs: list[FeedOutput]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def as_evidence(self) -> dict[str, Any]:
        """The JSON ``envctl record --evidence`` stores; its ``outputs`` are the next
        deploy's baseline."""
        return {
            "kind": EVIDENCE_KIND,
            "ok": self.ok,
            "declared": True,
            "environment": self.environment,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "tolerance": self.tolerance.as_dict(),
            "checks": [c.as_dict() for c in self.checks],
            "outputs": [o.as_dict() for o in self.outputs],
        }

    def to_markdown(self) -> str:
        head = "agrees with the baseline" if self.ok else "**DISAGREES** with the baseline"
        icons = {PASS: "✅", FAIL: "❌", SKIPPED: "➖"}
        lines = [
            f"### Data canary of {self.environment}: {head}",
            "",
            f"- candidate: {self.candidate}",
            f"- baseline: {self.baseline}",
            "",
            "| feed | check | result |",
            "| --- | --- | --- |",
        ]
        for c in self.checks:
            lines.append(f"| `{c.feed}` | {c.name} | {icons[c.status]} {c.detail} |")
        failed = [c for c in self.checks if c.differences]
        for c in failed:
            lines += ["", f"**{c.feed}, {c.name}:**", ""]
            lines += [f"- {d}" for d in c.differences[:50]]
            if len(c.differences) > 50:
                lines.append(f"- … and {len(c.differences) - 50} more")
        return "\n".join(lines) + "\n"


def not_declared(environment: str, file: str) -> dict[str, Any]:
    """The evidence of an environment that declares no canary: nothing ran, nothing
    disagreed, and the record says so (``declared: false``) rather than saying nothing."""
    return {
        "kind": EVIDENCE_KIND,
        "ok": True,
        "declared": False,
        "environment": environment,
        "detail": f"{file} declares no verification.canary: no reference feeds were run",
        "checks": [],
        "outputs": [],
    }


def baseline_of(evidence: Any, where: str) -> dict[str, FeedOutput]:
    """The feed summaries inside stored canary evidence (``Report.as_evidence``)."""
    if not isinstance(evidence, dict) or evidence.get("kind") != EVIDENCE_KIND:
        raise CanaryError(f"{where}: not canary evidence (kind is not {EVIDENCE_KIND!r})")
    outputs = evidence.get("outputs")
    if not isinstance(outputs, list):
        raise CanaryError(f"{where}: field 'outputs' is missing or not a list")
    found = {}
    for i, item in enumerate(outputs):
        summary = FeedOutput.from_dict(item, f"{where}: outputs[{i}]")
        found[summary.feed] = summary
    return found
