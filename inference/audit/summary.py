"""Plain-language summary built only from report.json: direction, size and significance of every effect."""
from __future__ import annotations

from ..images import CANNOT_BE_READ, NOT_AN_IMAGE
from ..metrics import tied_groups
from ..program_name import program
from ..skin import JUST_NOTICEABLE_L
from ..strict_json import as_printed, measured
from .stats import ALPHA, holm  # ALPHA: the audit's one level, which Holm's families are chosen by too


def num(v, spec: str, scale: float = 1.0) -> str:
    """``v`` formatted by ``spec``, or "n/a" where nothing was measured (a worst/best ratio when the best is 0)."""
    return format(scale * v, spec) if measured(v) else "n/a"


def ci(d: dict | None, nd: int = 2, pct: bool = False) -> str:
    if not d or not measured(d.get("value")):
        return "n/a"
    if pct:
        f = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    else:  # rounded first, so that a value printed as zero has no minus ("-0.00")
        f = lambda v: f"{as_printed(v, nd):.{nd}f}"  # noqa: E731
    if not (measured(d.get("lo")) and measured(d.get("hi"))):
        return f(d["value"])
    return f"{f(d['value'])} [95% CI {f(d['lo'])}, {f(d['hi'])}]"


P_VALUE_DIGITS = 3  # a p's digits, more beside ALPHA (``p_digits``)


def pval(p) -> str:
    if not measured(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.{p_digits(p)}f}"


def p_digits(p: float) -> int:
    """``P_VALUE_DIGITS``, or as many more as keep a p beside ALPHA from printing as ALPHA: every significance word
    reads the p as measured against ALPHA, and 0.0496 and 0.0504 had both printed "p = 0.050", one beside "differs",
    the other beside "does not differ detectably". A p of exactly ALPHA is not below it, and prints as it."""
    digits = P_VALUE_DIGITS
    while round(p, digits) == ALPHA and p != ALPHA and digits < 10:  # report.json keeps 10 significant digits
        digits += 1
    return digits


def signif(p) -> str:
    if not measured(p):
        return "not testable"
    return "significant" if p < ALPHA else "not significant"


ITA_DIGITS = 2  # the digits of ΔITA°, ΔL* and Δb* in the summary (ci's)
P_DIGITS = 3  # the digits of P(female) and ΔP(female)
CI_SIDE = {1: "above", -1: "below"}  # where an interval clear of 0 lies, by the sign of its side
# A face's move no filter made: what resizing it down to a filter's size and back moves on its own
# (docs/architecture.md, "Every shift is measured through the filter's resampling path": ITA ~2°, P(female) 0.013 on
# average). Faces are said to have moved "far" only beyond it (``_moved_far``).
RESIZING_MOVES = {"ita": 2.0, "p_female": 0.013}


def _direction(v, pos: str, neg: str) -> str:
    if v is None:
        return "not measurable"
    return pos if v > 0 else neg if v < 0 else "unchanged"


def _clear_of_zero(interval: dict | None, digits: int | None = None) -> int:
    """+1 where an interval lies above 0, -1 below, 0 where it covers 0 or was not measured; with ``digits``, as
    printed ("[0.00, 0.00]" covers 0)."""
    lo, hi = (interval or {}).get("lo"), (interval or {}).get("hi")
    if not (measured(lo) and measured(hi)):
        return 0
    lo, hi = as_printed(lo, digits), as_printed(hi, digits)
    return 1 if lo > 0 else -1 if hi < 0 else 0


def median_digits(median: dict | None, digits: int | None) -> int | None:
    """The digits a median and its 95% CI print with: ``digits``, or, where the median prints as a move and its CI
    lies clear of 0, as many more as its bound nearer 0 needs not to print as 0. Words read the printed digits, and
    "median 0.002 [95% CI 0.000, 0.003]" (0.000352 to 0.003337) had been called "borderline: neither … clears 0"
    beside a significant test. A median printed as 0 keeps ``digits``: a move too small to print names no move
    (``_printed_as_zero``)."""
    side = _clear_of_zero(median)
    if digits is None or not side or as_printed(median["value"], digits) == 0:
        return digits
    nearer_zero = median["lo"] if side > 0 else median["hi"]
    while as_printed(nearer_zero, digits) == 0:  # ends: clear of 0, the bound is not 0
        digits += 1
    return digits


def median_ci(median: dict | None, digits: int) -> str:
    """A median with its 95% CI, to its ``median_digits``."""
    return ci(median, median_digits(median, digits))


def _median_side(median: dict | None, digits: int | None) -> int:
    """``_clear_of_zero`` of a median's CI as it prints (``median_ci``)."""
    return _clear_of_zero(median, median_digits(median, digits))


def _printed_as_zero(value, median: dict | None, digits: int | None) -> bool:
    """Whether a mean, and the median where given, both print as 0: a test shown significant over shifts too small
    to print (every face 0.001° up) names no move beside "mean 0.00, median 0.00"."""
    return (digits is not None and as_printed(value, digits) == 0
            and (not median or as_printed(median.get("value"), digits) in (0, None)))


def tested_direction(p, value, rank=None) -> int:
    """+1 or -1: the way a significant paired test says the typical face moved (the sign of the rank-biserial
    effect, else of the mean); 0 where the test shows no move (p ≥ α or not testable) or nothing was measured."""
    if p is None or p >= ALPHA or value is None:
        return 0
    sign = rank if rank not in (None, 0) else value
    return (sign > 0) - (sign < 0)


def _moved_far(mean: dict | None, far: float) -> bool:
    """Whether the faces that moved a mean the typical face did not follow moved ``far`` on average. They are fewer
    than half of the faces, so they moved more than twice the mean: far where twice the mean reaches ``far``. A mirror
    filter's mean ΔITA of 0.00002° had made "a minority of faces moved far"."""
    return 2 * abs((mean or {}).get("value") or 0) >= far


def _effect(p, value, up: str, down: str, none: str, rank=None, mean: dict | None = None,
            median: dict | None = None, digits: int | None = None, far: float = 0.0) -> str:
    """A direction is only stated when the paired test is significant.

    The direction is the test's own (the sign of the rank-biserial effect,
    i.e. where the typical face moved); when the mean moved the other way,
    say so rather than let a skewed tail contradict the test. ``mean`` and
    ``median`` (their intervals) are for the converse, a test that
    shows nothing beside an interval clear of zero, which would otherwise read
    as a contradiction: where only the mean's is clear, the typical face did
    not move but a few faces moved far (said only beside a median's interval,
    which includes 0: under 6 faces the median has none, and 3 faces that all
    moved had been "a minority"); where the median's is clear too, the
    shift is borderline (the two methods disagree near p = 0.05), and the
    typical face is not said to have stayed put beside a median shown to move.
    ``digits``: those the figures are printed with, which any word is read
    against (None: as measured); ``far``: the move of a face that is far
    (``RESIZING_MOVES``), which that minority is said to have made only where
    the mean shows it (``_moved_far``). A significant test beside a mean whose interval does not bear it out is
    said to be the typical face's, or borderline (``_beside_the_mean``).
    """
    if p is None or p >= ALPHA or value is None or _printed_as_zero(value, median, digits):
        by_mean, by_median = _clear_of_zero(mean, digits), _median_side(median, digits)
        if by_median and by_mean == -by_median:  # the default filter's ΔP(female): median +0.0008, mean -0.0076
            return (f"{none} by the Wilcoxon test; the median's 95% CI lies {CI_SIDE[by_median]} 0 and the mean's "
                    f"{CI_SIDE[by_mean]} it: the typical face moved slightly one way, a minority of faces "
                    + ("far the other" if _moved_far(mean, far) else "the other way"))
        if by_median:
            which = "the mean's and the median's 95% CIs lie" if by_mean == by_median else "the median's 95% CI lies"
            return f"{none} by the Wilcoxon test, though {which} {CI_SIDE[by_median]} 0 (borderline)"
        if by_mean and not _has_interval(median):  # no median interval says where the typical face lies
            return f"{none} by the Wilcoxon test, though the mean's 95% CI lies {CI_SIDE[by_mean]} 0"
        if by_mean:
            return (f"{none} for the typical face (Wilcoxon), yet the mean is {CI_SIDE[by_mean]} 0 "
                    "with its 95% CI: a minority of faces moved" + (" far" if _moved_far(mean, far) else ""))
        return none
    sign = tested_direction(p, value, rank)
    if sign == 0:
        return none
    return (up if sign > 0 else down) + _beside_the_mean(sign, value, mean, median, digits, far)


