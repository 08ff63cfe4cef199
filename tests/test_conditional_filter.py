"""A conditional filter (one with a ``condition`` input, e.g. a gender counterfactual's target) is run with the
condition the user chose, in the pipeline, `run`, the audit and the app, and a condition it lacks is refused."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import main
from inference.errors import BiasMirrorError
from inference.models import load_model
from inference.pipeline import FramePipeline, PipelineConfig
from tests.conftest import utk_images


def test_the_filter_runs_with_the_condition_asked_for(tiny_models):
    f = load_model(tiny_models["conditional"], "filter")
    assert f.condition_labels == ("darker", "lighter")
    faces = np.full((2, 32, 32, 3), 100, np.uint8)
    assert f.apply(faces).mean() < 100  # its first condition by default
    assert f.apply(faces, f.condition_rows("lighter", 2)).mean() > 100
    assert f.apply(faces, f.condition_rows("darker", 2)).mean() < 100
    with pytest.raises(BiasMirrorError, match="no condition 'older'; its conditions are darker, lighter") as err:
        f.condition_rows("older", 2)
    assert str(tiny_models["conditional"]) in str(err.value)
    with pytest.raises(BiasMirrorError, match="has no condition input"):
        load_model(tiny_models["darken"], "filter").check_condition("lighter")


def test_the_pipeline_measures_the_shift_of_the_condition_chosen(tiny_models):
    cls, f = [load_model(tiny_models["classifier"])], load_model(tiny_models["conditional"], "filter")
    paths = [str(p) for p in utk_images(4)]
    shifts = {}
    for condition in ("darker", "lighter", None):
        pipe = FramePipeline(cls, f, None, PipelineConfig(filter_condition=condition))
        results = [r for _, r, _ in pipe.process_images(paths)]
        shifts[condition] = [r.faces[0].skin_shift.delta_l for r in results]
        assert {r.filter_name for r in results} == {f"tiny-conditional [{condition or 'darker'}]"}
    assert all(d < -3 for d in shifts["darker"]) and all(d > 3 for d in shifts["lighter"])
    assert shifts[None] == shifts["darker"]
    with pytest.raises(BiasMirrorError, match="no condition 'older'"):
        list(FramePipeline(cls, f, None, PipelineConfig(filter_condition="older")).process_images(paths))


def test_run_takes_the_condition_and_names_it_in_the_rows(tmp_path, tiny_models, faces_dir, capsys):
    tables = {}
    for condition in ("darker", "lighter"):
        out = tmp_path / f"{condition}.csv"
        assert main.main(["run", "--source", str(faces_dir), "--out", str(out), "--classifier",
                          str(tiny_models["classifier"]), "--filter", str(tiny_models["conditional"]),
                          "--condition", condition]) == 0
        tables[condition] = list(csv.DictReader(open(out)))
    assert tables["darker"] and {r["filter"] for r in tables["lighter"]} == {"tiny-conditional [lighter]"}
    assert all(float(r["delta_l"]) < 0 for r in tables["darker"] if r["delta_l"])
    assert all(float(r["delta_l"]) > 0 for r in tables["lighter"] if r["delta_l"])
    out = tmp_path / "x.csv"
    for extra, message in ((["--filter", str(tiny_models["conditional"]), "--condition", "older"],
                            "no condition 'older'; its conditions are darker, lighter"),
                           (["--filter", str(tiny_models["darken"]), "--condition", "lighter"], "has no condition input"),
                           (["--no-filter", "--condition", "lighter"], "this run has no filter")):
        capsys.readouterr()
        assert main.main(["run", "--source", str(faces_dir), "--out", str(out), "--classifier",
                          str(tiny_models["classifier"]), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()


def test_the_audit_keeps_each_conditions_results_apart_and_says_which_ran(tmp_path, tiny_models, faces_dir):
    out = tmp_path / "audit"  # one folder, so one cache, for all three runs

    def audit(condition: str | None) -> dict:
        argv = ["audit", "--dataset", f"folder:{faces_dir}", "--classifier", str(tiny_models["classifier"]),
                "--filter", str(tiny_models["conditional"]), "--out", str(out), "--no-progress", "--threads", "1"]
        assert main.main([*argv, *(["--condition", condition] if condition else [])]) == 0
        return json.loads((out / "report.json").read_text())

    darker, lighter, default = audit("darker"), audit("lighter"), audit(None)
    assert (darker["audit"]["filter_condition"], lighter["audit"]["filter_condition"]) == ("darker", "lighter")
    assert default["audit"]["filter_condition"] == "darker"
    assert darker["models"]["filter"]["conditions"] == ["darker", "lighter"]
    d, lt = (r["filter"]["overall"]["delta_ita"]["mean"]["value"] for r in (darker, lighter))
    assert d < 0 < lt  # the cache did not hand one condition's results to the other
    assert default["filter"]["overall"]["delta_ita"]["mean"]["value"] == pytest.approx(d)
    # the first condition left unnamed is the same run as it named: all from the cache
    assert json.loads((out / "run.json").read_text())["images_computed"] == 0
    assert any(line.startswith("The filter ran with its condition 'lighter' (of darker, lighter")
               for line in lighter["summary"])


def test_the_app_offers_a_conditional_filters_conditions_and_runs_the_one_chosen(qtbot, tmp_path, tiny_models,
                                                                                 monkeypatch):
    from gui import settings as st
    from gui.main_window import MainWindow

    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(tmp_path / "settings.ini"))
    cls = [load_model(tiny_models["classifier"])]
    conditional, plain = load_model(tiny_models["conditional"], "filter"), load_model(tiny_models["darken"], "filter")
    w = MainWindow(None, cls, [conditional, plain], [], filter_override=conditional, filter_condition="lighter")
    qtbot.addWidget(w)
    try:
        assert w.pipeline.config.filter_condition == "lighter"
        controls = w.display_controls
        combo = controls.condition_combo
        assert [combo.itemText(i) for i in range(combo.count())] == ["darker", "lighter"]
        assert combo.currentText() == "lighter" and controls.form.isRowVisible(combo)
        combo.setCurrentText("darker")
        qtbot.waitUntil(lambda: w.pipeline.config.filter_condition == "darker", timeout=5000)
        assert st.get(w.qs, "filter_condition", "", str) == ""  # a --filter session's choice is its own, unsaved
        w.models.filter_combo.activated.emit(w.models.filter_combo.findText(plain.name))  # no condition: row hidden
        qtbot.waitUntil(lambda: w.pipeline.filter is plain, timeout=5000)
        assert w.pipeline.config.filter_condition is None and not controls.form.isRowVisible(combo)
    finally:
        w.shutdown()


def test_the_card_says_which_conditions_a_filter_takes(tiny_models):
    from inference.card_markdown import card_markdown

    text = card_markdown(load_model(tiny_models["conditional"], "filter").card, "conditional.onnx", 0.1)
    assert "- conditions (its one-hot `condition` input, chosen with --condition or in the app): darker, lighter" in text
    assert "conditions (" not in card_markdown(load_model(tiny_models["darken"], "filter").card, "darken.onnx", 0.1)


def test_a_condition_the_apps_filter_lacks_is_a_warning_in_the_window_not_a_refusal(qtbot, tmp_path, tiny_models,
                                                                                     monkeypatch):
    """Without --filter the window opens with the last session's filter, which the command line cannot know."""
    from gui.main_window import MainWindow

    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(tmp_path / "settings.ini"))
    plain, conditional = load_model(tiny_models["darken"], "filter"), load_model(tiny_models["conditional"], "filter")
    w = MainWindow(None, [load_model(tiny_models["classifier"])], [plain, conditional], [], filter_condition="lighter")
    qtbot.addWidget(w)
    try:
        assert w.pipeline.filter is plain and w.pipeline.config.filter_condition is None
        assert f"--condition 'lighter': filter '{plain.name}' takes no condition" in w._warnings
    finally:
        w.shutdown()


