"""Bad input to the training commands: one line naming the option or file, exit 2, before any data is read or
any step is trained (an --out that is a file must not cost an hour of training)."""
from __future__ import annotations

from pathlib import Path

import shutil
import cv2
import numpy as np
import onnx
import pytest

import main
from inference.datasets import Sample, split_of
from inference.errors import BiasMirrorError
from training import fp16
from training.data.cache import unreadable_note
from tests.conftest import labelled_folder, make_classifier, run_main

NOWHERE = "/nonexistent/bias-mirror-test"


def write_faces(root: Path, n: int, corrupt: int = 0, start: int = 0) -> Path:
    """``n`` synthetic UTKFace-named faces (genders alternate) and ``corrupt`` files that do not decode."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start)
    for i in range(start, start + n):
        img = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8) + (120 if i % 2 else 40)
        cv2.imwrite(str(root / f"{20 + i % 40}_{i % 2}_{i % 5}_2017010100{i:07d}.jpg.chip.jpg"), img)
    for i in range(start + n, start + n + corrupt):
        (root / f"{20 + i % 40}_{i % 2}_0_2017010100{i:07d}.jpg.chip.jpg").write_bytes(b"not a jpeg %d" % i)  # each its own bytes, or they are copies
    return root


def run(argv: list[str], capsys) -> tuple[int, str]:
    """main.main's exit code and stderr (``run_main``)."""
    code, _, err = run_main(argv, capsys)
    return code, err


# --- 1. output paths, checked before anything is read or trained ------------------------------------------------

@pytest.fixture
def a_file(tmp_path) -> Path:
    (tmp_path / "E").write_bytes(b"")
    return tmp_path / "E"


@pytest.mark.parametrize("argv,option,kind", [
    (["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--out", "{file}"], "--out", "a file"),
    (["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--out", "{tmp}/run", "--export-to", "{tmp}"],
     "--export-to", "a folder"),
    (["train", "compare", "--dataset", f"utkface:{NOWHERE}", "--out", "{file}"], "--out", "a file"),
    (["train", "cyclegan", "--domain-a", NOWHERE, "--domain-b", NOWHERE, "--out", "{file}"], "--out", "a file"),
    (["train", "cyclegan", "--domain-a", NOWHERE, "--domain-b", NOWHERE, "--out", "{tmp}/run", "--export-to", "{tmp}"],
     "--export-to", "a folder"),
    (["train", "evaluate", "--model", f"{NOWHERE}.onnx", "--dataset", f"utkface:{NOWHERE}", "--json", "{tmp}"],
     "--json", "a folder"),
    (["train", "fp16", f"{NOWHERE}.onnx", "--out", "{tmp}"], "--out", "a folder"),
    (["train", "fp16", f"{NOWHERE}.onnx", "--out", "{file}/x.onnx"], "--out", "is a file, not a folder"),
    (["bench", "train", "--data", f"utkface:{NOWHERE}", "--json", "{tmp}"], "--json", "a folder"),
    # found by a review (2026-12-06): "new/" wrote a file named new; the run folder's own files, and the classifier
    # the run reads, were replaced by the export
    (["train", "cyclegan", "--domain-a", NOWHERE, "--domain-b", NOWHERE, "--out", "{tmp}/run", "--export-to",
      "{tmp}/new/"], "--export-to", "a folder"),
    (["train", "cyclegan", "--domain-a", NOWHERE, "--domain-b", NOWHERE, "--out", "{tmp}/run", "--export-to",
      "{tmp}/run/last.pt"], "--export-to", "lies in the run folder"),
    (["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--out", "{tmp}/run", "--export-to",
      "{tmp}/run/model.onnx"], "--export-to", "lies in the run folder"),
    (["train", "cyclegan", "--domain-a", NOWHERE, "--domain-b", NOWHERE, "--out", "{tmp}/run", "--classifier",
      "{file}", "--export-to", "{file}"], "--export-to", "is an input of this command"),
])
def test_an_output_path_that_cannot_be_written_is_refused_first(argv, option, kind, tmp_path, a_file, capsys):
    argv = [a.format(file=a_file, tmp=tmp_path) for a in argv]
    code, err = run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert option in err and kind in err  # not the dataset's or the model's error: the path was checked first
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv", [
    ["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--out", "{tmp}/run", "--device", "cuda"],
    ["train", "cyclegan", "--domain-a", NOWHERE, "--domain-b", NOWHERE, "--out", "{tmp}/run", "--device", "cuda"],
    ["train", "compare", "--dataset", f"utkface:{NOWHERE}", "--out", "{tmp}/cmp", "--device", "cuda"],
])
def test_a_gpu_asked_for_and_not_there_is_refused_before_the_data_is_read(argv, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU, so --device cuda is not refused here")
    code, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--device cuda was asked for but no CUDA GPU is visible" in err and NOWHERE not in err
    assert not (tmp_path / "run" / "last.pt").exists()


# --- 2. numbers: refused by argparse with the option's name; a documented 0 is kept --------------------------------

CLASSIFIER = ["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--out", f"{NOWHERE}/run"]
CYCLEGAN = ["train", "cyclegan", "--domain-a", f"{NOWHERE}/A", "--domain-b", f"{NOWHERE}/B", "--out", f"{NOWHERE}/run"]


@pytest.mark.parametrize("argv,option", [
    ([*CLASSIFIER, "--epochs", "0"], "--epochs"),
    ([*CLASSIFIER, "--batch-size", "0"], "--batch-size"),
    ([*CLASSIFIER, "--width", "0"], "--width"),
    ([*CLASSIFIER, "--max-steps", "0"], "--max-steps"),
    (["train", "compare", "--dataset", f"utkface:{NOWHERE}", "--out", NOWHERE, "--batch-size", "0"], "--batch-size"),
    ([*CYCLEGAN, "--batch-size", "0"], "--batch-size"),
    ([*CYCLEGAN, "--iters-per-epoch", "-1"], "--iters-per-epoch"),
    ([*CYCLEGAN, "--n-epochs", "-1"], "--n-epochs"),
    (["bench", "train", "--size", "0"], "--size"),
    (["bench", "train", "--steps", "0"], "--steps"),
    (["bench", "train", "--faces", "0"], "--faces"),
    (["bench", "train", "--classifier-batch", "0"], "--classifier-batch"),
    (["train", "fp16", f"{NOWHERE}.onnx", "--n", "0"], "--n"),
])
def test_zero_or_negative_counts_are_refused_by_name(argv, option, capsys):
    code, err = run(argv, capsys)
    assert code == 2 and f"argument {option}: must be at least" in err


@pytest.mark.parametrize("argv", [
    [*CYCLEGAN, "--n-epochs", "0", "--sample-every", "0", "--workers", "0"],
    [*CLASSIFIER, "--swa-epochs", "0", "--framing-jitter", "0", "--min-age", "-1"],
])
def test_a_zero_that_means_something_is_still_accepted(argv):
    main.build_parser(argv).parse_args(argv)


def test_no_epochs_at_all_is_refused_before_the_domains_are_read(capsys):
    code, err = run([*CYCLEGAN, "--n-epochs", "0", "--n-epochs-decay", "0"], capsys)
    assert code == 2 and "--n-epochs and --n-epochs-decay are both 0" in err and "no checkpoint" not in err


# --- 3. composition options --------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra,expected", [
    (["--compose", "target", "--target", "male:abc"], "--target 'male:abc': the share of 'male' must be a number"),
    (["--compose", "target", "--target", "male:0,female:0"], "the shares add up to 0"),
    (["--compose", "target"], "--compose target needs --target"),
    (["--compose", "balanced", "--by", "banana"], "--by 'banana': 'banana' is not an attribute to compose over; "
                                                  "choose from gender, race, age_band, group"),
    (["--compose", "balanced", "--by", ","], "--by ',': names no attribute; choose from gender"),
    (["--distill-weight", "1.5"], "--distill-weight is a share of the target: give 0 to 1, not 1.5"),
    (["--compose", "target", "--by", "gender,race", "--target", "male:0.5,female|White:0.5"],
     "--target cell(s) 'male' are not cells of --by gender,race"),  # it said 'male' had 0 samples
])
def test_composition_options_are_checked_before_the_data_is_read(extra, expected, capsys):
    code, err = run([*CLASSIFIER, *extra], capsys)
    assert code == 2 and expected in err


