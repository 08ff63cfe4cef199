"""What `--help` pages and exit statuses tell a user (or a CI job) without reading the code.

- `audit` that measured nothing (no images, none readable, no face found) exits 2 with an `error:` line naming
  the folder: it had exited 1, the status of a failed ship gate, so a CI job could not tell the two apart.
- The trainers' and `bench train`'s main options say their defaults; plain `bench` says --source is required.
- The evaluation tables wrap long model names instead of cutting them, and say what FPR and FNR count.
"""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from inference.datasets.sample import IMAGE_EXTENSIONS
from inference.metrics import disaggregate, format_table
from tests.conftest import make_diverged_classifier, run_main, utk_images


run = run_main


def help_entries(argv: list[str], capsys, monkeypatch) -> dict[str, str]:
    """Each option of ``argv --help``, by its first option string → its whole entry on one line."""
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps to the terminal: one line per entry where it fits
    code, out, _ = run([*argv, "--help"], capsys)
    assert code == 0
    entries = {}
    for entry in re.split(r"\n  (?=-)", out.split("options:", 1)[1]):
        words = entry.split()
        if words:
            entries[words[0].rstrip(",")] = " ".join(words)
    return entries


# --- audit: "nothing measured" is not "the gate failed" -------------------------------------------------------

def audit(tmp_path, dataset: str, classifier, *extra: str) -> list[str]:
    return ["audit", "--dataset", dataset, "--classifier", str(classifier), "--no-filter", "--no-progress",
            "--no-html", "--threads", "1", "--out", str(tmp_path / "out"), *extra]


