"""`train evaluate` takes faces as the audit does, and its summary names tied and small groups.

Found by a review: evaluate classified each whole 640×480 photo of a folder as if it were an aligned face crop
(42.5 % where the audit, which finds faces in a folder's photos, said 94.9 %), and its summary line named one of
five groups tied at 92.3 % "the worst", a group of 5 faces with no word of its size.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.metrics import SMALL_GROUP, GroupedMetrics, disaggregate
from tests.conftest import REPO, run_main, utk_images

MODEL = REPO / "resources" / "models" / "resnet10_balanced.onnx"
CANVAS = (480, 640)  # a photo's height and width, as the review's
FACE_PX = 220  # a face's side in it, as the review's
UTK_GENDERS = {"0": "male", "1": "female"}
UTK_RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}


def wall(rng: np.random.Generator) -> np.ndarray:
    """A plain, smoothly shaded wall for a photo's background (no face in it)."""
    h, w = CANVAS
    yy, xx = np.mgrid[0:h, 0:w]
    tint = rng.integers(-10, 11, 3)
    return np.clip(np.stack([150 + 40 * xx / w, 140 + 30 * yy / h, 120 + 20 * xx / w], -1) + tint,
                   0, 255).astype(np.uint8)


def photos_of_faces(folder: Path, n: int) -> tuple[list[str], str]:
    """``n`` UTKFace faces, each pasted onto a wall of its own as a photo, and one photo of the wall alone, all
    labelled in labels.csv: the photos' names, and the faceless one's."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows, names = ["file,gender,race,age,split"], []
    h, w = CANVAS
    for i, face in enumerate(utk_images(n)):
        age, gender, race = face.name.split("_")[:3]
        photo = wall(rng)
        y, x = (h - FACE_PX) // 2 + int(rng.integers(-20, 21)), (w - FACE_PX) // 2 + int(rng.integers(-20, 21))
        photo[y:y + FACE_PX, x:x + FACE_PX] = cv2.resize(cv2.imread(str(face)), (FACE_PX, FACE_PX),
                                                         interpolation=cv2.INTER_AREA)
        names.append(f"{i:03d}.jpg")
        cv2.imwrite(str(folder / names[-1]), photo)
        rows.append(f"{names[-1]},{UTK_GENDERS[gender]},{UTK_RACES[race]},{age},test")
    cv2.imwrite(str(folder / "wall.jpg"), wall(rng))
    rows.append("wall.jpg,female,White,30,test")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return names, "wall.jpg"


def evaluated(argv: list[str], out: Path, capsys) -> tuple[int, str, str, dict]:
    code, stdout, err = run_main(["train", "evaluate", "--model", str(MODEL), *argv, "--json", str(out)], capsys)
    return code, stdout, err, json.loads(out.read_text()) if code == 0 else {}


def test_a_folders_photos_are_evaluated_on_the_faces_the_audit_finds(tmp_path, capsys, caplog):
    folder = tmp_path / "photos"
    names, faceless = photos_of_faces(folder, 8)
    code, _, _ = run_main(["audit", "--dataset", f"folder:{folder}", "--classifier", str(MODEL), "--no-filter",
                           "--no-html", "--no-progress", "--out", str(tmp_path / "audit")], capsys)
    assert code == 0
    report = json.loads((tmp_path / "audit" / "report.json").read_text())
    [audited] = [c["metrics"]["overall"] for c in report["classifiers"].values()]
    code, stdout, _, got = evaluated(["--dataset", f"folder:{folder}"], tmp_path / "eval.json", capsys)
    assert code == 0
    [overall] = [m["overall"] for m in got["models"].values()]
    # the same faces, so the same figures (the audit rounds each P(female) to 6 places)
    assert overall["n"] == audited["n"] == len(names) + 1 - len(report["images"]["no_face"])
    assert overall["accuracy"]["value"] == audited["accuracy"]["value"]
    assert overall["mean_p_female"]["value"] == pytest.approx(audited["mean_p_female"]["value"], abs=1e-5)
    # the photo with no face is counted and named, not classified whole nor dropped unsaid
    no_face = got["evaluated"]["no_face"]
    assert faceless in no_face and set(no_face) == set(report["images"]["no_face"])
    said = [r.getMessage() for r in caplog.records if "found no face in" in r.getMessage()]
    assert got["evaluated"]["detect"] is True and len(said) == 1 and faceless in said[0]
    assert "found by the detector" in stdout


def test_aligned_takes_the_whole_image_and_a_detector_option_with_it_is_refused(tmp_path, capsys):
    folder = tmp_path / "photos"
    names, _ = photos_of_faces(folder, 2)
    code, _, _, got = evaluated(["--dataset", f"folder:{folder}", "--aligned"], tmp_path / "eval.json", capsys)
    assert code == 0 and got["evaluated"]["detector"] == "aligned" and got["evaluated"]["no_face"] == []
    [overall] = [m["overall"] for m in got["models"].values()]
    assert overall["n"] == len(names) + 1  # every photo, the faceless one too, is its own face
    code, _, err = run_main(["train", "evaluate", "--model", str(MODEL), "--dataset", f"folder:{folder}", "--aligned",
                             "--haar-cascade", "default"], capsys)
    assert code == 2 and "--haar-cascade choose(s) how faces are found, and --aligned take" in err


def test_photos_with_no_face_at_all_are_an_error_that_says_so(tmp_path, capsys):
    folder = tmp_path / "walls"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), wall(rng))
    (folder / "labels.csv").write_text("file,gender,split\n" + "".join(f"{i}.jpg,male,test\n" for i in range(3)))
    code, _, err = run_main(["train", "evaluate", "--model", str(MODEL), "--dataset", f"folder:{folder}",
                             "--min-age", "-1"], capsys)
    assert code == 2 and "found no face in 3 of the 3 photo(s) read" in err and "nothing was evaluated" in err
    assert "--aligned" in err


# --- the summary line: ties and small groups --------------------------------------------------------------------

def metrics_of(groups: dict[str, tuple[int, int]]):
    """GroupedMetrics where each gender×race group has (right, of n) faces right: every face annotated male, right
    where called male."""
    y, pred, labels = [], [], []
    for g, (right, n) in groups.items():
        y += [False] * n
        pred += [False] * right + [True] * (n - right)
        labels += [g] * n
    return disaggregate(np.array(y), np.array(pred), np.array(pred, float), {"gender×race": labels})


def test_every_group_tied_for_worst_is_named_with_its_own_n():
    from training.evaluate import worst_group_words

    half = SMALL_GROUP // 8  # two small groups of other sizes, each half right
    m = metrics_of({"male|Asian": (half, 2 * half), "male|Black": (2 * half, 4 * half),
                    "male|White": (SMALL_GROUP, SMALL_GROUP)})
    words = worst_group_words(m)
    assert words.startswith("2 gender×race groups tie for worst: ")
    assert f"male|Asian (n={2 * half}, small group) and male|Black (n={4 * half}, small group)" in words
    assert words.endswith(f"tied at {100 * half / (2 * half):.1f}%")


def test_past_four_tied_groups_the_count_is_said():
    from training.evaluate import worst_group_words

    tied = [f"male|{race}" for race in UTK_RACES.values()]
    m = metrics_of({**{g: (0, 2) for g in tied}, "female|White": (3, 3)})
    words = worst_group_words(m)
    assert words.startswith(f"{len(tied)} gender×race groups tie for worst: ")
    assert f"and {len(tied) - 3} more, tied at 0.0%" in words


def test_a_lone_worst_group_is_flagged_small_only_when_it_is():
    from training.evaluate import worst_group_words

    m = metrics_of({"male|Asian": (SMALL_GROUP - 1, SMALL_GROUP), "male|White": (4, 4)})
    words = worst_group_words(m)
    assert words.startswith("worst gender×race group male|Asian (") and "small group" not in words
    assert words.endswith(f"n={SMALL_GROUP})")
    m = metrics_of({"male|Asian": (1, SMALL_GROUP - 1), "male|White": (SMALL_GROUP, SMALL_GROUP)})
    assert worst_group_words(m).endswith(f"n={SMALL_GROUP - 1}, small group)")


def test_groups_all_alike_are_said_alike_not_one_named_worst():
    from training.evaluate import worst_group_words

    m = metrics_of({"male|Asian": (2, 2), "male|White": (5, 5)})
    assert worst_group_words(m) == "every gender×race group alike in accuracy (100.0% in each)"


def always_male(path: Path) -> Path:
    """A classifier that calls every face male (P(female) 0): each group of women ties at 0 % accuracy."""
    import torch

    from inference.card import classifier_card
    from training.export import export

    class AlwaysMale(torch.nn.Module):
        def forward(self, image):
            zero = image.float().mean(dim=(1, 2, 3)) * 0
            return torch.stack([zero + 1, zero], dim=1), zero[:, None, None, None].expand(-1, 2, 4, 4)

    card = classifier_card("always-male", 32, ["male", "female"], (4, 4), "always male (test)", {"dataset": "none"}, {})
    export(AlwaysMale(), [torch.zeros(2, 32, 32, 3, dtype=torch.uint8)], ["image"], ["probs", "cam"], path, card)
    return path


def test_evaluates_summary_names_every_tied_worst_group(tmp_path, tiny_utk, capsys):
    """Every group of women at 0 %: the line named one of them, at 0.0000, as "the worst"."""
    from inference.datasets import open_dataset, select

    model = always_male(tmp_path / "male.onnx")
    code, stdout, _ = run_main(["train", "evaluate", "--model", str(model), "--dataset", f"utkface:{tiny_utk}",
                                "--split", "all", "--min-age", "-1"], capsys)
    assert code == 0
    women = sorted({f"female|{s.race}" for s in select(open_dataset(f"utkface:{tiny_utk}").samples, labelled=True)
                    if s.gender == "female"})
    [line] = [line for line in stdout.splitlines() if line.startswith("always-male")]
    assert f"{len(women)} gender×race groups tie for worst: {women[0]} (n=" in line
    assert "small group" in line and line.endswith("tied at 0.0%")


def test_compare_names_each_variants_worst_groups_as_evaluate_does(tmp_path, tiny_utk, capsys):
    """compare printed its tables and no summary line: a variant's worst group was left to be read off them."""
    from training.evaluate import summary_line

    code, stdout, _ = run_main(["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                                "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"),
                                "--out", str(tmp_path / "cmp"), "--threads", "1"], capsys)
    assert code == 0
    both = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    for name, m in both["models"].items():
        assert summary_line(name, GroupedMetrics(m["overall"], m["by"])) in stdout.splitlines()