def _beside_the_mean(sign: int, value, mean: dict | None, median: dict | None, digits: int | None,
                     far: float) -> str:
    """What a significant test's direction (``sign``) needs beside a mean that does not bear it out: the Wilcoxon
    test reads the typical face, the interval printed beside it reads the mean, and "more male" had stood beside
    "mean -0.010 [95% CI -0.024, 0.004]" (Wilcoxon p = 0.047) unexplained. '' where the mean's 95% CI lies on the
    test's side of 0, or where no interval was measured and the mean moved the test's way."""
    by_mean, shown = _clear_of_zero(mean, digits), as_printed(value, digits)
    if by_mean == -sign:
        return (f" for the typical face (the mean's 95% CI lies {CI_SIDE[by_mean]} 0: a minority of faces moved "
                + ("far " if _moved_far(mean, far) else "") + "the other way)")
    if shown != 0 and (shown > 0) != (sign > 0):
        return " for the typical face (the mean moved slightly the other way)"
    if by_mean == sign or not _has_interval(mean):
        return ""
    if _median_side(median, digits) == sign:
        return f" for the typical face (the median's 95% CI lies {CI_SIDE[sign]} 0, the mean's includes it)"
    neither = ("neither the mean's nor the median's 95% CI clears 0" if _has_interval(median)
               else "the mean's 95% CI includes 0")
    return f" by the Wilcoxon test (borderline: {neither})"


def least_p(test: dict) -> float | None:
    """The least two-sided p a Wilcoxon test (report.json's ``wilcoxon``) can give over its faces that moved
    (``n_nonzero``, zeros being dropped): 2/2ⁿ, every one of the n moved the same way (exact up to
    ``stats.EXACT_UP_TO`` faces; past it any p is reachable). From 5 faces down it is 0.0625 or more, so that no
    data on them is significant: a group of 3 faces that all moved about +13° had been "not significant (…: a minority
    of faces moved far, not the typical face)". None where no face moved (those faces show no move: they are not too
    few) or the report does not say."""
    moved = test.get("n_nonzero")
    return min(1.0, 2.0 ** (1 - moved)) if moved else None


def in_holm_family(test: dict) -> bool:
    """Whether a test is one of its grouping's Holm family (report.json's ``holm_family``): a test whose least p is
    not below ALPHA is left out (``stats.holm_family``). A report without the key (before schema 18) had every test
    given a Holm p in it."""
    return test.get("holm_family", measured(test.get("p_holm")))


def holm_family_size(tests) -> int:
    """The number of tests Holm adjusted together (its m) among a grouping's ``tests``."""
    return sum(in_holm_family(t) for t in tests)


def least_holm_p(by: dict, group: str, test_of) -> float | None:
    """The least Holm p a group's test (``test_of`` its cell) can give, the other groups' tests as they are: Holm
    over its family, the groups report.json puts in it (``in_holm_family``), with the group's own p at its
    ``least_p``. Holm multiplies a group's p by up to the number of groups in the family, so 6 faces (least p 0.031)
    cannot reach significance among 3 groups. A group left out of the family, its least p not below ALPHA, has no
    Holm p: its least p itself, which no Holm can lower, is returned."""
    test = test_of(by[group])
    least = least_p(test)
    if least is None or not in_holm_family(test):
        return least
    family = {g: test_of(s)["p"] for g, s in by.items() if g != group and in_holm_family(test_of(s))}
    family[group] = least
    return holm(list(family.values()))[list(family).index(group)]


def too_few(least) -> bool:
    """Whether a test's ``least_p`` (or ``least_holm_p``) keeps it from significance whatever its faces show."""
    return measured(least) and least >= ALPHA


def faces_moved_words(test: dict) -> str:
    """The faces a Wilcoxon test counts: '5 faces', or 'the 5 faces that moved (of 40)' where some did not."""
    moved, n = test["n_nonzero"], test["n"]
    faces = f"{moved} face" + ("" if moved == 1 else "s")
    return faces if moved == n else f"the {faces} that moved (of {n})"


def significance_words(p, least, test: dict, adjusted: bool) -> str:
    """``signif`` of a test's p (its Holm p where ``adjusted``), or, where its ``least`` p cannot be below ALPHA,
    that its faces are too few to reach significance: a group of one or two faces, which no test can find
    significant, had been called "not significant" as if its faces had been shown not to move."""
    if not too_few(least):
        return signif(p)
    if adjusted and not in_holm_family(test):  # no Holm p: its least p is not below ALPHA, whatever the family
        return (f"too few faces to reach significance (the least p possible with {faces_moved_words(test)} is "
                f"{least:.{p_digits(least)}f}, so it is left out of Holm's family)")
    which, here = ("Holm p", " here") if adjusted else ("p", "")
    return (f"too few faces to reach significance (the least {which} possible with {faces_moved_words(test)}{here} "
            f"is {least:.{p_digits(least)}f})")


def holm_pval(test: dict) -> str:
    """A grouped test's p as the summary prints it: 'Holm p = …' in Holm's family, or, left out of it (its p can
    never be below ALPHA: too few faces, or none moved), its own p, which is the truth of it: a Holm p it does not
    have had printed "p n/a"."""
    return f"Holm {pval(test.get('p_holm'))}" if in_holm_family(test) else pval(test.get("p"))


def holm_or_own_p(test: dict):
    """The p a grouped test's significance is read by: its Holm p in the family, else its own (never below ALPHA)."""
    return test.get("p_holm") if in_holm_family(test) else test.get("p")


def all_moved_words(test: dict, noun: str) -> str:
    """'ITA rose on all 3 faces' where every face a test counts moved the same way (its rank-biserial ±1), else ''.
    A test too few to reach significance says nothing of the faces; this says what they did."""
    rb, moved, n = test.get("rank_biserial"), test.get("n_nonzero"), test.get("n")
    if rb not in (1, -1) or not moved:
        return ""
    on = {1: "the one face", 2: "both faces"}.get(moved, f"all {moved} faces")
    if moved < n:
        on += f" that moved ({n - moved} of {n} did not)"
    return f"{noun} {'rose' if rb > 0 else 'fell'} on {on}"


def intervals_words(mean: dict | None, median: dict | None, digits: int, noun: str, far: float,
                    typical: str = "") -> str:
    """Where the mean's and the median's 95% CIs lie beside a test too few to reach significance, '' where neither
    is clear of 0. "A minority of faces moved …, not the typical face" only beside a median's interval that includes
    0: under 6 faces the median has none, and the words had been said of 3 faces that all moved. ``typical``: the
    median as printed, where the line does not print it."""
    by_mean, by_median = _clear_of_zero(mean, digits), _median_side(median, digits)
    far_words = " far" if _moved_far(mean, far) else ""
    if by_mean and by_median == by_mean:
        return f"the mean's and the median's 95% CIs lie {CI_SIDE[by_mean]} 0{typical}"
    if by_mean and by_median:
        return (f"the mean's 95% CI lies {CI_SIDE[by_mean]} 0 and the median's {CI_SIDE[by_median]} it{typical}: the "
                f"typical face's {noun} {'rose' if by_median > 0 else 'fell'}, a minority of faces moved{far_words} "
                "the other way")
    if by_mean and _has_interval(median):
        return (f"the mean's 95% CI lies {CI_SIDE[by_mean]} 0 while the median's includes it{typical}: a minority of "
                f"faces moved{far_words}, not the typical face")
    if by_mean:
        return f"the mean's 95% CI lies {CI_SIDE[by_mean]} 0"
    return f"the median's 95% CI lies {CI_SIDE[by_median]} 0{typical}" if by_median else ""


def too_few_beside(test: dict, mean: dict | None, median: dict | None, digits: int, noun: str, far: float,
                   typical: str = "") -> str:
    """What the figures show beside a test too few to reach significance: ', though ITA rose on all 5 faces and the
    mean's 95% CI lies above 0' (``all_moved_words``, ``intervals_words``); '' where they show nothing."""
    said = [w for w in (all_moved_words(test, noun), intervals_words(mean, median, digits, noun, far, typical)) if w]
    return ", though " + " and ".join(said) if said else ""


