"""Benching a deployed environment: its settings, and cold starts that are cold.

- `environment_services(ENV)`: per service, what the environment file says
  about scaling (envctl reads and validates it): `concurrency` is what one
  instance accepts at once, so the capacity phase offers load through exactly
  that many users — one instance's worth of concurrent requests (more users
  only make Cloud Run add instances, which is a different question).
- `wait_for_zero(...)`: a true cold sample on Cloud Run needs the service to
  have scaled to zero first, which only happens to a service with
  `min_instances: 0` after it has been idle (about 15 minutes). Waiting is
  bounded: the instance count is read from Cloud Monitoring
  (`run.googleapis.com/container/instance_count`, per revision and state)
  every `poll_s` until it is 0 or `max_wait_s` has passed, and a sample taken
  after a timeout is marked not cold rather than passed off as one.
- `cold_samples(...)`: that wait, then the first request on a fresh channel
  (health Check: Cloud Run starts an instance for it), then a second one.

Everything that talks to Google goes through `MonitoringClient`, whose base
URL and token source are parameters, so the tests run it against a local HTTP
server replaying Cloud Monitoring's responses (no cloud calls in tests).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envctl.errors import EnvctlError
from envctl.load import find_repo_root, load_environment

MONITORING_URL = "https://monitoring.googleapis.com"
INSTANCE_COUNT = "run.googleapis.com/container/instance_count"
# Cloud Run writes the instance count once a minute; look back far enough to
# always see the latest point.
LOOKBACK_S = 180
DEFAULT_MAX_WAIT_S = 30 * 60.0
DEFAULT_POLL_S = 60.0
REQUEST_TIMEOUT_S = 30.0


class CloudTargetError(RuntimeError):
    """The environment cannot be benched the way asked (the message says why)."""


@dataclass(frozen=True)
class ServiceScaling:
    name: str
    min_instances: int
    max_instances: int
    concurrency: int


@dataclass(frozen=True)
class CloudEnvironment:
    name: str
    project: str
    region: str
    services: dict[str, ServiceScaling]


def environment_services(name: str, repo_root: Any = None) -> CloudEnvironment:
    """The scaling of every service of environment `name` (a cloud one)."""
    root = repo_root or find_repo_root()
    try:
        env = load_environment(root, name)
    except EnvctlError as err:
        raise CloudTargetError(f"environment {name}: {err}") from err
    if not env.is_cloud:
        raise CloudTargetError(
            f"environment {name} runs on {env.platform}, not Cloud Run: bench it locally"
        )
    services = {}
    for svc, spec in env.services.items():
        scaling = spec.get("scaling") or {}
        services[svc] = ServiceScaling(
            name=svc,
            min_instances=int(scaling.get("min_instances", 0)),
            max_instances=int(scaling.get("max_instances", 100)),
            # Cloud Run's default when the file leaves it out.
            concurrency=int(spec.get("concurrency", 80)),
        )
    return CloudEnvironment(name, str(env.project), str(env.region), services)


def require_scale_to_zero(env: CloudEnvironment, service: str) -> ServiceScaling:
    """A cold sample waits for zero instances: only possible with min_instances 0."""
    scaling = env.services.get(service)
    if scaling is None:
        raise CloudTargetError(f"environment {env.name} has no service {service!r}")
    if scaling.min_instances > 0:
        raise CloudTargetError(
            f"environment {env.name}: {service} keeps min_instances {scaling.min_instances} "
            "warm, so it never scales to zero and has no cold start to measure; "
            "cold samples need min_instances: 0"
        )
    return scaling


class MonitoringClient:
    """Cloud Monitoring's timeSeries.list for one Cloud Run service's instance count."""

    def __init__(
        self,
        project: str,
        token: Callable[[], str],
        base_url: str = MONITORING_URL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self._token = token
        self._base = base_url.rstrip("/")
        self._clock = clock

    def _url(self, service: str) -> str:
        now = self._clock()

        def rfc3339(t: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        query = urllib.parse.urlencode(
            {
                "filter": f'metric.type = "{INSTANCE_COUNT}" AND '
                f'resource.type = "cloud_run_revision" AND '
                f'resource.labels.service_name = "{service}"',
                "interval.startTime": rfc3339(now - LOOKBACK_S),
                "interval.endTime": rfc3339(now),
            }
        )
        return f"{self._base}/v3/projects/{self.project}/timeSeries?{query}"

    def instances(self, service: str) -> int:
        """Instances of `service` in its latest point, over every revision and state."""
        request = urllib.request.Request(  # noqa: S310 - https or the tests' local server
            self._url(service), headers={"Authorization": f"Bearer {self._token()}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
                body = json.loads(response.read())
        except OSError as err:
            raise CloudTargetError(f"Cloud Monitoring: {err}") from err
        except ValueError as err:
            raise CloudTargetError(f"Cloud Monitoring answered something not JSON: {err}") from err
        return latest_instance_count(body)


def latest_instance_count(body: dict[str, Any]) -> int:
    """The sum over time series (revisions × states) of each one's newest point.

    No time series at all means no instance reported in the look-back window:
    a service scaled to zero long ago writes nothing, so that counts as 0."""
    total = 0
    for series in body.get("timeSeries") or []:
        points = series.get("points") or []
        if not points:
            continue
        newest = max(points, key=lambda p: p["interval"]["endTime"])
        value = newest.get("value") or {}
        total += int(float(value.get("int64Value", value.get("doubleValue", 0))))
    return total


@dataclass(frozen=True)
class Wait:
    reached_zero: bool
    waited_s: float
    last_count: int


def wait_for_zero(
    count: Callable[[], int],
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
    poll_s: float = DEFAULT_POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = lambda _m: None,
) -> Wait:
    """Poll `count()` until it is 0 or `max_wait_s` has passed (then not cold)."""
    start = clock()
    while True:
        current = count()
        waited = clock() - start
        if current == 0:
            return Wait(True, waited, 0)
        if waited + poll_s > max_wait_s:
            return Wait(False, waited, current)
        say(f"  {current} instance(s) up after {waited:.0f}s; checking again in {poll_s:.0f}s")
        sleep(poll_s)


def google_access_token() -> str:
    """An OAuth access token for Cloud Monitoring (application default credentials)."""
    import google.auth
    import google.auth.transport.requests

    credentials, _project = google.auth.default(
        scopes=["https://www.googleapis.com/auth/monitoring.read"]
    )
    credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    return str(credentials.token)


@dataclass(frozen=True)
class ColdSample:
    """One cold start of a deployed service, timed from this machine."""

    reached_zero: bool  # False: the wait timed out, so this first call may be warm
    waited_s: float
    instances_before: int
    first_us: int  # first health Check on a fresh channel (starts an instance)
    second_us: int  # the next one on the same channel

    def to_json(self) -> dict[str, Any]:
        return {
            "reached_zero": self.reached_zero,
            "waited_s": round(self.waited_s, 1),
            "instances_before": self.instances_before,
            "first_us": self.first_us,
            "second_us": self.second_us,
        }


def cold_sample(wait: Callable[[], Wait], first_two: Callable[[], tuple[int, int]]) -> ColdSample:
    """Wait for zero instances (bounded), then time the first two calls."""
    waited = wait()
    first, second = first_two()
    return ColdSample(waited.reached_zero, waited.waited_s, waited.last_count, first, second)


def cold_section(service: str, samples: list[ColdSample], max_wait_s: float) -> dict[str, Any]:
    cold = [s.first_us for s in samples if s.reached_zero]
    return {
        "service": service,
        "max_wait_s": max_wait_s,
        "samples": [s.to_json() for s in samples],
        # Only samples that followed zero instances are cold starts.
        "cold_first_us_median": sorted(cold)[len(cold) // 2] if cold else None,
    }


def cold_markdown(section: dict[str, Any]) -> list[str]:
    out = [
        f"## Cold starts on Cloud Run ({section['service']}, each after scale to zero, "
        f"waits ≤ {section['max_wait_s']:.0f} s)",
        "",
        "| sample | reached zero | waited | instances before | first Check | second Check |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for i, s in enumerate(section["samples"], 1):
        out.append(
            f"| {i} | {'yes' if s['reached_zero'] else 'no (timed out: not a cold start)'} | "
            f"{s['waited_s']:.0f} s | {s['instances_before']} | {s['first_us'] / 1000:.0f} ms | "
            f"{s['second_us'] / 1000:.1f} ms |"
        )
    return [*out, ""]