def test_an_audit_of_an_empty_folder_exits_2_naming_it(tmp_path, tiny_models, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(audit(tmp_path, f"folder:{empty}", tiny_models["classifier"]), capsys)
    assert code == 2 and f"error: {empty}: the folder holds no images" in err and "nothing was measured" in err
    assert (tmp_path / "out" / "report.json").exists()  # the report is written all the same


def test_an_audits_report_names_the_photos_of_a_type_it_cannot_read_and_a_folder_of_only_those(tmp_path, tiny_models,
                                                                                                 capsys):
    """A folder's HEIC and RAW photos had been named in a warning alone: report.json, report.html and the summary
    said nothing of them, and a folder of only HEICs was "a folder that holds no images"."""
    import json

    photos = tmp_path / "phone"
    photos.mkdir()
    (photos / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    (photos / "raw.dng").write_bytes(b"II*\x00")
    code, _, err = run(audit(tmp_path, f"folder:{photos}", tiny_models["classifier"]), capsys)
    named = [{"file": "IMG_0001.HEIC", "type": "HEIC"}, {"file": "raw.dng", "type": "RAW"}]
    assert code == 2 and (f"error: {photos}: the folder holds no images ({'/'.join(IMAGE_EXTENSIONS)}, in it or its "
                          "subfolders), only 2 photo(s) of a type that cannot be read here (HEIC, RAW), e.g. "
                          "IMG_0001.HEIC, raw.dng: nothing was measured") in err
    assert json.loads((tmp_path / "out" / "report.json").read_text())["images"]["photos_not_read"] == named
    cv2.imwrite(str(photos / "face.png"), cv2.imread(str(utk_images(1)[0])))
    with_html = [a for a in audit(tmp_path, f"folder:{photos}", tiny_models["classifier"]) if a != "--no-html"]
    code, out, _ = run(with_html, capsys)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code == 0 and report["images"]["photos_not_read"] == named and report["images"]["n_images"] == 1
    line = ("2 photo(s) of a type that cannot be read here (HEIC, RAW), e.g. IMG_0001.HEIC, raw.dng, were not "
            "audited; convert them (e.g. to JPEG) to include them.")
    assert line in report["summary"] and line in out
    assert "IMG_0001.HEIC (HEIC), raw.dng (RAW)" in (tmp_path / "out" / "report.html").read_text()


def test_an_audit_that_found_no_face_exits_2_not_the_gates_1(tmp_path, tiny_models, capsys):
    walls = tmp_path / "walls"
    walls.mkdir()
    for i in range(2):
        cv2.imwrite(str(walls / f"wall{i}.png"), np.full((80, 80, 3), 60 + 40 * i, np.uint8))
    code, _, err = run(audit(tmp_path, f"folder:{walls}", tiny_models["classifier"]), capsys)
    assert code == 2, "exit 1 is the ship gate's: a CI job read an audit of no faces as a failed filter"
    assert f"error: {walls}: no face was found in any of its 2 readable image(s)" in err


def test_a_labelled_audit_of_no_readable_image_exits_2_saying_none_could_be_read(tmp_path, tiny_models, capsys):
    utk = tmp_path / "utk"
    utk.mkdir()
    for i in range(3):
        (utk / f"2{i}_{i % 2}_0_2017010100000000{i}.jpg.chip.jpg").write_bytes(b"not a jpeg %d" % i)
    code, _, err = run(audit(tmp_path, f"utkface:{utk}", tiny_models["classifier"]), capsys)
    assert code == 2 and f"error: {utk}: none of its 3 image(s) could be read" in err
    assert "no face was found" not in err  # it had said so of images it never read


@pytest.mark.parametrize("command, says", [
    ("audit", ["1 the ship gate failed", "2 an error, or nothing was measured", "130 interrupted"]),
    # and what its --json counts: "measured" includes an unavailable provider's rows
    ("bench", ["exit status: 0 measured; 2 an error", "nothing was timed", '"timed" those with figures']),
])
def test_help_lists_every_exit_status(command, says, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    code, out, _ = run([command, "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and all(s in text for s in says), [s for s in says if s not in text]


# --- --help says the defaults ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["train", "classifier"], ["train", "compare"]])
@pytest.mark.parametrize("option, default", [("--epochs", "default 30"), ("--lr", "default 2e-3"),
                                             ("--batch-size", "default 64"), ("--arch", "default resnet"),
                                             ("--seed", "default 0"), ("--device", "default auto")])
def test_the_classifiers_main_options_say_their_defaults(command, option, default, capsys, monkeypatch):
    assert default in help_entries(command, capsys, monkeypatch)[option]


def test_the_classifiers_help_says_a_resume_keeps_the_checkpoints_settings(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    _, out, _ = run(["train", "classifier", "--help"], capsys)
    assert "keeps the checkpoint's value of every training setting left out" in " ".join(out.split())


@pytest.mark.parametrize("option, said", [("--steps", "default 30"), ("--device", "default auto"),
                                          ("--cyclegan-preset", "default fast"),
                                          ("--cyclegan-preset", "`train cyclegan` defaults to cpu"),
                                          ("--data", "default utkface:../shared/datasets/utkface"),
                                          ("--size", "`train classifier` defaults to 112")])
def test_bench_train_options_say_their_defaults(option, said, capsys, monkeypatch):
    assert said in help_entries(["bench", "train"], capsys, monkeypatch)[option]


def test_plain_bench_says_source_is_required_and_its_subcommands_do_not_need_it(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    code, out, _ = run(["bench", "--help"], capsys)
    usage = out.split("\n\n", 1)[0]
    assert code == 0 and " --source SOURCE " in usage and "[--source SOURCE]" not in usage
    code, _, err = run(["bench", "--frames", "3"], capsys)
    assert code == 2 and "required: --source" in err
    for what in ("train", "detect"):  # their own parsers: no --source
        code, out, _ = run(["bench", what, "--help"], capsys)
        assert code == 0 and "--source" not in out


# --- evaluation tables ---------------------------------------------------------------------------------------------

def test_a_tables_long_model_names_are_wrapped_whole_and_fpr_fnr_are_explained():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    pred = np.where(rng.random(100) < 0.9, y, 1 - y)
    groups = {"gender×race": [("female" if t else "male") + "/" + r for t, r in zip(y, rng.choice(["White", "Asian"], 100))]}
    m = disaggregate(y, pred, rng.random(100), groups)
    names = ["resnet10-utk-unbalanced (resnet10_unbalanced.onnx)", "resnet10-utk-balanced (resnet10_balanced.onnx)"]
    table = format_table({n: m for n in names}, "gender×race")
    lines = table.splitlines()
    header = lines[: next(i for i, line in enumerate(lines) if "acc [95% CI]" in line)]
    words = " ".join(header).split()
    for name in names:  # every word of each name, whole: it had read "resnet10-utk-unbalanced (resne"
        assert all(w in words for w in name.split()), (name, header)
    assert any(line.startswith("gender×race") for line in header)
    assert len({len(line) for line in lines if line.startswith(("female/", "male/", "(overall)"))}) == 1
    assert "FPR: share of faces annotated male called female" in table
    assert "FNR: share annotated female called male" in table


# --- the ship gate over nothing it could judge neither passes nor fails ------------------------------------------

def gated_audit(tmp_path, capsys, darken, *gate: str, html: bool = False) -> tuple[int, dict, str, str]:
    """An audit of 8 faces by the diverged classifier through a darkening filter, with ``gate``'s options; the same
    --out each time, so a second audit reads the first one's cache."""
    import json

    from tests.test_audit import write_utk

    data = tmp_path / "utk"
    if not data.exists():
        write_utk(data)
    model = tmp_path / "diverged.onnx"
    if not model.exists():
        make_diverged_classifier(model)
    out = tmp_path / "out"
    code, stdout, err = run(["audit", "--dataset", f"utkface:{data}", "--limit", "8", "--classifier", str(model),
                             "--filter", str(darken), "--no-progress", "--threads", "1", "--out", str(out),
                             *([] if html else ["--no-html"]), *gate], capsys)
    return code, json.loads((out / "report.json").read_text(encoding="utf-8")), stdout, err


def test_a_gate_on_a_classifier_whose_p_female_is_never_finite_is_not_judged_and_exits_2(tmp_path, tiny_models,
                                                                                          capsys):
    """It had printed "PASSED; 0 within, 0 beyond, 0 unsettled, 10 too few faces to tell" and exited 0: a CI job
    shipped a filter whose ΔP(female) had been measured on no face."""
    code, r, out, err = gated_audit(tmp_path, capsys, tiny_models["darken"], "--max-delta-p", "0.02", html=True)
    gate = r["gate"]
    assert code == 2, "a gate that judged nothing is not a pass"
    assert gate["passed"] is None and gate["failing"] == [] and gate["counts"]["within"] == 0
    assert gate["not_judged"] == [{"measure": "delta_p_female:diverged", "n": 0, "why": "no face got a finite "
                                   "P(female) from diverged both before and after the filter"}]
    assert "error: the ship gate could not be judged: ΔP(female) of diverged: no face got a finite P(female)" in err
    head = next(line for line in r["summary"] if line.startswith("Ship gate"))
    assert "NOT JUDGED, neither passed nor failed" in head and "PASSED" not in head and head in out
    # the summary had said "the filter did not detectably change P(female)" of a shift measured on no face
    assert not any("did not detectably change P(female)" in line for line in r["summary"])
    assert any(line.startswith("diverged: ΔP(female) not measured: none of the 8 face(s) got a finite P(female)")
               for line in r["summary"])
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")  # written, not crashed on passed: null
    assert "NOT JUDGED" in html
    code, r, _, err = gated_audit(tmp_path, capsys, tiny_models["darken"], "--max-delta-p", "0.02", "--strict")
    assert code == 2 and r["gate"]["passed"] is None and r["gate"]["failing"] == [], \
        "--strict fails rows too few to tell beside judged ones, but a gate of none judged neither passes nor fails"
    assert "error: the ship gate could not be judged" in err


def test_a_gate_that_judged_the_skin_shift_but_no_group_of_a_classifiers_shift_does_not_pass(tmp_path, tiny_models,
                                                                                             capsys):
    darken = tiny_models["darken"]
    code, r, out, err = gated_audit(tmp_path, capsys, darken, "--max-delta-ita", "60", "--max-delta-p", "0.02")
    gate = r["gate"]
    assert gate["counts"]["within"] > 0 and not any(row["measure"] == "delta_ita" and row["verdict"] == "beyond"
                                                    for row in gate["rows"])
    assert code == 2 and gate["passed"] is None, "ΔITA within: the ΔP(female) it was given went unjudged"
    assert [m["measure"] for m in gate["not_judged"]] == ["delta_p_female:diverged"]
    assert "error: the ship gate could not be judged: ΔP(female) of diverged" in err
    # a shift shown beyond fails the gate whatever else went unjudged, and the summary names what was not judged
    code, r, out, err = gated_audit(tmp_path, capsys, darken, "--max-delta-ita", "1", "--max-delta-p", "0.02")
    assert code == 1 and r["gate"]["passed"] is False and "error:" not in err
    assert ("  Not judged: ΔP(female) of diverged: no face got a finite P(female) from diverged both before and "
            "after the filter.") in r["summary"]


def test_a_gate_with_some_groups_too_few_to_tell_beside_judged_ones_keeps_its_verdict():
    """The ordinary partial case: a small group without a CI passes without --strict and fails with it; only a
    measure none of whose groups was judged leaves the gate unjudged."""
    from inference.audit.gate import filter_gate

    def cell(lo, hi, n, dp=None):
        m = lambda lo, hi, n: {"value": None if lo is None else (lo + hi) / 2, "lo": lo, "hi": hi, "n": n}  # noqa: E731
        return {"delta_ita": {"mean": m(lo, hi, n)},
                "classifiers": {"c": {"delta_p_female": {"mean": m(*(dp or (None, None, 0)))}}}}

    report = {"overall": cell(-0.5, 0.5, 90, (-0.01, 0.01, 90)),
              "by": {"gender_race": {"female/Black": cell(-1.0, 1.0, 12, (-0.01, 0.01, 12)),
                                     "male/Others": cell(None, None, 2, (None, None, 2))}}}
    lenient, strict = filter_gate(report, 2, 0.02), filter_gate(report, 2, 0.02, strict=True)
    assert lenient["passed"] is True and lenient["not_judged"] == [] and lenient["counts"]["too few"] == 2
    assert strict["passed"] is False and {f["group"] for f in strict["failing"]} == {"male/Others"}
    nothing = {"overall": cell(None, None, 2), "by": {"gender_race": {"a": cell(None, None, 1),
                                                                      "b": cell(None, None, 1)}}}
    for gate in (filter_gate(nothing, 2, 0.02), filter_gate(nothing, 2, 0.02, strict=True)):
        assert gate["passed"] is None and gate["failing"] == []
        assert [(m["measure"], m["n"]) for m in gate["not_judged"]] == [("delta_ita", 2), ("delta_p_female:c", 0)]
        assert "too few faces to tell (n=2 overall)" in gate["not_judged"][0]["why"]


def test_audit_help_says_a_gate_that_could_not_be_judged_exits_2(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    code, out, _ = run(["audit", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0 and "the ship gate could not be judged" in text


def test_a_skin_tone_gate_over_faces_of_no_measurable_skin_is_not_judged_and_exits_2(tmp_path, tiny_models, capsys):
    """Grey faces have no measurable skin: ΔITA was measured on no face, and the summary had said the filter "did not
    detectably change skin tone" while the gate passed."""
    import json

    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(4):
        cv2.imwrite(str(grey / f"g{i}.png"), np.full((40, 40, 3), 60 + 40 * i, np.uint8))
    code, out, err = run(["audit", "--dataset", f"folder:{grey}", "--aligned", "--classifier",
                          str(tiny_models["classifier"]), "--filter", str(tiny_models["darken"]), "--max-delta-ita", "2", "--no-progress", "--no-html",
                          "--threads", "1", "--out", str(tmp_path / "out")], capsys)
    r = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert r["filter"]["overall"]["n_measurable"] == 0 and r["images"]["n_faces"] == 4
    assert code == 2 and r["gate"]["passed"] is None
    assert "error: the ship gate could not be judged: ΔITA: no face's skin could be measured both before and " \
           "after the filter" in err
    assert "The filter's skin-tone shift was not measured: none of the 4 face(s) had skin that could be measured " \
           "both before and after the filter." in out
    assert "did not detectably change skin tone" not in out


def test_a_strict_gate_is_not_failed_by_a_measure_none_of_whose_groups_was_judged():
    """With --strict, a ΔITA within everywhere beside a ΔP(female) measured on no face read FAILED (exit 1): the
    unmeasured classifier's "too few" rows counted as failures once another measure had been judged."""
    from inference.audit.gate import filter_gate

    def cell(ita, n, p_n):
        return {"delta_ita": {"mean": {"value": 0.0, "lo": -ita, "hi": ita, "n": n}},
                "classifiers": {"c": {"delta_p_female": {"mean": {"value": None, "lo": None, "hi": None, "n": p_n}}}}}

    report = {"overall": cell(0.5, 90, 0), "by": {"gender_race": {"a": cell(1.0, 40, 0), "b": cell(1.0, 50, 0)}}}
    for strict in (False, True):
        gate = filter_gate(report, 40, 0.5, strict=strict)
        assert gate["passed"] is None and gate["failing"] == [], strict
        assert [m["measure"] for m in gate["not_judged"]] == ["delta_p_female:c"]
    report["by"]["gender_race"]["b"] = cell(9.0, 50, 0) | {"delta_ita": {"mean": {"value": 5.0, "lo": 3.0, "hi": 7.0,
                                                                                  "n": 50}}}
    assert filter_gate(report, 2, 0.5, strict=True)["passed"] is False  # a judged row beyond still fails it


# --- Ctrl-C: one word of it, the command's own where it has one -------------------------------------------------

def interrupted_when(argv: list[str], ready, within: float = 240.0) -> tuple[int, str]:
    """``main.py argv`` started as from a terminal and sent Ctrl-C once ``ready()``: its exit status and output."""
    import signal
    import sys

    from tests.conftest import terminate_group_when

    return terminate_group_when([sys.executable, "main.py", *argv], ready, within, signal.SIGINT)


def _run_of_a_long_video(tmp_path, tiny_models):
    """`run` over a video of one face in every frame, stopped once its first rows are in the CSV."""
    face = cv2.resize(cv2.imread(str(utk_images(1)[0])), (120, 120))
    frame = np.full((200, 200, 3), 90, np.uint8)
    frame[40:160, 40:160] = face
    clip = tmp_path / "long.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (200, 200))
    for _ in range(3000):  # far more than are processed before the stop reaches it
        writer.write(frame)
    writer.release()
    out = tmp_path / "rows.csv"
    argv = ["run", "--source", str(clip), "--out", str(out), "--classifier", str(tiny_models["classifier"]),
            "--no-filter", "--threads", "1"]
    return argv, lambda: out.exists() and out.read_text().count("\n") > 1, "interrupted after "


def _audit_of_many_images(tmp_path, tiny_models):
    """`audit` of a folder of many small images, stopped once its cache holds the first one."""
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1500):  # far more than are measured before the stop reaches it
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(60, 200, (40, 40, 3), dtype=np.uint8))
    cache = tmp_path / "out" / "cache"
    argv = audit(tmp_path, f"folder:{folder}", tiny_models["classifier"], "--aligned", "--batch", "1")
    return argv, lambda: cache.is_dir() and any(p.stat().st_size for p in cache.iterdir()), "interrupted: the "


@pytest.mark.parametrize("command", [_run_of_a_long_video, _audit_of_many_images], ids=["run", "audit"])
def test_ctrl_c_is_said_once_in_the_commands_own_words(command, tmp_path, tiny_models):
    """`audit` said "interrupted: the 1248 image(s) computed so far are cached; …" and then a bare "interrupted";
    `run` "interrupted after 224 frame(s): …" and then "interrupted" again."""
    argv, ready, own = command(tmp_path, tiny_models)
    code, text = interrupted_when(argv, ready)
    lines = [line.strip() for line in re.split(r"[\r\n]+", text)]
    assert code == 130 and "Traceback" not in text, text
    assert text.count(own) == 1, text
    assert "interrupted" not in lines, text


def test_a_command_that_says_nothing_of_its_stop_is_still_said_to_be_interrupted(capsys, monkeypatch):
    """A real SIGINT within a command that has no words of its own for it (doctor, here): main says it."""
    import signal

    import inference.doctor

    def stopped(_args):
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(inference.doctor, "main", stopped)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a suite run in the background ignores it
    try:
        code, out, err = run(["doctor"], capsys)
    finally:
        signal.signal(signal.SIGINT, before)
    assert code == 130 and err.splitlines() == ["interrupted"] and "interrupted" not in out
