"""The machine-readable outputs as a reviewer met them in pandas (review s26): a snapshot's faces held "" in number
fields, so no column computed; its sign convention called every delta filtered − original, delta_mst included,
which is original − filtered; and bench --json, bench detect --json, train evaluate --json and the snapshot carried
no schema version nor the software that wrote them (evaluate not even which weights it evaluated). docs/outputs.md
lists every output, its version and the spellings of one thing across them."""
from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inference.models import load_model
from inference.pipeline import FramePipeline
from tests.conftest import REPO, require_utk, run_main

LIGHT_SKIN, MID_SKIN, GREY = (245, 222, 205), (205, 160, 125), (128, 128, 128)  # RGB; grey has no skin to measure


def _frame(rgb: tuple[int, int, int]) -> np.ndarray:
    """A 40×40 BGR crop of one colour with a little noise: taken whole as the face (no detector)."""
    rng = np.random.default_rng(0)
    return np.clip(np.array(rgb[::-1], float) + rng.normal(0, 3, (40, 40, 3)), 0, 255).astype(np.uint8)


def _snapshots(tmp_path: Path, tiny_models) -> list[dict]:
    """Two snapshots as the app saves them, one with the darkening filter and one without, of a light, a mid and a
    grey (unmeasurable) face each, read back."""
    from PySide6.QtGui import QImage

    from gui.recording import save_snapshot

    classifier = load_model(tiny_models["classifier"], "classifier")
    darken = load_model(tiny_models["darken"], "filter")
    docs = []
    for i, flt in enumerate((darken, None)):
        pipeline = FramePipeline([classifier], flt, None)
        faces = [pipeline.process(_frame(rgb), 0.0, source="=x.png", still=True).faces[0]
                 for rgb in (LIGHT_SKIN, MID_SKIN, GREY)]
        result = pipeline.process(_frame(LIGHT_SKIN), 0.0, source="=x.png", still=True)
        result = replace(result, faces=tuple(faces))
        image = QImage(16, 16, QImage.Format.Format_RGB888)
        image.fill(0)
        _, js = save_snapshot(tmp_path / f"out{i}", image, result, {})
        docs.append(json.loads(js.read_text(encoding="utf-8")))
    return docs


def _column(rows: list[dict], key: str) -> np.ndarray:
    """A column as pandas makes one of ``rows`` (null: NaN); "" among numbers cannot be made one."""
    return np.array([r[key] for r in rows], dtype=float)


# --- 1. a snapshot's faces: null where not measured, and the signs said of each delta -------------------------------

def test_a_snapshots_figures_not_measured_are_null_so_its_columns_compute(qapp, tmp_path, tiny_models):
    """`pd.DataFrame(rows).delta_ita.mean()` of two snapshots' faces (with and without a filter) raised TypeError:
    the faces reused the CSV's row, "" for video_s, ita_filtered, delta_ita, moved_px, mst, p_female_reference[C]."""
    docs = _snapshots(tmp_path, tiny_models)
    rows = [face for doc in docs for face in doc["faces"]]
    assert not [(k, r["source"]) for r in rows for k, v in r.items() if v == ""]
    for key in ("video_s", "ita", "mst", "ita_filtered", "delta_ita", "delta_mst", "moved_px",
                "p_female_reference[tiny-a]", "delta_p_female[tiny-a]"):
        _column(rows, key)  # no ValueError: every value a number or null
    filtered = [r for r in docs[0]["faces"] if r["measurable"]]
    assert np.nanmean(_column(rows, "delta_ita")) == pytest.approx(np.mean([r["delta_ita"] for r in filtered]))
    assert [r["delta_ita"] for r in docs[1]["faces"]] == [None] * 3  # no filter: nothing it shifted
    assert docs[0]["faces"][2]["mst"] is None  # grey: no skin, no tone


def test_a_snapshots_faces_name_the_filter_and_source_as_the_document_does(qapp, tmp_path, tiny_models):
    """The document said "filter": null and each face "filter": "", and each face's source was quoted for a
    spreadsheet ("'=x.png") where the document's was "=x.png"."""
    for doc in _snapshots(tmp_path, tiny_models):
        assert {(f["filter"], f["source"]) for f in doc["faces"]} == {(doc["filter"], doc["source"])}
    assert doc["filter"] is None and doc["source"] == "=x.png"