def test_the_apps_session_figures_are_one_filters_and_start_afresh_for_another(tiny_models):
    """Switching to another filter, or another condition of a conditional one, starts the session's ΔITA and
    ΔP(female) afresh (said in the status bar); switching the filter off and on again keeps them."""
    from types import SimpleNamespace

    from gui.recording import SessionStats

    def frame(filter_name, d_ita):
        face = SimpleNamespace(track_id=1, skin_shift=SimpleNamespace(delta_ita=d_ita), delta_p_female={"c": 0.1})
        return SimpleNamespace(filter_name=filter_name, faces=[face] if filter_name else [])

    stats = SessionStats()
    for name, d in (("f [darker]", -5.0), ("f [darker]", -6.0), (None, None), ("f [darker]", -7.0)):
        stats.add(frame(name, d))
    assert list(stats.delta_ita[1]) == [-5.0, -6.0, -7.0] and stats.histograms_data()[0].n == 3
    assert stats.notices() == []
    stats.add(frame("f [lighter]", 4.0))
    assert list(stats.delta_ita[1]) == [4.0] and stats.histograms_data()[0].n == 1
    assert stats.filter_label == "f [lighter]"
    assert stats.notices() == ["session figures restarted for filter 'f [lighter]' (they were for 'f [darker]')"]
    assert stats.notices() == []


