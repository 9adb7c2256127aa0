"""The parsed, validated environment and typed accessors over it.

``envctl.load.load_environment(repo_root, name)`` returns an :class:`Environment`; every
command, and the local harness (``harness.local.run(env)``), works from that object:

``Environment`` is also a read-only ``Mapping`` over ``data`` (``env["services"]``,
``env.get("platform")``), so code written against the plain document works unchanged:

    ``name``          "dev" (the file name without .yaml)
    ``repo_root``     the checkout's root directory (``Path``)
    ``file``          repo-relative path, "environments/dev.yaml" (used in messages)
    ``data``          the whole document as plain dicts/lists/str/int/bool, already
                      checked against environments/schema.json and the policy rules;
                      treat it as read-only
    ``text``          the file's text (writers re-parse it to keep comments)
    ``platform``      "docker" or "cloudrun"; ``is_cloud`` is ``platform == "cloudrun"``
    ``project``, ``region``, ``registry``   str, or None for docker
    ``promotion_source``, ``approval_required``, ``soak`` (``promotion.soak`` or None)
    ``services``      {name: service mapping} in file order; ``service(name)`` raises a
                      clear error for an unknown name
    ``image(name)``   :class:`Image` (commit, digest or None)
    ``calls(name)``   services ``name`` calls; ``callers(name)`` the reverse

For the docker platform, ``envctl.local.local_service_settings(env)`` gives each service's
host port and environment variables.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl.errors import EnvctlError, FieldPath, Problem
from envctl.yamlio import line_of

# The literal the local environment uses instead of a commit SHA: build from the working tree.
CHECKOUT = "checkout"


@dataclass(frozen=True)
class Image:
    commit: str
    digest: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"commit": self.commit, "digest": self.digest}

    def short(self) -> str:
        return self.commit[:12] if self.commit != CHECKOUT else CHECKOUT


@dataclass(frozen=True, eq=False)
class Environment(Mapping[str, Any]):
    name: str
    repo_root: Path
    file: str
    data: dict[str, Any]
    text: str
    doc: Any = field(default=None, repr=False, compare=False)  # ruamel doc: line numbers

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def platform(self) -> str:
        return str(self.data["platform"])

    @property
    def is_cloud(self) -> bool:
        return self.platform == "cloudrun"

    @property
    def project(self) -> str | None:
        return self.data.get("project")

    @property
    def region(self) -> str | None:
        return self.data.get("region")

    @property
    def registry(self) -> str | None:
        return self.data.get("registry")

    @property
    def promotion_source(self) -> str | None:
        promotion = self.data.get("promotion") or {}
        return promotion.get("from")

    @property
    def approval_required(self) -> bool:
        promotion = self.data.get("promotion") or {}
        return bool(promotion.get("approval_required", False))

    @property
    def soak(self) -> str | None:
        """``promotion.soak`` ("30m"): how long a release must have succeeded upstream."""
        promotion = self.data.get("promotion") or {}
        return promotion.get("soak")

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        services: dict[str, dict[str, Any]] = self.data["services"]
        return services

    def service(self, name: str) -> dict[str, Any]:
        if name not in self.services:
            known = ", ".join(self.services)
            raise EnvctlError.of(
                [self.problem(("services",), f"has no service {name!r} (it has: {known})")]
            )
        return self.services[name]

    def image(self, name: str) -> Image:
        image = self.service(name)["image"]
        return Image(commit=image["commit"], digest=image.get("digest"))

    def images(self) -> dict[str, Image]:
        return {name: self.image(name) for name in self.services}

    def calls(self, name: str) -> list[str]:
        return list(self.service(name).get("calls", []))

    def callers(self, name: str) -> list[str]:
        return sorted(n for n, s in self.services.items() if name in s.get("calls", []))

    def problem(self, path: FieldPath, message: str, rule: str = "schema") -> Problem:
        """A Problem in this file, with the line of ``path`` when the document has it."""
        return Problem(self.file, path, message, line_of(self.doc, path), rule)
