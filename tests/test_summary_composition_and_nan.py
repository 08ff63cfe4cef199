"""The audit summary's composition lines: what it says of a filter's target share of women it cannot read, and of a
classifier that gives no finite P(female), as a user reads them in the printed summary."""
from __future__ import annotations

import copy
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from inference.audit import summary
from inference.models import read_card
from tests.conftest import REPO, make_diverged_classifier, run_main
from tests.test_audit import write_utk
from training.export import write_card

SHIPPED_FILTER = REPO / "resources" / "models" / "engineer_filter.onnx"  # its card has a target mix


def _gender_of(training: dict) -> dict:
    return training["domain_b"]["marginals"]["gender"]


def filter_with_female_share(path: Path, female) -> Path:
    """A copy of the shipped filter whose card's target share of women reads ``female``, the rest as shipped."""
    shutil.copy(SHIPPED_FILTER, path)
    card = read_card(path)
    training = copy.deepcopy(card.training)
    _gender_of(training)["female"] = female
    write_card(path, replace(card, training=training))
    return path


def audit_summary(tmp_path: Path, classifier: Path | str, filt: Path, capsys) -> str:
    """The audit's printed output, as a user runs it."""
    data = write_utk(tmp_path / "utk")
    code, out, err = run_main(["audit", "--dataset", f"utkface:{data}", "--classifier", str(classifier),
                               "--filter", str(filt), "--limit", "16", "--no-html", "--no-progress",
                               "--threads", "1", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, out + err
    return out


def test_a_target_whose_share_of_women_is_unreadable_is_not_called_no_target(tmp_path, tiny_models, capsys):
    """A filter whose card's target share of women was "a third" had the summary say "Composition: no target in
    the card.", while report.json held the target and said "target from the filter's card"."""
    unread = "a third"
    filt = filter_with_female_share(tmp_path / "thirds.onnx", unread)
    out = audit_summary(tmp_path, tiny_models["classifier"], filt, capsys)
    assert "no target in the card" not in out, out
    [line] = [x for x in out.splitlines() if x.startswith("Composition:")]
    assert f"target share of women, {unread!r}, is unreadable (not a number from 0 to 1)" in line, line
    assert "cross" not in out, out  # nothing is compared with a target that was not read


@pytest.mark.parametrize("target, said", [
    (None, "no target in the card"),
    ({"gender": {"female": [0.3]}}, "target share of women, [0.3], is unreadable"),
    ({"gender": "balanced"}, "target gender mix, 'balanced', is unreadable (not an object of shares)"),
    ({"race": {"White": 1.0}}, "the card's target gives no share of women"),
    ({"gender": {"male": 1.0}}, "the card's target gives no share of women"),
])
def test_each_target_without_a_share_of_women_read_says_why(target, said):
    assert said in summary.no_target_share_line(target)


def test_a_long_unreadable_share_is_quoted_short():
    long_word = "x" * 1000
    line = summary.no_target_share_line({"gender": {"female": long_word}})
    assert "is unreadable" in line and long_word not in line


def test_a_classifier_giving_no_finite_p_female_says_the_share_was_not_measured(tmp_path, capsys):
    """A classifier giving NaN on every face had the summary say "share predicted female n/a on inputs vs n/a …;
    the card's target is 33.0% female, and the output does not cross it (unchanged …)": a place against the
    target for a share never measured."""
    diverged = make_diverged_classifier(tmp_path / "diverged.onnx")
    share = _gender_of(read_card(SHIPPED_FILTER).training)["female"]
    out = audit_summary(tmp_path, diverged, SHIPPED_FILTER, capsys)
    [line] = [x for x in out.splitlines() if ": share predicted female" in x]
    assert "share predicted female not measured: none of the " in line and "got a finite P(female)" in line, line
    assert f"where it lies against the card's target ({100 * share:.1f}% female) is not known" in line, line
    for claim in ("n/a on inputs", "cross", "unchanged", "closer", "further"):
        assert claim not in line, line


def test_a_share_measured_against_a_target_still_says_where_it_lies():
    measured_share = {"value": 0.5, "lo": 0.3, "hi": 0.7, "n": 10}
    e = {"input": measured_share, "output": measured_share, "crossed_target": False, "moved_toward_target": False}
    line = summary.predicted_female_line("m", e, 0.25, 10)
    assert "the card's target is 25.0% female, and the output does not cross it (unchanged" in line, line
