"""Where a model file came from: the commit and the time, for its card. Without torch, so that commands that only
rewrite ONNX files (``train fp16``, ``train adopt``) need none."""
from __future__ import annotations

import datetime as _dt

from inference.checkout import git_state


def git_commit() -> str:
    """The project's commit, "+dirty" where tracked files differ from it; "unknown" outside a git checkout."""
    state = git_state(short=True)
    return "unknown" if state is None else state["commit"] + ("+dirty" if state["modified"] else "")


def provenance() -> dict:
    return {"commit": git_commit(), "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
