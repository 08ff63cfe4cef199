"""An adopted filter checked on faces: its range (the one whose output lies nearest the faces where no other comes
near, or a given one refused where another is much nearer and not as likely its own), its output finite and read at
the scale it gives, told by where its raw output lies (``_check_output_scale``: --output-range), and the wrapped
filter against the model run alone, under every condition (where they differ on a batch alone, its graph mixes the
batch). An adopted generator's faces, which have none to compare with, are checked by the same signs of a range read
wrongly (its output past the range's bounds, flat faces) and against the model alone (``generator_checks``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Callable

import numpy as np

from inference.errors import BiasMirrorError
from inference.models import Filter
from training.adopt_encoding import RANGES, Encoding, batch_rows, per_batch, rows_of
from training.adopt_read import SAMPLED_BY_RUNS, sampling_refusal
from training.adopt_run import Trial, alone_session, run_alone

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
# plausible filter. Where a range reads the output wrongly, the two signs below tell it, not this ratio.
AMBIGUOUS_RANGE_RATIO = 3.5
# ... or, where the sample faces set that darkener's ratio higher, this many times it (``_ratio_limit``): a fixed 3.5
# took x·0.8 and x·0.7 on [0, 1] for [-1, 1] without a word on one face (3.74) and on low-contrast faces (4.2 at 0.6×
# contrast), and the gate passed one that darkens skin by 27° ITA as lightening it by 1.5°. The ratio is the faces'
# to the rounding: 3.71 measured against 3.74, 4.20 against 4.22; a quarter more leaves room for a darkener that is
# not quite a scale (a gamma, a soft clamp). What it asks more of is a tint or a tanh filter on low-contrast faces,
# and those whose rival reads the output wrongly (the default filter: 3.1 on them, its [0, 1] reading past 0) still
# are not.
DARKENER_RATIO_MARGIN = 1.25
# Fewer faces than this tell no range without --range: on one face the ratio above is that face's (3.74 for the one
# --n 1 takes from UTKFace, 2.1 to 2.5 spread over 4 to 300 faces), and the margins here were measured on 4 or more.
MIN_FACES_TO_INFER = 4
# A range that reads the output wrongly puts much of the filter's raw output past its bounds (by over a grey level), a
# share this much above the nearest range's: tanh's [-1, 1] read as [0, 1] has its darker half below 0, 0.40 to 0.71
# above (the tests' tanh filter and the default filter, on UTKFace, on each of its races alone and on noise); such a
# range is not as likely its own however near it lies (the tests' tanh filter lies 1.1 to 2.3 times as far under
# [0, 1]). A filter's own clamp lands on its range's bounds, not past them: counted at pure black and white instead, it
# had dropped the right range of a [0, 1] contrast filter ((x − 0.5)·3 + 0.5, clamped: 58% at black or white) and
# taken it as [-1, 1] without a word. Past them lies the right reading of a filter that does not clamp, too: up to 0.18
# above its [-1, 1] reading's for x·2 on [0, 1] on White faces (0.09 for x·1.5). Midway between. Mild [-1, 1] filters
# (tanh(atanh(x) ± 0.2), x·0.85 − 0.15 clamped), 0 to 0.26 above under [0, 1], are asked for --range.
BEYOND_SHARE = 0.3
# ... or gives back flat faces, all one grey within this many grey levels (1st to 99th percentile, under every
# condition) where the nearest does not: a [-1, 1] or [0, 1] output read as [0, 255] is black from edge to edge, 1.9
# to 3.3 times as far from the faces as the filter's own reading where that moves them far (the tests' tanh filter on
# noise, tanh(atanh(x) − 0.6) and x·0.7 − 0.3 on [-1, 1] on UTKFace), and no filter of faces gives back one grey.
FLAT_SPREAD_GREY = 2.0
# A float output lies within a range where no more than this share of it lies over a grey level past the range's
# bounds (under the condition where most does). Its scale, which its input's range and mean/std do not say, is told by
# where its raw output lies, not by how far from the faces it reads (``_check_output_scale``): a sigmoid's or a
# clamp's [0, 1] output never goes below 0 nor above 1, a tanh's [-1, 1] output goes below 0 on the darker pixels of
# a face, an ImageNet-normalised one below 0 and above 1, a 0..255 one above 1. Told by distance (refused where the
# output lay over 40 grey levels from the faces under every --range, another reading within 40 and 20 nearer), strong
# [-1, 1] brighteners, 45 to 76 from 64 UTKFace faces read as they give their output, 19 to 36 read on [0, 1], had been
# refused as sigmoid outputs and, read on [0, 1] as advised, wrapped to darken the faces they lighten; [0, 1] outputs
# of an ImageNet-normalised or [-1, 1] input that change faces by 25 grey levels or more (so 43 to 90 from them read
# wrongly) had been written without a word. Those brighteners put 0.125 to 0.32 of their output below 0
# (tanh(atanh(x) + 0.9) 0.125, a 0.6 fade towards white 0.15, +75 grey levels 0.19, +45 0.32), ImageNet-normalised
# filters 0.28 to 0.68, sigmoids and clamps none. A twentieth: the darkest twentieth of UTKFace's pixels lie below 13
# grey levels (of its White or Asian faces alone, below 26 to 29), which a [-1, 1] output lifts over 0 only by lifting
# them some 100 grey levels. What it leaves out: a [0, 1] output that does not clamp and darkens by more than that
# (past 0 on the pixels darker than its shift), read as its input's range unless --output-range unit is given, with
# --force.
PAST_BOUNDS_SHARE = 0.05
# Under a range whose output lies this near the faces (mean grey levels) the filter left them as they were: no evidence
# of its range where another changes them. A filter trained on [-1, 1] that lifts shadows (relu(-x)) does nothing to
# [0, 1] inputs; "nearest" took [0, 1], and the audit then measured a no-op and passed the gate on a filter that
# lightens Black faces by 13° ITA.
UNCHANGED_GREY = 0.5


def _interval(name: str) -> str:
    lo, hi = RANGES[name]
    return f"[{lo:g}, {hi:g}]"


def _applied(model: Filter, faces: np.ndarray, label: str | None) -> np.ndarray:
    """The wrapped filter's faces under ``label`` (None: its only one), a batch at a time, as run_wrapped runs it:
    all 64 faces of 1024 px at once had grown ONNX Runtime's memory by gigabytes."""
    return np.concatenate([model.apply(faces[rows], model.condition_rows(label, len(faces[rows])))
                           for rows in rows_of(faces)])


