"""The audit's outputs read as a reviewer read them, with pandas: faces.csv joins report.json's groups, report.json
names its intervals' and tests' methods, and docs/audit_schema.md says truthfully what faces.csv's Monk shift and
skin columns are.

- faces.csv left report.json's groups `unknown/unknown`, `unknown`, `(no group)` and `not measurable` as empty cells
  and had no `gender_race`, `age_band` or `skin_tone` column: a groups CSV of groups `01`, `1`, `NA` and `10` read
  back from it as {1.0: 13, NaN: 11, 10.0: 6} where report.json said {01: 7, 1: 6, 10: 6, NA: 7, (no group): 4}.
- No interval object named its method anywhere in report.json, nor a Wilcoxon object whether its p was exact or the
  normal approximation (it switches above 500 differences), nor a Mann–Whitney pair of `focus.pairwise` its variant.
- The schema said positive "`d_mst`" is lighter under "Δ = filtered − original": the column is `delta_mst`, original −
  filtered; and faces.csv's `ita`, `L`, `mst` "before the filter", though with a filter they are the reference's.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_audit.py

from conftest import utk_images  # noqa: E402

from inference.audit import cli as audit_cli  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "docs" / "audit_schema.md"
GROUPS = ("01", "1", "NA", "10")  # what pandas' defaults read as 1.0, 1.0, NaN and 10.0
N_FACES = 14
N_UNLISTED = 2  # images the groups CSV leaves out: "(no group)"


def run_audit(*argv: str) -> tuple[dict, list[dict[str, str]]]:
    """report.json and faces.csv's rows (every cell the text written) of an audit of aligned faces."""
    parser = argparse.ArgumentParser()
    audit_cli.add_arguments(parser)
    args = parser.parse_args([*argv, "--aligned", "--no-html", "--no-progress", "--threads", "1"])
    assert audit_cli.main(args) in (0, 1)
    out = Path(args.out)
    with open(out / "faces.csv", newline="", encoding="utf-8") as fh:
        return json.loads((out / "report.json").read_text(encoding="utf-8")), list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def grouped(tmp_path_factory, tiny_models) -> dict:
    """A folder of real faces, one turned grey (no skin tone: `not measurable`), grouped by a CSV into groups pandas
    misreads, two images left out of it; audited through the tiny darkening filter, and without a filter."""
    root = tmp_path_factory.mktemp("joinable")
    folder = root / "faces"
    folder.mkdir()
    for p in utk_images(N_FACES):
        shutil.copy(p, folder / p.name)
    files = sorted(q.name for q in folder.iterdir())
    grey = cv2.cvtColor(cv2.imread(str(folder / files[0])), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(folder / files[0]), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    groups_csv = root / "groups.csv"
    groups_csv.write_text("file,group\n" + "".join(f"{f},{GROUPS[i % len(GROUPS)]}\n"
                                                   for i, f in enumerate(files[:-N_UNLISTED])))
    base = ("--dataset", f"folder:{folder}", "--groups", str(groups_csv), "--classifier", str(tiny_models["classifier"]))
    filtered = run_audit(*base, "--filter", str(tiny_models["darken"]), "--out", str(root / "filtered"))
    plain = run_audit(*base, "--no-filter", "--out", str(root / "plain"))
    return {"filtered": filtered, "plain": plain, "out": root / "filtered"}


def assert_faces_csv_gives_report_sizes(report: dict, rows: list[dict[str, str]]) -> None:
    for grouping in report["groups"]["groupings"]:
        assert grouping in rows[0], f"faces.csv has no column {grouping!r}"
        assert dict(Counter(r[grouping] for r in rows)) == report["groups"]["sizes"][grouping], grouping


# --- 1. faces.csv joins report.json's groups ------------------------------------------------------------------------

@pytest.mark.parametrize("audit", ["filtered", "plain"])
def test_faces_csv_grouped_by_each_grouping_gives_report_jsons_group_sizes(grouped, audit):
    report, rows = grouped[audit]
    assert set(report["groups"]["groupings"]) == {"group", "skin_tone"}
    sizes = report["groups"]["sizes"]
    assert set(sizes["group"]) == {*GROUPS, "(no group)"} and sizes["group"]["(no group)"] == N_UNLISTED
    assert sizes["skin_tone"].get("not measurable", 0) >= 1  # the grey face
    assert_faces_csv_gives_report_sizes(report, rows)
    # a grouping this audit does not use is an empty column, never a guess
    assert {r["gender_race"] for r in rows} == {r["age_band"] for r in rows} == {""}


def test_a_labelled_audit_names_its_unknown_faces_in_faces_csv_as_report_json_does(tmp_path, tiny_models):
    """Faces of no label were "unknown/unknown" and "unknown" in report.json and empty cells in faces.csv."""
    folder = tmp_path / "labelled"
    folder.mkdir()
    images = utk_images(8)
    for p in images:
        shutil.copy(p, folder / p.name)
    labelled = [p.name for p in images[:5]]  # the last three have no row: no gender, race or age
    (folder / "labels.csv").write_text("file,gender,race,age\n" + "".join(
        f"{n},{'female' if i % 2 else 'male'},{'White' if i % 3 else 'Black'},{'' if i == 0 else 20 + 9 * i}\n"
        for i, n in enumerate(labelled)))
    report, rows = run_audit("--dataset", f"folder:{folder}", "--classifier", str(tiny_models["classifier"]),
                             "--no-filter", "--out", str(tmp_path / "o"))
    assert {"gender_race", "age_band"} <= set(report["groups"]["groupings"])
    assert report["groups"]["sizes"]["gender_race"]["unknown/unknown"] == 3
    assert report["groups"]["sizes"]["age_band"]["unknown"] == 4  # and the first, labelled without an age
    assert_faces_csv_gives_report_sizes(report, rows)
    unknown = [r for r in rows if r["gender_race"] == "unknown/unknown"]
    assert {(r["gender"], r["race"], r["age"]) for r in unknown} == {("", "", "")}  # the labels: none given


def test_the_schemas_read_recipe_reads_report_jsons_groups_back_with_pandas(grouped):
    pd = pytest.importorskip("pandas")
    report, _ = grouped["filtered"]
    path = grouped["out"] / "faces.csv"
    schema = SCHEMA.read_text(encoding="utf-8")
    assert "pd.read_csv(path, dtype=str, keep_default_na=False)" in schema
    assert 'pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=dict.fromkeys(TEXT, str))' in schema
    text = ["file", "box", "gender", "race", "age", "group", "gender_race", "age_band", "skin_tone", "ita_category"]
    for faces in (pd.read_csv(path, dtype=str, keep_default_na=False),
                  pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=dict.fromkeys(text, str))):
        for grouping in report["groups"]["groupings"]:
            assert faces.groupby(grouping).size().to_dict() == report["groups"]["sizes"][grouping]


