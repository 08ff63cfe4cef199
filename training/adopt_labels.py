"""An adopted classifier's label order, checked on labelled faces: accuracy with --labels as given and swapped, an
exact sign test between them, and the verdict (refused, warned of, or written) with what its card records."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from inference.errors import BiasMirrorError

# The label order. A face is called female or male by which of the two it gives more; one given both alike (to float32
# rounding) is called neither: a tie had been called female, so an untrained model's "accuracy" was the share of women
# in the sample, in either order, and both orders were refused.
TIE = 1e-6
# P(female) (of the two) varying by less than this over the labelled faces: its outputs do not tell them apart (an
# untrained torchvision MobileNetV3 gives exactly 0.5 to every face), and no order of --labels is better than another.
MIN_P_SPREAD = 1e-3
# An order is shown better where the exact one-sided sign test on the faces called (right k, swapped n − k: for two
# labels every call is one or the other) gives p below this. "Swapped beats right", by any margin, had told a
# 55 %-accurate classifier to swap its labels on 18 % of 64-face samples (now 0.07 %).
LABEL_ORDER_P = 0.01


# The labels every command looks up to measure P(female) (Classifier.require_gender), in the case they look them up.
GENDER_LABELS = ("female", "male")


def gender_labels(labels: Sequence[str], src: Path, echo: Callable[[str], None]) -> list[str]:
    """``labels`` with female and male in any case taken as female and male (said once): FairFace's "Female,Male",
    written as typed, had skipped the label-order check and made a model every command then refused. Refused: a
    label named twice, labels without female and male, which no command can host (each measures P(female)), and
    labels beside them (below)."""
    given = ",".join(labels)
    taken = [label.casefold() if label.casefold() in GENDER_LABELS else label for label in labels]
    if len(set(taken)) != len(taken):  # male,male made a card no measure could read
        raise BiasMirrorError(f"--labels {given} names a label twice: give each output its own label", src)
    missing = [g for g in GENDER_LABELS if g not in taken]
    if missing:
        lacks = " and ".join(repr(g) for g in missing)
        raise BiasMirrorError(f"--labels {given} has no {lacks}: the app, run, audit and evaluate measure P(female), "
                              "so an adopted classifier needs outputs labelled female and male, in the order of its "
                              "outputs (e.g. --labels female,male; one output: NEGATIVE,POSITIVE); a classifier of "
                              "other classes cannot be hosted", src)
    others = [label for label in taken if label not in GENDER_LABELS]
    if others:
        # male,female,unsure had been written, then measured three ways: adopt compared P(female) with P(male),
        # evaluate thresholded P(female) at 0.5, the audit called the top label (an "unsure" counted wrong)
        raise BiasMirrorError(f"--labels {given} has {'labels' if len(others) > 1 else 'a label'} besides female "
                              f"and male ({', '.join(repr(label) for label in others)}): every measure here (adopt's "
                              "label check, the app, run, audit and evaluate) is a binary female/male one, which a "
                              "third output would leave each to read its own way; adopt a classifier whose outputs "
                              "are female and male alone: two outputs (--labels female,male in their order), or one "
                              "with a sigmoid (--labels male,female: P(female) is the sigmoid)", src)
    if taken != list(labels):
        echo(f"--labels {given} read as {','.join(taken)}: its card names them in lower case, as every command looks "
             "them up")
    return taken


def sign_test(n: int, k: int) -> float:
    """P(X ≥ k) for X ~ Binomial(n, 1/2): exact, the one-sided sign test of k successes in n (SciPy's: a sum of
    big-integer binomial terms took 17 s at n = 20,000)."""
    from scipy.stats import binomtest

    return float(binomtest(max(k, 0), n, 0.5, alternative="greater").pvalue) if n else 1.0


def label_check(probs: np.ndarray, genders: list[str | None], labels: list[str]) -> dict | None:
    """The label order on the faces with a gender label (None where none has one): accuracy with ``labels`` (female
    and male, as gender_labels leaves them) as given and swapped (a face given female and male alike is neither
    right nor wrong), and ``order``: "confirmed" or "looks swapped" where the sign test shows that order better
    (p < LABEL_ORDER_P), "not confirmed" where it shows neither, "not told apart" where the outputs do not separate
    the faces (P(female) nearly the same on all, or every face, women and men, called the same): then no order is
    better, and accuracy either way is only the share of one gender."""
    known = [i for i, g in enumerate(genders) if g in ("female", "male")]
    if not known:
        return None
    f, m = labels.index("female"), labels.index("male")
    pf, pm = probs[known, f].astype(np.float64), probs[known, m].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = pf / (pf + pm)  # P(female), of the two
    finite = np.isfinite(q)
    decided = finite & (np.abs(q - 0.5) > TIE)
    said = np.where(q > 0.5, "female", "male")
    truth = np.array([genders[i] for i in known])
    n, d = len(known), int(decided.sum())
    right = int((decided & (said == truth)).sum())
    swapped = d - right
    out: dict = {"n": n, "ties": n - d, "accuracy": right / n, "accuracy_labels_swapped": swapped / n,
                 "p_female_range": [float(q[finite].min()), float(q[finite].max())] if finite.any() else None}
    one_call = len(set(said[decided])) == 1 and len(set(truth[decided])) > 1
    if len(set(truth)) < 2:  # one face, or faces of one gender: no spread or call is expected to tell anything
        out["order"] = "too few faces"
        return out
    if not finite.any() or np.ptp(q[finite]) < MIN_P_SPREAD or d == 0 or one_call:
        out["order"] = "not told apart"
        out["calls"] = str(said[decided][0]) if one_call else None
        return out
    out["p_right_better"], out["p_swapped_better"] = sign_test(d, right), sign_test(d, swapped)
    out["order"] = ("looks swapped" if out["p_swapped_better"] < LABEL_ORDER_P else
                    "confirmed" if out["p_right_better"] < LABEL_ORDER_P else "not confirmed")
    return out


def label_verdict(labelled: dict, labels: list[str], force: bool, src: Path, echo: Callable[[str], None],
                  constant: str | None = None) -> None:
    """Refuse (unless ``force``) a label order shown wrong, or outputs that do not tell the faces apart; say where the
    order could not be confirmed either way, and note in ``labelled`` (the card's record) what was written.
    ``constant``: why the head gives every face the same output, where its graph shows it (``constant_head``)."""
    given, n, order = ",".join(labels), labelled["n"], labelled["order"]
    if order == "too few faces":  # `--n 1` had been told its good model does not tell faces apart
        text = (f"the {n} labelled face(s) it was checked on are all of one gender: the order {given} cannot be "
                "checked; give more faces with --n (or --dataset)")
        if not force:
            raise BiasMirrorError(f"{text} (--force writes it anyway)", src)
        echo(f"warning: {text}; written as --force asks")
        labelled["note"] = "checked on faces of one gender only: the label order was not checked; written with --force"
        return
    if order == "not told apart":
        lo_hi = labelled["p_female_range"]
        if labelled["calls"]:
            how = f"it calls every face it decides {labelled['calls']}, women and men alike"
        elif lo_hi is None:
            how = f"its P(female) is not a number on any of the {n} labelled faces"
        elif lo_hi[1] - lo_hi[0] < 1e-4:
            how = f"it gives every one of the {n} labelled faces P(female) {lo_hi[0]:.4f}"
        else:
            how = f"its P(female) lies between {lo_hi[0]:.4f} and {lo_hi[1]:.4f} on all {n} labelled faces"
        # a head whose folded weights are zero (logits × 0) had been asked whether it was untrained or fed wrongly
        why = constant or ("Is the model untrained, or are its inputs read wrongly? Check --range, --mean, --std and "
                           "--channels")
        text = (f"its outputs do not tell these faces apart: {how}, so no order of --labels is better than another "
                f"and the order {given} cannot be checked. {why}")
        if not force:
            raise BiasMirrorError(f"{text} (--force writes it anyway)", src)
        echo(f"warning: {text}; written as --force asks")
        labelled["note"] = f"its outputs do not tell the faces apart ({how}): the label order was not checked; " \
                           "written with --force"
        return
    ties = f", {labelled['ties']} called neither" if labelled["ties"] else ""
    echo(f"on {n} labelled faces: {labelled['accuracy']:.1%} right with --labels {given}, "
         f"{labelled['accuracy_labels_swapped']:.1%} with them swapped{ties}")
    called = n - labelled["ties"]
    if order == "looks swapped":
        text = (f"with --labels {given} it is right on {labelled['accuracy']:.1%} of {n} labelled faces, swapped on "
                f"{labelled['accuracy_labels_swapped']:.1%}{ties} (the swapped order better at p = "
                f"{labelled['p_swapped_better']:.2g}, exact sign test on the {called} faces it calls)")
        if not force:
            raise BiasMirrorError(f"{text}: give them in the other order (or check --range, --mean, --std; --force "
                                  "writes it anyway)", src)
        labelled["note"] = "the swapped order is better on these faces; written as given with --force"
    elif order == "not confirmed":
        echo(f"warning: neither order of the labels is shown better on these {called} faces (sign test: p = "
             f"{labelled['p_right_better']:.2g} for --labels {given}, {labelled['p_swapped_better']:.2g} swapped; "
             f"{LABEL_ORDER_P:g} needed): the model may be weak, its inputs read wrongly (a model right on about "
             "half the faces either way usually is: check --range, --mean, --std and --channels), or the faces few "
             "(a larger --n). It is written with the labels as given, and its card says the order was not confirmed")
        labelled["note"] = (f"the label order could not be confirmed on these {called} faces: neither order is shown "
                            f"better (sign test, p < {LABEL_ORDER_P:g}); written as given")