def test_a_snapshots_sign_convention_says_each_delta_as_the_columns_it_is_the_difference_of(qapp, tmp_path,
                                                                                            tiny_models):
    """It said "Δ = filtered − original" of every delta; delta_mst is mst − mst_filtered (original − filtered).
    Each formula it states is checked on the snapshot's own figures, on faces the filter moved by whole tones."""
    from gui.recording import SIGN_CONVENTION

    doc = _snapshots(tmp_path, tiny_models)[0]
    assert doc["sign_convention"] == SIGN_CONVENTION
    stated = re.findall(r"(delta_\w+(?:\[C\])?) = (\w+(?:\[C\])?) − (\w+(?:\[C\])?)", SIGN_CONVENTION)
    assert {d for d, _, _ in stated} == {"delta_ita", "delta_l", "delta_mst", "delta_p_female[C]"}, SIGN_CONVENTION
    faces = [f for f in doc["faces"] if f["measurable"]]
    assert faces and all(f["delta_mst"] != 0 for f in faces)  # a delta_mst whose sign tells the two apart
    for delta, after, before in stated:
        for f in faces:
            k = lambda c: c.replace("[C]", "[tiny-a]")  # noqa: E731
            assert f[k(delta)] == pytest.approx(f[k(after)] - f[k(before)], abs=1e-6), (delta, f)
    assert "positive delta_ita = higher ITA" in SIGN_CONVENTION


# --- 2. a schema version and the software on every JSON output ----------------------------------------------------

def _versioned(doc: dict, version: int) -> None:
    from inference.provenance import software

    assert list(doc)[:2] == ["schema_version", "software"] and doc["schema_version"] == version
    assert doc["software"] == software()


def test_report_jsons_software_block_is_made_by_inference_provenance():
    """Moved to inference.provenance for the other outputs; report.json's block is the same function's."""
    from inference import provenance
    from inference.audit import report

    assert report.software is provenance.software
    assert set(provenance.software()) == {"bias_mirror", "git_commit", "git_modified", "measures_version", "python",
                                          "onnxruntime", "opencv", "numpy", "scipy"}


def test_a_snapshot_carries_its_schema_version_and_software(qapp, tmp_path, tiny_models):
    from gui.recording import SNAPSHOT_SCHEMA_VERSION

    assert SNAPSHOT_SCHEMA_VERSION >= 2  # the unversioned snapshots were 1
    for doc in _snapshots(tmp_path, tiny_models):
        _versioned(doc, SNAPSHOT_SCHEMA_VERSION)


def test_bench_json_carries_its_schema_version_and_software_and_keeps_its_keys(tmp_path, tiny_models, faces_dir,
                                                                               capsys):
    from inference.bench_report import BENCH_SCHEMA_VERSION

    out = tmp_path / "bench.json"
    code, _, err = run_main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                             "--no-filter", "--no-baseline", "--threads", "1", "--providers", "cpu", "--frames", "2",
                             "--warmup", "0", "--resolution", "64x64", "--json", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert BENCH_SCHEMA_VERSION >= 2  # the unversioned files were 1
    _versioned(doc, BENCH_SCHEMA_VERSION)
    assert list(doc)[2:] == ["resolution", "faces", "cpu_count", "gpu", "onnxruntime", "device_chain", "overlap_skin",
                             "skin_threads", "providers", "filter", "baseline", "complete", "stopped",
                             "configurations", "measured", "timed", "results", "targets", "soak"]


def test_a_bench_stopped_before_measuring_says_its_version_too(tmp_path, capsys):
    from inference.bench_report import BENCH_SCHEMA_VERSION, stopped_before_measuring

    stopped_before_measuring(str(tmp_path / "b.json"), [64, 64], [1])
    doc = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))
    _versioned(doc, BENCH_SCHEMA_VERSION)
    assert doc["complete"] is False and doc["results"] == []


