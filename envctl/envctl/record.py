"""``envctl record ENV --result succeeded|failed``: write ENV's deploy record at HEAD.

The deploy workflow runs it after apply and verification, then pushes the tag with the
release App's token. The record names the release (the main commit that made the file's
version at HEAD), every service's commit and digest, hashes of the file's state and of
``envctl render ENV``, the time (``$ENVCTL_NOW``), the run URL and the verification
evidence (each ``--evidence`` file a JSON object with a ``kind``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from envctl import gitrepo
from envctl.errors import EnvctlError
from envctl.history import Ledger
from envctl.load import load_environment
from envctl.records import RESULTS, Record, read_evidence, state_digest, tag_name, write_tag
from envctl.render import render, to_json


def record(
    repo_root: Path,
    name: str,
    result: str,
    now: dt.datetime,
    run_url: str | None = None,
    evidence: list[Path] | None = None,
) -> Record:
    if result not in RESULTS:
        raise EnvctlError(f"--result {result!r}: must be succeeded or failed")
    env = load_environment(repo_root, name)
    if gitrepo.changed(repo_root, env.file, untracked=False):
        raise EnvctlError(
            f"{env.file}: uncommitted changes; a record says what ran at a commit, so the "
            "file must be the committed one"
        )
    items = [read_evidence(path) for path in evidence or []]
    if result == "succeeded":
        for path, item in zip(evidence or [], items, strict=True):
            if item.get("ok") is False:
                raise EnvctlError(
                    f"{path}: ok: false ({item['kind']} did not pass); record --result failed"
                )
    head = gitrepo.head(repo_root)
    current = Ledger(repo_root, name).current
    if current is None:
        raise EnvctlError(f"{env.file}: not in the history of HEAD; commit it first")
    moment = now.astimezone(dt.UTC).replace(microsecond=0)
    rendered = hashlib.sha256(to_json(render(env)).encode()).hexdigest()
    made = Record(
        tag=tag_name(name, moment),
        environment=name,
        result=result,
        time=moment,
        commit=head,
        release=current.id,
        state=state_digest(env.data),
        render_sha256=rendered,
        services=env.images(),
        run_url=run_url,
        verification=tuple(items),
    )
    write_tag(repo_root, made)
    return made
