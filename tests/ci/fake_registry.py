#!/usr/bin/env python3
"""Stand-in for ``crane`` and ``docker`` (chosen by this file's name on PATH): a registry
and a local image store kept in the JSON file $FAKE_REGISTRY, every call logged in it."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

STATE = Path(os.environ["FAKE_REGISTRY"])


def split(ref: str) -> tuple[str, str | None, str | None]:
    """repository, tag, digest of REF."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, None, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :], None
    return ref, "latest", None


def lookup(state: dict[str, Any], ref: str) -> str | None:
    repo, tag, digest = split(ref)
    if digest is not None:
        return digest if f"{repo}@{digest}" in state["manifests"] else None
    found: str | None = state["tags"].get(f"{repo}:{tag}")
    return found


def fail(message: str) -> int:
    sys.stderr.write(message + "\n")
    return 1


def crane(state: dict[str, Any], args: list[str]) -> int:
    command, rest = args[0], args[1:]
    if any("denied" in a for a in rest):
        return fail("UNAUTHORIZED: authentication required")
    if command == "digest":
        digest = lookup(state, rest[0])
        if digest is None:
            return fail(f"GET {rest[0]}: MANIFEST_UNKNOWN: manifest unknown")
        print(digest)
        return 0
    if command == "copy":
        src, dst = rest
        digest = lookup(state, src)
        if digest is None:
            return fail(f"GET {src}: MANIFEST_UNKNOWN: manifest unknown")
        repo, tag, _ = split(dst)
        state["manifests"].append(f"{repo}@{digest}")
        state["tags"][f"{repo}:{tag}"] = digest
        return 0
    if command == "tag":
        ref, tag = rest
        digest = lookup(state, ref)
        if digest is None:
            return fail(f"GET {ref}: MANIFEST_UNKNOWN: manifest unknown")
        state["tags"][f"{split(ref)[0]}:{tag}"] = digest
        return 0
    return fail(f"crane: unknown command {command}")


def docker(state: dict[str, Any], args: list[str]) -> int:
    if args[:2] == ["image", "inspect"]:
        image = state["local"].get(args[-1])
        if image is None:
            return fail(f"Error: No such image: {args[-1]}")
        print(image["platform"])
        return 0
    if args[0] == "tag":
        state["local"][args[2]] = state["local"][args[1]]
        return 0
    if args[0] == "push":
        ref = args[-1]
        image = state["local"][ref]
        digest = "sha256:" + hashlib.sha256(image["id"].encode()).hexdigest()
        repo, tag, _ = split(ref)
        state["manifests"].append(f"{repo}@{digest}")
        state["tags"][f"{repo}:{tag}"] = digest
        return 0
    return fail(f"docker: unknown command {args[0]}")


def main() -> int:
    state = json.loads(STATE.read_text())
    tool = Path(sys.argv[0]).name
    state["calls"].append([tool, *sys.argv[1:]])
    status = (crane if tool == "crane" else docker)(state, sys.argv[1:])
    STATE.write_text(json.dumps(state, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
