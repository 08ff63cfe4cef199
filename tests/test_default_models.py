"""The default classifiers and filter are what their cards say, on the data their cards name.

A card's test figures are a claim: this re-measures them on the shared UTKFace copy, with the
dataset read as training reads it today (copies counted once, each photograph in one split). A card
measured on a split that has since changed (as when copies and near twins were merged) fails here
until the model is trained or evaluated again, instead of standing in the README as a stale figure.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import require_utk  # noqa: E402
from inference.defaults import MODELS_DIR  # noqa: E402
from inference.models import load_model, read_card  # noqa: E402
from inference.runtime import RuntimeConfig  # noqa: E402
from training.evaluate import evaluate, evaluation_samples  # noqa: E402

FLOOR = 0.92  # issue #2's floor for a default classifier on held-out adults
CLASSIFIERS = sorted(p for p in MODELS_DIR.glob("*.onnx") if read_card(p).kind == "classifier")


def test_there_are_default_classifiers():
    assert len(CLASSIFIERS) >= 2, f"fewer than two classifiers in {MODELS_DIR}"


@pytest.mark.parametrize("path", CLASSIFIERS, ids=lambda p: p.name)
def test_a_default_classifier_reproduces_its_card_on_held_out_adults(path):
    root = require_utk()
    model = load_model(path, "classifier", RuntimeConfig(provider="cpu", threads=1))
    card = model.card
    assert card.training["dataset"] == "utkface", f"{path.name}: tested here on UTKFace only"
    said = card.metrics["evaluated_on"]
    min_age = card.training["filters"]["min_age"]
    samples = evaluation_samples(f"utkface:{root.parent}", said["split"], min_age)
    assert len(samples) == said["n"], (
        f"{path.name}: its card was tested on {said['n']} {said['split']} faces, the split holds {len(samples)} "
        "today: train or evaluate it again (docs/models.md)")
    measured = evaluate(model, samples)
    claimed = card.metrics["overall"]["accuracy"]
    got = measured.overall["accuracy"]
    # ONNX Runtime on another CPU may round a face sitting at P = 0.5 the other way: one face at most
    assert got["n"] == claimed["n"] and got["value"] == pytest.approx(claimed["value"], abs=1.01 / got["n"]), path.name
    assert got["value"] >= FLOOR, f"{path.name}: {got['value']:.3f} on held-out adults, below the floor {FLOOR}"
    for cell, row in card.metrics["by"]["gender×race"].items():
        again = measured.by["gender×race"][cell]["accuracy"]
        assert again["n"] == row["accuracy"]["n"], (path.name, cell)
        assert again["value"] == pytest.approx(row["accuracy"]["value"], abs=1.01 / again["n"]), (path.name, cell)
        if again["value"] == row["accuracy"]["value"]:  # the same count: the interval the commands print is the card's
            assert (again["lo"], again["hi"]) == pytest.approx((row["accuracy"]["lo"], row["accuracy"]["hi"]),
                                                               abs=1e-9), (path.name, cell)


def _proportions(metrics: dict):
    """(where, record) of each proportion a classifier card stores: accuracy, FPR and FNR, overall and per group."""
    groups = [("overall", metrics["overall"])]
    groups += [(f"{grouping}/{g}", row) for grouping, rows in metrics["by"].items() for g, row in rows.items()]
    for where, row in groups:
        for key in ("accuracy", "fpr", "fnr"):
            yield f"{where}.{key}", row[key]


@pytest.mark.parametrize("path", CLASSIFIERS, ids=lambda p: p.name)
def test_a_default_classifiers_intervals_are_the_ones_its_counts_give_today(path):
    """Each stored interval is inference.metrics.proportion's of the card's own count (value × n): the cards had kept
    Wilson's score interval after every command moved to the modified Wilson (fed1f6f), so docs/models.md and the
    app's Card button printed upper bounds `train evaluate` and the audit no longer give (female|Black 0.994 against
    0.995), and no test could see it."""
    from inference.metrics import proportion

    stale = []
    for where, p in _proportions(read_card(path).metrics):
        if not p["n"]:
            continue
        k = round(p["value"] * p["n"])
        assert k / p["n"] == p["value"], (path.name, where)  # a count, exactly
        now = proportion(k, p["n"])
        if (p["lo"], p["hi"]) != pytest.approx((now["lo"], now["hi"]), abs=1e-9):
            stale.append(f"{where} {k}/{p['n']}: [{p['lo']:.4f}, {p['hi']:.4f}], today [{now['lo']:.4f}, "
                         f"{now['hi']:.4f}]")
    assert not stale, (f"{path.name}: intervals not those the commands compute today (python -m "
                       f"training.recard_intervals amends them): " + "; ".join(stale))


FILTERS = sorted(p for p in MODELS_DIR.glob("*.onnx") if read_card(p).kind == "filter")


def test_there_is_a_default_filter():
    assert FILTERS, f"no filter in {MODELS_DIR}"


@pytest.mark.parametrize("path", FILTERS, ids=lambda p: p.name)
def test_a_default_filter_reproduces_its_card_on_its_held_out_faces(path, tmp_path):
    """Its skin shift, and its ΔP(female) under the classifier its card names, which must still be shipped."""
    from inference.file_identity import file_hash
    from training.tasks.cyclegan import build_domains
    from training.data.compose import cell_of
    from training.tasks.cyclegan_report import by_group, delta_ita, evaluated_faces, held_out_people, p_female

    root = require_utk()
    card = read_card(path)
    t, m = card.training, card.metrics
    assert t["recipe"] in ("engineer", "aging") and t["dataset"].startswith("utkface:"), (
        f"{path.name}: tested here on UTKFace recipes only")
    domains = build_domains({"seed": t["seed"], "min_domain_size": 1, "recipe": t["recipe"],
                             "dataset": f"utkface:{root.parent}"})
    if domains.overlap:  # photographs trained on in both domains: said on the card, as the trainer writes it today
        assert t.get("domain_overlap") == domains.overlap, (
            f"{path.name}: rebuilding its domains finds {domains.overlap['photographs_in_both_domains_training']} "
            f"photograph(s) in both domains' training; its card says {t.get('domain_overlap')}")
    said = m.get("evaluated_faces")
    assert said is not None, f"{path.name}: its card does not say how its held-out faces were drawn"
    assert said == evaluated_faces(domains, said["n"], t["seed"]), path.name
    faces, people = held_out_people(domains, m["n_faces"], t["seed"], card.input_size[0], tmp_path)
    races = [s.race or "" for s in people]
    assert len(faces) == m["n_faces"], (
        f"{path.name}: its card measured {m['n_faces']} held-out faces, {len(faces)} today")
    assert {r: races.count(r) for r in set(races)} == {r: v["n"] for r, v in m["by_race"].items()}, (
        f"{path.name}: its held-out faces are not the ones its card measured (the splits have changed since?)")
    filt = load_model(path, "filter", RuntimeConfig(provider="cpu", threads=1))
    fake = filt.apply(faces)
    d = delta_ita(faces, fake)
    assert int((~np.isnan(d)).sum()) == m["skin_measured"], path.name
    # another CPU may round a pixel the other way: a few hundredths of a degree on the mean at most
    assert np.nanmean(d) == pytest.approx(m["mean_delta_ita"], abs=0.05), path.name
    named = m["classifier"]
    shipped = {file_hash(p): p for p in CLASSIFIERS}
    assert named["sha256"] in shipped, (
        f"{path.name}: its card's ΔP(female) was measured with {named['name']} (sha256 {named['sha256'][:16]}…), "
        f"which no default classifier in {MODELS_DIR} is today: train or re-measure the filter")
    clf = load_model(shipped[named["sha256"]], "classifier", RuntimeConfig(provider="cpu", threads=1))
    dp = p_female(clf, fake) - p_female(clf, faces)
    assert dp.mean() == pytest.approx(named["mean_delta_p_female"], abs=1e-3), path.name
    if "by_gender_race" in m:  # the cells docs/models.md tabulates, each measured again
        cells = by_group(d, dp, [cell_of(s, ("gender", "race")) if s.gender and s.race else "" for s in people])
        assert set(cells) == set(m["by_gender_race"]), path.name
        for cell, row in m["by_gender_race"].items():
            assert cells[cell]["n"] == row["n"], (path.name, cell)
            assert cells[cell]["n_skin_measured"] == row["n_skin_measured"], (path.name, cell)
            assert cells[cell]["mean_delta_ita"] == pytest.approx(row["mean_delta_ita"], abs=0.1), (path.name, cell)
            assert cells[cell]["mean_delta_p_female"] == pytest.approx(row["mean_delta_p_female"], abs=2e-3), (
                path.name, cell)


def _bad_card_copy(src: Path, dst: Path) -> Path:
    """``src`` with a card whose "training" is a string, not an object."""
    import json

    import onnx

    m = onnx.load(str(src))
    prop = next(p for p in m.metadata_props if p.key == "model_card")
    prop.value = json.dumps({**json.loads(prop.value), "training": "oops"})
    onnx.save(m, str(dst))
    return dst


def test_a_malformed_card_in_the_models_folder_is_named_not_fatal(tmp_path, tiny_models, capsys, monkeypatch):
    """It loaded and then crashed summary() in the folder loader, doctor and doctor --cards with a traceback."""
    import argparse
    import shutil

    from inference import doctor
    from inference.defaults import load_folder

    shutil.copy(tiny_models["classifier"], tmp_path / "good.onnx")
    bad = _bad_card_copy(tiny_models["classifier"], tmp_path / "bad.onnx")
    found = load_folder(tmp_path, RuntimeConfig(provider="cpu"))
    assert [m.path.name for m in found.classifiers] == ["good.onnx"]
    assert len(found.errors) == 1 and found.errors[0].startswith(f"{bad}: invalid model card: 'training'")
    monkeypatch.setattr(doctor, "MODELS_DIR", tmp_path)
    assert doctor.main(argparse.Namespace(cards=True, cameras=0, no_gpu_probe=True)) == 1
    out = capsys.readouterr().out
    assert "## bad.onnx\n\nUNUSABLE — " in out and "'training' must be an object" in out and "(`good.onnx`" in out
    # named and the listing goes on; the status says a default model cannot be used, as --cards' does
    assert doctor.main(argparse.Namespace(cards=False, cameras=0, no_gpu_probe=True)) == 1
    out = capsys.readouterr().out
    assert "  bad.onnx: UNUSABLE — " in out and "  good.onnx: classifier 'tiny-a'" in out


def test_doctor_cards_names_a_card_whose_nested_record_is_malformed(tmp_path, tiny_models, capsys, monkeypatch):
    """A "composition" of another shape than ours passed the card's checks and crashed the Markdown; then it marked
    the model UNUSABLE, though every command runs it. It is a warning under the card, which is listed."""
    import argparse
    import json

    import onnx

    from inference import doctor

    m = onnx.load(str(tiny_models["classifier"]))
    prop = next(p for p in m.metadata_props if p.key == "model_card")
    card = json.loads(prop.value)
    card["training"]["composition"] = "balanced"
    prop.value = json.dumps(card)
    onnx.save(m, str(tmp_path / "odd.onnx"))
    monkeypatch.setattr(doctor, "MODELS_DIR", tmp_path)
    assert doctor.main(argparse.Namespace(cards=True, cameras=0, no_gpu_probe=True)) == 0
    out = capsys.readouterr().out
    assert "UNUSABLE" not in out and "(`odd.onnx`" in out
    assert "- WARNING: its card's training.composition is 'balanced', not an object: ignored" in out
