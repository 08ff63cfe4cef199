"""Published figures a reviewer could not reproduce with today's code: the audit's contradicted-labels sentence, the
copy probe docs/architecture.md cites, and the maintenance step that amends the shipped cards."""
from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import require_utk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# --- the contradicted-labels sentence names every group tied for the lowest accuracy ---------------------------------

# one labelled face and the least of a report.json around the label check: test_links_fifos_and_summary's
from test_links_fifos_and_summary import _face, _report_with_labels_checked as _report  # noqa: E402


def test_the_label_check_gives_every_group_tied_for_the_lowest_accuracy_before_and_after():
    """female/Black and male/Asian tie at 50 %; the only contradicted label is male/Asian's. The sentence had named
    female/Black alone (first by name), 50.0% → 50.0%, hiding the one group the contradicted face changes."""
    from inference.audit.summary import summary_lines

    rows = ([_face(0, "female", "Black", 0.9), _face(1, "female", "Black", 0.3)]  # one wrong, not confidently
            + [_face(2, "male", "Asian", 0.1), _face(3, "male", "Asian", 0.97)]  # one wrong, contradicted
            + [_face(4 + i, "male", "White", 0.05) for i in range(2)]
            + [_face(6 + i, "female", "White", 0.95) for i in range(2)])
    r = _report(rows)
    acc = r["classifiers"]["A"]["metrics"]["gaps"]["gender_race"]["accuracy"]
    assert acc["worst"] == "female/Black"
    lines = summary_lines(r)
    tied = "lowest accuracy for female/Black (n=2, small group) and male/Asian (n=2, small group), tied at 50.0%"
    assert any(tied in x for x in lines)
    [line] = [x for x in lines if "check those labels" in x]
    assert line.endswith("the lowest gender × race group's accuracy goes female/Black 50.0% → 50.0%, "
                         "male/Asian (tied) 50.0% → 100.0% (A)."), line


def test_the_label_check_names_a_single_lowest_group_alone():
    from inference.audit.summary import summary_lines

    rows = ([_face(0, "male", "Asian", 0.1), _face(1, "male", "Asian", 0.97)]
            + [_face(2 + i, "female", "White", 0.95) for i in range(2)])
    [line] = [x for x in summary_lines(_report(rows)) if "check those labels" in x]
    assert line.endswith("accuracy goes male/Asian 50.0% → 100.0% (A)."), line
    assert "(tied)" not in line


# --- the copy probe docs/architecture.md cites counts the copies in the raw listing ----------------------------------

