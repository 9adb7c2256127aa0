"""Which environments a push or a pull request changes, in promotion order.

An environment changed when its file changed; every cloud environment changed when a
path its stack is built from changed (``modules/``): the same module runs everywhere.
Docker environments (``local``) are never deployed by CI. The order follows the
promotion chain (dev before staging before prod), so a deploy that fails early stops
before it reaches the environments behind it.
"""

from __future__ import annotations

import re
from pathlib import Path

from envctl import gitrepo
from envctl.errors import EnvctlError
from envctl.load import ENV_DIR, list_environments, load_environment
from envctl.model import Environment

# Paths every cloud environment's plan depends on.
SHARED_PREFIXES = ("modules/",)
_NULL_SHA = re.compile(r"^0+$")  # GitHub's "before" of a new branch


def promotion_order(envs: dict[str, Environment]) -> list[str]:
    """Names of ``envs`` sorted by their distance from the start of the promotion chain."""
    names = list(envs)

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        source = envs[name].promotion_source
        if source is None or source not in envs or name in seen:
            return 0
        return depth(source, seen | {name}) + 1

    return sorted(names, key=lambda n: (depth(n), names.index(n)))


def cloud_environments(repo_root: Path) -> list[str]:
    """Every environment CI deploys (platform cloudrun), in promotion order."""
    envs = {name: load_environment(repo_root, name) for name in list_environments(repo_root)}
    return [name for name in promotion_order(envs) if envs[name].is_cloud]


def changed_paths(repo_root: Path, base: str | None, head: str = "HEAD") -> list[str] | None:
    """Paths changed from the merge base of ``base`` and ``head`` to ``head``.

    None when ``base`` is missing, all zeros (a new branch) or not in this clone: then
    nothing is known about what changed, and the caller must assume everything did.
    """
    if not base or _NULL_SHA.match(base):
        return None
    try:
        gitrepo.git(repo_root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
        merge_base = gitrepo.git(repo_root, "merge-base", base, head).strip()
    except EnvctlError:
        return None
    out = gitrepo.git(repo_root, "diff", "--name-only", "--no-renames", merge_base, head)
    return [line for line in out.splitlines() if line]


def changed_environments(repo_root: Path, base: str | None, head: str = "HEAD") -> list[str]:
    """Cloud environments whose deployment ``base..head`` changes, in promotion order."""
    everything = cloud_environments(repo_root)
    paths = changed_paths(repo_root, base, head)
    if paths is None or any(p.startswith(SHARED_PREFIXES) for p in paths):
        return everything
    touched = {Path(p).stem for p in paths if Path(p).parent == ENV_DIR and p.endswith(".yaml")}
    # A deleted file is not in ``everything`` (it no longer loads): nothing to deploy.
    return [name for name in everything if name in touched]