def _outputs(trial: Trial, faces: np.ndarray) -> list[np.ndarray]:
    """The faces the filter, fed as ``trial`` feeds it, gives back: under each condition of a conditional one."""
    model = trial.model
    if not getattr(model, "condition_labels", None):
        return [trial.got[0]]
    return [_applied(model, faces, label) for label in model.condition_labels]  # type: ignore[arg-type]


def _moved(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """The sum and the largest of |a − b| over two stacks of faces, a batch at a time: whole int16 and float64 copies
    of 64 faces of 1024 px are 400 MB to 1.6 GB each."""
    total = worst = 0
    for rows in rows_of(a):
        apart = np.abs(a[rows].astype(np.int16) - b[rows])
        total, worst = total + int(apart.sum(dtype=np.int64)), max(worst, int(apart.max()))
    return total, worst


def _largest_change(outs: list[np.ndarray], faces: np.ndarray) -> float:
    """How far the filter moves the faces (mean grey levels), under the condition that moves them most: a conditional
    filter whose first condition does nothing had been judged on that one alone, every range "unchanged", and the
    first range taken."""
    return max(_moved(out, faces)[0] / out.size for out in outs)


def _alone(trial: Trial, src: Path, faces: np.ndarray) -> list[np.ndarray]:
    """The model run alone on the faces as ``trial`` feeds them, under each condition (as ``_outputs``): its raw
    output, before the wrapper rounds and clips it into a face. Each condition is fed as the model takes it (a 0/1
    scalar, an index): the wrapper's mapping of the card's one-hot rows is checked too."""
    model: Filter = trial.model  # type: ignore[assignment]
    return [run_alone(src, faces, trial.inner(model.condition_rows(label, len(faces))), trial.source_output,
                      trial.enc.encode)[0]
            for label in model.condition_labels or [None]]


def _beyond(enc: Encoding, raw: list[np.ndarray]) -> float:
    """The share of the raw output that lies over a grey level past the bounds of the range ``enc`` reads it on,
    under the condition where most does: a filter's own clamp lands on them, not past them."""
    return max(_past(enc, out) / out.size for out in raw)


def _past(enc: Encoding, raw: np.ndarray) -> int:
    """How many values of the raw output lie over a grey level past the bounds of the range ``enc`` reads it on,
    counted a batch at a time (``grey``'s float copies of the whole output are four times its size)."""
    return sum(int(np.count_nonzero((g < -1) | (g > 256))) for g in (enc.grey(raw[rows]) for rows in rows_of(raw)))


def _flat(outs: list[np.ndarray]) -> bool:
    """Whether the faces given back are one grey, edge to edge and face to face, under every condition."""
    return all(float(np.percentile(out, 99) - np.percentile(out, 1)) <= FLAT_SPREAD_GREY for out in outs)


def _same_faces(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Whether two ranges give back the same faces, rounding apart (a mirror under every range, x·0.85 + 0.15 on
    [-1, 1] and on [0, 1]): between those the choice changes nothing an audit measures."""
    return all(_moved(x, y)[1] <= MAX_FILTER_GREY for x, y in zip(a, b))


def _darkener_ratio(faces: np.ndarray) -> float:
    """How many times nearer the faces x·g on [0, 1] lies read as [-1, 1] than as its own range, whatever g:
    its own reading moves each pixel p by (1 − g)·p, the other by (1 − g)·|p − 127.5| (towards grey, not black).
    Faces of little contrast sit near grey, and put it high. Summed a batch at a time, exactly (whole numbers and
    halves): float64 copies of 64 faces of 1024 px had taken 4.8 GB."""
    total = off = 0.0
    for rows in rows_of(faces):
        p = faces[rows].astype(np.float32)
        total += float(p.sum(dtype=np.float64))
        off += float(np.abs(p - np.float32(127.5)).sum(dtype=np.float64))
    return total / faces.size / max(off / faces.size, 1e-9)


def _ratio_limit(faces: np.ndarray) -> float:
    """How many times as far as the nearest a range may lie and still be as likely: the fixed ratio, or a margin over
    the darkener's ratio on these faces, whichever is larger."""
    return max(AMBIGUOUS_RANGE_RATIO, DARKENER_RATIO_MARGIN * _darkener_ratio(faces))


def _about_as_near(r: str, nearest: str, changes: dict[str, float], outs: dict[str, list[np.ndarray]],
                   ratio: float) -> bool:
    """Whether ``r``'s output lies about as near the faces as ``nearest``'s (within AMBIGUOUS_RANGE_GREY, or
    ``ratio`` times as far) and is other faces (where it gives back the same ones the choice changes nothing)."""
    near = changes[r] <= max(changes[nearest] + AMBIGUOUS_RANGE_GREY, changes[nearest] * ratio)
    return r != nearest and near and not _same_faces(outs[r], outs[nearest])


def _reads_wrongly(r: str, nearest: str, beyond: Callable[[str], float], outs: dict[str, list[np.ndarray]]) -> bool:
    """Whether ``r`` reads the output as the filter does not give it, where ``nearest`` does not: far more of it past
    its bounds, or flat faces."""
    return (_flat(outs[r]) and not _flat(outs[nearest])) or beyond(r) > beyond(nearest) + BEYOND_SHARE


def _alike(rivals: list[str], outs: dict[str, list[np.ndarray]]) -> list[list[str]]:
    """The rivals in groups that give back the same faces, each group in the rivals' order."""
    groups: list[list[str]] = []
    for r in rivals:
        group = next((g for g in groups if _same_faces(outs[r], outs[g[0]])), None)
        if group is None:
            groups.append([r])
        else:
            group.append(r)
    return groups


def _offered(group: list[str], changes: dict[str, float]) -> str:
    """One range to give, with its distance, and those that give back the same faces said with it rather than offered
    apart (x·0.7 on [0, 1] had been offered --range unit or --range byte: either gives back its faces)."""
    first, *alike = group
    return (f"--range {first} {_interval(first)} ({changes[first]:.1f}"
            + "".join(f"; --range {a} {_interval(a)} ({changes[a]:.1f}) gives back the same faces" for a in alike)
            + ")")


def _ambiguity(nearest: str, rivals: list[str], changes: dict[str, float], outs: dict[str, list[np.ndarray]],
               ratio: float) -> str:
    """The nearest range and those as likely, each with its distance, for a message."""
    return (f"--range {nearest} {_interval(nearest)} ({changes[nearest]:.1f} grey levels on average) as with "
            + " or ".join(_offered(group, changes) for group in _alike(rivals, outs))
            + f", within {AMBIGUOUS_RANGE_GREY:g} grey levels or {ratio:.1f} times as far")


def _wrong_range(given: str, nearest: str, rivals: list[str], changes: dict[str, float],
                 outs: dict[str, list[np.ndarray]], side: str, ratio: float, output: str | None = None) -> str:
    """Why a given range is refused, and what to do: leaving --range out takes the nearest only where no other range
    is as likely (the advice had led a darkener on [0, 1] to [-1, 1], which an audit measured lightening skin).
    ``output``: the --output-range given, which both readings share and the advice keeps (it had named neither)."""
    read = f" --output-range {output}" if output else ""
    advice = (f"Its output lies about as near the faces with {_ambiguity(nearest, rivals, changes, outs, ratio)}: give "
              f"the one of the {side}s it was trained on" if rivals else
              f"Give --range {nearest}, keeping --output-range {output}" if output else
              "Leave --range out to take the nearest")
    return (f"with --range {given}{read} its output lies {changes[given]:.1f} grey levels from the face on average, "
            f"with --range {nearest}{read} {changes[nearest]:.1f}: the faces it gave back are not faces. {advice}, or "
            f"give --force to write it as given")


def _check_enough_faces(faces: np.ndarray, src: Path, side: str) -> None:
    """Refuses to tell the range from fewer than MIN_FACES_TO_INFER faces: on one, a [0, 1] darkener had been taken
    for [-1, 1] without a word, its one face bright enough to put that reading's ratio past the limit."""
    if len(faces) < MIN_FACES_TO_INFER:
        raise BiasMirrorError(f"{len(faces)} face(s) are too few to tell its range from its output (at least "
                              f"{MIN_FACES_TO_INFER}: on fewer, one face's brightness decides it). Give --range: the "
                              f"range of the {side}s it was trained on, or check it on more faces with a larger --n",
                              src)


def _check_finite(raw: list[np.ndarray], best: str, src: Path) -> None:
    """Its output under ``best`` holds no NaN or infinity, as a generator's must not: cast to uint8 it had been
    written as black pixels (a filter giving NaN on 8% of its pixels was adopted with a NumPy warning alone)."""
    bad = np.zeros(len(raw[0]), bool)
    for out in raw:  # under each condition
        bad |= ~np.isfinite(out.reshape(len(out), -1)).all(1)
    if bad.any():
        share = max(float((~np.isfinite(out)).mean()) for out in raw)
        raise BiasMirrorError(f"with --range {best} {_interval(best)} it gives NaN or infinite values on "
                              f"{int(bad.sum())} of {len(bad)} faces ({share:.1%} of its output): no grey level can "
                              "be read from them (they had been written as black pixels)", src)


def _reading(enc: Encoding, o: str | None) -> Encoding:
    """``enc`` reading a float output on the range ``o`` alone (--output-range), or, where None, on its input's range,
    de-normalised by its mean/std."""
    lo, hi = RANGES[o] if o else (None, None)
    return replace(enc, out_lo=lo, out_hi=hi)


def _read(enc: Encoding, raw: list[np.ndarray]) -> list[np.ndarray]:
    """The faces its raw output (under each condition) gives back, read as ``enc`` reads it."""
    return [enc.decode(out) for out in raw]


def _plausible(enc: Encoding, raw: list[np.ndarray]) -> list[np.ndarray] | None:
    """The faces its raw output gives back read as ``enc`` reads it, where a filter could give its output so: finite,
    within the range read (PAST_BOUNDS_SHARE), and not one grey edge to edge; else None."""
    if not all(np.isfinite(out).all() for out in raw) or _beyond(enc, raw) > PAST_BOUNDS_SHARE:
        return None
    read = _read(enc, raw)
    return None if _flat(read) else read


def _plain(enc: Encoding) -> bool:
    return tuple(enc.mean) == (0, 0, 0) and tuple(enc.std) == (1, 1, 1)


def _output_named(enc: Encoding) -> str:
    """The --output-range ``enc`` reads a float output on (given: it reads it on that range alone)."""
    return next(o for o, bounds in RANGES.items() if bounds == enc.output_interval)


def _options(enc: Encoding, r: str, o: str | None) -> str:
    """The options that feed and read it so, in full: its --mean/--std and --channels kept (the advice "Give
    --output-range unit … with --range unit" to an ImageNet-normalised filter, given so, dropped them, and the filter
    was wrapped wrongly without a word)."""
    given = [f"--range {r}"]
    if not _plain(enc):  # each as it reads back: shortened (:g), 0.1234567 would be given as 0.123457
        given.append(f"--mean {','.join(repr(float(v)) for v in enc.mean)} "
                     f"--std {','.join(repr(float(v)) for v in enc.std)}")
    if enc.order == "BGR":
        given.append("--channels BGR")
    if o is not None:
        given.append(f"--output-range {o}")
    return "`" + " ".join(given) + "`"


def _fed(enc: Encoding) -> str:
    """What its input is fed, for a message: its range, and the span its mean/std make of it."""
    if _plain(enc):
        return f"[{enc.lo:g}, {enc.hi:g}]"
    lo = min((enc.lo - m) / s for m, s in zip(enc.mean, enc.std))
    hi = max((enc.hi - m) / s for m, s in zip(enc.mean, enc.std))
    return f"[{lo:.3g}, {hi:.3g}] ([{enc.lo:g}, {enc.hi:g}] normalised by --mean/--std)"


def _own(enc: Encoding) -> str:
    """Its input's range as a reading of its output, for a message."""
    return f"its input's range [{enc.lo:g}, {enc.hi:g}]" + ("" if _plain(enc) else ", de-normalised by --mean/--std")


def _span(raw: list[np.ndarray]) -> str:
    return f"{min(float(out.min()) for out in raw):.3g} to {max(float(out.max()) for out in raw):.3g}"


def _readings(trials: dict[str, Trial], raw: Callable[[str], list[np.ndarray]],
              faces: np.ndarray) -> dict[tuple[str, str | None], float]:
    """How far the model's output lies from the faces (mean grey levels, under the condition that moves them most)
    fed as each trial feeds it and read on its input's range (None) or on each --output-range, where a filter could
    give it so (``_plausible``: a tanh's output, half below 0, is no sigmoid's)."""
    found = {}
    for r, trial in trials.items():
        for o in (None, *RANGES):
            read = _plausible(_reading(trial.enc, o), raw(r))
            if read is not None:
                found[r, o] = _largest_change(read, faces)
    return found


def _nearest_reading(trials: dict[str, Trial], raw: Callable[[str], list[np.ndarray]], faces: np.ndarray) -> str:
    """The reading of its output, of every --range and --output-range, that puts it nearest the faces, for advice."""
    readings = _readings(trials, raw, faces)
    if not readings:
        return ""
    (r, o), d = min(readings.items(), key=lambda kv: kv[1])
    return f" (read so, {_options(trials[r].enc, r, o)}, it lies {d:.1f} grey levels from them)"


def _check_not_flat(trials: dict[str, Trial], best: str, outs: dict[str, list[np.ndarray]],
                    raw: Callable[[str], list[np.ndarray]], faces: np.ndarray, src: Path, side: str) -> None:
    """The chosen reading of its output gives back faces, not one grey edge to edge: a [0, 1] output read as 0..255
    is black, and a 0..255-in, [0, 1]-out filter given --range byte had been written so."""
    if not _flat(outs[best]):
        return
    enc = trials[best].enc
    advice = ("Give --force to write it as it is" if side == "output" or enc.gives_bytes else
              f"Give --output-range, the range of the images it was trained to give (a sigmoid's: unit; a tanh's: "
              f"symmetric; 0..255: byte){_nearest_reading(trials, raw, faces)}, or --force to write it as it is")
    raise BiasMirrorError(f"with --range {best} {_interval(best)} every face it gives back is flat, one grey edge to "
                          f"edge: read so, its output is not a face. {advice}", src)


def _unit_distance(enc: Encoding, raw: list[np.ndarray], faces: np.ndarray) -> float | None:
    """How far from the faces its output lies read on [0, 1] alone, where a sigmoid or a clamp could give it so
    (``_plausible``) and that reading gives back other faces than ``enc``'s (its input's range); else None."""
    read = _plausible(_reading(enc, "unit"), raw)
    if read is None or _same_faces(read, _read(enc, raw)):
        return None
    return _largest_change(read, faces)


def _unit_or_own(enc: Encoding, r: str, unit: float, own: float, raw: list[np.ndarray], also: str = "") -> str:
    """Why an output that lies within [0, 1], fed otherwise, is asked its range, with the options to give."""
    own_read = _plausible(enc, raw)  # a 0..255 reading of it, black, is no filter's: not offered
    as_own = None if own_read is None else next(
        (o for o in RANGES if _same_faces(_read(_reading(enc, o), raw), own_read)), None)
    own_options = f", {_options(enc, r, as_own)} where it gives {_own(enc)}" if as_own else ""
    return (f"with --range {r} its raw output lies within [0, 1] on these faces ({_span(raw)}), its input fed "
            f"{_fed(enc)}: it may be a [0, 1] output, a sigmoid's or a clamp's, scaled otherwise than its input. Read "
            f"on [0, 1] alone (--output-range unit) it lies {unit:.1f} grey levels from the faces on average, read on "
            f"{_own(enc)} {own:.1f}: the output cannot tell which it gives, and an audit of it read on the wrong one "
            f"measures another filter (one that darkens faces can be measured lightening them). Give "
            f"{_options(enc, r, 'unit')} where it gives [0, 1]{own_options}{also}, or --force to read it on its "
            "input's range")


def _check_unit_output(trials: dict[str, Trial], r: str, changes: dict[str, float],
                       raw: Callable[[str], list[np.ndarray]], faces: np.ndarray, src: Path) -> None:
    """Where its raw output lies within [0, 1] and its input is fed otherwise (a [-1, 1] range, ImageNet-normalised
    values, 0..255), whether it gives [0, 1] or its input's range is asked (refused), unless its input's range reads it
    WRONG_RANGE_GREY nearer the faces: an ImageNet-in, [0, 1]-out darkener by 30 grey levels, read through mean/std
    43.2 from the faces and on [0, 1] 28.3, had been written without a word, its dark faces lightened by 44."""
    enc = trials[r].enc
    if enc.gives_bytes or not enc.output_denormalised:  # a face as it is, or read on the --output-range given
        return
    unit = _unit_distance(enc, raw(r), faces)
    if unit is not None and unit <= changes[r] + WRONG_RANGE_GREY:
        raise BiasMirrorError(_unit_or_own(enc, r, unit, changes[r], raw(r)), src)


def _check_clearly_unit(trials: dict[str, Trial], nearest: str, changes: dict[str, float],
                        raw: Callable[[str], list[np.ndarray]], faces: np.ndarray, src: Path) -> None:
    """Without --range: asked before the ranges are weighed where its output, read on [0, 1] alone under some range
    (``_unit_distance``), lies WRONG_RANGE_GREY nearer the faces than read on its input's under every range (a [-1, 1]
    in, [0, 1]-out identity: 68.2 under either input range, 0.0 so). Where it does not, the ranges are weighed, and
    the one chosen is checked as a given one is (``_check_unit_output``)."""
    if min(changes.values()) <= WRONG_RANGE_GREY:  # no reading can lie that much nearer
        return
    units = {r: d for r, t in trials.items() if (d := _unit_distance(t.enc, raw(r), faces)) is not None}
    if not units:
        return
    r = min(units, key=units.__getitem__)
    if units[r] + WRONG_RANGE_GREY < min(changes.values()):
        also = (f", {_options(trials[nearest].enc, nearest, None)} where it takes and gives "
                f"{_interval(nearest)} ({changes[nearest]:.1f})") if nearest != r else ""
        raise BiasMirrorError(_unit_or_own(trials[r].enc, r, units[r], changes[r], raw(r), also), src)


def _past_output_range(enc: Encoding, r: str, raw: list[np.ndarray], faces: np.ndarray) -> str:
    """Why a given --output-range is refused whose bounds much of the raw output lies past, and the nearest reading
    of it that a filter could give."""
    o = _output_named(enc)
    why = {"unit": "a [0, 1] output, a sigmoid's or a clamp's, goes neither below 0 nor above 1, where a tanh's "
                   "[-1, 1] goes below 0 on the darker pixels of a face",
           "symmetric": "a tanh's [-1, 1] output goes neither below -1 nor above 1",
           "byte": "a 0..255 output goes neither below 0 nor above 255"}[o]
    readings = {o2: _largest_change(read, faces) for o2 in (None, *RANGES)
                if o2 != o and (read := _plausible(_reading(enc, o2), raw)) is not None}
    advice = ""
    if readings:
        o2 = min(readings, key=readings.__getitem__)
        how = f"on {_own(enc)}, --output-range left out" if o2 is None else f"on {_interval(o2)}"
        advice = f"Read {how}, it lies {readings[o2]:.1f} grey levels from the faces: give {_options(enc, r, o2)}, "
    return (f"with --range {r} --output-range {o} {_interval(o)}, {_beyond(enc, raw):.0%} of its raw output lies past "
            f"that range's bounds (on these faces it spans {_span(raw)}): {why}, so {o} is not the range it gives. "
            f"{advice}or give --force to write it as given")


def _check_given_output_range(trials: dict[str, Trial], given: str | None, best: str, changes: dict[str, float],
                              raw: Callable[[str], list[np.ndarray]], faces: np.ndarray, src: Path,
                              ratio: float) -> None:
    """A given --output-range is checked as a given --range is: refused where much of the raw output lies past its
    bounds (PAST_BOUNDS_SHARE: a tanh's output taken for a sigmoid's, as the check's own advice had [-1, 1]
    lighteners wrapped, darkened faces), or, with --range given, where read on the input's range it lies
    WRONG_RANGE_GREY nearer the faces and within that range's bounds (+12 grey levels on [0, 1], given --output-range
    symmetric, had been written 74 from the faces). Without --range, where it lies about as near so under any range
    (as ranges are weighed), the output cannot tell which reading is its own, and is asked: --output-range unit had
    chosen a [-1, 1] filter's input range for it, [0, 1], and an audit saw it change faces by 23.5 where it does by
    11.9."""
    enc = trials[best].enc
    if _beyond(enc, raw(best)) > PAST_BOUNDS_SHARE:
        raise BiasMirrorError(_past_output_range(enc, best, raw(best), faces), src)
    o, got = _output_named(enc), _read(enc, raw(best))
    own = {}
    for r in [given] if given is not None else list(trials):
        read = _plausible(_reading(trials[r].enc, None), raw(r))
        if read is not None and not _same_faces(read, got):
            own[r] = _largest_change(read, faces)
    if given is not None:
        if given in own and own[given] + WRONG_RANGE_GREY < changes[given]:
            raise BiasMirrorError(f"with --range {given} --output-range {o} its output lies {changes[given]:.1f} grey "
                                  f"levels from the faces on average, read on {_own(enc)}, without --output-range, "
                                  f"{own[given]:.1f}, its raw output within that range's bounds ({_span(raw(given))}):"
                                  f" {o} {_interval(o)} is not the range it gives. Give "
                                  f"{_options(enc, given, None)}, --output-range left out, or --force to write it as "
                                  "given", src)
        return
    near = [r for r, d in own.items()
            if UNCHANGED_GREY <= d <= max(changes[best] + AMBIGUOUS_RANGE_GREY, changes[best] * ratio)]
    if near:
        raise BiasMirrorError("its output lies about as near the faces read on its input's range, without "
                              "--output-range, with "
                              + " or ".join(f"--range {r} {_interval(r)} ({own[r]:.1f})" for r in near)
                              + f", as read on --output-range {o} {_interval(o)} with --range {best} "
                              f"({changes[best]:.1f} grey levels on average), within {AMBIGUOUS_RANGE_GREY:g} grey "
                              f"levels or {ratio:.1f} times as far, and gives back other faces with each: the output "
                              f"cannot tell which it gives, nor which range it takes. Give {_options(enc, best, o)} "
                              f"where it gives {_interval(o)}, or "
                              + " or ".join(_options(trials[r].enc, r, None) for r in near)
                              + " where it gives its input's range", src)


def _unit_hint(trials: dict[str, Trial], asked: list[str], nearest: float, raw: Callable[[str], list[np.ndarray]],
               faces: np.ndarray, side: str) -> str:
    """Where the ranges asked between read its output nearer the faces on [0, 1] alone than the nearest does on its
    input's, the options that read it so, for a message: the range given, its output's scale is asked again."""
    enc = trials[asked[0]].enc
    if side == "output" or enc.gives_bytes or not enc.output_denormalised:
        return ""
    units = {r: d for r in asked if (d := _unit_distance(trials[r].enc, raw(r), faces)) is not None and d < nearest}
    return "".join(f"; read on [0, 1] alone, as a sigmoid or a clamp gives it, with "
                   f"{_options(trials[r].enc, r, 'unit')} it lies {d:.1f}" for r, d in units.items())


def _check_output_scale(trials: dict[str, Trial], given: str | None, nearest: str, changes: dict[str, float],
                        raw: Callable[[str], list[np.ndarray]], faces: np.ndarray, src: Path, side: str,
                        ratio: float) -> None:
    """Its output is read at the scale it gives, told by where its raw output lies (PAST_BOUNDS_SHARE), before the
    ranges are weighed: a given --output-range (``_check_given_output_range``); else, where its raw output lies within
    [0, 1] and its input is fed otherwise, the reading on [0, 1] against its input's range (``_check_unit_output``;
    without --range, only where [0, 1] reads it clearly nearer under some range: ``_check_clearly_unit``). An output
    scaled otherwise than its input, a sigmoid's [0, 1] read through ImageNet's mean/std or after a [-1, 1] input,
    had been written without a word, and audited as another filter."""
    enc = trials[given or nearest].enc
    if side == "output" or enc.gives_bytes:  # every range of its output was tried, or it is a face as it is
        return
    if not enc.output_denormalised:
        _check_given_output_range(trials, given, given or nearest, changes, raw, faces, src, ratio)
    elif given is not None:
        _check_unit_output(trials, given, changes, raw, faces, src)
    else:
        _check_clearly_unit(trials, nearest, changes, raw, faces, src)


def _depends_on_batch(model: Filter, faces: np.ndarray, raw: list[np.ndarray], enc: Encoding) -> bool:
    """Whether the wrapped filter, run on one face at a time, gives back what the model alone does (``raw``, under
    each condition): where it does not on a batch, its graph mixes the faces of a batch."""
    for label, raw_out in zip(model.condition_labels or [None], raw):
        rows = model.condition_rows(label, 1)
        one_by_one = np.concatenate([model.apply(faces[i:i + 1], rows) for i in range(len(faces))])
        if _moved(one_by_one, enc.decode(raw_out))[1] > MAX_FILTER_GREY:
            return False
    return True


def _samples(trial: Trial, src: Path, faces: np.ndarray) -> bool:
    """Whether the model alone, run twice in one session on its first batch of faces (under its first condition),
    gives other output the second time: it samples at random in a way its nodes do not show (an op of another
    domain), and no wrapper can be checked against it. In one session: a new one may draw the same numbers again."""
    model: Filter = trial.model  # type: ignore[assignment]
    few = faces[rows_of(faces)[0]]
    condition = trial.inner(model.condition_rows((model.condition_labels or [None])[0], len(few)))
    session = alone_session(src)
    first, again = (run_alone(session, few, condition, trial.source_output, trial.enc.encode)[0] for _ in range(2))
    return not np.array_equal(first, again, equal_nan=True)


def filter_checks(trials: dict[str, Trial], src: Path, faces: np.ndarray, where: str,
                  echo: Callable[[str], None], given: str | None = None, force: bool = False,
                  side: str = "input") -> tuple[Trial, dict]:
    """The range whose output lies nearest the faces (or the ``given`` one, refused unless ``force`` where another
    puts the output much nearer), checked against the model run alone. A range under which the filter leaves the
    faces as they were is no evidence of the right one where another changes them, nor is nearest where another, as
    near or not many times as far and not reading the output wrongly, gives back other faces: then the range must be
    given, and a given one that is as likely as the nearest is taken as the answer.
    ``side``: whose range the trials differ in, its input's or (a uint8 input's) its output's."""
    shape = next(iter(trials.values())).got[0].shape
    if shape != faces.shape:
        raise BiasMirrorError(f"its output is {shape[1]}×{shape[2]}×{shape[3]}, not a face like the "
                              f"{faces.shape[1]}×{faces.shape[2]}×3 one it was given", src)
    if given is None and len(trials) > 1:
        _check_enough_faces(faces, src, side)
    outs = {r: _outputs(t, faces) for r, t in trials.items()}
    changes = {r: _largest_change(o, faces) for r, o in outs.items()}
    raw = cache(lambda r: _alone(trials[r], src, faces))  # run alone where needed: one face at a time
    beyond = cache(lambda r: _beyond(trials[r].enc, raw(r)))
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
    _check_finite(raw(given or nearest), given or nearest, src)  # first: read as black, NaN misleads every distance
    ratio = _ratio_limit(faces)
    if not force:  # before the ranges are weighed: read at another scale than it gives, every range reads it wrongly
        _check_output_scale(trials, given, nearest, changes, raw, faces, src, side, ratio)
    rivals = [r for r in changed if _about_as_near(r, nearest, changes, outs, ratio)
              and not _reads_wrongly(r, nearest, beyond, outs)]
    # a given range as likely as the nearest is the user's answer to what the output cannot tell (x·0.5 on [0, 1],
    # given --range unit, had been refused for [-1, 1]'s 27.9 against its 59.4)
    if given is not None and changes[given] > changes[nearest] + WRONG_RANGE_GREY and given not in rivals \
            and not force:
        output = None if trials[given].enc.output_denormalised else _output_named(trials[given].enc)
        raise BiasMirrorError(_wrong_range(given, nearest, rivals, changes, outs, side, ratio, output), src)
    if given is None and rivals:  # nearest by a little says nothing: read wrongly, a lightener is audited as darkening
        raise BiasMirrorError(f"its output lies about as near the faces with "
                              f"{_ambiguity(nearest, rivals, changes, outs, ratio)}, and gives back other faces "
                              f"with each: the output cannot tell which range it was trained on, and an audit of it "
                              f"read with the wrong one measures another filter (one that lightens faces can be "
                              f"measured darkening them). Give --range: the range of the {side}s it was trained on"
                              + _unit_hint(trials, [nearest, *rivals], changes[nearest], raw, faces, side), src)
    if given in unchanged and changed:  # as the auto choice would have asked: said, and written as given
        echo(f"warning: with --range {given} {_interval(given)} it leaves the faces as they were, with --range "
             f"{changed[0]} {_interval(changed[0])} it changes them ({changes[changed[0]]:.1f} grey levels): if "
             f"{given} is not the range it was trained on, an audit of it measures nothing")
    best = given or nearest
    if not force:
        if given is None and side == "input":  # the range chosen, its output's scale is checked as a given one's
            _check_unit_output(trials, best, changes, raw, faces, src)
        _check_not_flat(trials, best, outs, raw, faces, src, side)
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
    for k, (label, raw_out) in enumerate(zip(model.condition_labels or [None], raw(best))):  # each against the model
        # run alone on it. A conditional filter's output is outs[best]: _outputs made this very call. An unconditional
        # one's there is trial.got, from batches of 16 (run_wrapped): it is run again here on all the faces at once,
        # the call this check is of, since a batch of another size need not give back the same faces
        got = outs[best][k] if model.condition_labels else _applied(model, faces, label)
        worst = max(worst, _moved(got, chosen.enc.decode(raw_out))[1])
        if label is not None:
            by_condition[label] = round(float(np.abs(got.astype(np.int16) - faces).mean()), 2)
    if worst > MAX_FILTER_GREY:
        if _samples(chosen, src, faces):  # not the wrapper's doing: said first, as adopt says a node
            raise BiasMirrorError(sampling_refusal(SAMPLED_BY_RUNS), src)
        if _depends_on_batch(model, faces, raw(best), chosen.enc):
            raise BiasMirrorError(f"its output depends on the other faces in the batch: on one face at a time the "
                                  f"wrapped filter gives back what the model alone does, in batches of "
                                  f"{per_batch(faces[0].size)} faces up to {worst} grey levels from that. Its graph mixes the faces of a batch "
                                  "(as an export traced at a batch of 1 does where it reshapes with a fixed 1, "
                                  "x.view(1, 3, -1)): re-export it with a dynamic batch axis (dynamic_axes={'x': "
                                  "{0: 'n'}}) and reshapes that keep it (x.view(x.shape[0], 3, -1))", src)
        raise BiasMirrorError(f"the wrapped filter differs from the model run alone by {worst} grey levels "
                              f"(limit {MAX_FILTER_GREY})", src)
    adopted["checks"] = {"faces": where, "mean_change_grey": round(changes[best], 2), "max_grey_vs_model_alone": worst}
    if by_condition:
        adopted["checks"]["mean_change_grey_by_condition"] = by_condition
        echo("mean change per condition (grey levels): " + ", ".join(f"{k} {v:.1f}" for k, v in by_condition.items()))
    return chosen, adopted


@dataclass
class _Generated:
    """What the generator checks need of its raw output, gathered a batch at a time (``_gathered``): whole float copies
    of the output of 64 latents at 1024 px had taken 10 GB. ``first``: its first batch, to run again."""

    first: np.ndarray
    not_finite: int = 0  # latents on which it gives NaN or infinite values
    past: int = 0  # values over a grey level past the range's bounds
    values: int = 0
    lo: float = math.inf
    hi: float = -math.inf
    worst: int = 0  # grey levels between the wrapped faces and the model's own output


def _gathered(enc: Encoding, alone: Callable[[slice], np.ndarray], got: np.ndarray) -> _Generated:
    """``_Generated`` of the raw output ``alone`` gives on each batch of latents, against the wrapped faces ``got``."""
    stats: _Generated | None = None
    for rows in batch_rows(len(got), got[0].size):
        raw = alone(rows)
        stats = stats or _Generated(raw)
        finite = np.isfinite(raw.reshape(len(raw), -1)).all(1)
        stats.not_finite += int((~finite).sum())
        if not finite.all():  # refused as such: no grey level is read from it
            continue
        stats.past += _past(enc, raw)
        stats.values += raw.size
        stats.lo, stats.hi = min(stats.lo, float(raw.min())), max(stats.hi, float(raw.max()))
        stats.worst = max(stats.worst, _moved(got[rows], enc.decode(raw))[1])
    return stats  # type: ignore[return-value]


def generator_checks(enc: Encoding, alone: Callable[[slice], np.ndarray], got: np.ndarray, given: str, where: str,
                     src: Path, force: bool = False) -> dict:
    """A generator's wrapped faces ``got`` against its own output on the same latents (``alone``: of a slice of them,
    run a batch at a time), read as ``enc``: its output finite; no more of it past ``given``'s bounds than
    BEYOND_SHARE (a tanh's [-1, 1] read as [0, 1] has its darker half below 0), nor every face flat (a tanh's read as
    [0, 255] is black), unless ``force``; the faces not one for every latent; and the wrapped faces its own, rounding
    apart (where they are not, and the model alone gives other output on the same latents, it samples). No faces tell
    its range: ``given`` is the user's."""
    stats = _gathered(enc, alone, got)
    if stats.not_finite:
        raise BiasMirrorError(f"it gives NaN or infinite values on {stats.not_finite} of {len(got)} latents: no faces "
                              "can be read from them", src)
    beyond = stats.past / stats.values
    span = f"on {where} its output lies in [{stats.lo:.3g}, {stats.hi:.3g}]"
    reading = "its uint8 output taken as it is," if enc.gives_bytes else f"with --range {given} {_interval(given)}"
    advice = "Give the range its output was trained to (a DCGAN's tanh: symmetric), or --force"
    if beyond > BEYOND_SHARE and not force:
        raise BiasMirrorError(f"{reading}, {beyond:.0%} of its output lies past the range's bounds ({span}): it reads "
                              f"the output as the generator does not give it. {advice}", src)
    spreads = [float(np.percentile(face, 99) - np.percentile(face, 1)) for face in got]
    if max(spreads) <= FLAT_SPREAD_GREY and not force:
        why = "it is not trained" if enc.gives_bytes else "the range reads its output wrongly, or it is not trained"
        raise BiasMirrorError(f"{reading} every face it gives is flat, one grey edge to edge ({span}): {why}. "
                              + ("Give --force to write it as it is" if enc.gives_bytes else advice), src)
    if len(got) > 1 and _moved(got, np.broadcast_to(got[:1], got.shape))[1] <= MAX_FILTER_GREY and not force:
        raise BiasMirrorError(f"it gives the same face for every one of {where}: its output does not depend on its "
                              "latent input. Give --force to write it as it is", src)
    if stats.worst > MAX_FILTER_GREY:
        if not np.array_equal(alone(slice(0, len(stats.first))), stats.first, equal_nan=True):
            raise BiasMirrorError(sampling_refusal(SAMPLED_BY_RUNS), src)
        raise BiasMirrorError(f"the wrapped generator differs from the model run alone by {stats.worst} grey levels "
                              f"(limit {MAX_FILTER_GREY})", src)
    return {"latents": where, "max_grey_vs_model_alone": stats.worst, "share_past_range": round(beyond, 4),
            "median_spread_grey": round(float(np.median(spreads)), 1)}