def _near_identical_probe():
    """docs/probes/near_identical.py as a module (it is a script in docs/, not a package's)."""
    spec = importlib.util.spec_from_file_location("near_identical_probe", ROOT / "docs/probes/near_identical.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_copy_probe_finds_copies_across_splits_and_the_counts_architecture_md_cites():
    """It read open_dataset, which has merged the copies it counts and put each photograph in one split: it printed
    0 across splits and 0 under other labels, where docs/architecture.md cites it for 308 and 421 groups."""
    from inference.datasets import open_dataset, select

    root = require_utk()
    c = _near_identical_probe().counts(str(root.parent))
    assert c["byte_identical"]["across_splits"] > 0 and c["near_identical"]["across_splits"] > 0, c
    assert c["groups_under_other_labels"] > 0, c
    t = c["test_adults"]
    assert t["twin_in_train_or_val"] > 0 and t["under_other_labels"] > 0, c
    # the test adults it says are left are those every command measures on (open_dataset's split)
    assert t["left"] == len(select(open_dataset(f"utkface:{root.parent}").samples, "test", min_age=18)), c
    doc = " ".join((ROOT / "docs/architecture.md").read_text(encoding="utf-8").split())
    assert (f"UTKFace: {c['byte_identical']['groups']} byte-identical groups and {c['near_identical']['groups']} "
            "near-identical ones (`docs/probes/near_identical.py`") in doc
    assert (f"{t['listed'] - t['left']} of the {t['listed']:,} test adults the figures above were measured on left "
            f"the test split: {t['twin_in_train_or_val']} had a copy or near twin in training or validation, "
            f"{t['under_other_labels']} one under other labels, and {t['second_copy_in_test']} were a second copy "
            "of another test image") in doc


# --- the maintenance step that amends the shipped cards from their own record ---------------------------------------

def _set_card(path: Path, change) -> None:
    """``path``'s card JSON passed through ``change`` (a function of the parsed card), written back in place."""
    import onnx

    model = onnx.load(str(path))
    prop = next(p for p in model.metadata_props if p.key == "model_card")
    prop.value = json.dumps(change(json.loads(prop.value)))
    onnx.save(model, str(path))


def _as_wilson(card: dict) -> dict:
    """The card as written before fed1f6f: each proportion's interval Wilson's score interval, no amendment."""
    from scipy import stats

    m = card["metrics"]
    rows = [m["overall"], *(row for groups in m["by"].values() for row in groups.values())]
    for row in rows:
        for key in ("accuracy", "fpr", "fnr"):
            p = row[key]
            if p["n"]:
                ci = stats.binomtest(round(p["value"] * p["n"]), p["n"]).proportion_ci(method="wilson")
                p["lo"], p["hi"] = float(ci.low), float(ci.high)
    m.pop("proportion_interval", None)
    card["training"].pop("amendments", None)
    return card


def _bare(path: Path) -> tuple[bytes, list[bytes]]:
    """The model's bytes but for its metadata, and each initializer's serialized."""
    import onnx

    model = onnx.load(str(path))
    weights = [t.SerializeToString() for t in model.graph.initializer]
    del model.metadata_props[:]
    return model.SerializeToString(), weights


def _recard(argv: list[str], capsys) -> tuple[int, str, str]:
    from training.recard_intervals import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_recard_gives_a_wilson_card_todays_intervals_and_changes_nothing_but_its_metadata(tmp_path, tiny_models,
                                                                                          capsys):
    """The shipped classifiers' cards held Wilson's interval after every command moved to the modified Wilson; their
    checkpoints are not shipped, so each interval is recomputed from the card's own counts, the graph untouched, the
    amendment recorded, and a card that names the amended file by sha256 pointed at it."""
    from inference.defaults import MODELS_DIR
    from inference.file_identity import file_hash
    from inference.metrics import proportion
    from inference.models import read_card

    clf = tmp_path / "clf.onnx"
    shutil.copy(MODELS_DIR / "resnet10_unbalanced.onnx", clf)
    _set_card(clf, _as_wilson)
    old_hash, before = file_hash(clf), _bare(clf)
    female_black = read_card(clf).metrics["by"]["gender×race"]["female|Black"]["accuracy"]
    assert round(female_black["hi"], 4) == 0.9938  # the published bound
    filt = tmp_path / "filt.onnx"
    shutil.copy(tiny_models["darken"], filt)
    _set_card(filt, lambda c: {**c, "metrics": {"classifier": {"name": "clf", "sha256": old_hash}}})

    code, out, err = _recard([str(clf), str(filt)], capsys)
    assert code == 0, err
    assert _bare(clf) == before  # graph, weights, opsets: byte for byte
    card = read_card(clf)
    m = card.metrics
    rows = [m["overall"], *(row for groups in m["by"].values() for row in groups.values())]
    for row in rows:
        for key in ("accuracy", "fpr", "fnr"):
            p = row[key]
            if p["n"]:
                now = proportion(round(p["value"] * p["n"]), p["n"])
                assert (p["lo"], p["hi"]) == (now["lo"], now["hi"])
    assert round(m["by"]["gender×race"]["female|Black"]["accuracy"]["hi"], 4) == 0.9950
    assert "modified Wilson" in m["proportion_interval"]
    [amendment] = card.training["amendments"]
    assert amendment["command"] == f"python -m training.recard_intervals {clf} {filt}"
    assert amendment["date"] and amendment["commit"]
    assert "12 changed, from Wilson's score interval" in amendment["what"]
    assert "gender×race/female|Black.accuracy 161/164: [0.9476, 0.9938] → [0.9476, 0.9950]" in amendment["what"]
    named = read_card(filt)
    assert named.metrics["classifier"]["sha256"] == file_hash(clf) != old_hash
    assert "re-pointed metrics.classifier.sha256" in named.training["amendments"][0]["what"]

    amended = {p: p.read_bytes() for p in (clf, filt)}
    code, out, err = _recard([str(clf), str(filt)], capsys)
    assert code == 0 and out.count("nothing to amend") == 2, out + err
    assert {p: p.read_bytes() for p in (clf, filt)} == amended


def test_a_recard_dry_run_says_the_re_pointing_a_run_writes(tmp_path, tiny_models, capsys):
    """A dry run had left it out: a card whose only change would be its re-pointing read "nothing to amend"."""
    from inference.defaults import MODELS_DIR
    from inference.file_identity import file_hash

    clf, filt = tmp_path / "clf.onnx", tmp_path / "filt.onnx"
    shutil.copy(MODELS_DIR / "resnet10_unbalanced.onnx", clf)
    _set_card(clf, _as_wilson)
    shutil.copy(tiny_models["darken"], filt)
    old_hash = file_hash(clf)
    _set_card(filt, lambda c: {**c, "metrics": {"classifier": {"name": "clf", "sha256": old_hash}}})
    amended = {p: p.read_bytes() for p in (clf, filt)}
    code, out, err = _recard(["--dry-run", str(clf), str(filt)], capsys)
    assert code == 0, err
    said = next(line for line in out.splitlines() if line.startswith(f"{filt}: "))
    assert said.startswith(f"{filt}: would be amended: re-pointed metrics.classifier.sha256 {old_hash[:16]}… → its "
                           "sha256 once amended (clf.onnx's card was amended"), out
    assert {p: p.read_bytes() for p in (clf, filt)} == amended


def test_recard_refuses_a_proportion_that_is_no_count(tmp_path, capsys):
    from inference.defaults import MODELS_DIR

    clf = tmp_path / "clf.onnx"
    shutil.copy(MODELS_DIR / "resnet10_balanced.onnx", clf)

    def odd(card: dict) -> dict:
        card["metrics"]["overall"]["accuracy"]["value"] = 0.97
        return card

    _set_card(clf, odd)
    before = clf.read_bytes()
    code, out, err = _recard([str(clf)], capsys)
    assert code == 1 and "overall.accuracy: its value 0.97 over n 1630 is no count of successes" in err
    assert clf.read_bytes() == before


def test_recard_gives_a_filter_card_its_domain_overlap_and_held_out_faces_from_its_recipe(tmp_path, capsys):
    """The shipped filter's card was exported before the trainer recorded them: its domains rebuilt from its recipe
    and seed (checked to give back its compositions and held-out faces) say both."""
    from inference.defaults import MODELS_DIR
    from inference.models import read_card
    from training.tasks.cyclegan_report import EVALUATED_FACES_RULE

    root = require_utk()
    filt = tmp_path / "filter.onnx"
    shutil.copy(MODELS_DIR / "engineer_filter.onnx", filt)

    def as_exported(card: dict) -> dict:
        card["training"].pop("domain_overlap", None)
        card["training"].pop("amendments", None)
        card["metrics"].pop("evaluated_faces", None)
        return card

    _set_card(filt, as_exported)
    before = _bare(filt)
    code, out, err = _recard([str(filt), "--dataset", f"utkface:{root.parent}"], capsys)
    assert code == 0, err
    assert _bare(filt) == before
    card = read_card(filt)
    overlap = card.training["domain_overlap"]
    assert overlap["photographs_in_both_domains_training"] > 0 and overlap["examples"]
    assert card.metrics["evaluated_faces"] == {"rule": EVALUATED_FACES_RULE, "seed": 1, "n": 400,
                                               "test_faces": card.metrics["evaluated_faces"]["test_faces"]}
    [amendment] = card.training["amendments"]
    assert "training.domain_overlap added" in amendment["what"] and "metrics.evaluated_faces added" in amendment["what"]
