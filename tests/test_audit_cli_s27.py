"""The audit's command line: a groups CSV that groups no audited image, and --split all."""
from __future__ import annotations

import json

import pytest

from tests.conftest import run_main, utk_images


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "utk"
    d.mkdir()
    for p in utk_images(8):
        (d / p.name).symlink_to(p)
    return d


def _audit(data, out, classifier, *extra):
    return ["audit", "--dataset", f"utkface:{data}", "--out", str(out), "--classifier", str(classifier),
            "--no-filter", "--no-html", "--no-progress", "--threads", "1", *extra]


def test_groups_csv_naming_no_image_is_refused(data, tmp_path, tiny_models, capsys):
    csv = tmp_path / "groups_bad.csv"
    csv.write_text("file,group\nnothere.jpg,A\nnorhere.jpg,B\n")
    code, _, err = run_main(_audit(data, tmp_path / "out", tiny_models["classifier"], "--groups", str(csv)), capsys)
    assert code == 2
    line = next(x for x in err.splitlines() if x.startswith("error:"))
    assert str(csv) in line and "none of its rows names an image of the dataset" in line and "2 name(s)" in line
    assert "nothere.jpg" in line
    assert not (tmp_path / "out" / "report.json").exists()  # refused before anything was measured


def test_groups_csv_partly_matching_still_audits(data, tmp_path, tiny_models, capsys):
    csv = tmp_path / "groups.csv"
    first = sorted(p.name for p in data.iterdir())[0]
    csv.write_text(f"file,group\n{first},A\nnothere.jpg,B\n")
    out = tmp_path / "out"
    code, _, err = run_main(_audit(data, out, tiny_models["classifier"], "--groups", str(csv)), capsys)
    assert code == 0
    assert "warning:" in err and "nothere.jpg" in err
    assert "group" in json.loads((out / "report.json").read_text())["groups"]["groupings"]


def test_split_all_audits_every_image(data, tmp_path, tiny_models, capsys):
    reports = []
    for name, extra in (("plain", ()), ("all", ("--split", "all"))):
        code, _, err = run_main(_audit(data, tmp_path / name, tiny_models["classifier"], *extra), capsys)
        assert code == 0, err
        reports.append(json.loads((tmp_path / name / "report.json").read_text()))
    assert reports[0]["images"]["n_images"] == reports[1]["images"]["n_images"] == 8
    assert reports[1]["audit"]["split"] is None
