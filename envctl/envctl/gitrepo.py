"""The git operations envctl needs, run as argument lists (never through a shell)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from envctl.errors import EnvctlError
from envctl.yamlio import decode


def git(repo_root: Path, *args: str) -> str:
    """git's stdout; a failure is an EnvctlError with git's message on one line."""
    return git_bytes(repo_root, *args).decode("utf-8", "replace")


def git_input(repo_root: Path, data: bytes, *args: str) -> str:
    """git's stdout, with ``data`` on its stdin (``git tag -F -``)."""
    return git_bytes(repo_root, *args, stdin=data).decode("utf-8", "replace")


def git_bytes(repo_root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        result = subprocess.run(
            ["git", *args], cwd=repo_root, input=stdin, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise EnvctlError(
            "git is not installed (envctl reads and writes history with it)"
        ) from None
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace")
        locked = _LOCKED.search(stderr)
        if locked:
            raise _lock_error(repo_root, Path(locked[1]))
        if result.returncode < 0:
            detail = f"killed by signal {-result.returncode}"
        else:
            detail = " ".join(stderr.split()) or f"exit status {result.returncode}"
        raise EnvctlError(f"git {args[0]} failed: {detail}")
    return result.stdout


# git's words for a lock it cannot take: "Unable to create '/r/.git/index.lock': File exists."
_LOCKED = re.compile(r"Unable to create '([^']+\.lock)': File exists")


def _lock_error(repo_root: Path, lock: Path) -> EnvctlError:
    try:
        shown = str(lock.resolve().relative_to(repo_root.resolve()))
    except ValueError:
        shown = str(lock)
    return EnvctlError(
        f"{shown}: exists: another git command is running here, or one was killed and "
        f"left it; if no git is running, delete {shown} and run envctl again "
        "(nothing was changed)"
    )


def require_unlocked(repo_root: Path) -> None:
    """Refuse to start a write while the index is locked.

    The lock is never removed here: a live git may hold it, and only a person can tell
    a killed one's leftover from that.
    """
    lock = Path(git(repo_root, "rev-parse", "--git-path", "index.lock").strip())
    lock = lock if lock.is_absolute() else repo_root / lock
    if lock.exists():
        raise _lock_error(repo_root, lock)


def head(repo_root: Path) -> str:
    """The full SHA of HEAD."""
    return git(repo_root, "rev-parse", "HEAD").strip()


def changed(repo_root: Path, *pathspecs: str, untracked: bool = True) -> list[str]:
    """Paths with uncommitted changes (staged or not), within ``pathspecs`` if given.

    ``untracked`` says whether new files count. They do for what is built or measured
    from the tree (an image holds untracked files as much as tracked ones); they do
    not for the commit envctl makes, which holds exactly the file it changed.
    """
    args = ["status", "--porcelain", f"--untracked-files={'normal' if untracked else 'no'}"]
    if pathspecs:
        args += ["--", *pathspecs]
    return [line[3:] for line in git(repo_root, *args).splitlines() if line.strip()]


def require_clean(repo_root: Path) -> None:
    """Refuse to write when tracked files have uncommitted changes (staged or not).

    Untracked files do not count (as for ``git describe --dirty``): the commit envctl
    makes contains exactly the file it changed, and nothing else can slip in.
    """
    require_unlocked(repo_root)
    dirty = changed(repo_root, untracked=False)
    if dirty:
        more = f" and {len(dirty) - 1} more" if len(dirty) > 1 else ""
        raise EnvctlError(
            f"{dirty[0]}: uncommitted changes{more}; commit or stash them first "
            "(envctl writes exactly one commit on a clean tree)"
        )


def show(repo_root: Path, commit: str, path: str) -> str | None:
    """``path`` as it was at ``commit``, or None where it did not exist.

    Raises EnvctlError (file ``COMMIT:PATH``, with a line) for a version over the size
    cap or not UTF-8.
    """
    try:
        data = git_bytes(repo_root, "show", f"{commit}:{path}")
    except EnvctlError:
        return None
    return decode(data, f"{commit}:{path}")


def show_many(repo_root: Path, specs: list[tuple[str, str]]) -> list[bytes | None]:
    """The bytes of each ``(commit, path)`` (None where it does not exist), read by one
    ``git cat-file --batch``: a history of hundreds of versions costs one process, not
    hundreds. Callers decode (``yamlio.decode``) each as ``show`` does."""
    if not specs:
        return []
    stdin = "".join(f"{commit}:{path}\n" for commit, path in specs).encode()
    out = git_bytes(repo_root, "cat-file", "--batch", stdin=stdin)
    found: list[bytes | None] = []
    at = 0
    for _ in specs:
        end = out.index(b"\n", at)
        header = out[at:end].split()
        at = end + 1
        if len(header) != 3 or header[1] != b"blob":
            found.append(None)  # "missing", or a tree where a file was expected
            if len(header) == 3:  # an object of another type: skip its content too
                at += int(header[2]) + 1
            continue
        size = int(header[2])
        found.append(out[at : at + size])
        at += size + 1  # the content, then a newline
    return found


@dataclass(frozen=True)
class LogEntry:
    commit: str
    date: str  # committer date (when it reached the branch), ISO 8601
    author: str  # "Name <email>"
    subject: str
    trailers: dict[str, list[str]]


_FIELD, _RECORD = "\x1f", "\x1e"


def log(repo_root: Path, path: str, head: str = "HEAD") -> list[LogEntry]:
    """Commits on the first-parent line of ``head`` that changed ``path``, newest first.

    First parent only: on main that is one commit per merged pull request whatever the
    merge method (the squash commit, the merge commit; a rebase merge puts each of the
    PR's commits there). The commits inside a merged branch never ran anywhere.
    The date is the committer date: when the commit reached main.
    """
    fmt = _FIELD.join(["%H", "%cI", "%an <%ae>", "%s", "%(trailers:only,unfold)"]) + _RECORD
    out = git(repo_root, "log", "--first-parent", f"--format={fmt}", head, "--", path)
    entries = []
    for record in out.split(_RECORD):
        fields = record.strip("\n").split(_FIELD)
        if len(fields) != 5:
            continue
        commit, date, author, subject, trailer_text = fields
        trailers: dict[str, list[str]] = {}
        for line in trailer_text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                trailers.setdefault(key.strip(), []).append(value.strip())
        entries.append(LogEntry(commit, date, author, subject, trailers))
    return entries


def commit_file(repo_root: Path, path: str, message: str) -> str:
    """Commit exactly ``path`` with ``message``; returns the new commit's SHA.

    ``git commit -- PATH`` stages the path in a temporary index and writes the real one
    only once the commit exists, so a commit that fails (a hook, a full disk, a kill)
    leaves the index as it was: nothing is ever left staged.
    """
    git(repo_root, "commit", "--quiet", "-m", message, "--", path)
    return git(repo_root, "rev-parse", "HEAD").strip()


def staged(repo_root: Path, path: str) -> bool:
    """Whether the index holds a change to ``path`` that HEAD does not."""
    try:
        git(repo_root, "diff", "--cached", "--quiet", "--", path)
    except EnvctlError:
        return True
    return False


def first_parent_chain(repo_root: Path, head: str = "HEAD") -> list[str]:
    """Every commit on the first-parent line of ``head``, newest first."""
    return git(repo_root, "rev-list", "--first-parent", head).split()


def tree_of(repo_root: Path, commit: str, path: str) -> str | None:
    """The object id of ``path`` at ``commit`` (None where it does not exist)."""
    try:
        return git(repo_root, "rev-parse", "--verify", "--quiet", f"{commit}:{path}").strip()
    except EnvctlError:
        return None
