"""An audit writes a binned age as the dataset's bin, and joins a groups CSV's rows the way the readers read theirs.

A FairFace face of "30-39" had been written to faces.csv (and to report.json's contradicted labels) as aged 30, the
bin's lower bound, an exact age FairFace never gives; and a groups CSV naming "val\\1.jpg" (written on Windows) had
been "listed but not in the folder", where FairFace's own label files and a folder's labels.csv take such a path.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_audit.py

from conftest import utk_images  # noqa: E402
from inference.audit import cli as audit_cli  # noqa: E402
from inference.audit.collect import age_as_given  # noqa: E402
from inference.datasets import Sample  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402

# (file, age bin, gender, race) as FairFace's label files give them; every face male, so that a classifier sure of
# "female" contradicts every label and each face's age reaches report.json's list of contradicted labels too
ROWS = [("train/1.jpg", "0-2", "Male", "White"), ("train/2.jpg", "30-39", "Male", "Black"),
        ("val/1.jpg", "60-69", "Male", "Indian"), ("val/2.jpg", "more than 70", "Male", "East Asian")]


def fairface_layout(root: Path, rows=ROWS) -> Path:
    """A FairFace folder of ``rows``, each a different real face, with its two label files."""
    for (name, *_), face in zip(rows, utk_images(len(rows))):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(face, root / name)
    for part, prefix in (("train", "train/"), ("val", "val/")):
        with open(root / f"fairface_label_{part}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([["file", "age", "gender", "race"], *[r for r in rows if r[0].startswith(prefix)]])
    return root


@pytest.fixture(scope="module")
def sure_of_female(tmp_path_factory) -> Path:
    """A classifier that calls every face female, P(female) near 1, whatever it shows."""
    import torch

    from inference.card import classifier_card
    from training.export import export

    class Female(torch.nn.Module):
        def forward(self, image):
            x = image.float() / 255.0
            logit = torch.full((x.shape[0],), 40.0) + 0 * x.mean(dim=(1, 2, 3))
            probs = torch.softmax(torch.stack([-logit, logit], dim=1), dim=1)
            cam = torch.nn.functional.adaptive_avg_pool2d(x.mean(dim=3, keepdim=True).permute(0, 3, 1, 2), 4)
            return probs, torch.cat([1 - cam, cam], dim=1)

    path = tmp_path_factory.mktemp("models") / "female.onnx"
    card = classifier_card("female", 32, ["male", "female"], (4, 4), "always female (test)", {"dataset": "none"}, {})
    export(Female(), [torch.zeros(2, 32, 32, 3, dtype=torch.uint8)], ["image"], ["probs", "cam"], path, card)
    return path


def audit(*argv: str) -> tuple[int, dict, dict]:
    parser = argparse.ArgumentParser()
    audit_cli.add_arguments(parser)
    args = parser.parse_args([*argv, "--aligned", "--no-filter", "--no-html", "--no-progress", "--threads", "1"])
    rc = audit_cli.main(args)
    out = Path(args.out)
    return rc, json.loads((out / "report.json").read_text()), json.loads((out / "run.json").read_text())


def faces_csv(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "faces.csv", newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def test_a_binned_age_is_written_as_its_bin_not_its_lower_bound(tmp_path, sure_of_female):
    data = fairface_layout(tmp_path / "ff")
    out = tmp_path / "out"
    bins = {name: age for name, age, *_ in ROWS}
    rc, report, _ = audit("--dataset", f"fairface:{data}", "--classifier", str(sure_of_female), "--out", str(out))
    assert rc == 0
    assert {f: row["age"] for f, row in faces_csv(out).items()} == bins
    assert {f["file"]: f["age"] for f in report["labels"]["faces"]} == bins
    # again from the audit's cache: it holds no labels, so no value cached by an earlier audit can come back
    rc, report, run = audit("--dataset", f"fairface:{data}", "--classifier", str(sure_of_female), "--out", str(out))
    assert rc == 0 and run["images_from_cache"] == len(ROWS)
    assert {f: row["age"] for f, row in faces_csv(out).items()} == bins
    assert {f["file"]: f["age"] for f in report["labels"]["faces"]} == bins


def test_an_exact_age_stays_a_number_and_a_bin_is_its_text():
    lower = 30
    assert age_as_given(Sample("a.jpg", age=lower)) == lower
    assert age_as_given(Sample("a.jpg", age=0)) == 0  # an age of 0 is an age
    assert age_as_given(Sample("a.jpg")) is None
    assert age_as_given(Sample("a.jpg", age=lower, age_bin="30-39")) == "30-39"


def test_a_groups_csv_naming_files_with_backslashes_joins_them(tmp_path, tiny_models, capsys):
    data = fairface_layout(tmp_path / "ff")
    groups = tmp_path / "groups.csv"
    wanted = {"train/1.jpg": "a", "train/2.jpg": "b", "val/1.jpg": "a", "val/2.jpg": "b"}
    # as a CSV written on Windows names them; and one by its absolute path, which the readers take too
    named = {name.replace("/", "\\"): g for name, g in wanted.items()}
    named[str(data / "val" / "2.jpg")] = named.pop("val\\2.jpg")
    groups.write_text("file,group\n" + "".join(f"{name},{g}\n" for name, g in named.items()))
    rc, report, _ = audit("--dataset", f"fairface:{data}", "--classifier", str(tiny_models["classifier"]),
                          "--groups", str(groups), "--out", str(tmp_path / "out"))
    assert rc == 0
    assert report["images"]["groups_csv"]["listed_not_found"] == []
    assert report["images"]["groups_csv"]["not_listed"] == []
    assert "not in the folder" not in capsys.readouterr().err
    assert {f: row["group"] for f, row in faces_csv(tmp_path / "out").items()} == wanted


def test_a_groups_csv_naming_one_file_in_two_ways_is_refused(tmp_path, tiny_models):
    data = fairface_layout(tmp_path / "ff")
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\nval/1.jpg,a\nval\\1.jpg,b\n")
    with pytest.raises(BiasMirrorError) as err:
        audit("--dataset", f"fairface:{data}", "--classifier", str(tiny_models["classifier"]),
              "--groups", str(groups), "--out", str(tmp_path / "out"))
    text = str(err.value)
    assert text.startswith(f"{groups}: ") and "'val/1.jpg'" in text and "'val\\\\1.jpg'" in text
    assert not (tmp_path / "out" / "report.json").exists()