# --- 4. fewer faces than one batch -----------------------------------------------------------------------------

def test_a_dataset_smaller_than_a_batch_is_refused_with_the_batch_size_to_give(tmp_path, capsys, monkeypatch):
    import training.tasks.classifier as classifier_task

    data = write_faces(tmp_path / "UTKFace", 12)
    n_train = sum(split_of(Sample(str(p))) == "train" for p in data.iterdir())
    argv = ["train", "classifier", "--dataset", f"utkface:{data}", "--device", "cpu", "--size", "32", "--width", "8",
            "--threads", "1", "--cache", "", "--out", str(tmp_path / "run")]
    # refused from the list of files: a user with a large dataset and a wrong batch size does not wait for decoding
    with monkeypatch.context() as m:
        m.setattr(classifier_task, "load_images", lambda *a, **k: pytest.fail("decoded before the batch was checked"))
        code, err = run(argv, capsys)
    assert code == 2
    assert (f"only {n_train} training face(s) listed, fewer than one batch of --batch-size 64: give --batch-size "
            f"{n_train} or less") in err
    assert not (tmp_path / "run" / "last.pt").exists()
    # ... and that batch size trains
    assert main.main([*argv, "--batch-size", str(n_train), "--max-steps", "1"]) == 0
    assert (tmp_path / "run" / "last.pt").exists()


