"""`main.py audit`, read as a researcher reads its outputs: user text drawn as written, a page that cannot be drawn
costing no report, the software that made the numbers recorded, skin tones in the scale's order, and figures
that say what they show.

The faces are synthetic patches of a few skin colours (and a grey one, whose skin is not measurable), audited
whole (--aligned) by the tiny random-weight models of conftest.
"""
from __future__ import annotations

import copy
import json
import platform
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_audit.py

from conftest import own_pattern, run_main  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# light to dark, then a grey whose skin is not measurable (b* too low)
COLOURS = ((245, 222, 205), (228, 190, 160), (205, 160, 125), (175, 125, 90), (125, 82, 58), (72, 48, 36),
           (128, 128, 128))
PER_COLOUR = 2
DOLLAR_GROUPS = ("income $10k-$20k", "$\\foo$", "price $5-$10")  # a '$' pair is mathtext to matplotlib


def _write_faces(folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for c, rgb in enumerate(COLOURS):
        for k in range(PER_COLOUR):
            img = np.clip(np.array(rgb, float) + rng.normal(0, 3, (40, 40, 3)) + own_pattern(rng, 40, 4.0), 0, 255)
            name = f"face_{c}_{k}.png"
            cv2.imwrite(str(folder / name), cv2.cvtColor(img.astype(np.uint8), cv2.COLOR_RGB2BGR))
            names.append(name)
    return names


def _audit(capsys, folder: Path, out: Path, models: dict, *extra: str) -> tuple[int, str]:
    code, _, err = run_main(["audit", "--dataset", f"folder:{folder}", "--aligned", "--out", str(out),
                             "--classifier", str(models["classifier"]), "--classifier", str(models["classifier2"]),
                             "--filter", str(models["darken"]), "--threads", "1", "--no-progress", *extra], capsys)
    return code, err


def _groups_csv(path: Path, names: list[str], groups: tuple[str, ...]) -> Path:
    path.write_text("file,group\n" + "".join(f"{n},{groups[i % len(groups)]}\n" for i, n in enumerate(names)),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def audited(tmp_path_factory, tiny_models):
    """An unlabelled audit with a filter (its faces grouped by skin tone, and by a groups CSV): its folder, report.json
    and run.json."""
    d = tmp_path_factory.mktemp("reader")
    names = _write_faces(d / "faces")
    groups = _groups_csv(d / "groups.csv", names, ("team a", "team b"))
    code, err = _audit(_NoCapture(), d / "faces", d / "out", tiny_models, "--groups", str(groups))
    assert code == 0, err
    out = d / "out"
    read = lambda name: json.loads((out / name).read_text(encoding="utf-8"))  # noqa: E731
    return {"dir": d, "names": names, "out": out, "report": read("report.json"), "run": read("run.json")}


class _NoCapture:
    """run_main's capsys for a module fixture, which cannot take pytest's function-scoped one."""

    def readouterr(self):
        return "", ""


def _captured_figures(monkeypatch) -> list:
    """Every figure drawn, kept after it is saved as the report saves it."""
    from inference.audit import figures

    figs, real = [], figures._png
    monkeypatch.setattr(figures, "_png", lambda fig: figs.append(fig) or real(fig))
    return figs


def _drawn_as_written(text) -> bool:
    from matplotlib import cbook

    return not text.get_parse_math() or not cbook.is_math_text(text.get_text())


# --- 1. '$' in a group name ---------------------------------------------------------------------------------------

def test_names_with_dollar_signs_are_drawn_as_written_in_every_kind_of_figure(monkeypatch):
    """'$\\foo$' stopped the audit with a mathtext error; 'price $5-$10' was drawn as 'price 5 − 10'."""
    from matplotlib.text import Text

    from inference.audit import figures

    figs = _captured_figures(monkeypatch)
    ci = {"value": 0.5, "lo": 0.4, "hi": 0.6, "n": 9}
    hist = {"bins": [0.0, 0.5, 1.0], "counts": [1, 2]}
    face = np.zeros((16, 16, 3), np.uint8)
    assert figures.grouped_bars({"model $a$": {g: ci for g in DOLLAR_GROUPS}}, "by $x$", "$y$")
    assert figures.histograms({g: hist for g in DOLLAR_GROUPS}, "$t$", "$x$")
    assert figures.face_grid([(g, [(g, face)]) for g in DOLLAR_GROUPS], "$t$")
    texts = [t for fig in figs for t in fig.findobj(Text) if "$" in t.get_text()]
    assert {g for g in DOLLAR_GROUPS if any(g in t.get_text() for t in texts)} == set(DOLLAR_GROUPS)
    assert all(_drawn_as_written(t) for t in texts), [t.get_text() for t in texts if not _drawn_as_written(t)]


def test_an_audit_of_groups_named_with_dollar_signs_writes_its_page_and_exits_0(audited, tmp_path, tiny_models,
                                                                                  capsys):
    groups = _groups_csv(tmp_path / "groups.csv", audited["names"], DOLLAR_GROUPS)
    code, err = _audit(capsys, audited["dir"] / "faces", tmp_path / "out", tiny_models, "--groups", str(groups))
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert set(report["groups"]["sizes"]["group"]) == set(DOLLAR_GROUPS)
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert all(g in page for g in DOLLAR_GROUPS)


def test_a_page_that_cannot_be_drawn_keeps_the_report_and_exits_2_with_the_gates_verdict(audited, tmp_path,
                                                                                         tiny_models, capsys,
                                                                                         monkeypatch):
    """A figure that failed to draw had ended the audit with a traceback and status 1, "the gate failed" to a CI
    job, and no file of the finished audit."""
    from inference.audit import figures

    out = tmp_path / "out"
    code, err = _audit(capsys, audited["dir"] / "faces", out, tiny_models)
    assert code == 0 and (out / "report.html").exists(), err

    def broken(*args, **kwargs):
        raise ValueError("drawing\n  failed here")

    monkeypatch.setattr(figures, "histograms", broken)
    code, err = _audit(capsys, audited["dir"] / "faces", out, tiny_models, "--max-delta-ita", "1")
    assert code == 2, err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    verdict = "passed" if report["gate"]["passed"] else "failed"
    assert (f"error: {out / 'report.html'}: could not draw the HTML report (ValueError: drawing failed here); "
            f"report.json, faces.csv and run.json are written; the ship gate {verdict}") in err
    assert report["gate"] and (out / "faces.csv").exists()
    assert json.loads((out / "run.json").read_text())["html_not_drawn"] == "ValueError: drawing failed here"
    assert not (out / "report.html").exists()  # the earlier audit's page would contradict this report
    assert not list(out.glob(".staged-*"))


# --- 2. the software that made the numbers ------------------------------------------------------------------------

def test_the_report_records_the_software_that_made_it(audited):
    import cv2 as opencv
    import onnxruntime
    import scipy

    from inference.audit.report import SCHEMA_VERSION
    from inference.pipeline import MEASURES_VERSION

    sw = audited["report"]["software"]
    assert sw["measures_version"] == MEASURES_VERSION and sw["python"] == platform.python_version()
    assert (sw["onnxruntime"], sw["opencv"], sw["numpy"], sw["scipy"]) == (
        onnxruntime.__version__, opencv.__version__, np.__version__, scipy.__version__)
    from importlib.metadata import version

    assert sw["bias_mirror"] == version("bias-mirror")
    git = shutil.which("git")
    if git and (REPO / ".git").exists():
        head = subprocess.run([git, "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            assert sw["git_commit"] == head.stdout.strip() and isinstance(sw["git_modified"], bool)
    schema = (REPO / "docs" / "audit_schema.md").read_text(encoding="utf-8")
    assert audited["report"]["schema_version"] == SCHEMA_VERSION
    assert f"`schema_version` {SCHEMA_VERSION})" in schema and "14: `software`" in schema
    assert "### `software`" in schema


def test_the_pages_command_names_paths_by_their_last_part_and_survives_a_byte_not_utf8():
    """The header had shown the folders of the user's home (the page is the file people forward), and a folder named
    in Latin-1 (M\xfcller, a surrogate once decoded) had stopped the page's write: the whole audit lost."""
    from inference.audit.html import run_words

    argv = ["audit", "--dataset", "utkface:/home/ana/data/utkface/", "--out", "/home/ana/M\udcfcller/out",
            "--classifier", "C:\\Users\\ana\\mine.onnx", "--groups", "groups.csv", "--limit", "40"]
    words = run_words({"date": "2026-12-07", "argv": argv})
    assert words == ("run 2026-12-07: python main.py audit --dataset utkface:utkface --out out --classifier mine.onnx "
                     "--groups groups.csv --limit 40")
    assert "ana" not in words
    words.encode("utf-8")  # no lone surrogate left to stop the write
    in_folder = run_words({"date": "d", "argv": ["audit", "--dataset", "folder:/home/ana/M\udcfcller"]})
    assert in_folder.endswith("--dataset 'folder:M\\xfcller'"), in_folder


def test_the_software_block_is_written_without_git(monkeypatch, tmp_path):
    from inference import checkout
    from inference.audit import report

    monkeypatch.setattr(checkout.shutil, "which", lambda name: None)
    assert report.software()["git_commit"] is None and report.software()["git_modified"] is None
    monkeypatch.undo()
    monkeypatch.setattr(checkout.defaults, "REPO", tmp_path)  # no checkout
    assert report.software()["git_commit"] is None


def test_the_pages_header_gives_the_date_the_command_the_software_and_full_hashes(audited):
    """The header had no date, command line or software, and cut each model's sha256 to 16 hex digits."""
    from inference.audit.html import build_html

    r, run = audited["report"], audited["run"]
    argv = ["audit", "--dataset", "folder:/home/someone/my faces", "--out", "o"]
    page = build_html({**r, "run": {"date": run["date"], "argv": argv}})
    header = page.split("<h2>Summary</h2>")[0]
    assert run["date"] in header and "python main.py audit --dataset &#x27;folder:my faces&#x27; --out o" in header
    sw = r["software"]
    assert all(v in header for v in (sw["numpy"], sw["onnxruntime"], sw["opencv"], sw["scipy"], sw["python"]))
    assert f"measures version {sw['measures_version']}" in header
    models = page.split("<h2>Models</h2>")[1].split("</table>")[0]
    hashes = [c["sha256"] for c in r["models"]["classifiers"]] + [r["models"]["filter"]["sha256"]]
    assert all(f"<td>{h}</td>" in models for h in hashes)
    written = (audited["out"] / "report.html").read_text(encoding="utf-8").split("<h2>Summary</h2>")[0]
    assert run["date"] in written and sw["numpy"] in written


# --- 3. skin tones down the ITA scale -----------------------------------------------------------------------------

def _scale_order() -> list[str]:
    """The ITA categories from the highest ITA to the lowest, as skin.py bins them, then 'not measurable'."""
    from inference.skin import NOT_MEASURABLE, ita_category

    return [*dict.fromkeys(ita_category(float(x)) for x in np.linspace(89, -89, 500)), NOT_MEASURABLE]


def _every_tone(r: dict) -> dict:
    """``r`` with every skin_tone grouping holding every category, listed by name (as report.json keeps them)."""
    r = copy.deepcopy(r)
    places = [r["filter"]["by"], *(s["by"] for s in r["skin"].values()), *(f["by"] for f in r["focus"].values()),
              *(c["p_female"]["by"] for c in r["classifiers"].values())]
    for by in places:
        cell = next(iter(by["skin_tone"].values()))
        by["skin_tone"] = {tone: copy.deepcopy(cell) for tone in sorted(_scale_order())}
    return r


def _first_cells(page: str, after: str) -> list[str]:
    """The first cell of each row of the first table after ``after``."""
    rows = page.split(after, 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr><td>(.*?)</td>", rows)


def test_skin_tones_are_listed_down_the_ita_scale_in_tables_figures_and_the_gate(audited, monkeypatch):
    """By name they ran brown, dark, intermediate, light, not measurable, tan, very light."""
    from inference.audit.gate import filter_gate
    from inference.audit.html import build_html

    r, scale = _every_tone(audited["report"]), _scale_order()
    assert list(r["filter"]["by"]["skin_tone"]) != scale  # what this test is about
    figs = _captured_figures(monkeypatch)
    page = build_html(r)
    assert [c for c in _first_cells(page, "<h3>By skin_tone</h3>") if c != "(all faces)"] == scale
    skin = [c.removeprefix("skin_tone: ") for c in _first_cells(page, "<h3>original faces</h3>")
            if c.startswith("skin_tone: ")]
    assert skin == scale
    [bars] = [f.axes[0] for f in figs if f.axes[0].get_title().startswith("ΔITA° by skin_tone")]
    assert [t.get_text().split("\n")[0] for t in bars.get_xticklabels()] == scale
    [comp] = [f.axes[0] for f in figs if f.axes[0].get_title().startswith("Share per ITA category")]
    shown = [t.get_text().split("\n")[0] for t in comp.get_xticklabels()]
    assert shown == [t for t in scale if t in shown]
    gate = filter_gate(r["filter"], 2.0, 0.05)
    assert list(dict.fromkeys(row["group"] for row in gate["rows"] if row["grouping"] == "skin_tone")) == scale


# --- 4. the examples' map -----------------------------------------------------------------------------------------

def test_the_examples_show_the_predicted_classs_map_and_name_its_class(audited, monkeypatch):
    """Every example showed the --cam-class map (the female class's, by default), captioned "CAM <classifier>"."""
    from inference.audit import figures
    from inference.audit.html import build_html

    crop = np.full((16, 16, 3), 120, np.uint8)
    focus_cam, other_cam = np.eye(16, dtype=np.float32), np.ones((16, 16), np.float32)  # maps at the crop's size
    face = SimpleNamespace(original=SimpleNamespace(crop=crop), filtered=SimpleNamespace(crop=crop))

    class Render:
        def __call__(self, file, index):
            return face

        def focus_map(self, face, name):
            return "male", focus_cam

        def cam(self, face, name):  # the --cam-class map, which the examples must not show
            return other_cam

    grids, real = [], figures.face_grid
    monkeypatch.setattr(figures, "face_grid", lambda rows, title: grids.append((title, rows)) or real(rows, title))
    r = audited["report"]
    build_html(r, Render())
    [rows] = [rows for title, rows in grids if title.startswith("Before / after")]
    first = next(iter(r["classifiers"]))
    assert rows and all(panels[2][0] == f"{first}: male CAM" for _, panels in rows)
    assert all(np.array_equal(panels[2][1], figures.overlay(crop, focus_cam)) for _, panels in rows)


# --- 5. the contradicted labels' grid -----------------------------------------------------------------------------

def test_the_grids_title_and_captions_clear_one_another(monkeypatch):
    """The title was drawn over two-line captions ("labelled male / P(f) …"), and a caption naming a classifier
    ran into its neighbour's."""
    from inference.audit import figures

    figs = _captured_figures(monkeypatch)
    face = np.zeros((16, 16, 3), np.uint8)
    for lines in range(1, 5):
        caption = "\n".join(f"line {i}" for i in range(lines))
        figures.face_grid([("1-3", [(caption, face)] * 3), ("4", [(caption, face)])], "the title")
    named = "labelled male, P(female):\nresnet10-utk-gender-balanced 0.95\nresnet10-utk-gender-unbalanced 0.92"
    figures.face_grid([("1-6", [(named, face)] * 6)], "the title")
    for fig in figs:
        fig.canvas.draw()
        title = fig._suptitle.get_window_extent()
        captions = [ax.title.get_window_extent() for ax in fig.axes if ax.title.get_text()]
        assert not any(c.overlaps(title) for c in captions)
        assert not any(a.overlaps(b) for i, a in enumerate(captions) for b in captions[i + 1:])


def test_a_contradicted_faces_caption_names_the_classifier_of_each_p_female(tmp_path, tiny_models, capsys,
                                                                           monkeypatch):
    """It read "P(f) 0.95 0.92 0.92", whichever classifier each was."""
    from inference.audit import figures
    from inference.audit.html import build_html

    names = _write_faces(tmp_path / "faces")
    (tmp_path / "faces" / "labels.csv").write_text(
        "file,gender,race\n" + "".join(f"{n},{'female' if i % 2 else 'male'},White\n" for i, n in enumerate(names)))
    code, err = _audit(capsys, tmp_path / "faces", tmp_path / "out", tiny_models, "--no-html")
    assert code == 0, err
    r = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    classifiers = list(r["classifiers"])
    p = {n: 0.1 * (k + 5) for k, n in enumerate(classifiers)}
    r["labels"]["faces"] = [{"file": names[0], "face": 0, "gender": "male", "p_female": p}]
    crop = np.zeros((16, 16, 3), np.uint8)
    grids, real = [], figures.face_grid
    monkeypatch.setattr(figures, "face_grid", lambda rows, title: grids.append((title, rows)) or real(rows, title))

    class Render:
        def __call__(self, file, index):
            return SimpleNamespace(original=SimpleNamespace(crop=crop), filtered=None)

        def focus_map(self, face, name):
            return None

    build_html(r, Render())
    [rows] = [rows for title, rows in grids if "contradicted" in title]
    [(caption, _)] = rows[0][1]
    assert caption.splitlines()[0].startswith("labelled male")
    assert caption.splitlines()[1:] == [f"{n} {p[n]:.2f}" for n in classifiers]


# --- 6. the axes say what they show -------------------------------------------------------------------------------

def test_the_delta_p_chart_labels_its_axis_and_the_heat_strips_their_colour(audited, monkeypatch):
    """The ΔP(female)/flip-rate chart had no y label, its flip rate a 0–1 share beside %-shares everywhere else,
    and the heat strips' colour bar no label."""
    from inference.audit.html import build_html

    figs = _captured_figures(monkeypatch)
    build_html(audited["report"])
    delta_p = [f.axes[0] for f in figs if "ΔP(female) and flip rate" in f.axes[0].get_title()]
    assert delta_p and all("flip rate" in ax.get_ylabel() and "0–1" in ax.get_ylabel() for ax in delta_p)
    strips = [f for f in figs if "per face" in f.axes[0].get_title()]
    assert strips and all(len(f.axes) == 2 and f.axes[1].get_ylabel() for f in strips)


# --- 7. ties in the detection gap ---------------------------------------------------------------------------------

def test_the_detection_gap_names_the_first_of_tied_groups_as_the_accuracy_gap_does():
    """Of groups tied for the highest share found, the last by name had been named best."""
    from inference.audit.detection import detection_audit

    found = lambda k: {"error": None, "n_faces": k}  # noqa: E731
    images = [found(0), found(1), found(0), found(1), found(1), found(1), found(1), found(1)]
    labels = ["A", "A", "B", "B", "C", "C", "D", "D"]
    gap = detection_audit(images, {"g": labels}, "haar-test")["gaps"]["g"]
    assert (gap["best"], gap["worst"]) == ("C", "A")


def test_a_csv_rows_absolute_paths_are_not_kept_in_the_shared_report(tmp_path, tiny_models, capsys):
    """A groups CSV row naming a photo missing from the folder had put its whole path, a folder of the user's home,
    in report.json and on the page."""
    folder = tmp_path / "faces"
    names = _write_faces(folder)
    csv = _groups_csv(tmp_path / "groups.csv", [str(folder / n) for n in names], ("a", "b"))
    with open(csv, "a", encoding="utf-8") as f:
        f.write(f"{folder / 'gone.jpg'},a\n/home/frank/secret_project/frank_at_clinic.jpg,b\n")
    out = tmp_path / "out"
    code, _ = _audit(capsys, folder, out, tiny_models, "--groups", str(csv))
    assert code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["images"]["groups_csv"]["listed_not_found"] == ["gone.jpg", "…/frank_at_clinic.jpg"]
    for written in ("report.json", "report.html"):
        text = (out / written).read_text(encoding="utf-8")
        assert "secret_project" not in text and str(tmp_path) not in text, written


def test_an_option_given_with_equals_keeps_its_name_on_the_page():
    """"--dataset=folder:/home/x" had shown as "x": a command that reads as if it had no --dataset."""
    from inference.audit.html import run_words

    words = run_words({"date": "d", "argv": ["audit", "--dataset=folder:/home/a/alice", "--out=/tmp/x/f2",
                                             "--classifier=/t/mine.onnx", "--no-progress", "--limit", "4"]})
    assert words == ("run d: python main.py audit --dataset=folder:alice --out=f2 --classifier=mine.onnx --no-progress "
                     "--limit 4")


def test_the_pages_median_cells_show_a_ci_clear_of_0_as_the_summary_does(audited):
    """The summary printed "median 0.0009 [95% CI 0.0001, 0.0020]" and said it lay above 0, while the same page's
    table rounded it to 0.001 [95% CI 0.000, 0.002]."""
    from inference.audit.html import build_html
    from inference.audit.summary import P_DIGITS, median_ci

    r = copy.deepcopy(audited["report"])
    name = next(iter(r["classifiers"]))
    median = {"value": 0.0009, "lo": 0.0001, "hi": 0.002, "n": 400}
    r["filter"]["overall"]["classifiers"][name]["delta_p_female"]["median"] = median
    shown = median_ci(median, P_DIGITS)
    assert shown != median_ci(median, P_DIGITS - 1) and "0.0001" in shown  # the case: rounding hides its clearance
    page = build_html(r)
    tables = [t for t in (part.split("</table>")[0] for part in page.split(f"<h4>{name}</h4>")[1:])
              if "median ΔP(female)" in t]
    rows = [t.split("(all faces)")[1].split("</tr>")[0] for t in tables]
    assert rows and all(shown in row for row in rows), rows


def test_a_rows_path_is_named_within_the_dataset_however_the_folder_was_given(tmp_path, monkeypatch):
    """Given relative ("folder:faces", as the README's examples are), a missing photo's row had lost its subfolder
    ("…/gone.jpg"), and a row stepping out of the folder ("../../private/leak.jpg") went into the report whole."""
    from inference.audit.cli import shareable_name

    (tmp_path / "faces" / "women").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for root in ("faces", str(tmp_path / "faces")):
        assert shareable_name(str(tmp_path / "faces" / "women" / "gone.jpg"), root) == "women/gone.jpg"
        assert shareable_name("../../private_stuff/leak.jpg", root) == "…/leak.jpg"
        assert shareable_name("women/x.jpg", root) == "women/x.jpg"
        assert shareable_name("/home/frank/secret/a.jpg", root) == "…/a.jpg"
        # written through a link to the folder: where the readers place it, not its last part alone
        (tmp_path / "link").symlink_to(tmp_path / "faces", target_is_directory=True) if root == "faces" else None
        assert shareable_name(str(tmp_path / "link" / "women" / "gone.jpg"), root) == "women/gone.jpg"


def test_a_dataset_given_as_the_current_folder_is_named_by_its_name(tmp_path, tiny_models, capsys, monkeypatch):
    """`--dataset folder:.` had been reported as "folder:" in report.json, on the page and in the terminal."""
    folder = tmp_path / "my faces"
    _write_faces(folder)
    monkeypatch.chdir(folder)
    code, _, err = run_main(["audit", "--dataset", "folder:.", "--aligned", "--out", str(tmp_path / "out"),
                             "--classifier", str(tiny_models["classifier"]), "--no-filter", "--no-html",
                             "--threads", "1", "--no-progress"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["audit"]["dataset"] == "folder:my faces"


# --- report.html read with a screen reader (session 27's review) ----------------------------------------------------
# The page says its language, its headings do not skip a level, and each classifier's heading comes before that
# classifier's figures (heading navigation had put a classifier's figures under the one before), whose text
# alternatives name the classifier and the grouping.


class _Outline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.items: list[tuple[str, str]] = []  # ("h3", text) or ("img", alt)
        self._heading: str | None = None
        self.lang = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = tag
            self.items.append((tag, ""))
        if tag == "img":
            self.items.append(("img", a.get("alt") or ""))

    def handle_data(self, data):
        if self._heading:
            tag, text = self.items[-1]
            self.items[-1] = (tag, text + data)

    def handle_endtag(self, tag):
        if tag == self._heading:
            self._heading = None


def test_report_html_outline_reads_in_order(audited):
    from inference.audit.html import build_html

    page = build_html(audited["report"])
    outline = _Outline()
    outline.feed(page)
    assert outline.lang == "en"
    levels = [int(t[1]) for t, _ in outline.items if t != "img"]
    skips = [(a, b) for a, b in zip(levels, levels[1:]) if b > a + 1]
    assert not skips, skips
    for name in audited["report"]["classifiers"]:
        alt = f"P(female) histogram {name}"
        at = next(i for i, (t, text) in enumerate(outline.items) if t == "img" and text == alt)
        heading = next(text for t, text in reversed(outline.items[:at]) if t != "img")
        assert heading == name, (alt, heading)
    alts = [text for t, text in outline.items if t == "img"]
    assert "delta p bars" not in alts and "delta p histograms" not in alts