def test_the_schema_version_and_the_schema_name_faces_csvs_group_columns():
    from inference.audit.report import SCHEMA_VERSION

    schema = SCHEMA.read_text(encoding="utf-8")
    assert SCHEMA_VERSION == 19 and "Integer, 19." in schema and "16: `audit.statistics.intervals`" in schema
    row = next(line for line in schema.splitlines() if line.startswith("| `faces.csv` |"))
    assert "then `gender_race`, `age_band` and `skin_tone`" in row and 'faces.groupby("gender_race").size()' in row


# --- 2. report.json names its intervals' and its tests' methods -----------------------------------------------------

def test_report_json_names_each_interval_kinds_method_and_each_tests_variant(grouped):
    from inference.audit.stats import INTERVAL_METHODS

    report, _ = grouped["filtered"]
    assert report["audit"]["statistics"]["intervals"] == INTERVAL_METHODS
    assert set(INTERVAL_METHODS) == {"proportions", "share_made_unmeasurable", "means", "bounded_means", "medians"}
    assert "modified Wilson" in INTERVAL_METHODS["proportions"]
    assert "Student's t" in INTERVAL_METHODS["means"] and "betting" in INTERVAL_METHODS["bounded_means"]
    assert "Clopper-Pearson" in INTERVAL_METHODS["share_made_unmeasurable"]
    tests = list(statistical_tests(report))
    kinds = Counter(kind for kind, _ in tests)
    assert kinds["wilcoxon"] and kinds["kruskal"] and kinds["mann-whitney"], kinds
    for kind, test in tests:
        assert test.get("method"), (kind, test)
    wilcoxon = report["filter"]["overall"]["delta_ita"]["wilcoxon"]
    assert wilcoxon["method"] == "Wilcoxon signed-rank, exact" and wilcoxon["n_nonzero"] <= 500


def statistical_tests(x, key: str = ""):
    """(kind, object) of every test object in report.json: Wilcoxon, Kruskal, Mann–Whitney pair, McNemar."""
    if isinstance(x, dict):
        if "n_nonzero" in x:
            yield "wilcoxon", x
        elif "epsilon_squared" in x:
            yield "kruskal", x
        elif "only_a" in x:
            yield "mcnemar", x
        elif key == "pairwise-item":
            yield "mann-whitney", x
        for k, v in x.items():
            yield from statistical_tests(v, k)
    elif isinstance(x, list):
        for v in x:
            yield from statistical_tests(v, "pairwise-item" if key == "pairwise" else "")



