"""An adopted filter checked on faces: its range (the one whose output lies nearest the faces where no other comes
near, or a given one refused where another is much nearer), and the wrapped filter against the model run alone, under
every condition."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from inference.errors import BiasMirrorError
from inference.models import Filter
from training.adopt_encoding import RANGES
from training.adopt_run import Trial, run_alone

MAX_FILTER_GREY = 1  # wrapped against the model run alone: rounding only
# A given --range whose output lies this many grey levels further from the faces, on average, than another range's
# reads them wrongly: a tanh filter taken as byte gave back black faces, 123 grey levels off against 32 (UTKFace).
WRONG_RANGE_GREY = 20.0
# Without --range, a range whose output lies within this of the nearest one's (mean grey levels) is as likely its own:
# a colour filter reads about as near the faces under several. x·0.85 on [0, 1], read as [-1, 1], lay 8.4 from UTKFace
# faces against 17.8: "nearest" took [-1, 1], the audit measured it lightening skin by 0.9° ITA, and the gate passed a
# filter that darkens it by 16.6°. Above that darkener's 9 to 12 (8 to 300 faces), below the 17 to 19 by which a tint
# on [0, 1] (on a few faces) or a tanh filter on [-1, 1] (on noise) is nearest, so that those are still found. A
# stronger darkener (x·0.7: 19 to 24 apart) is past any margin that keeps them: the output cannot tell it either.
AMBIGUOUS_RANGE_GREY = 15.0
# Under a range whose output lies this near the faces (mean grey levels) the filter left them as they were: no evidence
# of its range where another changes them. A filter trained on [-1, 1] that lifts shadows (relu(-x)) does nothing to
# [0, 1] inputs; "nearest" took [0, 1], and the audit then measured a no-op and passed the gate on a filter that
# lightens Black faces by 13° ITA.
UNCHANGED_GREY = 0.5


def _interval(name: str) -> str:
    lo, hi = RANGES[name]
    return f"[{lo:g}, {hi:g}]"


def _outputs(trial: Trial, faces: np.ndarray) -> list[np.ndarray]:
    """The faces the filter, fed as ``trial`` feeds it, gives back: under each condition of a conditional one."""
    model = trial.model
    if not getattr(model, "condition_labels", None):
        return [trial.got[0]]
    return [model.apply(faces, model.condition_rows(label, len(faces))) for label in model.condition_labels]


def _largest_change(trial: Trial, faces: np.ndarray) -> float:
    """How far the filter, fed as ``trial`` feeds it, moves the faces (mean grey levels), under the condition that
    moves them most: a conditional filter whose first condition does nothing had been judged on that one alone, every
    range "unchanged", and the first range taken."""
    return max(float(np.abs(out.astype(np.int16) - faces).mean()) for out in _outputs(trial, faces))


def _same_faces(a: Trial, b: Trial, faces: np.ndarray) -> bool:
    """Whether two ranges give back the same faces, rounding apart (a mirror under every range, x·0.85 + 0.15 on
    [-1, 1] and on [0, 1]): between those the choice changes nothing an audit measures."""
    return all(int(np.abs(x.astype(np.int16) - y).max()) <= MAX_FILTER_GREY
               for x, y in zip(_outputs(a, faces), _outputs(b, faces)))


def _rivals(nearest: str, changed: list[str], changes: dict[str, float], trials: dict[str, Trial],
            faces: np.ndarray) -> list[str]:
    """The ranges, besides the nearest, that change the faces about as much as it (within AMBIGUOUS_RANGE_GREY) but
    into other faces: each as likely the one it was trained on."""
    return [r for r in changed if r != nearest and changes[r] <= changes[nearest] + AMBIGUOUS_RANGE_GREY
            and not _same_faces(trials[r], trials[nearest], faces)]


def filter_checks(trials: dict[str, Trial], src: Path, faces: np.ndarray, where: str,
                  echo: Callable[[str], None], given: str | None = None, force: bool = False,
                  side: str = "input") -> tuple[Trial, dict]:
    """The range whose output lies nearest the faces (or the ``given`` one, refused unless ``force`` where another
    puts the output much nearer), checked against the model run alone. A range under which the filter leaves the
    faces as they were is no evidence of the right one where another changes them, nor is nearest by a few grey
    levels where another gives back other faces: then the range must be given.
    ``side``: whose range the trials differ in, its input's or (a uint8 input's) its output's."""
    shape = next(iter(trials.values())).got[0].shape
    if shape != faces.shape:
        raise BiasMirrorError(f"its output is {shape[1]}×{shape[2]}×{shape[3]}, not a face like the "
                              f"{faces.shape[1]}×{faces.shape[2]}×3 one it was given", src)
    changes = {r: _largest_change(t, faces) for r, t in trials.items()}
    unchanged = sorted(r for r, c in changes.items() if c < UNCHANGED_GREY)
    changed = sorted((r for r in changes if r not in unchanged), key=changes.__getitem__)
    if given is None and unchanged and changed:  # which is its range, the one of no effect or the other? It cannot tell
        raise BiasMirrorError(f"with --range {unchanged[0]} {_interval(unchanged[0])} it leaves the faces as they were "
                              f"({changes[unchanged[0]]:.1f} grey levels on average), with --range {changed[0]} "
                              f"{_interval(changed[0])} it changes them ({changes[changed[0]]:.1f}): either it does "
                              f"nothing, or {unchanged[0]} is not its range and an audit would measure nothing. Give "
                              f"--range: the range of the {side}s it was trained on", src)
    # compared with the ranges it changes the faces under: one of no effect says nothing of the right one (the shadow
    # lift's right range, 32.6 grey levels from the faces, had been refused for [0, 1]'s 0.0)
    nearest = min([r for r in changes if r in changed or r == given] or list(changes), key=changes.__getitem__)
    if given is not None and changes[given] > changes[nearest] + WRONG_RANGE_GREY and not force:
        raise BiasMirrorError(f"with --range {given} its output lies {changes[given]:.1f} grey levels from the face on "
                              f"average, with --range {nearest} {changes[nearest]:.1f}: the faces it gave back are not "
                              f"faces. Leave --range out to take the nearest, or give --force to write it as given",
                              src)
    rivals = [] if given is not None else _rivals(nearest, changed, changes, trials, faces)
    if rivals:  # nearest by a few grey levels says nothing: read wrongly, a lightening filter is audited as darkening
        raise BiasMirrorError(f"its output lies about as near the faces with --range {nearest} {_interval(nearest)} "
                              f"({changes[nearest]:.1f} grey levels on average) as with "
                              + " or ".join(f"--range {r} {_interval(r)} ({changes[r]:.1f})" for r in rivals)
                              + f", less than {AMBIGUOUS_RANGE_GREY:g} apart, and gives back other faces with each: "
                              f"the output cannot tell which range it was trained on, and an audit of it read with the "
                              f"wrong one measures another filter (one that lightens faces can be measured darkening "
                              f"them). Give --range: the range of the {side}s it was trained on", src)
    if given in unchanged and changed:  # as the auto choice would have asked: said, and written as given
        echo(f"warning: with --range {given} {_interval(given)} it leaves the faces as they were, with --range "
             f"{changed[0]} {_interval(changed[0])} it changes them ({changes[changed[0]]:.1f} grey levels): if "
             f"{given} is not the range it was trained on, an audit of it measures nothing")
    best = given or nearest
    chosen, adopted = trials[best], {}
    if len(changes) > 1:
        echo(f"{side} range, by how far the output lies from the face (mean grey levels): "
             + ", ".join(f"{r} {_interval(r)} {c:.1f}" for r, c in changes.items())
             + (f": {best} chosen" if given is None else f": {best} as given"))
        how = f"given: {_interval(best)}" if given else f"auto: {_interval(best)}, whose output lies nearest the input"
        adopted["range_chosen"] = f"{how} (mean change in grey levels: " \
            + ", ".join(f"{_interval(r)} {c:.1f}" for r, c in changes.items()) + ")"
    model: Filter = chosen.model  # type: ignore[assignment]
    worst, by_condition = 0, {}
    for label in model.condition_labels or [None]:  # every condition, each against the model run alone on it
        rows = model.condition_rows(label, len(faces))
        got = model.apply(faces, rows)
        alone = chosen.enc.decode(run_alone(src, chosen.enc.encode(faces), rows)[0])
        worst = max(worst, int(np.abs(got.astype(np.int16) - alone).max()))
        if label is not None:
            by_condition[label] = round(float(np.abs(got.astype(np.int16) - faces).mean()), 2)
    if worst > MAX_FILTER_GREY:
        raise BiasMirrorError(f"the wrapped filter differs from the model run alone by {worst} grey levels "
                              f"(limit {MAX_FILTER_GREY})", src)
    adopted["checks"] = {"faces": where, "mean_change_grey": round(changes[best], 2), "max_grey_vs_model_alone": worst}
    if by_condition:
        adopted["checks"]["mean_change_grey_by_condition"] = by_condition
        echo("mean change per condition (grey levels): " + ", ".join(f"{k} {v:.1f}" for k, v in by_condition.items()))
    return chosen, adopted