@pytest.mark.parametrize("labels, shape, says", [
    (["darker"], ["N", 2], "input 'condition' has 1 labels but its shape is ['N', 2]"),
    (["darker", "same", "lighter"], ["N", "K"], "input 'condition' has 3 labels but its shape is ['N', 'K']"),
    (["darker", "darker"], ["N", 2], "name one label twice"),
])
def test_condition_labels_that_do_not_fit_the_input_are_refused_at_load(tmp_path, tiny_models, labels, shape, says):
    """Two labels over a K = 3 condition loaded and fed two-column rows to the graph mid-run."""
    import onnx

    m = onnx.load(str(tiny_models["conditional"]))
    prop = next(p for p in m.metadata_props if p.key == "model_card")
    card = json.loads(prop.value)
    spec = next(t for t in card["inputs"] if t["name"] == "condition")
    spec["labels"], spec["shape"] = labels, shape
    prop.value = json.dumps(card)
    path = tmp_path / "cond.onnx"
    onnx.save(m, str(path))
    with pytest.raises(BiasMirrorError) as err:
        load_model(path)
    assert str(err.value).startswith(f"{path}: invalid model card") and says in str(err.value), str(err.value)


def test_the_audit_keeps_apart_conditions_whose_names_differ_only_in_punctuation(tmp_path, tiny_models, faces_dir):
    """The cache named a condition by its letters and digits, "_" for the rest: "tone-1" and "tone+1" shared one
    file, and the second audit into the same --out reported the first condition's shifts under its own name."""
    from tests.conftest import make_conditional_filter

    signs = make_conditional_filter(tmp_path / "signs.onnx", gains={"tone-1": 0.8, "tone+1": 1.2}, name="signs")
    out = tmp_path / "audit"

    def mean_delta_ita(condition: str) -> float:
        argv = ["audit", "--dataset", f"folder:{faces_dir}", "--classifier", str(tiny_models["classifier"]),
                "--filter", str(signs), "--condition", condition, "--out", str(out), "--no-progress", "--threads", "1"]
        assert main.main(argv) == 0
        return json.loads((out / "report.json").read_text())["filter"]["overall"]["delta_ita"]["mean"]["value"]

    assert mean_delta_ita("tone-1") < 0 < mean_delta_ita("tone+1")


def test_a_filter_given_on_the_command_line_runs_its_first_condition_not_one_saved_for_another(qtbot, tmp_path,
                                                                                                tiny_models,
                                                                                                monkeypatch):
    """`app --filter F` without --condition ran the condition saved with the last session's filter, where run and
    audit run F's first: another filter of the same labels opened on 'lighter' without a word."""
    from gui import settings as st
    from gui.main_window import MainWindow
    from tests.conftest import make_conditional_filter

    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(tmp_path / "settings.ini"))
    cls = [load_model(tiny_models["classifier"])]
    conditional = load_model(tiny_models["conditional"], "filter")
    other = load_model(make_conditional_filter(tmp_path / "other.onnx", name="other"), "filter")
    w = MainWindow(None, cls, [conditional], [])  # a session without --filter leaves its choice saved
    qtbot.addWidget(w)
    try:
        w.display_controls.condition_combo.setCurrentText("lighter")
        qtbot.waitUntil(lambda: st.get(w.qs, "filter_condition", "", str) == "lighter", timeout=5000)
    finally:
        w.shutdown()
    w = MainWindow(None, cls, [conditional, other], [], filter_override=other)
    qtbot.addWidget(w)
    try:
        combo = w.display_controls.condition_combo
        assert w.pipeline.config.filter_condition is None and combo.currentText() == "darker"
    finally:
        w.shutdown()