def test_wilcoxon_says_whether_its_p_is_exact_or_the_normal_approximation():
    from inference.audit.stats import EXACT_UP_TO, wilcoxon_test

    assert wilcoxon_test([0.5, -0.2, 1.0, 0.7])["method"] == "Wilcoxon signed-rank, exact"
    shifts = np.random.default_rng(1).normal(0.1, 1, EXACT_UP_TO + 1)
    many = wilcoxon_test(shifts)
    assert many["method"] == "Wilcoxon signed-rank, normal approximation (tie-corrected)"
    assert many["p"] == pytest.approx(stats.wilcoxon(shifts, method="asymptotic").pvalue)
    assert wilcoxon_test([0.0, 0.0, 0.0])["method"] == "none" and wilcoxon_test([])["method"] == "none"


@pytest.mark.parametrize("a, b, variant", [
    ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.5, 8.0, 9.0], "exact"),  # few, no ties
    (list(np.arange(60.0) // 2), list(np.arange(60.0) // 2 + 0.5), "asymptotic"),  # ties past the exact count
    (list(np.arange(9.0)), list(np.arange(9.0) + 0.5), "asymptotic"),  # both above 8 values
    ([1.0, 2.0, 3.0], list(np.arange(20.0) + 0.5), "exact"),  # one group of at most 8
])
def test_a_mann_whitney_pair_names_the_variant_that_gave_its_p(a, b, variant):
    from inference.audit.stats import MANN_WHITNEY, pairwise_mannwhitney

    [pair] = pairwise_mannwhitney({"a": a, "b": b})
    assert pair["method"] == MANN_WHITNEY[variant]
    assert pair["p"] == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided", method=variant).pvalue)
    assert pair["p"] == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)  # as before


def test_kruskal_and_mcnemar_name_their_method():
    from inference.audit.stats import KRUSKAL, MCNEMAR, kruskal_test, mcnemar_exact

    assert kruskal_test({"x": [1.0, 2.0, 3.0], "y": [4.0, 5.0, 6.5]})["method"] == KRUSKAL
    assert kruskal_test({"x": [1.0, 2.0]})["method"] == "none"
    assert mcnemar_exact([True, False, True], [True, True, False])["method"] == MCNEMAR


def test_the_schema_names_every_method_the_report_can_hold():
    from inference.audit import stats as audit_stats

    schema = SCHEMA.read_text(encoding="utf-8")
    named = [audit_stats.WILCOXON_EXACT, audit_stats.WILCOXON_NORMAL, audit_stats.KRUSKAL, audit_stats.MCNEMAR,
             *audit_stats.MANN_WHITNEY.values(), audit_stats.NO_TEST]
    assert [m for m in named if f'`"{m}"`' not in schema] == []
    assert "`intervals`" in schema and "`share_made_unmeasurable`, the filter's and the gate's, Clopper–Pearson" in schema


# --- 3 and 4. the Monk shift's sign and the skin columns' crop, as the schema says them ------------------------------

def test_delta_mst_is_original_minus_filtered_as_the_schema_says(grouped):
    report, rows = grouped["filtered"]
    shifted = [r for r in rows if r["delta_mst"] != ""]
    assert shifted and any(int(r["delta_mst"]) for r in shifted)  # the darkening filter moved some Monk tones
    assert all(int(r["delta_mst"]) == int(r["mst"]) - int(r["mst_filtered"]) for r in shifted)
    lighter = report["filter"]["overall"]["share_lighter_1_monk"]
    assert lighter["value"] * lighter["n"] == pytest.approx(sum(int(r["delta_mst"]) >= 1 for r in shifted))
    schema = SCHEMA.read_text(encoding="utf-8")
    assert "d_mst" not in schema  # no such key or column
    assert "faces.csv's `delta_mst` is `mst − mst_filtered`, original − filtered" in schema


def test_the_schema_says_faces_csvs_skin_columns_are_the_references_with_a_filter(grouped):
    """Measured on the crop through the filter's resampling with a filter, on the crop itself without: the same
    faces' ITA differ between the two audits, which the schema's "before the filter" alone had not said."""
    (_, filtered), (_, plain) = grouped["filtered"], grouped["plain"]
    ita = {(r["file"], r["face"]): r["ita"] for r in plain}
    assert any(r["ita"] != ita[(r["file"], r["face"])] for r in filtered)
    row = next(line for line in SCHEMA.read_text(encoding="utf-8").splitlines() if line.startswith("| `faces.csv` |"))
    assert ("With a filter, `measurable`, `ita`, `L`, `mst` and `ita_category` (and so `skin_tone`) are measured on "
            "the reference, the crop through the filter's down/up-sampling alone") in row
    assert "without a filter, on the crop itself" in row
