"""An adopted filter checked on faces: its range (the one whose output lies nearest the faces where no other comes
near, or a given one refused where another is much nearer and not as likely its own), and the wrapped filter against
the model run alone, under every condition."""
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
# on [0, 1] (on a few faces) or a tanh filter on [-1, 1] (on noise) is nearest, so that those are still found.
AMBIGUOUS_RANGE_GREY = 15.0
# ... or within this many times the nearest one's: a stronger darkener lies further off by as many grey levels as it
# darkens. x·g on [0, 1] read as [-1, 1] scales each pixel towards grey, not black, and lies nearer the faces by a ratio
# the faces set, whatever g: mean(p) / mean(|p − 127.5|), 2.1 to 2.5 on UTKFace samples spread over the set (4 to 300
# faces), 1.7 to 2.2 on its Black, Asian or Indian faces alone, 3.0 to 3.3 on its White faces alone, 2.7 on the tests'
# noise faces. x·0.7, 16.8 against 35.7, had been taken as [-1, 1] and passed the gate at +2.4° ITA: it darkens skin by
# 45°. Found still: a tint on [0, 1] or [0, 255] (yellow: 5.2 on UTKFace, 4.4 on noise, asked on White faces alone at
# 3.1). Asked now: a [0, 1] lift, gamma or contrast filter whose [-1, 1] reading lies 1.5 to 3.3 times as far, itself a
# plausible filter. Where a range reads the output wrongly, the clipping below tells it, not this ratio.
AMBIGUOUS_RANGE_RATIO = 3.5
# A range that reads the output wrongly gives back faces of pure black and white (within a grey level): a tanh
# filter's [-1, 1] read as [0, 1] clips its darker half to black (38 to 62% more of the pixels than the faces had, on
# UTKFace and on noise), read as [0, 255] all of it to 0 or 1 (98 to 100%). Honest filters under any range: 16% at
# most (a contrast filter's own clamp; x·1.2 unclamped 14%). Such a range is not as likely its own however near it
# lies: the tests' tanh filter lies 1.3 times as far from noise faces under [0, 1] as under [-1, 1], the default
# filter 2.0.
CLIPPED_SHARE = 0.3
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


def _largest_change(outs: list[np.ndarray], faces: np.ndarray) -> float:
    """How far the filter moves the faces (mean grey levels), under the condition that moves them most: a conditional
    filter whose first condition does nothing had been judged on that one alone, every range "unchanged", and the
    first range taken."""
    return max(float(np.abs(out.astype(np.int16) - faces).mean()) for out in outs)


def _black_or_white(x: np.ndarray) -> float:
    """The share of ``x``'s values within a grey level of pure black or white (rounding: -0.4 read as 0..255 is 0)."""
    return float(((x <= 1) | (x >= 254)).mean())


def _clipped(outs: list[np.ndarray], faces: np.ndarray) -> float:
    """How much more of the output than of the faces lies at pure black or white, under the condition where most
    does: what the range's decoding clipped, where it reads the output wrongly."""
    return max(_black_or_white(out) for out in outs) - _black_or_white(faces)