# --- several models: the faces are found once per photo ------------------------------------------------------------

class CountingDetector:
    """The real detector, counting the frames it is asked to search (from any thread: detection runs ahead)."""

    def __init__(self, real):
        self.real, self.name, self.searched = real, real.name, []

    def detect(self, frame_bgr):
        self.searched.append(frame_bgr.shape)
        return self.real.detect(frame_bgr)


def test_several_models_find_each_photos_faces_once_and_score_as_each_alone(tmp_path, capsys, monkeypatch):
    """Each model had run the detector over every photo again, though only the crop depends on the model."""
    import training.evaluate as evaluate_module
    from tests.conftest import make_classifier

    folder = tmp_path / "photos"
    names, faceless = photos_of_faces(folder, 4)
    small = make_classifier(tmp_path / "small.onnx")  # cropped at a size of its own, beside MODEL's
    counting: list[CountingDetector] = []
    real_detector = evaluate_module.detector_from_args
    monkeypatch.setattr(evaluate_module, "detector_from_args",
                        lambda *a, **k: counting.append(CountingDetector(real_detector(*a, **k))) or counting[-1])
    dataset = ["--dataset", f"folder:{folder}", "--min-age", "-1"]
    code, _, _, both = evaluated([*dataset, "--model", str(small)], tmp_path / "both.json", capsys)
    assert code == 0 and len(both["models"]) == 2
    [detector] = counting
    assert len(detector.searched) == len(names) + 1  # every photo once, the faceless one too
    assert faceless in both["evaluated"]["no_face"]
    for model in (MODEL, small):
        code, _, _ = run_main(["train", "evaluate", "--model", str(model), *dataset,
                               "--json", str(tmp_path / "alone.json")], capsys)
        assert code == 0
        alone = json.loads((tmp_path / "alone.json").read_text())
        [(key, figures)] = alone["models"].items()
        assert both["models"][key] == figures
        assert both["evaluated"]["no_face"] == alone["evaluated"]["no_face"]


def test_faces_found_once_give_each_model_what_its_own_pipeline_run_gives(tmp_path):
    """Found once and cropped per model, each model's P(female), images read and faces found are those of its own
    ``process_images`` run (``predict_read``), which searched every photo itself."""
    from inference.defaults import load_classifiers
    from inference.faces import make_detector
    from inference.runtime import RuntimeConfig
    from tests.conftest import make_classifier
    from training.evaluate import evaluation_samples, predict_read, predict_read_models

    folder = tmp_path / "photos"
    photos_of_faces(folder, 3)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # unreadable: read by no model
    with (folder / "labels.csv").open("a") as labels:
        labels.write("broken.jpg,male,White,30,test\n")
    samples = evaluation_samples(f"folder:{folder}", "all", None)
    paths = [str(MODEL), str(make_classifier(tmp_path / "small.onnx"))]
    models = dict(zip(paths, load_classifiers(paths, RuntimeConfig(provider="cpu"), "--model")))
    detector = make_detector()
    together = predict_read_models(models, samples, detector=detector)
    for path, model in models.items():
        for shared, own in zip(together[path], predict_read(model, samples, detector=detector)):
            np.testing.assert_array_equal(shared, own)
    assert not together[paths[0]][1].all()  # the broken photo was among them