def comparison_line(c: dict, grouping: str | None = None) -> str:
    """One pair of classifiers on the same faces (an entry of ``paired_accuracy``): the overall
    McNemar result and, for ``grouping``, the groups whose difference survives Holm."""
    o = c["overall"]
    if not o["n"]:
        return f"{c['a']} vs {c['b']}: no face was classified by both."
    verdict = ((c["a"] if o["difference"] > 0 else c["b"]) + " is more accurate" if o["p"] < ALPHA
               else "no detectable difference")
    line = (f"{c['a']} vs {c['b']} on the same {o['n']} faces: accuracy {100 * o['accuracy_a']:.1f}% vs "
            f"{100 * o['accuracy_b']:.1f}% ({100 * o['difference']:+.1f} points; {o['only_a']} face(s) right only by the "
            f"first, {o['only_b']} only by the second; McNemar {pval(o['p'])}: {verdict}).")
    by = c["by"].get(grouping) if grouping else None
    if by:
        sig = [(g, v) for g, v in by.items() if v["p_holm"] is not None and v["p_holm"] < ALPHA]
        weighed = holm_family_size(by.values())  # an empty family: no group was weighed "after Holm"
        line += (f" By {grouping}, after Holm: " + "; ".join(
            f"{g} {100 * v['difference']:+.1f} points ({pval(v['p_holm'])})" for g, v in sig) + "." if sig
            else f" No {grouping} group differs detectably{' after Holm' if weighed else ''}.")
        left_out = [v for v in by.values() if measured(v.get("p")) and not in_holm_family(v)]
        # no face right by only one of the two: no difference to find, not too few faces to find one
        same = sum(v.get("only_a") == 0 == v.get("only_b") for v in left_out)
        if same:
            line += (f" The two classifiers got the same faces right in {same} of the {len(by)} {grouping} "
                     f"group{'s' if len(by) != 1 else ''}.")
        out = len(left_out) - same
        if out:  # the groups Holm did not weigh: their "no difference" is no test's finding
            line += (f" {out} of the {len(by)} {grouping} groups had too few faces right by only one of the two (5 or "
                     f"fewer) for the exact test to reach significance, and {'is' if out == 1 else 'are'} left out of "
                     "Holm's family.")
    return line


def detection_line(d: dict, grouping: str) -> str:
    """Whose faces the detector found, by ``grouping`` (or overall only where it has no such grouping)."""
    line = (f"The detector ({d['detector']}) found a face in {d['n_found']} of {d['n_images']} readable image(s) "
            f"({ci(d['overall'], pct=True)}).")
    by, gap, test = d["by"].get(grouping), d["gaps"].get(grouping), d["tests"].get(grouping)
    if not by or not gap:
        return line
    if gap["difference"] == 0:  # "lowest for (no group) … highest for B …; gap 0.0" named two of equals
        line += f" By {grouping}: every group alike ({pct(by[gap['worst']]['share']['value'])} in each)"
    else:  # groups tied with the one named are named too, as in the accuracy sentences
        line += (f" By {grouping}: lowest for {extreme_group(by, 'share', gap['worst'], small=True)}, highest for "
                 f"{extreme_group(by, 'share', gap['best'])}; gap {100 * gap['difference']:.1f} points")
    if test["p"] is not None and test["method"] != "none":
        line += (f"; the share found {'differs' if test['p'] < ALPHA else 'does not differ detectably'} between groups "
                 f"(χ² {pval(test['p'])}, {test['method']}; Cramér's V {num(test['cramers_v'], '.2f')})")
    if gap["difference"] > 0:
        line += ". Faces it missed are in no per-face figure below"
    return line + "."


def accuracy_test_words(t: dict) -> str:
    """A classifier's test of equal accuracy across a grouping's groups, beside its accuracy gap: with more than two
    groups the gap is the largest of many differences, picked after looking, and it is never 0 even where the groups
    are equally accurate."""
    if t["p"] is None:
        return t.get("note", "not testable")
    words = (f"{pval(t['p'])}: χ² {t['statistic']:.2f}, dof {t['dof']} ({t['method']}); "
             f"Cramér's V {num(t['cramers_v'], '.3f')}")
    return words + (f"; {t['note']}" if t.get("note") else "")


def accuracy_differs_words(test: dict | None) -> str:
    """The summary's sentence on whether a classifier's accuracy differs between a grouping's groups at all, after
    the gap between its extreme groups: that gap is never 0, and where the test shows no difference the reader is
    told that chance alone makes one; with more than two groups, also that it is the largest of many differences,
    picked after looking (two groups have one difference). '' where the report has no test (made before schema 13)
    or nothing could be tested."""
    if not test or test.get("p") is None or test.get("method") == "none":
        return ""
    stat = f"χ² {pval(test['p'])}, {test['method']}; Cramér's V {num(test['cramers_v'], '.2f')}"
    if test["p"] < ALPHA:
        return f" Accuracy differs between these groups ({stat})."
    if len(test.get("groups") or ()) == 2:
        return f" Accuracy does not differ detectably between these groups ({stat}): chance alone makes a gap."
    return (f" Accuracy does not differ detectably between these groups ({stat}): the gap is the largest of many "
            "differences, picked after looking, and chance alone makes one.")


def _toward(e: dict) -> str:
    """Where the filtered share lies against the input's, relative to the target (a tie read "further")."""
    if e["output"]["value"] == e["input"]["value"]:
        return "unchanged, as far from the target as the input"
    return f"{'closer to' if e['moved_toward_target'] else 'further from'} the target than the input"


QUOTED_CHARS = 40  # of a card's value quoted in a line: a card may hold a value of any length where a share belongs


def _quoted(value) -> str:
    text = repr(value)
    return text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS - 1] + "…"


def no_target_share_line(target: dict | None) -> str:
    """Why no share of women from the card is compared with the classifiers' (``composition.target_female_share``
    null): a card with a target whose share could not be read ("a third") had been said to have no target, while
    report.json held it and said "target from the filter's card"."""
    if not target:
        return "Composition: no target in the card."
    gender = target.get("gender")
    female = gender.get("female") if isinstance(gender, dict) else None
    if female is not None:
        what = f"the card's target share of women, {_quoted(female)}, is unreadable (not a number from 0 to 1)"
    elif gender is not None and not isinstance(gender, dict):
        what = f"the card's target gender mix, {_quoted(gender)}, is unreadable (not an object of shares)"
    else:
        what = "the card's target gives no share of women"
    return f"Composition: {what}, so no share predicted female is compared with it."


def predicted_female_line(name: str, e: dict, target_share, n_faces: int) -> str:
    """One classifier's share predicted female on inputs and on filtered outputs, against the card's target where
    both are known. With no finite P(female) on any face, where the share lies against the target is not known: a
    classifier giving NaN had been said not to cross the target, "unchanged, as far from the target as the input"."""
    if not (e["input"].get("n") and measured(e["input"]["value"]) and measured(e["output"]["value"])):
        line = (f"{name}: share predicted female not measured: none of the {n_faces} face(s) got a finite P(female) "
                f"from {name} both before and after the filter")
        if target_share is not None:
            line += f", so where it lies against the card's target ({100 * target_share:.1f}% female) is not known"
        return line + "."
    line = f"{name}: share predicted female {ci(e['input'], pct=True)} on inputs vs {ci(e['output'], pct=True)} on filtered outputs"
    if target_share is not None and e["crossed_target"] is not None:
        line += (f"; the card's target is {100 * target_share:.1f}% female, and the output "
                 f"{'crosses' if e['crossed_target'] else 'does not cross'} it ({_toward(e)})")
    return line + "."