def test_bench_detect_json_carries_its_schema_version_and_software(tmp_path):
    import main
    from inference.bench_detect import DETECT_SCHEMA_VERSION

    out = tmp_path / "detect.json"
    code = main.main(["bench", "detect", "--data", f"utkface:{require_utk().parent}", "--per-group", "1",
                      "--detectors", "haar-alt2", "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert DETECT_SCHEMA_VERSION >= 2
    _versioned(doc, DETECT_SCHEMA_VERSION)
    assert list(doc)[2:] == ["data", "by", "face_px", "resolution", "min_age", "complete", "stopped", "unreadable",
                             "results"]


def test_evaluate_json_says_which_weights_it_evaluated(tmp_path, tiny_models, tiny_utk, capsys):
    """Its models were keyed "name (file)" alone: two trainings of one name saved under one file name read alike."""
    from inference.file_identity import file_hash
    from training.evaluate import EVALUATE_SCHEMA_VERSION

    out = tmp_path / "eval.json"
    model = tiny_models["classifier"]
    code, _, err = run_main(["train", "evaluate", "--model", str(model), "--dataset", f"utkface:{tiny_utk}",
                             "--split", "all", "--min-age", "-1", "--json", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert EVALUATE_SCHEMA_VERSION >= 2
    _versioned(doc, EVALUATE_SCHEMA_VERSION)
    assert list(doc)[2:] == ["models", "comparisons", "evaluated"]
    [(name, metrics)] = doc["models"].items()
    assert name == f"tiny-a ({model.name})"
    assert list(metrics) == ["overall", "by", "gaps", "file", "sha256"]
    assert (metrics["file"], metrics["sha256"]) == (model.name, file_hash(model))


def test_compares_comparison_json_is_as_it_was(tiny_models):
    """evaluate's versioned document is its own: compare's comparison.json, written by the same helper, unchanged."""
    from inference.metrics import disaggregate
    from training.evaluate import evaluation_json

    m = disaggregate([0, 1, 1], [0, 1, 0], [0.1, 0.9, 0.4], {"gender×race": ["male|A", "female|A", "female|A"]})
    assert list(json.loads(evaluation_json({"a": m}, [], {"variants": {}}))) == ["models", "comparisons", "variants"]


# --- 3. one page that lists them, the versions it gives are the code's ----------------------------------------------

def test_docs_outputs_lists_every_output_at_the_version_the_code_writes():
    from gui.recording import SNAPSHOT_SCHEMA_VERSION
    from inference.audit.report import SCHEMA_VERSION
    from inference.bench_detect import DETECT_SCHEMA_VERSION
    from inference.bench_report import BENCH_SCHEMA_VERSION
    from training.bench_train import TRAIN_BENCH_SCHEMA_VERSION
    from training.evaluate import EVALUATE_SCHEMA_VERSION

    page = (REPO / "docs" / "outputs.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (.+?) \| ([^|]+?) \|", page, re.MULTILINE)}
    assert rows["`report.json`"] == str(SCHEMA_VERSION)
    assert rows["`bench --json`"] == str(BENCH_SCHEMA_VERSION)
    assert rows["`bench detect --json`"] == str(DETECT_SCHEMA_VERSION)
    assert rows["`train evaluate --json`"] == str(EVALUATE_SCHEMA_VERSION)
    assert rows["snapshot JSON"] == str(SNAPSHOT_SCHEMA_VERSION)
    assert rows["`bench train --json`"] == str(TRAIN_BENCH_SCHEMA_VERSION)
    assert "docs/outputs.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_evaluate_json_version_says_its_comparisons_carry_holms_family():
    """report.json 18's Holm family reached train evaluate's McNemar objects (p_holm null for a group no test could
    reject) while its file still said version 2: a reader's `p_holm < 0.05` raised on the null unwarned."""
    import numpy as np

    from inference.audit.classifier_audit import paired_accuracy
    from training.evaluate import EVALUATE_SCHEMA_VERSION, evaluate_json

    a = np.random.default_rng(0).random(44) < 0.9
    b = a.copy()
    b[:8] = ~b[:8]  # they differ on 8 of the 40 White faces, on none of the 4 Black
    comps = paired_accuracy({"m1": a, "m2": b}, {"gender×race": ["female|White"] * 40 + ["male|Black"] * 4})
    doc = json.loads(evaluate_json({}, comps, {}, {}))
    by = doc["comparisons"][0]["by"]["gender×race"]
    assert by["male|Black"]["p_holm"] is None and by["male|Black"]["holm_family"] is False
    assert by["female|White"]["holm_family"] is True
    assert doc["schema_version"] == EVALUATE_SCHEMA_VERSION >= 3
