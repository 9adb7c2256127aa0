"""Rule ``promoted-from-verified`` of ``envctl validate``: an environment that receives
promotions runs only images the deploy record shows succeeded upstream.

For an environment with ``promotion.from: S`` (S on Cloud Run), every service's
``{commit, digest}`` must appear in a record of S that says ``succeeded``, or in one of
the environment's own (a rollback to what it already ran well). It reads tags, not
files, so it is not one of the policy rules (those are pure functions of one file) and
runs in ``envctl validate`` only.

Two cases of a new project are not reported:

* Before S has any record at all (the seed files, before the first deploy of S) nothing
  can be checked. Promotion itself still refuses, since it needs a succeeded release of
  S. Tags missing from a clone would look the same, so every workflow that validates
  fetches them (``fetch-depth: 0`` fetches every tag).
* While the environment itself has no succeeded record, a service whose image is still
  the one its file was created with (the seed's placeholder) is left alone: otherwise,
  between S's first deploy and the environment's first promotion, every pull request's
  ``validate`` would fail on a file it does not touch. Any other image is checked, and
  rollback never picks a seed image (it needs a succeeded record).
"""

from __future__ import annotations

from envctl.errors import EnvctlError, Problem
from envctl.history import ImageSet, image_set, releases
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
    except EnvctlError:  # its own validation reports it; nothing to compare against here
        return []
    if not upstream.is_cloud:
        return []  # a docker source (local) is never deployed by CI, so never recorded
    source_records = read_records(env.repo_root, source)
    if not source_records:
        return []
    own_records = read_records(env.repo_root, env.name)
    good = {
        (svc, image.commit, image.digest)
        for rec in [*source_records, *own_records]
        if rec.succeeded
        for svc, image in rec.services.items()
    }
    if not any(rec.succeeded for rec in own_records):
        good |= set(_seed_images(env))
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


def _seed_images(env: Environment) -> ImageSet:
    """The images of the first version of the file on main's first-parent line."""
    try:
        found = releases(env.repo_root, env.name)
    except EnvctlError:  # no history to read (a copy of the files): no seed to spare
        return ()
    return found[-1].key if found else ()