def _and(names: list[str]) -> str:
    """'a, b and c'; past four, the first three and how many more."""
    if len(names) > 4:
        names = [*names[:3], f"{len(names) - 3} more"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def named_with_ties(by: dict, metric: str, chosen: str) -> str:
    """The group a gap names, with the groups tied with it: of equals the first alphabetically was named alone,
    as if it were the one highest or lowest."""
    ties, n_shown = tied_groups(by, metric, chosen)
    if len(ties) == 1:
        return chosen
    if len(ties) == n_shown:
        return "every group alike"
    return _and(ties) + " (tied)"


def pct(v) -> str:
    return f"{100 * v:.1f}%"


def extreme_group(by: dict, metric: str, chosen: str, small: bool = False) -> str:
    """The group a gap names with its own CI and n, or the groups tied with it, each with its own n, and the value
    they share: the chosen group's CI and n had been printed for all of them ("… and male/Black (tied) (100.0%
    [95% CI 83.9%, 100.0%], n=20)" where the three had n 20, 12 and 27)."""
    def n_of(g: str) -> str:
        return f"n={by[g][metric]['n']}" + (", small group" if small and by[g]["small"] else "")

    ties, _ = tied_groups(by, metric, chosen)
    if len(ties) == 1:
        return f"{chosen} ({ci(by[chosen][metric], pct=True)}, {n_of(chosen)})"
    return _and([f"{g} ({n_of(g)})" for g in ties]) + f", tied at {pct(by[chosen][metric]['value'])}"


def highest_error_words(by: dict, metric: str, chosen: str) -> str:
    """The group with the highest error rate (``metric`` 'fpr' or 'fnr') as the lowest accuracy is named beside it
    (``extreme_group``: its CI, n and the small-group flag), or "every group alike" where all share it. A bare
    "male/Others (100.0%)" had stood beside "(0.0% [95% CI 0.0%, 94.9%], n=1, small group)" for the same one face."""
    if named_with_ties(by, metric, chosen) == "every group alike":
        return f"every group alike ({pct(by[chosen][metric]['value'])})"
    return extreme_group(by, metric, chosen, small=True)


def map_description(classifier: dict) -> str:
    """'Grad-CAM, 3×3 map' from a classifier's entry in report.json's models (empty for reports without it)."""
    cam = classifier.get("cam") or {}
    if not cam.get("grid"):
        return ""
    h, w = cam["grid"]
    return f"{'Grad-CAM' if 'Grad-CAM' in cam.get('formula', '') else 'CAM'}, {h}×{w} map"


SKIN_TONE_GROUPS_CAVEAT = (
    "Skin-tone groups are the ITA category measured on each original face, not labels: a face measured at an extreme "
    "tone can move back toward the middle under any filter that blurs or adds noise, and the \"dark\" group also "
    "holds dimly lit or reddish faces of little yellow (low b*), whose ITA (atan((L* − 50)/b*)) swings with a small "
    "change of b*; read a gap between the extreme groups with that in mind, and a group's ΔITA beside its ΔL*, which "
    "says whether lightness moved.")


def _has_interval(m: dict | None) -> bool:
    return bool(m) and measured(m.get("lo")) and measured(m.get("hi"))


def _yellowness_carried(cell: dict, direction: int) -> bool:
    """Whether Δb* moved ITA the way it went (``direction``), more than the rest did: the part of each face's ΔITA its
    Δb* alone makes (``delta_ita_from_b``), its 95% CI clear of 0 on that side and outweighing the rest of ΔITA.
    Compared as Δb* against ΔL* (a size and no sign), the default filter's female/Black group (Δb* -2.49, ΔL* -0.35,
    ΔITA -0.35) had been said "lower ITA, less yellow", though less yellow raises ITA where L* > 50 (theirs: 56) and
    its ITA fell with L*. False for a report older than the field."""
    from_b, delta_ita = ((cell.get("delta_ita_from_b") or {}).get("mean"),
                         (cell.get("delta_ita") or {}).get("mean") or {})
    if not _has_interval(from_b) or not measured(delta_ita.get("value")):
        return False
    rest = delta_ita["value"] - from_b["value"]
    return _clear_of_zero(from_b, ITA_DIGITS) == direction and abs(from_b["value"]) > abs(rest)


def printed_direction(v, digits: int = ITA_DIGITS) -> int:
    """+1, -1 or 0: the way a mean moved as printed to ``digits`` (0 where it prints as 0 or was not measured)."""
    shown = as_printed(v, digits)
    return (shown > 0) - (shown < 0) if measured(shown) else 0


def lightness_bears_out(direction: int, delta_l: dict | None, delta_ita, from_b: dict | None) -> bool:
    """Whether a group's ΔITA moving in ``direction`` (+1 up, -1 down) is lighter or darker skin: the one rule by
    which the summary and the ship gate (``gate.lightness_words``) say so, that they may not disagree. ITA =
    atan((L* − 50)/b*) also moves as b* does (a yellow tint lowers a light face's ITA while L* rises), so lightness
    moved ITA only where ΔL*'s mean's 95% CI (``delta_l``) lies clear of 0, as printed, on ΔITA's side, and L* made
    more of the mean ΔITA (``delta_ita``) than b* did (``_lightness_made``, ``from_b``: ``delta_ita_from_b``'s mean)
    or moved visibly (``skin.JUST_NOTICEABLE_L``): the rule one face's word follows (``skin.shift_word``). A contrast
    filter's male/Indian group (ΔITA -1.40, Holm p < 0.001; ΔL* +0.26 [-1.21, 1.45]) had been called "darker".
    False where ΔL* has no CI: a group of one or two faces shows nothing, and a yellow tint's female/Asian face
    (ΔITA -16.86°, ΔL* +1.04, Δb* +16) had been "darker" by ΔITA's sign alone."""
    if not direction or lightness_direction(delta_l) != direction:
        return False
    # ΔL* as printed beside the words: a raw +0.996 printed "+1.00" had been "rose by under 1 unit"
    return _lightness_made(delta_ita, from_b) or abs(as_printed(delta_l["value"], ITA_DIGITS)) >= JUST_NOTICEABLE_L


def _lightness_made(delta_ita, from_b: dict | None) -> bool:
    """Whether L* made more of a mean ΔITA than b* did: the rest of it beside the part Δb* alone makes (``from_b``,
    ``delta_ita_from_b``'s mean). A yellow tint's male/Black group (ΔITA +2.61, of it +1.78 by Δb*; ΔL* +0.49) had
    been "lighter". True for a report older than the field."""
    b_part = (from_b or {}).get("value")
    if not (measured(b_part) and measured(delta_ita)):
        return True
    return abs(delta_ita - b_part) > abs(b_part)


def ita_is_not_lightness(cell: dict, direction: int) -> bool:
    """Whether a cell's ΔITA moving in ``direction`` would be misread as lighter or darker skin: L* does not bear it
    out (``lightness_bears_out``). False where no ΔL* was measured (a report older than the field): the usual wording
    stands."""
    delta_l = (cell.get("delta_l") or {}).get("mean")
    if not direction or not (delta_l and measured(delta_l.get("value"))):
        return False
    return not lightness_bears_out(direction, delta_l, ((cell.get("delta_ita") or {}).get("mean") or {}).get("value"),
                                   (cell.get("delta_ita_from_b") or {}).get("mean"))


def lightness_moved_words(delta_l: dict | None, not_shown: str = "L* was not shown to move",
                          too_few: str = "too few faces to tell whether L* moved") -> str:
    """'L* rose' or 'L* fell' where ΔL*'s mean's 95% CI lies clear of 0 as printed; else ``not_shown``, or, with no
    CI (fewer than 3 faces), ``too_few``: a group of one or two faces shows no move either way."""
    moved = {1: "L* rose", -1: "L* fell"}.get(lightness_direction(delta_l))
    return moved or (not_shown if _has_interval(delta_l) else too_few)


def lightness_direction(delta_l: dict | None) -> int:
    """+1 or -1 where ΔL*'s mean's 95% CI lies above or below 0 as printed, else 0."""
    return _clear_of_zero(delta_l, ITA_DIGITS)


def skin_moved(cell: dict) -> bool:
    """Whether ΔL* or Δb* is shown to have moved (its mean's 95% CI clear of 0 as printed)."""
    return any(_clear_of_zero((cell.get(k) or {}).get("mean"), ITA_DIGITS) for k in ("delta_l", "delta_b"))


def what_moved_words(cell: dict, direction: int = 0) -> str:
    """ΔL* and Δb*, where ΔITA does not say lightness moved (``ita_is_not_lightness``) or shows no move of its own
    (``direction`` 0): 'yellower: Δb* 10.12 [95% CI 9.79, 10.48], while L* rose: ΔL* 0.59 [95% CI 0.54, 0.63]'.
    Where Δb* did not move ITA the way it went (``_yellowness_carried``), ΔL* first and Δb* with no word: 'L* was not
    shown to move: ΔL* 0.26 [95% CI -1.21, 1.45], Δb* 5.41 […]', so that "lower ITA, less yellow" does not read as
    cause and effect where less yellow raised ITA."""
    delta_l, delta_b = (cell.get("delta_l") or {}).get("mean"), (cell.get("delta_b") or {}).get("mean")
    lightness = f"{lightness_moved_words(delta_l)}: ΔL* {ci(delta_l)}"
    if not (delta_b and measured(delta_b.get("value"))):
        return lightness
    if direction and not _yellowness_carried(cell, direction):
        return f"{lightness}, Δb* {ci(delta_b)}"
    yellowness = {1: "yellower: ", -1: "less yellow: "}.get(_clear_of_zero(delta_b, ITA_DIGITS), "")
    return f"{yellowness}Δb* {ci(delta_b)}, while {lightness}"


def made_unmeasurable_line(fl: dict) -> str:
    """The faces the filter made unmeasurable (skin measurable before, not after), overall and where per group."""
    o = fl["overall"]
    line = (f"{o['n_made_unmeasurable']} of the {o['n_measurable_before']} face(s) whose skin was measurable before the "
            f"filter were made unmeasurable by the filter ({ci(o['share_made_unmeasurable'], pct=True)}; e.g. "
            "skin crushed to black or to a grey of no yellow): they have no ΔITA and are in no skin-shift figure")
    for grouping, by in fl["by"].items():
        hit = [f"{g} {s['n_made_unmeasurable']} of {s['n_measurable_before']}" for g, s in by.items()
               if s.get("n_made_unmeasurable")]
        if hit:
            line += f"; by {grouping}: " + ", ".join(hit)
    return line + "."


def moved_faces_line(o: dict) -> str:
    """The faces read as moved by the filter, said where there are any (a filter that moves faces reads as changing
    their skin unless its move is undone, as it was). Said as read: the move undone is in whole pixels, not the move
    itself, and counts faces whose skin was not measured too."""
    return (f"The audit read {o['n_moved']} of the {o['share_moved']['n']} face(s) as moved by the filter "
            f"({ci(o['share_moved'], pct=True)}): a whole-pixel move, undone before their skin was measured, so that "
            "the same skin is compared before and after.")


def tested_ita_direction(o: dict) -> int:
    """``tested_direction`` of a cell's ΔITA, 0 where its mean and median both print as 0.00."""
    w, mean, median = o["delta_ita"]["wilcoxon"], o["delta_ita"]["mean"]["value"], o["delta_ita"]["median"]
    return 0 if _printed_as_zero(mean, median, ITA_DIGITS) else tested_direction(w["p"], mean, w["rank_biserial"])


def skin_effect_words(o: dict, where: str) -> str:
    """The overall skin-shift sentence's verdict: 'The filter made skin darker overall', or, where the ΔITA the test
    shows is not a lightness change (a yellow tint lowers ITA as L* rises), 'The filter lowered skin's ITA overall
    (yellower: Δb* …, while L* rose: ΔL* …)' rather than "darker" beside a ΔL* shown to rise. Where the test shows no
    ΔITA while ΔL* or Δb* moved, 'The filter did not detectably change skin's ITA overall (less yellow: Δb* …, while
    L* fell: ΔL* …)': a blue tint (ΔL* -3.29, Δb* -10.48, both shown) had "not detectably changed skin tone"."""
    w, mean = o["delta_ita"]["wilcoxon"], o["delta_ita"]["mean"]["value"]
    direction = tested_ita_direction(o)
    not_lightness = ita_is_not_lightness(o, direction)
    moved_not_ita = not direction and skin_moved(o)
    up, down = (("The filter raised skin's ITA", "The filter lowered skin's ITA") if not_lightness
                else ("The filter made skin lighter", "The filter made skin darker"))
    what = "skin's ITA" if moved_not_ita else "skin tone"
    if too_few(least_p(w)):  # p ≥ α, so no direction: ``not_lightness`` is False
        return (f"Too few faces for the Wilcoxon test to tell whether the filter changed {what} {where}"
                + (f" ({what_moved_words(o)})" if moved_not_ita else "")
                + too_few_beside(w, o["delta_ita"]["mean"], o["delta_ita"]["median"], ITA_DIGITS, "ITA",
                                 RESIZING_MOVES["ita"]))
    none = "The filter did not detectably change " + what
    verdict = _effect(w["p"], mean, up, down, none, w["rank_biserial"], o["delta_ita"]["mean"],
                      o["delta_ita"]["median"], ITA_DIGITS, RESIZING_MOVES["ita"])
    return f"{verdict} {where}" + (f" ({what_moved_words(o, direction)})" if not_lightness or moved_not_ita else "")


def group_direction_words(s: dict, v) -> str:
    """A group's ΔITA direction by its mean as printed, 'lighter' or 'darker', or 'lower ITA, yellower: Δb* …, while
    L* rose: ΔL* …' where the group's ΔL* does not bear that out (``ita_is_not_lightness``); 'unchanged', with what
    moved where ΔL* or Δb* did."""
    shown, direction = as_printed(v, ITA_DIGITS), printed_direction(v)
    if ita_is_not_lightness(s, direction):
        return f"{'higher' if direction > 0 else 'lower'} ITA, {what_moved_words(s, direction)}"
    if direction == 0 and skin_moved(s):
        return f"unchanged ITA, {what_moved_words(s)}"
    return _direction(shown, "lighter", "darker")


def group_test_words(shift: dict, n_tested: int, least_holm=None) -> str:
    """What a group's ΔITA significance (Holm) needs beside the mean's 95% CI printed with it, where the two say
    different things: the female/White group's "3.13 [95% CI 0.40, 5.85]° (lighter, Holm p = 0.225, not
    significant)" had left the reader to guess why. A CI clear of 0 beside no significance is Holm's adjustment over
    the ``n_tested`` groups where the test alone was significant, else as the median's CI says
    (``_not_shown_beside_the_mean``); a significance beside a CI that includes 0 is the typical face's (median's)
    move, said with the median. '' where they agree. ``shift``: a group's ``delta_ita``. No "; ", which parts the
    groups of the line. Where its faces are too few to reach significance (``least_holm``, its ``least_holm_p``), what
    they show instead (``too_few_beside``)."""
    w, mean, median = shift["wilcoxon"], shift["mean"], shift.get("median")
    p_holm, by_mean = holm_or_own_p(w), _clear_of_zero(mean, ITA_DIGITS)  # own p: left out of Holm's family
    if too_few(least_holm):
        return too_few_beside(w, mean, median, ITA_DIGITS, "ITA", RESIZING_MOVES["ita"],
                              f", median {median_ci(median, ITA_DIGITS)}°")
    if not (measured(p_holm) and _has_interval(mean)):
        return ""
    far = " far" if _moved_far(mean, RESIZING_MOVES["ita"]) else ""
    if p_holm >= ALPHA:
        if not by_mean:
            return ""
        if measured(w.get("p")) and w["p"] < ALPHA:
            return (f" (the mean's 95% CI lies {CI_SIDE[by_mean]} 0 but is not adjusted for the {n_tested} groups, "
                    "as Holm is)")
        return _not_shown_beside_the_mean(by_mean, median, n_tested, far, w.get("p"))
    sign = tested_direction(p_holm, mean["value"], w.get("rank_biserial"))
    if by_mean == sign:
        return ""
    typical = f"median {median_ci(median, ITA_DIGITS)}°"
    if _printed_as_zero(mean["value"], median, ITA_DIGITS):
        return f" (by a move too small to print: {typical})"
    moved = f" (the typical face's ITA {'rose' if sign > 0 else 'fell'}: {typical}, "
    if by_mean == -sign:
        return moved + f"while the mean's 95% CI lies {CI_SIDE[by_mean]} 0: a minority of faces moved{far} the other way)"
    if _median_side(median, ITA_DIGITS) == sign:
        return moved + "though the mean's 95% CI includes 0)"
    return moved + "though neither its 95% CI nor the mean's clears 0: borderline)"


def _not_shown_beside_the_mean(by_mean: int, median: dict | None, n_tested: int, far: str, own_p=None) -> str:
    """``group_test_words`` where a group's test shows no ΔITA, even before Holm, beside a mean's 95% CI clear of 0
    (``by_mean``), by where the median's CI lies. Clear of 0 on the same side, the typical face is not said to have
    stayed put: female/Asian, mean 2.08 [95% CI 0.04, 4.11]°, median 1.82 [95% CI 0.15, 3.01]°, Holm p = 0.539,
    had read "a minority of faces moved far, not the typical face". Holm's adjustment is blamed only where it made the
    difference, the group's own p (``own_p``) below ALPHA in a family of more than one: a group alone in its family
    had read "the test, adjusted by Holm over the 1 groups, does not reach significance" beside its own p 0.233."""
    by_median, typical = _median_side(median, ITA_DIGITS), f"median {median_ci(median, ITA_DIGITS)}°"
    if by_median == by_mean:
        holm_did_it = n_tested > 1 and measured(own_p) and own_p < ALPHA
        why = f"the test, adjusted by Holm over the {n_tested} groups," if holm_did_it else "the Wilcoxon test"
        return (f" (though the mean's and the median's 95% CIs lie {CI_SIDE[by_mean]} 0, {typical}: {why} does not "
                "reach significance)")
    if by_median == -by_mean:
        return (f" (though the mean's 95% CI lies {CI_SIDE[by_mean]} 0, the median's lies {CI_SIDE[by_median]} it, "
                f"{typical}: the typical face's ITA {'rose' if by_median > 0 else 'fell'}, a minority of faces{far} "
                "moved the other way)")
    if not _has_interval(median):  # no median interval says where the typical face lies
        return f" (though the mean's 95% CI lies {CI_SIDE[by_mean]} 0)"
    return f" (though the mean's 95% CI lies {CI_SIDE[by_mean]} 0: a minority of faces moved{far}, not the typical face)"


def not_measurable_line(o: dict, n: int) -> str:
    """The faces not measured for a reason other than the filter: never measurable, or measurable only after it."""
    never, gained = o.get("n_never_measurable", n), o.get("n_made_measurable", 0)
    parts = [f"{never} face(s) had skin measurable neither before nor after the filter (a grey or colour-cast photo, "
             "too little skin)"] if never else []
    if gained:
        parts.append(f"{gained} face(s) had skin measurable only after it")
    return "; ".join(parts) + "; they are counted per group and left out of the skin statistics."


def _unmeasured_words(s: dict) -> str:
    """A group's faces left out of its ΔITA, the filter's doing apart from the rest."""
    lost = s.get("n_made_unmeasurable", 0)
    words = f", made unmeasurable by the filter: {lost} of {s['n_measurable_before']}" if lost else ""
    if s["n_not_measurable"] - lost:
        words += f", {'otherwise ' if lost else ''}not measurable: {s['n_not_measurable'] - lost}"
    return words


def mean_and_median(d: dict) -> str:
    """A ΔP(female)'s mean, and its median, with their 95% CIs ("-0.010 [95% CI …], median …"): its words
    follow the Wilcoxon test, the typical face's move, which the median shows where the mean's interval does not (a
    skewed tail). The mean alone where the report has no median."""
    return ci(d["mean"], P_DIGITS) + (f", median {median_ci(d['median'], P_DIGITS)}" if d.get("median") else "")


def p_female_effect_words(d: dict) -> str:
    """The overall ΔP(female) sentence's verdict (``_effect``), or, where its faces are too few for the Wilcoxon test
    to reach significance, that, with what they show (``too_few_beside``)."""
    w = d["wilcoxon"]
    if too_few(least_p(w)):
        return ("too few faces for the Wilcoxon test to tell whether the filter changed P(female)"
                + too_few_beside(w, d["mean"], d.get("median"), P_DIGITS, "P(female)", RESIZING_MOVES["p_female"]))
    return _effect(w["p"], d["mean"]["value"], "the filter made faces look more female",
                   "the filter made faces look more male", "the filter did not detectably change P(female)",
                   w.get("rank_biserial"), d["mean"], d.get("median"), P_DIGITS, RESIZING_MOVES["p_female"])


def holm_p_female_words(group: str, d: dict) -> str:
    """A group whose ΔP(female) is significant after Holm: which way it moved, by the same words as the overall
    sentence (``_effect``), with its mean, median and Holm p. Its mean alone had been printed, "female/White
    (-0.028 [95% CI -0.058, 0.002])", no direction said and the interval across 0."""
    w = d["wilcoxon"]
    words = _effect(w["p_holm"], d["mean"]["value"], "more female", "more male", "by a move too small to print",
                    w.get("rank_biserial"), d["mean"], d.get("median"), P_DIGITS, RESIZING_MOVES["p_female"])
    return f"{group}, {words}: mean {mean_and_median(d)}, Holm {pval(w['p_holm'])}"


def is_detail(line: str) -> bool:
    """Per-group lines the terminal leaves to the report (docs/audit_schema.md, ``summary``, says which)."""
    return line.startswith("ΔITA by ") or "significant after Holm in" in line or line.startswith("Caveats:")


def nothing_measured_line(im: dict) -> str:
    """Why an audit of no face measured nothing, from report.json's images: every image unreadable (listed under
    "unreadable"), none left to audit, or no face found in those read (listed under "no_face"). It had pointed at
    the list of images without a face whatever the reason, which was empty where none could be read."""
    n, unreadable, no_face = im["n_images"], im.get("unreadable") or [], im.get("no_face") or []
    if n and len(unreadable) == n:
        return (f"None of the {n} image(s) could be read (corrupt, truncated or another format), so there is nothing "
                "to measure; see the list of unreadable images in the report.")
    if not n:
        skipped = im.get("reader_skipped") or []
        return ("No image was left to audit" + (f" ({len(skipped)} skipped when the dataset was read, listed in the "
                                                "report)" if skipped else "") + ", so there is nothing to measure.")
    return (f"No faces were found in any of the {len(no_face)} readable image(s)"
            + (f", and {len(unreadable)} could not be read" if unreadable else "")
            + ", so there is nothing to measure; see the list of images without a face"
            + (" and the list of unreadable images" if unreadable else "") + " in the report.")


def unreadable_reason(error: str | None) -> str:
    """An unreadable image's error in report.json, as the summary says it in brackets: the reader's own reason
    ("permission denied"), and the decoder's failure as what it may be. All had been called corrupt."""
    if not error or error == NOT_AN_IMAGE:
        return "corrupt, truncated or another format"
    for prefix in (NOT_AN_IMAGE + " (", CANNOT_BE_READ + " ("):  # "cannot be read (no such file…)": its words in brackets
        if error.startswith(prefix) and error.endswith(")"):
            return error[len(prefix):-1]
    return error


def unreadable_lines(unreadable: list[dict]) -> list[str]:
    """A line for each reason the images that could not be read were refused for, naming the first few of each."""
    by_reason: dict[str, list[str]] = {}
    for u in unreadable:
        by_reason.setdefault(unreadable_reason(u.get("error")), []).append(u["file"])
    return [f"{len(names)} image(s) could not be read ({reason}): {', '.join(names[:5])}"
            + (f" and {len(names) - 5} more (listed in the report)." if len(names) > 5 else ".")
            for reason, names in by_reason.items()]


def photos_not_read_words(photos: list[dict]) -> str:
    """report.json's ``photos_not_read`` in words: how many, of which types, the first few named."""
    types = ", ".join(dict.fromkeys(p["type"] for p in photos))
    return (f"{len(photos)} photo(s) of a type that cannot be read here ({types}), e.g. "
            + ", ".join(p["file"] for p in photos[:3]))


def faces_not_analysed_words(images: list[dict], max_faces: int | None) -> str:
    """report.json's ``faces_not_analysed`` in words: how many images and faces, the first few images named."""
    left = sum(i["n_found"] - i["n_analysed"] for i in images)
    return (f"{len(images)} image(s) had more faces than are analysed (the {max_faces} largest of each): {left} face(s) "
            "were not analysed and are in no figure, e.g. "
            + ", ".join(f"{i['file']} ({i['n_found']} found)" for i in images[:3]))


# An audit's unit is the photo, one a file, which a label or group names: the frames of an animation are not photos of
# that person each, so the audit reads a file's first frame alone and says where every frame is analysed
def first_frame_only_advice() -> str:
    return ("an audit measures photos, one a file, and a label names the file's photo, not each frame: "
            f"`{program()} run --source FILE` analyses every frame of one")


def first_frame_only_words(files: list[dict]) -> str:
    """report.json's ``first_frame_only`` in words: how many files, the first few named with their frames."""
    return (f"{len(files)} image(s) hold several frames (an animation or a multi-page file), of which only the first "
            "was audited: " + ", ".join(f"{f['file']} ({f['frames']} frames)" for f in files[:3])
            + (f" and {len(files) - 3} more" if len(files) > 3 else ""))


def reversed_labels_line(name: str, accuracy: dict, file: str | None) -> str:
    """A classifier whose card's labels look reversed (``classifier_audit.labels_look_reversed``), with the accuracy
    that says so. Its 0 % had stood alone, and its confident wrong calls had been blamed on the dataset's labels."""
    return (f"{name} ({file or 'its file'}): {reversed_labels_why(accuracy)}; its P(female), ΔP(female), CAM focus "
            "and share predicted female read the other way round, and the label check leaves it out.")


def reversed_labels_why(accuracy: dict) -> str:
    """Why a classifier's labels look reversed, in the words of the summary, the gate and the audit's error."""
    return (f"its card's label order is probably the reverse of its outputs (accuracy {ci(accuracy, pct=True)} on "
            f"{accuracy['n']} labelled faces: below chance)")


def label_judges_words(lab: dict, why: bool = True) -> str:
    """Whose confident calls the label check counted: "every classifier", less those it left out (their labels look
    reversed), named, and with ``why``, why."""
    left_out = lab.get("left_out") or []
    return ("every classifier" if not left_out else f"every classifier but {', '.join(left_out)}"
            + (" (whose label order looks reversed)" if why else ""))


def labels_checked_words(lab: dict) -> str:
    """The faces the label check looked at: every labelled face, or those every classifier gave a P(female)."""
    n, checked = lab["n_labelled"], lab.get("n_checked", lab["n_labelled"])
    return (f"{n} labelled faces" if checked == n else
            f"{checked} labelled faces {label_judges_words(lab, why=False)} gave a finite P(female) (of {n}; the rest "
            "are not checked)")


def accuracy_without_words(groups: list[tuple[str, dict, dict | None]], name: str) -> str:
    """The lowest groups' accuracy with the contradicted labels and without them, each of ``groups`` (group, before,
    after) given, the ones after the first marked tied (``after`` None: every face of the group was among them).
    Such a group had been left out of the sentence, which then ended "… accuracy goes ."; of groups tied for the
    lowest, the first by name had been given alone, hiding the one the contradicted faces change."""
    def words(i: int, group: str, before: dict, after: dict | None) -> str:
        without = "no face left to measure" if after is None else f"{100 * after['value']:.1f}%"
        return f"{group}{' (tied)' if i else ''} {100 * before['value']:.1f}% → {without}"

    return ", ".join(words(i, *g) for i, g in enumerate(groups)) + f" ({name})"


def folders_not_read_words(folders: list[dict]) -> str:
    """report.json's ``folders_not_read`` in words: how many, the first few named with why."""
    more = f" and {len(folders) - 3} more" if len(folders) > 3 else ""
    return (f"{len(folders)} folder(s) could not be listed, so the images in them were not audited: "
            + ", ".join(f"{f['folder']} ({f['why']})" for f in folders[:3]) + more)


def narrowed_by(audit: dict, n_images: int) -> list[str]:
    """The options that drew the audited images from fewer than the whole dataset read: --split, --min-age, and
    --limit where it bound (fewer images than the limit are every image the rest let through)."""
    chosen = [f"--split {audit['split']}" if audit.get("split") else "",
              f"--min-age {audit['min_age']}" if audit.get("min_age") is not None else "",
              f"--limit {audit['limit']}" if audit.get("limit") and n_images >= audit["limit"] else ""]
    return [c for c in chosen if c]


def stored_twice_line(im: dict, audit: dict) -> str:
    """The photographs the dataset stores more than once (report.json's ``copies_counted_once``, ``near_identical``
    and ``label_conflicts``). They are counted when the whole dataset is read, before --split, --min-age or --limit
    choose the images audited, and report.json does not say which audited image each touches: a 40-image audit had
    said "225 byte-identical copies were left out … 766 images … were kept" as if of its 40."""
    copies = im.get("copies_counted_once") or []
    near = im.get("near_identical") or []
    conflicts = im.get("label_conflicts") or []
    parts = []
    if copies:
        parts.append(f"{len(copies)} byte-identical " + ("copy was" if len(copies) == 1 else "copies were")
                     + " left out, so each image counts once")
    if near:
        parts.append(f"{sum(map(len, near))} images of {len(near)} photograph(s) saved again (re-encoded or "
                     "re-cropped) were kept, each photograph's in one split")
    if conflicts:
        parts.append(f"{sum(map(len, conflicts))} file(s) of {len(conflicts)} photograph(s) stored under other "
                     "labels were left out")
    narrowed = narrowed_by(audit, im["n_images"])
    where = (f"In the whole dataset, not only the {im['n_images']} image(s) audited ({', '.join(narrowed)}), some "
             "photographs are stored more than once: " if narrowed
             else "The dataset stores some photographs more than once: ")
    listed = ("all are listed in the report, which does not say which of them are among the audited images "
              "(faces.csv names those)" if narrowed else "all are listed in the report")
    return (where + "; ".join(parts) + ". Each photograph is in the earliest split any copy of it was in; "
            + listed + ".")


def summary_lines(r: dict) -> list[str]:
    lines = []
    a, im = r["audit"], r["images"]
    lines.append(f"Audited {im['n_faces']} face(s) found in {im['n_with_faces']} of {im['n_images']} image(s) "
                 f"from {a['dataset']} ({'labelled' if a['labelled'] else 'unlabelled'}"
                 f"{', split ' + a['split'] if a.get('split') else ''}).")
    if r.get("detection") and r["detection"]["n_images"]:
        lines.append(detection_line(r["detection"], r["groups"]["primary"] or "gender_race"))
    if im.get("folders_not_read"):  # "Audited …" counts the images of the others only; a warning at the start had
        lines.append(f"{folders_not_read_words(im['folders_not_read'])}.")  # been all that said so
    not_read = im.get("photos_not_read") or []
    if im.get("empty_folder"):
        lines.append("The folder holds no images" + (f", only {photos_not_read_words(not_read)}; convert them (e.g. to "
                                                     "JPEG) to audit them" if not_read else "")
                     + ", so there is nothing to measure.")
        return lines
    if not_read:
        lines.append(f"{photos_not_read_words(not_read)}, were not audited; convert them (e.g. to JPEG) to include "
                     "them.")
    if im.get("first_frame_only"):  # before a "no face found", which it may explain
        lines.append(f"{first_frame_only_words(im['first_frame_only'])}; {first_frame_only_advice()}.")
    if im["n_faces"] == 0:
        lines.append(nothing_measured_line(im))
        return lines
    if im["no_face"]:
        lines.append(f"{len(im['no_face'])} image(s) had no detectable face and are listed in the report.")
    if im.get("faces_not_analysed"):
        lines.append(f"{faces_not_analysed_words(im['faces_not_analysed'], a.get('max_faces'))}; they are listed in the "
                     "report, and --max-faces analyses more.")
    lines += unreadable_lines(im["unreadable"])
    if any(im.get(k) for k in ("copies_counted_once", "near_identical", "label_conflicts")):
        lines.append(stored_twice_line(im, a))
    small = {g: s for g, s in r["groups"]["small"].items() if s}
    for g, s in small.items():
        lines.append(f"Small groups in {g} (wide intervals): {', '.join(s)}.")
    if "skin_tone" in r["groups"]["groupings"]:
        lines.append(SKIN_TONE_GROUPS_CAVEAT)
    files = {c["name"]: c.get("file") for c in (r.get("models") or {}).get("classifiers") or []}
    for name, c in r["classifiers"].items():
        m = c["metrics"]
        if m:
            lines.append(f"{name}: overall accuracy {ci(m['overall']['accuracy'], pct=True)}.")
            if c.get("labels_look_reversed"):  # before its per-group lines, which it makes read backwards
                lines.append(reversed_labels_line(name, m["overall"]["accuracy"], files.get(name)))
            for grouping, gaps in m["gaps"].items():
                acc = gaps.get("accuracy") or {}
                if not acc or len(m["by"][grouping]) < 2:
                    continue
                by = m["by"][grouping]
                lines.append(
                    (f"{name} by {grouping}: every group alike in accuracy ({pct(by[acc['worst']]['accuracy']['value'])}"
                     " in each)." if acc["difference"] == 0 else
                     f"{name} by {grouping}: lowest accuracy for {extreme_group(by, 'accuracy', acc['worst'], small=True)}, "
                     f"highest for {extreme_group(by, 'accuracy', acc['best'])}; gap {100 * acc['difference']:.1f} points, "
                     f"ratio worst/best {num(acc['ratio_worst_best'], '.3f')}.")
                    + (f" Highest FPR (annotated male called female): {highest_error_words(by, 'fpr', gaps['fpr']['worst'])};"
                       f" highest FNR (annotated female called male): {highest_error_words(by, 'fnr', gaps['fnr']['worst'])}."
                       if "fpr" in gaps and "fnr" in gaps else "")
                    + (accuracy_differs_words(m.get("tests", {}).get(grouping, {}).get("accuracy"))
                       if acc["difference"] else ""))
        d = c["p_female"]["overall"]
        lines.append(f"{name}: mean P(female) {ci(d['mean'], P_DIGITS)}; {ci(d['share_above_0_5'], pct=True)} of faces called female "
                     f"(P > 0.5); {ci(d['share_confident'], pct=True)} confident calls (P > 0.9 or < 0.1).")
    for c in r.get("comparisons") or []:
        lines.append(comparison_line(c, "gender_race" if "gender_race" in c["by"] else r["groups"]["primary"]))
    lab = r.get("labels")
    if lab and not lab["share"]["n"]:
        lines.append(f"Labels not checked against the classifiers: none of the {lab['n_labelled']} labelled faces got a "
                     f"finite P(female) from {label_judges_words(lab)}.")
    elif lab:
        k = len(lab["faces"])
        line = (f"{k} of {labels_checked_words(lab)} ({ci(lab['share'], pct=True)}) are called the other gender by "
                f"{label_judges_words(lab)} with P ≥ {lab['threshold']}: check those labels (listed in the report)")
        worst = {}
        for name, c in r["classifiers"].items():
            m = c["metrics"]
            if name in (lab.get("left_out") or ()):  # it judged no face: what they cost it says nothing
                continue
            acc = (m or {}).get("gaps", {}).get("gender_race", {}).get("accuracy")
            if acc:
                by, without = m["by"]["gender_race"], lab["accuracy_without"][name]["by"]["gender_race"]
                worst[name] = [(g, by[g]["accuracy"], without.get(g))
                               for g in tied_groups(by, "accuracy", acc["worst"])[0]]
        if k and worst:
            line += "; without them, the lowest gender × race group's accuracy goes " + "; ".join(
                accuracy_without_words(groups, name) for name, groups in worst.items())
        lines.append(line + ".")
    maps = {c["name"]: map_description(c) for c in r["models"]["classifiers"]}
    for name, f in r["focus"].items():
        k = f.get("kruskal") or {}
        line = (f"{name}{' (' + maps[name] + ')' if maps.get(name) else ''}: on average "
                f"{ci(f['overall']['mean'], pct=True)} of the positive CAM mass lies on the face ellipse.")
        if k.get("p") is not None:
            sig = [p for p in f["pairwise"] if p["p_holm"] is not None and p["p_holm"] < ALPHA]
            line += (f" Focus {'differs' if k['p'] < ALPHA else 'does not differ detectably'} between {k['grouping']} groups "
                     f"(Kruskal–Wallis {pval(k['p'])}); {len(sig)} of {len(f['pairwise'])} pairwise differences are significant after Holm.")
        lines.append(line)
    grids = {tuple(c.get("cam", {}).get("grid", [])) for c in r["models"]["classifiers"] if r["focus"].get(c["name"])}
    if len(grids) > 1:
        lines.append("The classifiers' maps have different grids (" + "; ".join(f"{name}: {m}" for name, m in maps.items() if m)
                     + "): a coarser map spreads its mass over more of the crop, so compare focus between groups within "
                     "a classifier rather than between classifiers.")
    fl = r["filter"]
    conditions = (r["models"].get("filter") or {}).get("conditions") or []
    if fl and conditions:
        lines.append(f"The filter ran with its condition '{r['audit'].get('filter_condition')}' (of "
                     f"{', '.join(conditions)}; --condition chooses another).")
    if fl:
        o = fl["overall"]
        w = o["delta_ita"]["wilcoxon"]
        rb = "n/a" if w["rank_biserial"] is None else f"{w['rank_biserial']:+.2f}"
        lost = o.get("n_made_unmeasurable", 0)
        if not o["n_measurable"]:  # it had said "did not detectably change skin tone" of a shift measured on no face
            lines.append(f"The filter's skin-tone shift was not measured: none of the {o['n_faces']} face(s) had skin "
                         "that could be measured both before and after the filter.")
        else:
            # of the faces it left measurable alone: a filter that blacked out darker faces "did not detectably
            # change skin tone overall" of the faces it spared
            where = f"on the {o['n_measurable']} face(s) it left measurable" if lost else "overall"
            lines.append(
                f"{skin_effect_words(o, where)}: mean ΔITA {ci(o['delta_ita']['mean'])}°, "
                f"median {median_ci(o['delta_ita']['median'], ITA_DIGITS)}° (Wilcoxon {pval(w['p'])}, "
                f"{significance_words(w['p'], least_p(w), w, adjusted=False)}; rank-biserial {rb}); "
                f"{ci(o['share_lighter_1_monk'], pct=True)} of faces became at least one Monk tone lighter and "
                f"{ci(o['share_darker_1_monk'], pct=True)} at least one darker.")
        if lost:
            lines.append(made_unmeasurable_line(fl))
        if o.get("n_moved"):
            lines.append(moved_faces_line(o))
        other = o["n_not_measurable"] - lost
        if other and o["n_measurable"]:
            lines.append(not_measurable_line(o, other))
        for grouping, by in fl["by"].items():
            parts, tested = [], holm_family_size(s["delta_ita"]["wilcoxon"] for s in by.values())  # Holm's m
            for g, s in by.items():
                ww = s["delta_ita"]["wilcoxon"]
                v = s["delta_ita"]["mean"]["value"]
                least = least_holm_p(by, g, lambda cell: cell["delta_ita"]["wilcoxon"])
                parts.append(f"{g}: {ci(s['delta_ita']['mean'])}° ({group_direction_words(s, v)}, {holm_pval(ww)}, "
                             f"{significance_words(holm_or_own_p(ww), least, ww, adjusted=True)}"
                             f"{group_test_words(s['delta_ita'], tested, least)}{_unmeasured_words(s)})")
            lines.append(f"ΔITA by {grouping}: " + "; ".join(parts) + ".")
            k = fl["kruskal"][grouping]["delta_ita"]
            if k.get("p") is not None:
                lines.append(f"The skin shift {'differs' if k['p'] < ALPHA else 'does not differ detectably'} between {grouping} groups "
                             f"(Kruskal–Wallis {pval(k['p'])}).")
        for name, c in o["classifiers"].items():
            d = c["delta_p_female"]
            if not d["mean"]["n"]:  # "did not detectably change P(female)" had been said of a shift measured on no face
                lines.append(f"{name}: ΔP(female) not measured: none of the {o['n_faces']} face(s) got a finite P(female) "
                             f"from {name} both before and after the filter, so whether the filter changed it (or the "
                             "predicted gender) is not known.")
                continue
            test = d["wilcoxon"]
            lines.append(f"{name}: {p_female_effect_words(d)}: mean ΔP(female) {mean_and_median(d)} (Wilcoxon "
                         f"{pval(test['p'])}, {significance_words(test['p'], least_p(test), test, adjusted=False)}); "
                         f"the predicted gender flipped for {ci(c['flip_rate'], pct=True)} of faces.")
            for grouping, by in fl["by"].items():
                sig = [g for g, s in by.items() if measured(p := s["classifiers"][name]["delta_p_female"]["wilcoxon"].get("p_holm")) and p < ALPHA]
                if sig:
                    lines.append(f"{name}: ΔP(female) is significant after Holm in {grouping} groups: "
                                 + "; ".join(holm_p_female_words(g, by[g]["classifiers"][name]["delta_p_female"])
                                             for g in sig) + ".")
        comp = fl["composition"]
        if comp["target_female_share"] is None:
            lines.append(no_target_share_line(comp.get("target")))
        for name, e in comp["predicted_female"].items():
            lines.append(predicted_female_line(name, e, comp["target_female_share"], comp["n_faces"]))
    lines.append("Caveats: " + " ".join(r["caveats"]))
    return lines
