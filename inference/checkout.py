"""The git state of the project's own checkout, for provenance (a trained model's card, an audit's report): the
commit its files are at, and whether tracked files differ from it."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from . import defaults


def git_state(short: bool = False, root: Path | None = None) -> dict | None:
    """{"commit": …, "modified": bool or None} of the checkout at ``root`` (default: the project's folder, asked
    there: run in the current folder, git had given the commit of whichever repository a command was started in);
    ``short``: the commit abbreviated as git abbreviates it. None where the project is no git checkout, git is not
    installed or does not answer: everything runs as well without it."""
    root = defaults.REPO if root is None else root
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None
    # --no-optional-locks: status would otherwise refresh the checkout's index under .git/index.lock, a write into
    # the user's repository, and a git command of theirs running then failed on the lock
    base = [git, "--no-optional-locks", "-C", str(root)]
    try:
        commit = subprocess.run([*base, "rev-parse", *(["--short"] if short else []), "HEAD"], capture_output=True,
                                text=True, timeout=10)
        changed = subprocess.run([*base, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                 text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:  # e.g. a checkout another user owns, which git refuses to read
        return None
    return {"commit": commit.stdout.strip(),
            "modified": bool(changed.stdout.strip()) if changed.returncode == 0 else None}
