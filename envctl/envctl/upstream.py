"""Rule ``promoted-from-verified`` of ``envctl validate``: an environment that receives
promotions runs only images the deploy record shows succeeded upstream.

For an environment with ``promotion.from: S`` (S on Cloud Run), every service's
``{commit, digest}`` must appear in a record of S that says ``succeeded``, or in one of
the environment's own (a rollback to what it already ran well). It reads tags, not
files, so it is not one of the policy rules (those are pure functions of one file) and
runs in ``envctl validate`` only.

Before S has any record at all (a new project: the seed files, before the first deploy
of S) nothing can be checked, and nothing is reported: promotion itself still refuses,
since it needs a succeeded release of S. Tags missing from a clone would look the same,
so every workflow that validates fetches them (``fetch-depth: 0`` fetches every tag).
"""

from __future__ import annotations

from envctl.errors import Problem
from envctl.history import image_set
from envctl.load import load_environment
from envctl.model import Environment
from envctl.records import read_records

RULE = "promoted-from-verified"


def problems(env: Environment) -> list[Problem]:
    source = env.promotion_source
    if source is None or not env.is_cloud:
        return []
    try:
        upstream = load_environment(env.repo_root, source)
    except Exception:  # its own validation reports it; nothing to compare against here
        return []
    if not upstream.is_cloud:
        return []  # a docker source (local) is never deployed by CI, so never recorded
    source_records = read_records(env.repo_root, source)
    if not source_records:
        return []
    good = {
        (svc, image.commit, image.digest)
        for rec in [*source_records, *read_records(env.repo_root, env.name)]
        if rec.succeeded
        for svc, image in rec.services.items()
    }
    found = []
    for svc, commit, digest in image_set(env.images()):
        if (svc, commit, digest) not in good:
            found.append(
                env.problem(
                    ("services", svc, "image"),
                    f"{svc}: no deploy record shows {commit[:12]}@{(digest or 'no digest')[:19]}… "
                    f"succeeded in {source} (nor in {env.name}); promote a release {source} "
                    f"ran well: envctl promote {source} {env.name}",
                    RULE,
                )
            )
    return found