def test_a_batch_that_only_unreadable_images_would_fill_is_refused_after_decoding(tmp_path, capsys):
    data = write_faces(tmp_path / "UTKFace", 40, corrupt=12)
    listed = [p for p in data.iterdir() if split_of(Sample(str(p))) == "train"]
    readable = sum(not p.read_bytes().startswith(b"not a jpeg") for p in listed)
    assert readable < len(listed)  # the file names are fixed: so are their splits
    code, err = run(["train", "classifier", "--dataset", f"utkface:{data}", "--device", "cpu", "--size", "32",
                     "--width", "8", "--threads", "1", "--cache", "", "--batch-size", str(len(listed)),
                     "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert (f"only {readable} training face(s), fewer than one batch of --batch-size {len(listed)}: give "
            f"--batch-size {readable} or less") in err


@pytest.fixture
def domains(tmp_path) -> tuple[Path, Path, int, list[str]]:
    """Domain folders; B has 3 files that do not decode. Returns A, B, B's readable training count, B's bad files."""
    a = write_faces(tmp_path / "A", 30)
    b = write_faces(tmp_path / "B", 8, corrupt=3, start=100)
    bad = sorted(str(p) for p in b.iterdir() if p.read_bytes().startswith(b"not a jpeg") and split_of(Sample(str(p))) == "train")
    readable = sum(split_of(Sample(str(p))) == "train" for p in b.iterdir()) - len(bad)
    assert bad and 1 <= readable < 20  # the file names are fixed: so are their splits
    return a, b, readable, bad


def small_domains_run(a: Path, b: Path, batch_size: int, tmp_path: Path) -> list[str]:
    return ["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset", "smoke", "--min-domain-size",
            "1", "--batch-size", str(batch_size), "--device", "cpu", "--cache", "", "--out", str(tmp_path / "run")]


def test_a_cyclegan_domain_smaller_than_a_batch_is_refused(tmp_path, domains, capsys, caplog):
    a, b, readable, bad = domains
    code, err = run(small_domains_run(a, b, readable + 1, tmp_path), capsys)
    assert code == 2
    assert (f"domain B has {readable} readable training image(s) ({len(bad)} unreadable), fewer than one batch of "
            f"--batch-size {readable + 1}: give --batch-size {readable} or less") in err
    assert not (tmp_path / "run" / "last.pt").exists()
    # 6. the files skipped are named, not only counted
    assert f"domain B: {len(bad)} unreadable image(s) skipped: {', '.join(bad)}" in caplog.text


def test_a_cyclegan_domain_listing_fewer_than_a_batch_is_refused_before_decoding(tmp_path, domains, capsys, monkeypatch):
    import training.tasks.cyclegan as cyclegan_task

    a, b, _, _ = domains
    listed = sum(split_of(Sample(str(p))) == "train" for p in b.iterdir())
    monkeypatch.setattr(cyclegan_task, "build_images", lambda *a, **k: pytest.fail("decoded before the batch was checked"))
    code, err = run(small_domains_run(a, b, listed + 1, tmp_path), capsys)
    assert code == 2
    assert (f"domain B has {listed} listed training image(s), fewer than one batch of --batch-size {listed + 1}: "
            f"give --batch-size {listed} or less") in err


# --- 5. the --classifier of a CycleGAN run is read before training ---------------------------------------------------

@pytest.mark.parametrize("case,expected", [("truncated", "not a readable ONNX model"),
                                           ("filter", "this is a filter model, but a classifier was expected")])
def test_a_bad_cyclegan_classifier_is_refused_before_training(case, expected, tmp_path, tiny_models, domains, capsys):
    a, b, _, _ = domains
    path = tmp_path / "clf.onnx"
    if case == "truncated":
        data = tiny_models["classifier"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(tiny_models["darken"].read_bytes())
    code, err = run(["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset", "smoke",
                     "--min-domain-size", "1", "--device", "cpu", "--cache", "", "--classifier", str(path),
                     "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and expected in err and str(path) in err
    assert not (tmp_path / "run").exists()


# --- 6. unreadable images are named --------------------------------------------------------------------------------

def test_evaluate_names_the_images_it_could_not_read(tmp_path, tiny_models, capsys, caplog):
    data = write_faces(tmp_path / "UTKFace", 10, corrupt=3)
    bad = sorted(str(p) for p in data.iterdir() if p.read_bytes().startswith(b"not a jpeg"))
    code = main.main(["train", "evaluate", "--model", str(tiny_models["classifier"]), "--dataset", f"utkface:{data}",
                      "--split", "all", "--min-age", "-1"])
    assert code == 0
    assert f"3 unreadable image(s) skipped: {', '.join(bad)}; 10 of 13 face(s) evaluated" in caplog.text


def test_the_note_names_the_first_few_and_counts_the_rest():
    paths = [f"f{i}.jpg" for i in range(6)]
    ok = np.array([True, False, False, True, False, False])
    assert (unreadable_note(paths, ok, "domain A")
            == "domain A: 4 unreadable image(s) skipped: f1.jpg, f2.jpg, f4.jpg and 1 more")


# --- 7. fp16 --keep-fp32 -------------------------------------------------------------------------------------------

def test_keep_fp32_refuses_an_op_type_the_model_does_not_have(tiny_models, tmp_path, capsys):
    out = tmp_path / "out_fp16.onnx"
    code, err = run(["train", "fp16", str(tiny_models["classifier"]), "--out", str(out), "--provider", "cpu",
                     "--images", str(tmp_path / "no_images"), "--keep-fp32", "Softmax,Banana"], capsys)
    assert code == 2 and not out.exists()
    assert "--keep-fp32: Banana is not an op type of this model; its op types are " in err and "Softmax" in err
    fp16.check_keep_fp32(onnx.load(str(tiny_models["classifier"])), ["Softmax", "Conv"], "x")  # real ones pass
    with pytest.raises(BiasMirrorError, match="fp16_node_0"):
        fp16.check_keep_fp32(onnx.load(str(tiny_models["classifier"])), ["fp16_node_0"], "x")


def test_resnet_blocks_are_four_counts(capsys):
    import main

    with pytest.raises(SystemExit) as done:
        main.main(["train", "classifier", "--dataset", "utkface:x", "--out", "y", "--blocks", "a,b"])
    assert done.value.code == 2 and "argument --blocks: 'a,b': give four whole numbers" in capsys.readouterr().err
    from training.tasks.classifier import block_counts
    assert block_counts("2, 1,1,3") == (2, 1, 1, 3)


@pytest.mark.parametrize("labels, expected", [
    (None, "no image has a gender label, and a classifier learns from them: give the folder a labels.csv with "
           "columns file and gender"),
    ("file,gender\nf0.jpg,female\nf1.jpg,male\n", "--min-age 18 (the default) needs ages and this dataset has none: "
                                                  "pass --min-age -1"),
])
def test_a_folder_without_the_labels_min_age_needs_says_what_is_missing(labels, expected, tmp_path, capsys):
    data = tmp_path / "photos"
    write_faces(data, 2)
    for i, p in enumerate(sorted(data.iterdir())):
        p.rename(data / f"f{i}.jpg")
    if labels:
        (data / "labels.csv").write_text(labels)
    code, err = run(["train", "classifier", "--dataset", f"folder:{data}", "--cache", "", "--out", str(tmp_path / "run")],
                    capsys)
    assert code == 2 and expected in err and "drop it" not in err, err


# --- resuming another trainer's run, or a broken checkpoint -------------------------------------------------------

def _checkpoint(folder: Path, config: dict) -> Path:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "modules": {}, "optimizers": {}, "schedulers": {}, "epoch": 1, "step": 4}, folder / "last.pt")
    return folder / "last.pt"


CLASSIFIER_CONFIG = {"net": {"arch": "resnet", "size": 32, "width": 8}, "labels": ["male", "female"],
                     "dataset": f"utkface:{NOWHERE}", "epochs": 1}
CYCLEGAN_CONFIG = {"net": {"preset": "smoke", "size": 32}, "dataset": f"utkface:{NOWHERE}", "recipe": "engineer",
                   "n_epochs": 1, "n_epochs_decay": 0}


@pytest.mark.parametrize("trainer,config,expected", [
    ("classifier", CYCLEGAN_CONFIG, "a CycleGAN checkpoint, not a classifier's; continue it with `train cyclegan"),
    ("cyclegan", CLASSIFIER_CONFIG, "a classifier checkpoint, not a CycleGAN's; continue it with `train classifier"),
    ("classifier", {"toy": True}, "a checkpoint of no trainer of this project, not a classifier's"),
])
def test_resuming_another_trainers_run_names_what_it_is(trainer, config, expected, tmp_path, capsys):
    """They used to end in a TypeError (classifier) or KeyError 'n_epochs' (CycleGAN) traceback."""
    path = _checkpoint(tmp_path / "run", config)
    code, err = run(["train", trainer, "--dataset", f"utkface:{NOWHERE}", "--resume", "--out", str(path.parent)], capsys)
    assert code == 2 and err.count("\n") == 1 and f"{path}: {expected}" in err


@pytest.mark.parametrize("keep", [0.01, 0.5])  # an OSError from torch's reader, and a zip error
@pytest.mark.parametrize("trainer", ["classifier", "cyclegan"])
def test_a_truncated_checkpoint_is_one_line_naming_it(trainer, keep, tmp_path, capsys):
    import torch

    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    torch.save({"config": CLASSIFIER_CONFIG, "modules": {"net": {"w": torch.zeros(20000)}}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    code, err = run(["train", trainer, "--dataset", f"utkface:{NOWHERE}", "--resume", "--out", str(path.parent)], capsys)
    assert code == 2 and err.count("\n") == 1 and f"{path}: truncated or corrupt checkpoint (" in err


# --- found by a review of the training commands (2026-12-06) -------------------------------------------------------

def _smile_classifier(tmp_path: Path) -> Path:
    """A classifier whose labels are not genders (as `train adopt --labels smile,neutral` makes)."""
    return make_classifier(tmp_path / "smile.onnx", 24, name="smile", labels=("smile", "neutral"))


def test_a_classifier_of_other_labels_is_refused_where_p_female_is_measured(tmp_path, domains, capsys):
    """train evaluate reported every face unreadable; train cyclegan trained to the end and then crashed."""
    smile = _smile_classifier(tmp_path)
    a, b, _, _ = domains
    said = f"{smile}: --classifier: its labels are smile, neutral; this measures P(female)"
    code, err = run(["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset", "smoke",
                     "--min-domain-size", "1", "--device", "cpu", "--cache", "", "--classifier", str(smile),
                     "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and said in err and not (tmp_path / "run").exists()
    code, err = run(["train", "evaluate", "--model", str(smile), "--dataset", f"utkface:{a}", "--split", "all"], capsys)
    assert code == 2 and f"{smile}: --model: its labels are smile, neutral" in err
    code, err = run(["audit", "--dataset", f"utkface:{a}", "--classifier", str(smile), "--no-filter",
                     "--out", str(tmp_path / "audit")], capsys)
    assert code == 2 and said in err
    # run wrote empty P(female) columns for it, with exit status 0
    code, err = run(["run", "--source", str(a), "--classifier", str(smile), "--no-filter",
                     "--out", str(tmp_path / "rows.csv")], capsys)
    assert code == 2 and said in err and not (tmp_path / "rows.csv").exists()
    # among the default models it is left out and said so, as a broken file is, and the others still load
    from inference.defaults import load_folder

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "smile.onnx").write_bytes(smile.read_bytes())
    found = load_folder(folder)
    assert found.classifiers == [] and len(found.errors) == 1 and "its labels are smile, neutral" in found.errors[0]


def test_the_decoded_image_cache_follows_a_file_that_changed(tmp_path):
    """The cache was keyed on paths alone: a corrupt photo replaced by a good one stayed 'unreadable'."""
    from training.data.cache import load_images

    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"not a jpeg")
    first = load_images([str(photo)], 16, tmp_path / "cache")
    assert first.n_bad == 1
    cv2.imwrite(str(photo), np.full((20, 20, 3), 200, np.uint8))
    again = load_images([str(photo)], 16, tmp_path / "cache")
    assert again.n_bad == 0 and abs(int(again.images[0].mean()) - 200) <= 2
    assert load_images([str(photo)], 16, tmp_path / "cache").images[0].mean() == again.images[0].mean()  # reused


def test_a_classifier_is_not_trained_on_one_gender_nor_composed_over_labels_nobody_has(tmp_path, capsys):
    """Trained on men only, a classifier 'reached' 100 % on a test split of men; --compose balanced --by race on a
    dataset without races balanced nothing, and the card said it was balanced by race."""
    men = tmp_path / "men"
    write_faces(men, 40)
    for p in men.iterdir():
        if p.name.split("_")[1] == "1":
            p.unlink()
    code, err = run(["train", "classifier", "--dataset", f"utkface:{men}", "--min-age", "-1", "--cache", "",
                     "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "the training split holds faces of one gender only (" in err and "male)" in err
    photos = tmp_path / "photos"
    write_faces(photos, 40)
    names = sorted(p.name for p in photos.iterdir())
    (photos / "labels.csv").write_text("file,gender\n" + "".join(f"{n},{'female' if n.split('_')[1] == '1' else 'male'}\n"
                                                                for n in names))
    code, err = run(["train", "classifier", "--dataset", f"folder:{photos}", "--min-age", "-1", "--compose", "balanced",
                     "--by", "race", "--cache", "", "--out", str(tmp_path / "run2")], capsys)
    assert code == 2 and "cannot compose over race: none of the" in err and "has a race label" in err


def test_a_run_folder_inside_its_own_data_is_refused(tmp_path, domains, capsys):
    """A CycleGAN run in its domain-A folder added its sample grids to domain A, and could never be resumed."""
    a, b, _, _ = domains
    for out in (a, a / "run"):
        code, err = run(["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset", "smoke",
                         "--device", "cpu", "--cache", "", "--out", str(out)], capsys)
        assert code == 2 and "--out" in err and "input" in err, err
    code, err = run(["train", "classifier", "--dataset", f"utkface:{a}", "--cache", "", "--out", str(a / "run")],
                    capsys)
    assert code == 2 and f"--out lies in {a}, an input folder" in err
    assert not (a / "run").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--arch", "mobilenet", "--width", "4"], "--width (a resnet setting) with --arch mobilenet"),
    (["--arch", "mobilenet", "--blocks", "2,2,2,2"], "--blocks (a resnet setting) with --arch mobilenet"),
    (["--target", "female:1"], "--target without --compose target"),
    (["--swa-lr", "1e-3"], "--swa-lr without --swa-epochs"),
    (["--distill-weight", "0.3"], "--distill-weight without --distill-from"),
])
def test_a_classifier_option_that_would_not_be_used_is_refused(extra, expected, tmp_path, capsys):
    code, err = run(["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--out", str(tmp_path / "run"), *extra],
                    capsys)
    assert code == 2 and expected in err and "it would not be used" in err


def test_cyclegan_domains_given_two_ways_or_twice_are_refused(tmp_path, domains, capsys):
    a, b, _, _ = domains
    base = ["train", "cyclegan", "--preset", "smoke", "--device", "cpu", "--cache", "", "--out", str(tmp_path / "run")]
    code, err = run([*base, "--domain-a", str(a), "--domain-b", str(b), "--dataset", f"utkface:{a}"], capsys)
    assert code == 2 and "give --domain-a and --domain-b, or --dataset with --preset-domains, not both" in err
    code, err = run([*base, "--domain-a", str(a), "--domain-b", f"{a}/"], capsys)
    assert code == 2 and "--domain-a and --domain-b are the same folder" in err


def test_the_engineer_recipe_reads_race_names_in_any_case_and_names_the_ones_it_needs(tmp_path):
    from training.data.domains import engineer_domains

    photos = tmp_path / "photos"
    write_faces(photos, 400)
    races = ["white", "BLACK", "asian", "Indian", "others"]
    rows = [f"{p.name},{'female' if p.name.split('_')[1] == '1' else 'male'},{races[int(p.name.split('_')[2])]},30"
            for p in sorted(photos.iterdir())]
    (photos / "labels.csv").write_text("file,gender,race,age\n" + "\n".join(rows) + "\n")
    domains = engineer_domains(f"folder:{photos}", 0, 1)
    assert {s.race for s in domains.a.train} == {"White", "Black", "Asian", "Indian", "Others"}
    (photos / "labels.csv").write_text("file,gender,race,age\n" + "\n".join(rows).replace(",others,", ",martian,") + "\n")
    with pytest.raises(BiasMirrorError, match="the engineer recipe's races are UTKFace's .* also have 'martian'"):
        engineer_domains(f"folder:{photos}", 0, 1)


def test_a_cards_split_says_whether_the_dataset_split_it_or_the_hash_did():
    from inference.datasets.splits import split_rule

    assert split_rule([Sample("a.jpg"), Sample("b.jpg")]) == "a stable hash of file name, 80/10/10"
    assert split_rule([Sample("a.jpg", partition="train"), Sample("b.jpg", partition="test")]) == \
        "the dataset's own split labels"
    assert split_rule([Sample("a.jpg", partition="val"), Sample("b.jpg")]) == \
        "the dataset's own split labels for 1 of 2 images, a stable hash of file name, 80/10/10 for the rest"


def test_an_export_interrupted_leaves_the_model_that_was_there(tmp_path, tiny_models, monkeypatch):
    """Ctrl-C during export left model.onnx without its card (and --export-to copied over a model in place)."""
    import shutil

    from inference.models import read_card
    from training import export as export_module

    target = tmp_path / "model.onnx"
    shutil.copy(tiny_models["classifier"], target)
    before = target.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(export_module.onnx.checker, "check_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        make_classifier(target, size=24)
    assert target.read_bytes() == before and read_card(target).kind == "classifier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no part file left behind
    import errno

    import inference.writing as writing

    def full(src, dst):
        Path(dst).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    for stop, raised in ((interrupted, KeyboardInterrupt), (full, OSError)):  # an --export-to copy cut short
        monkeypatch.setattr(writing.shutil, "copyfile", lambda src, dst: (Path(dst).write_bytes(b"half"), stop(src, dst)))
        with pytest.raises(raised), export_module.staged_export("left", "again") as staged:
            staged.copy(tiny_models["darken"], target)
            staged.put_in_place()
        assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_evaluate_without_ages_says_so_and_writes_json_into_a_new_folder(tmp_path, tiny_models, capsys):
    photos = tmp_path / "photos"
    write_faces(photos, 20)
    names = sorted(p.name for p in photos.iterdir())
    (photos / "labels.csv").write_text("file,gender\n" + "".join(
        f"{n},{'female' if n.split('_')[1] == '1' else 'male'}\n" for n in names))
    base = ["train", "evaluate", "--model", str(tiny_models["classifier"]), "--dataset", f"folder:{photos}",
            "--aligned", "--split", "all"]
    code, err = run([*base, "--min-age", "18"], capsys)
    assert code == 2 and "needs ages, and this dataset has none: pass --min-age -1" in err
    out = tmp_path / "new" / "folder" / "eval.json"
    code, _ = run([*base, "--min-age", "-1", "--json", str(out)], capsys)
    assert code == 0 and out.exists()


def test_ctrl_c_while_a_command_loads_is_one_line(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt
    monkeypatch.setattr(main, "build_parser", interrupted)
    assert main.main(["train", "classifier", "--help"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_a_run_folder_with_a_checkpoint_is_refused_before_the_data_is_read(tmp_path, capsys):
    _checkpoint(tmp_path / "run", CLASSIFIER_CONFIG)
    code, err = run(["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "a checkpoint already exists here: pass --resume" in err


def test_a_wrong_teacher_is_refused_before_the_data_is_read(tmp_path, tiny_models, capsys):
    code, err = run(["train", "classifier", "--dataset", f"utkface:{NOWHERE}", "--distill-from",
                     str(tiny_models["darken"]), "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "this is a filter model, but a classifier was expected" in err and NOWHERE not in err


@pytest.mark.parametrize("kind, extra, said", [
    ("filter", ["--labels", "a,b"], "--labels names a classifier's outputs, and this is --kind filter"),
    ("classifier", ["--conditions", "a,b"], "--conditions names a conditional filter's inputs, and this is --kind "
                                            "classifier"),
])
def test_adopt_refuses_what_only_the_other_kind_uses(kind, extra, said, tmp_path, tiny_models, capsys):
    code, err = run(["train", "adopt", str(tiny_models["classifier"]), "--kind", kind, "--out", str(tmp_path / "a.onnx"),
                     *extra], capsys)
    assert code == 2 and said in err


def test_evaluate_says_what_its_filters_leave_out_and_never_writes_over_a_model(tmp_path, capsys):
    """--json could name the model evaluated, replacing it with the JSON; faces without an age were left out, and
    a folder without splits evaluated on a tenth of it, without a word; nothing read exited 0 with tables of nan."""
    model = make_classifier(tmp_path / "m.onnx", 24)
    folder = labelled_folder(tmp_path / "faces", 40, no_age=6)
    before = model.read_bytes()
    code, err = run(["train", "evaluate", "--model", str(model), "--dataset", f"folder:{folder}", "--json", str(model)],
                    capsys)
    assert code == 2 and "--json" in err and model.read_bytes() == before
    code = main.main(["train", "evaluate", "--model", str(model), "--dataset", f"folder:{folder}", "--aligned",
                      "--split", "all", "--min-age", "18"])
    out = capsys.readouterr().out
    assert code == 0 and "note: 6 labelled face(s) of split 'all' have no age and are left out by the age bar" in out
    assert main.main(["train", "evaluate", "--model", str(model), "--dataset", f"folder:{folder}", "--aligned",
                      "--split", "test", "--min-age", "-1"]) == 0  # the names are fixed: so is the hash's test split
    assert "face(s) evaluated are in split 'test' by a hash of their file name" in capsys.readouterr().out
    for p in folder.glob("*.png"):
        p.write_bytes(b"not a jpeg " + p.name.encode())
    code, err = run(["train", "evaluate", "--model", str(model), "--dataset", f"folder:{folder}", "--aligned",
                     "--split", "all", "--min-age", "-1"], capsys)
    assert code == 2 and "none of the 40 face(s) could be read, so nothing was evaluated" in err


def test_decoded_faces_are_cached_in_the_users_cache_and_no_partial_cache_outlives_its_process(tmp_path, monkeypatch):
    """They went to ./cache wherever a command was run (1.5 GB in one checkout); a Ctrl-C mid-decode left a
    .part<pid> folder of the faces decoded so far, which nothing removed."""
    import argparse
    import os

    from training.data import cache as cache_module
    from training.run_arguments import add_run_arguments

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    p = argparse.ArgumentParser()
    add_run_arguments(p, "run folder")
    assert p.parse_args(["--out", "x"]).cache == str(tmp_path / "xdg" / "bias-mirror" / "faces")
    photos = []
    for i in range(3):
        photos.append(str(tmp_path / f"{i}.jpg"))
        cv2.imwrite(photos[-1], np.full((20, 20, 3), 100, np.uint8))
    where = tmp_path / "faces"
    real, calls = cache_module.read_rgb, []

    def ctrl_c_at_the_second(path, size=None):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, size)

    monkeypatch.setattr(cache_module, "read_rgb", ctrl_c_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        cache_module.load_images(photos, 16, where)
    assert list(where.iterdir()) == []
    monkeypatch.setattr(cache_module, "read_rgb", real)
    gone = 2**22 + 12345  # beyond Linux's pid_max: the process of a kill -9 that no longer runs
    key_dir = cache_module.load_images(photos, 16, where) and next(where.iterdir())
    shutil.rmtree(key_dir)
    (where / f"{key_dir.name}.part{gone}").mkdir()
    (where / f"{key_dir.name}.part{os.getpid()}x").mkdir()  # not a pid: not ours to judge
    assert cache_module.load_images(photos, 16, where).n_bad == 0
    assert sorted(d.name for d in where.iterdir()) == sorted([key_dir.name, f"{key_dir.name}.part{os.getpid()}x"])


@pytest.mark.parametrize("rank, said", [("0", True), ("1", False)])
def test_the_teachers_agreement_is_said_by_rank_0_only(rank, said, tmp_path, monkeypatch, capsys):
    """Under torchrun every process computes the same agreement: it was printed once per rank."""
    from types import SimpleNamespace

    from training.data.teachers import Teacher
    from training.tasks import classifier

    teacher = Teacher(path="t.onnx", name="t", sha256="0" * 64, test_accuracy=None)
    monkeypatch.setattr(classifier, "open_teachers", lambda *a, **k: [(teacher, None)])
    monkeypatch.setattr(classifier, "teacher_p_female", lambda images, models: np.array([0.9, 0.1, 0.8, 0.7], np.float32))
    monkeypatch.setenv("RANK", rank)
    monkeypatch.setenv("WORLD_SIZE", "2")
    data = SimpleNamespace(read=SimpleNamespace(name="utkface", root=str(tmp_path)), train_idx=np.arange(4),
                           images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.array([1, 0, 1, 0]),
                           samples=[SimpleNamespace(path=str(tmp_path / f"{i}.jpg")) for i in range(4)])
    run_cfg = {"distill_from": ["t.onnx"], "distill_weight": 0.5}
    assert classifier.distillation_targets(data, run_cfg, tmp_path / "run") is not None
    assert run_cfg["teacher_label_agreement"] == 0.75  # computed on every rank alike
    out = capsys.readouterr().out
    assert ("teachers agree with the training labels on 75.0% of 4 faces" in out) == said, out


@pytest.mark.parametrize("option,value,why", [
    ("--name", "foo", "resnet-unbalanced"), ("--compose", "target", "--compose balanced"), ("--by", "race", "gender"),
    ("--target", "female:0.5,male:0.5", "--target"), ("--export-to", "x.onnx", "balanced/model.onnx"),
])
def test_compare_refuses_the_options_it_sets_for_each_variant(option, value, why, tmp_path, capsys):
    """compare hides these and sets them per variant (_variant_args): given, they were silently overwritten."""
    code, err = run(["train", "compare", "--dataset", f"utkface:{NOWHERE}", "--out", str(tmp_path / "cmp"),
                     "--max-steps", "2", option, value], capsys)
    assert code == 2 and f"train compare sets {option} itself, for each variant" in err and why in err, err
    assert "UTKFace" not in err and not (tmp_path / "cmp").exists()  # refused before the data or --out


@pytest.mark.parametrize("option, said", [
    ("--lr", "Adam learning rate of the generators and discriminators: constant for --n-epochs, then linearly to 0 "
             "over --n-epochs-decay (default 2e-4)"),
    ("--batch-size", "images per domain per step (default 1, as in the paper)"),
    ("--sample-every", "default 500"), ("--checkpoint-every", "default 500"), ("--eval-faces", "default 400"),
    ("--min-domain-size", "default 200"), ("--seed", "random seed, 0 to 2³² − 1 (default 0)"),
    ("--device", "where to train: auto (the GPU where PyTorch sees one, else the CPU), cpu or cuda (default auto)"),
    ("--threads", "CPU threads for torch (default: PyTorch's own)"),
])
def test_cyclegan_options_say_what_they_do_and_their_defaults(option, said, capsys, monkeypatch):
    import re

    monkeypatch.setenv("COLUMNS", "1000")  # one line per entry
    with pytest.raises(SystemExit):
        main.main(["train", "cyclegan", "--help"])
    out = capsys.readouterr().out
    entries = {e.split()[0].rstrip(","): " ".join(e.split()) for e in re.split(r"\n  (?=-)", out) if e.strip()}
    assert said in entries[option], entries[option]
    parser = main.build_parser(["train", "cyclegan"])
    defaults = vars(parser.parse_args(["train", "cyclegan", "--out", "x"]))
    number = re.search(r"default ([\d.e-]+)", said)
    if number:  # the default said is the one argparse gives
        assert float(number.group(1)) == defaults[option[2:].replace("-", "_")]


def test_a_training_run_that_fails_to_compile_on_the_cpu_suggests_no_gpu_only_mode():
    """A run on a CPU-only machine was told to try '--compile cudagraphs on a GPU without Triton', which
    check_compile_mode then refuses there."""
    from types import SimpleNamespace

    import torch
    from torch._dynamo.exc import TorchDynamoException

    from training import compile_step, loop

    class Failing:
        def step(self, batch, ctx):
            raise TorchDynamoException("No working C++ compiler found")

    cfg = SimpleNamespace(compile="default")
    with pytest.raises(BiasMirrorError) as failed:
        loop.train_step(Failing(), None, SimpleNamespace(step=0, device=torch.device("cpu")), cfg)
    assert "No working C++ compiler found" in str(failed.value) and "--compile off" in str(failed.value)
    assert "cudagraphs" not in str(failed.value)
    exc = TorchDynamoException("no Triton")
    assert "--compile cudagraphs" in str(compile_step.compile_failure(exc, "default", 0, None, torch.device("cuda", 0)))
    assert "on a GPU" not in str(compile_step.compile_failure(exc, "cudagraphs", 0, None, torch.device("cuda", 0)))


def test_export_only_with_max_steps_is_refused_before_anything_is_read(tmp_path, capsys):
    """`--export-only --max-steps 3` was accepted, trained nothing and exported: --max-steps bounds a training that
    --export-only skips."""
    assert main.main(["train", "cyclegan", "--out", str(tmp_path / "run"), "--export-only", "--resume",
                      "--max-steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "--max-steps 3 stops training after that many steps, and --export-only trains none" in err
    assert "(--resume --max-steps 3)" in err and not (tmp_path / "run").exists()


def test_the_decoded_image_cache_is_decoded_again_when_the_reader_changes(tmp_path, monkeypatch):
    """A fix to how files decode (an AVIF read sideways, a float TIFF called unreadable) never reached a cache filled
    before it: the cache was keyed on the files alone."""
    import training.data.cache as cache

    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), np.full((20, 20, 3), 90, np.uint8))
    first = cache.load_images([str(photo)], 16, tmp_path / "cache")
    decoded: list[str] = []
    real = cache.read_rgb
    monkeypatch.setattr(cache, "read_rgb", lambda p, size=None: decoded.append(p) or real(p, size))
    cache.load_images([str(photo)], 16, tmp_path / "cache")
    assert decoded == [] and first.n_bad == 0  # the same reader: read from the cache
    monkeypatch.setattr(cache, "READER_VERSION", cache.READER_VERSION + 1)
    cache.load_images([str(photo)], 16, tmp_path / "cache")
    assert decoded == [str(photo)]
