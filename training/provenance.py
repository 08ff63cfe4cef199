"""Where a model file came from: the commit and the time, for its card. Without torch, so that commands that only
rewrite ONNX files (``train fp16``, ``train adopt``) need none."""
from __future__ import annotations

import datetime as _dt
import subprocess

# git asked in the project's own checkout (REPO): run in the current folder, it had recorded the commit of whichever
# repository the command was started in ("unknown" outside any)
from inference.defaults import REPO as PROJECT_ROOT


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=PROJECT_ROOT)
        # --no-optional-locks: a status refreshes the index and took .git/index.lock, so a command that only reads
        # the checkout wrote into it, and a git command of the user's running then failed on the lock
        dirty = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, cwd=PROJECT_ROOT)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict:
    return {"commit": git_commit(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
