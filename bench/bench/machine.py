"""What the numbers were measured on: a result without its machine is a rumour."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _docker_version() -> str:
    done = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return done.stdout.strip() or "unknown"


def _dist(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def info(docker: bool = True) -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        # What this process may use: a container or cgroup may allow fewer.
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_bytes": psutil.virtual_memory().total,
        "load_average_1_5_15": [round(x, 2) for x in load],
        "python": platform.python_version(),
        "docker_server": _docker_version() if docker else None,
        "packages": {
            name: _dist(name)
            for name in ("locust", "gevent", "grpcio", "continuous-gtfs", "polars", "matplotlib")
        },
    }