def _same_faces(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Whether two ranges give back the same faces, rounding apart (a mirror under every range, x·0.85 + 0.15 on
    [-1, 1] and on [0, 1]): between those the choice changes nothing an audit measures."""
    return all(int(np.abs(x.astype(np.int16) - y).max()) <= MAX_FILTER_GREY for x, y in zip(a, b))


def _as_likely(r: str, nearest: str, changes: dict[str, float], clipped: dict[str, float],
               outs: dict[str, list[np.ndarray]]) -> bool:
    """Whether ``r`` is as likely the filter's range as ``nearest``: its output lies about as near the faces (within
    AMBIGUOUS_RANGE_GREY, or AMBIGUOUS_RANGE_RATIO times as far), is not clipped where the nearest's is not, and it
    gives back other faces (where it gives back the same ones the choice changes nothing)."""
    near = changes[r] <= max(changes[nearest] + AMBIGUOUS_RANGE_GREY, changes[nearest] * AMBIGUOUS_RANGE_RATIO)
    return (r != nearest and near and clipped[r] < clipped[nearest] + CLIPPED_SHARE
            and not _same_faces(outs[r], outs[nearest]))


def _ambiguity(nearest: str, rivals: list[str], changes: dict[str, float]) -> str:
    """The nearest range and those as likely, each with its distance, for a message."""
    return (f"--range {nearest} {_interval(nearest)} ({changes[nearest]:.1f} grey levels on average) as with "
            + " or ".join(f"--range {r} {_interval(r)} ({changes[r]:.1f})" for r in rivals)
            + f", within {AMBIGUOUS_RANGE_GREY:g} grey levels or {AMBIGUOUS_RANGE_RATIO:g} times as far")


def _wrong_range(given: str, nearest: str, rivals: list[str], changes: dict[str, float], side: str) -> str:
    """Why a given range is refused, and what to do: leaving --range out takes the nearest only where no other range
    is as likely (the advice had led a darkener on [0, 1] to [-1, 1], which an audit measured lightening skin)."""
    advice = ("Leave --range out to take the nearest" if not rivals else
              f"Its output lies about as near the faces with {_ambiguity(nearest, rivals, changes)}: give the one of "
              f"the {side}s it was trained on")
    return (f"with --range {given} its output lies {changes[given]:.1f} grey levels from the face on average, with "
            f"--range {nearest} {changes[nearest]:.1f}: the faces it gave back are not faces. {advice}, or give "
            f"--force to write it as given")


def filter_checks(trials: dict[str, Trial], src: Path, faces: np.ndarray, where: str,
                  echo: Callable[[str], None], given: str | None = None, force: bool = False,
                  side: str = "input") -> tuple[Trial, dict]:
    """The range whose output lies nearest the faces (or the ``given`` one, refused unless ``force`` where another
    puts the output much nearer), checked against the model run alone. A range under which the filter leaves the
    faces as they were is no evidence of the right one where another changes them, nor is nearest where another, as
    near or not many times as far and not clipped, gives back other faces: then the range must be given, and a given
    one that is as likely as the nearest is taken as the answer.
    ``side``: whose range the trials differ in, its input's or (a uint8 input's) its output's."""
    shape = next(iter(trials.values())).got[0].shape
    if shape != faces.shape:
        raise BiasMirrorError(f"its output is {shape[1]}×{shape[2]}×{shape[3]}, not a face like the "
                              f"{faces.shape[1]}×{faces.shape[2]}×3 one it was given", src)
    outs = {r: _outputs(t, faces) for r, t in trials.items()}
    changes = {r: _largest_change(o, faces) for r, o in outs.items()}
    clipped = {r: _clipped(o, faces) for r, o in outs.items()}
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
    rivals = [r for r in changed if _as_likely(r, nearest, changes, clipped, outs)]
    # a given range as likely as the nearest is the user's answer to what the output cannot tell (x·0.5 on [0, 1],
    # given --range unit, had been refused for [-1, 1]'s 27.9 against its 59.4)
    if given is not None and changes[given] > changes[nearest] + WRONG_RANGE_GREY and given not in rivals \
            and not force:
        raise BiasMirrorError(_wrong_range(given, nearest, rivals, changes, side), src)
    if given is None and rivals:  # nearest by a little says nothing: read wrongly, a lightener is audited as darkening
        raise BiasMirrorError(f"its output lies about as near the faces with {_ambiguity(nearest, rivals, changes)}, "
                              f"and gives back other faces with each: the output cannot tell which range it was "
                              f"trained on, and an audit of it read with the wrong one measures another filter (one "
                              f"that lightens faces can be measured darkening them). Give --range: the range of the "
                              f"{side}s it was trained on", src)
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
