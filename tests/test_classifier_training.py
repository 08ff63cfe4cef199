"""One-batch training, export parity, card round-trip and resume, on a tiny synthetic UTKFace folder."""
import json
from pathlib import Path

import numpy as np
import pytest
import main
import onnx
from inference.card import ModelCard, classifier_card
from inference.card_markdown import card_markdown
from inference.defaults import MODELS_DIR
from inference.datasets import LISTING_VERSION
from inference.errors import BiasMirrorError
from inference.metrics import PROPORTION_INTERVAL
from inference.models import load_model, read_card
from training.checkpoints import CHECKPOINT, load_checkpoint
import torch
from training.nets.cam_classifier import CamClassifier, ClassifierConfig
from training.tasks.classifier_report import export_classifier
from tests.conftest import REPO, labelled_folder, make_classifier


def _train(tmp_path, tiny_utk, *extra):
    return main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "run"), "--threads", "1", *extra])


def test_train_export_and_card_round_trip(tmp_path, tiny_utk):
    assert _train(tmp_path, tiny_utk, "--compose", "balanced") == 0
    run = tmp_path / "run"
    card = read_card(run / "model.onnx")
    assert card.kind == "classifier" and card.labels == ["male", "female"]
    assert card.training["composition"]["mode"] == "balanced"
    assert card.training["filters"]["unreadable_skipped"] == 1
    assert card.training["filters"]["bad_names_skipped"] == 1
    assert card.training["command"].startswith("python main.py ") and card.training["commit"]
    assert card.metrics["overall"]["accuracy"]["n"] > 0
    assert "gender×race" in card.metrics["by"]
    # which interval the bounds are: the cards shipped before had held plain Wilson ones without a word
    assert card.metrics["proportion_interval"] == PROPORTION_INTERVAL
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["overall"]["accuracy"]["value"] == pytest.approx(card.metrics["overall"]["accuracy"]["value"])
    assert "val_accuracy" in (run / "epochs.csv").read_text().splitlines()[0]
    model = load_model(run / "model.onnx", "classifier")
    probs, cam = model.predict(np.zeros((3, 32, 32, 3), np.uint8))
    assert probs.shape == (3, 2) and np.allclose(probs.sum(1), 1, atol=1e-5) and cam.shape[:2] == (3, 2)


def test_existing_run_is_protected_and_resume_of_a_finished_run_trains_nothing(tmp_path, tiny_utk, capsys):
    assert _train(tmp_path, tiny_utk) == 0
    first = load_checkpoint(tmp_path / "run")
    assert first["epoch"] == 1
    assert _train(tmp_path, tiny_utk) == 2  # same --out without --resume: refused, nothing overwritten
    assert "pass --resume" in capsys.readouterr().err
    assert main.main(["train", "classifier", "--out", str(tmp_path / "run"), "--resume",
                      "--cache", str(tmp_path / "cache"), "--threads", "1"]) == 0
    assert load_checkpoint(tmp_path / "run")["step"] == first["step"]


@pytest.mark.parametrize("arch", ["resnet", "mobilenet"])
def test_export_parity_and_cam_is_exact(tmp_path, arch):
    torch.manual_seed(0)
    cfg = ClassifierConfig(arch=arch, size=112, width=8)
    net = CamClassifier(cfg).eval()
    assert net.cam_grid() == (7, 7)  # ≥ 7×7 at the export size
    card = classifier_card("t", 112, ["male", "female"], net.cam_grid(), "m", {"dataset": "none"}, {})
    diffs = export_classifier(net, 112, tmp_path / "m.onnx", card)
    assert diffs["probs"] < 1e-4 and diffs["cam"] < 1e-3
    # CAM is exact: its spatial mean plus the bias gives the logits
    x = torch.randint(0, 256, (2, 112, 112, 3), dtype=torch.uint8)
    with torch.no_grad():
        logits, cam = net.forward_with_cam(net.preprocess(x))
    assert torch.allclose(cam.mean(dim=(2, 3)) + net.fc.bias, logits, atol=1e-4)
    assert (tmp_path / "m.onnx").stat().st_size < 20e6


def test_card_round_trip_and_validation():
    card = classifier_card("x", 64, ["male", "female"], (4, 4), "m", {"dataset": "d"}, {"overall": {}})
    again = ModelCard.from_json(card.to_json())
    assert again == card
    bad = json.loads(card.to_json())
    bad["kind"] = "toaster"
    with pytest.raises(BiasMirrorError, match="kind"):
        ModelCard.from_json(json.dumps(bad), "f.onnx")
    bad = json.loads(card.to_json())
    bad["schema_version"] = 99
    with pytest.raises(BiasMirrorError, match="schema version"):
        ModelCard.from_json(json.dumps(bad), "f.onnx")
    bad = json.loads(card.to_json())
    bad["outputs"] = [o for o in bad["outputs"] if o["name"] != "cam"]
    with pytest.raises(BiasMirrorError, match="CAM"):
        ModelCard.from_json(json.dumps(bad), "f.onnx")


def _strict(text: str):
    """Parse as JSON readers other than Python's do: NaN and Infinity are not JSON."""
    def refuse(token):
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_a_metric_not_measured_is_written_as_null_so_any_json_reader_opens_the_card():
    # a group with no negatives has no false-positive rate: NaN in Python, null in the file
    metrics = {"by": {"gender": {"female": {"n": 3, "fpr": {"value": float("nan"), "lo": float("nan"),
                                                                "hi": float("nan"), "n": 0},
                                            "fnr": {"value": 0.0, "lo": 0.0, "hi": 0.56, "n": 3},
                                            "accuracy": {"value": np.float64(1.0), "lo": 0.44, "hi": 1.0, "n": 3}}}},
               "overall": {"accuracy": {"value": 1.0, "lo": 0.44, "hi": 1.0, "n": 3}},
               "drift": float("inf")}
    card = classifier_card("x", 64, ["male", "female"], (4, 4), "m", {"dataset": "d"}, metrics)
    raw = _strict(card.to_json())
    assert raw["metrics"]["by"]["gender"]["female"]["fpr"] == {"value": None, "lo": None, "hi": None, "n": 0}
    assert raw["metrics"]["drift"] is None and raw["metrics"]["by"]["gender"]["female"]["accuracy"]["value"] == 1.0
    again = ModelCard.from_json(card.to_json())
    assert again.metrics["by"]["gender"]["female"]["fpr"]["value"] is None
    assert "| female | 3 | 1.000 [0.440, 1.000] | – | 0.000 |" in card_markdown(again, "x.onnx", 1.0)


def test_the_shipped_cards_are_json_any_reader_opens():
    for path in sorted(MODELS_DIR.glob("*.onnx")):
        model = onnx.load(str(path), load_external_data=False)
        _strict(next(p.value for p in model.metadata_props if p.key == "model_card"))


def test_compare_trains_both_variants_and_prints_them_side_by_side(tmp_path, tiny_utk, capsys, monkeypatch):
    from training.tasks import compare

    taken = []  # the software blocks compare took: comparison.json had none, nor a schema version
    real_software = compare.software
    monkeypatch.setattr(compare, "software", lambda: taken.append(real_software()) or taken[-1])
    code = main.main(["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "cmp"), "--threads", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "unbalanced" in out and "gender-balanced" in out and "gender×race" in out
    assert "unbalanced vs gender-balanced on the same" in out and "McNemar" in out  # paired, not just side by side
    both = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert list(both)[:2] == ["schema_version", "software"] and both["schema_version"] == compare.COMPARE_SCHEMA_VERSION
    assert compare.COMPARE_SCHEMA_VERSION >= 2  # 1: the files written without one
    assert len(taken) == 1 and both["software"] == taken[0] and "git_commit" in both["software"]  # once a run
    assert set(both["models"]) == {"unbalanced", "gender-balanced"}
    (pair,) = both["comparisons"]  # the paired test is kept, not only printed
    assert {pair["a"], pair["b"]} == {"unbalanced", "gender-balanced"} and 0 <= pair["overall"]["p"] <= 1
    assert read_card(tmp_path / "cmp" / "balanced" / "model.onnx").training["composition"]["mode"] == "balanced"


def test_soft_targets_mix_label_and_teacher():
    from training.data.teachers import soft_targets
    t = soft_targets(np.array([0, 1, 1]), np.array([0.2, 0.9, 0.0], np.float32), 0.5, female_index=1)
    assert np.allclose(t, [[0.9, 0.1], [0.05, 0.95], [0.5, 0.5]])
    assert np.allclose(soft_targets(np.array([0, 1]), np.array([0.7, 0.7], np.float32), 0.0, 1), np.eye(2))
    with pytest.raises(BiasMirrorError, match="distill-weight"):
        soft_targets(np.array([0]), np.array([0.5], np.float32), 1.5, 1)


def test_distillation_trains_on_the_teachers_soft_labels_and_records_them(tmp_path, tiny_utk, capsys, caplog):
    assert _train(tmp_path, tiny_utk) == 0
    teacher = tmp_path / "teacher.onnx"
    (tmp_path / "run" / "model.onnx").rename(teacher)
    student = tmp_path / "student"
    args = ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
            "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--threads", "1",
            "--distill-from", str(teacher), "--distill-weight", "0.7"]
    assert main.main([*args, "--out", str(student), "--max-steps", "2"]) == 0
    assert "teachers agree with the training labels" in capsys.readouterr().out
    saved = dict(np.load(student / "teacher_p_female.npz"))
    # the cached soft labels are the teacher's own mean over each face and its mirror image
    from training.tasks.classifier import build_data
    data = build_data(f"utkface:{tiny_utk}", 32, 18, "none", ["gender"], None, 0, tmp_path / "cache")
    model = load_model(teacher, "classifier")
    faces = data.images[data.train_idx]
    expect = (model.predict(faces)[0][:, 1] + model.predict(np.ascontiguousarray(faces[:, :, ::-1]))[0][:, 1]) / 2
    assert np.allclose(saved["p"], expect, atol=1e-6)
    saved["p"][:] = 0.5  # a resume must train on the cached targets, not recompute them
    np.savez(student / "teacher_p_female.npz", **saved)
    assert main.main(["train", "classifier", "--out", str(student), "--resume",
                      "--cache", str(tmp_path / "cache"), "--threads", "1"]) == 0
    assert np.all(np.load(student / "teacher_p_female.npz")["p"] == 0.5)
    np.savez(student / "teacher_p_female.npz", p=saved["p"], teachers=np.array(["another teacher"]))
    assert main.main(["train", "classifier", "--out", str(student), "--resume",
                      "--cache", str(tmp_path / "cache"), "--threads", "1"]) == 0
    assert np.allclose(np.load(student / "teacher_p_female.npz")["p"], expect, atol=1e-6)  # other teachers': redone
    whole = (student / "teacher_p_female.npz").read_bytes()  # cut short, as a full disk or a Ctrl-C had left it:
    (student / "teacher_p_female.npz").write_bytes(whole[:len(whole) // 2])  # a BadZipFile traceback on every run
    assert main.main(["train", "classifier", "--out", str(student), "--resume",
                      "--cache", str(tmp_path / "cache"), "--threads", "1"]) == 0
    assert "teacher_p_female.npz cannot be read" in caplog.text
    assert np.allclose(np.load(student / "teacher_p_female.npz")["p"], expect, atol=1e-6)  # computed again, kept whole
    assert [f.name for f in student.iterdir() if f.name.startswith(".teacher_p_female")] == []
    card = read_card(student / "model.onnx")
    dist = card.training["distillation"]
    assert dist["weight"] == 0.7 and dist["teachers"][0]["path"] == str(teacher)
    import hashlib
    assert dist["teachers"][0]["sha256"] == hashlib.sha256(teacher.read_bytes()).hexdigest()
    assert (f"- distilled from {read_card(teacher).name} (`{teacher}`, sha256 {dist['teachers'][0]['sha256'][:16]}…), "
            "weight 0.7; the teachers agree with") in card_markdown(card, "student.onnx", 0.1)
    assert "distilled" not in card_markdown(read_card(teacher), "teacher.onnx", 0.1)
    from training.data.teachers import soft_targets
    from training.tasks.classifier import ClassifierTask, LABELS
    assert LABELS.index("female") == 1
    targets = soft_targets(data.labels, np.full(len(data.labels), 0.5, np.float32), 0.7, 1)
    task = ClassifierTask(data, ClassifierConfig(size=32, width=8), {"epochs": 1, "batch_size": 4, "lr": 1e-3}, targets)
    _x, y = task.batch(data.train_idx[:4], torch.device("cpu"))
    assert torch.allclose(y, torch.from_numpy(targets[np.sort(data.train_idx[:4])]))


def test_a_teacher_from_another_dataset_is_refused_by_name(tmp_path, tiny_utk, capsys):
    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
    other = tmp_path / "celeba_teacher.onnx"
    export_classifier(net, 32, other, classifier_card("c", 32, ["male", "female"], net.cam_grid(), "m",
                                                      {"dataset": "celeba"}, {}))
    code = main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--cache", str(tmp_path / "cache"), "--threads", "1",
                      "--out", str(tmp_path / "s"), "--distill-from", str(other)])
    err = capsys.readouterr().err
    assert code == 2 and "celeba_teacher.onnx" in err and "test faces" in err


def _swa_state(run):
    return load_checkpoint(run)["modules"]["swa"]


def test_weight_averaging_exports_the_average_and_resumes_exactly(tmp_path, tiny_utk):
    """--swa-epochs: the exported model is the weight average (with re-estimated batch-norm
    statistics), not the last weights; the card says so; an interruption mid-averaging resumes
    to the same average."""
    swa = ["--swa-epochs", "2", "--swa-lr", "3e-3"]
    assert _train(tmp_path, tiny_utk, *swa) == 0
    run = tmp_path / "run"
    state = load_checkpoint(run)
    cfg = ClassifierConfig.from_dict(state["config"]["net"])
    steps_per_epoch = state["step"] // 3
    assert state["epoch"] == 3 and steps_per_epoch > 0  # 1 one-cycle epoch + 2 averaging epochs
    every = max(1, steps_per_epoch // 4)
    assert int(state["modules"]["swa"]["n_averaged"]) == sum(
        1 for s in range(steps_per_epoch, 3 * steps_per_epoch) if (s + 1) % every == 0)

    averaged, last = CamClassifier(cfg).eval(), CamClassifier(cfg).eval()
    averaged.load_state_dict({k.removeprefix("module."): v for k, v in state["modules"]["swa"].items()
                              if k.startswith("module.")})
    last.load_state_dict(state["modules"]["net"])
    # batch-norm statistics were re-estimated for the average, not copied from the last weights
    bn = "features.1.0.bn1.running_mean"
    assert not torch.allclose(averaged.state_dict()[bn], last.state_dict()[bn])
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8))
    with torch.no_grad():  # raw CAMs: the tiny model's probabilities saturate
        cam_avg = averaged.forward_with_cam(averaged.preprocess(x))[1].numpy()
        cam_last = last.forward_with_cam(last.preprocess(x))[1].numpy()
    _, cam = load_model(run / "model.onnx", "classifier").predict(x.numpy())
    assert np.abs(cam - cam_avg).max() < 1e-3
    assert np.abs(cam - cam_last).max() > 0.1  # the two really differ, so the check above can fail

    entry = read_card(run / "model.onnx").training["weight_averaging"]
    assert entry["epochs"] == 2 and entry["lr"] == 3e-3
    assert entry["snapshots"] == int(state["modules"]["swa"]["n_averaged"])
    assert 0 <= entry["val_accuracy_averaged"] <= 1 and 0 <= entry["val_accuracy_last"] <= 1
    header, *rows = (run / "epochs.csv").read_text().splitlines()
    assert header.endswith("val_accuracy,val_accuracy_averaged") and len(rows) == 3
    assert rows[0].endswith(",nan") and not rows[-1].endswith(",nan")

    # stopped inside the averaging epochs, then resumed: the same average as the uninterrupted run
    again = tmp_path / "again"
    args = ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
            "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--threads", "1", *swa]
    assert main.main([*args, "--out", str(again), "--max-steps", str(steps_per_epoch + every + 1)]) == 0
    assert 0 < int(_swa_state(again)["n_averaged"]) < int(state["modules"]["swa"]["n_averaged"])
    assert main.main(["train", "classifier", "--out", str(again), "--resume",
                      "--cache", str(tmp_path / "cache"), "--threads", "1"]) == 0
    resumed = _swa_state(again)
    for k, v in state["modules"]["swa"].items():
        assert torch.allclose(resumed[k].float(), v.float(), atol=1e-6), k


def test_the_seed_fixes_the_initial_weights(tmp_path, tiny_utk):
    from training.tasks.classifier import ClassifierTask, build_data
    data = build_data(f"utkface:{tiny_utk}", 32, 18, "none", ["gender"], None, 0, tmp_path / "cache")

    def first_conv(seed):
        torch.rand(7)  # whatever ran before must not matter
        run_cfg = {"epochs": 1, "batch_size": 4, "lr": 1e-3, "seed": seed}
        return ClassifierTask(data, ClassifierConfig(size=32, width=8), run_cfg).net.features[0][0].weight

    assert torch.equal(first_conv(0), first_conv(0))
    assert not torch.equal(first_conv(0), first_conv(1))


@pytest.mark.parametrize("arch", ["resnet", "mobilenet"])
def test_the_classifier_traces_into_one_graph(arch):
    """What --compile fuses: the training forward, whole (see the CycleGAN's twin test)."""
    net = CamClassifier(ClassifierConfig(arch=arch, size=32)).train()
    explained = torch._dynamo.explain(net)(torch.rand(2, 3, 32, 32))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_a_kill_sent_to_the_process_group_checkpoints_and_resumes(tmp_path, tiny_utk):
    """SIGTERM to the whole group (`timeout`, a batch scheduler, `docker stop`) reaches the DataLoader workers
    too. Training used to fail on their deaths mid-step, with a traceback and no checkpoint; it finishes the
    step, checkpoints, says so and exits 130, and --resume continues from there."""
    import sys

    from tests.conftest import terminate_group_when

    run = tmp_path / "run"
    args = ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "400",
            "--batch-size", "8", "--cache", "", "--out", str(run), "--threads", "1", "--workers", "2"]
    code, text = terminate_group_when([sys.executable, "main.py", *args], lambda: (run / "log.csv").exists())
    assert code == 130, text
    assert "Traceback" not in text and "interrupted: the last checkpoint is" in text
    state = load_checkpoint(run / "last.pt")
    assert state["step"] >= 20  # log.csv is first written at step 20, before the kill
    assert main.main([*args, "--resume", "--max-steps", "2"]) == 0
    assert load_checkpoint(run / "last.pt")["step"] == state["step"] + 2


@pytest.mark.parametrize("workers", ["0", "2"])
def test_ctrl_c_resumes_to_the_very_run_an_uninterrupted_one_makes(tmp_path, tiny_utk, workers):
    """Ctrl-C (SIGINT to the whole group, as a terminal sends it) used to raise anywhere: inside batch(), with the
    augmentation's randomness half drawn, or after the update before the step was counted, so the checkpoint held
    updated weights at the old position. It now stops as a kill does: the step finishes, the run checkpoints and
    exits 130, and interrupted + resumed logs and weighs exactly what the straight run does."""
    import signal
    import sys

    from tests.conftest import terminate_group_when

    args = ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "400",
            "--batch-size", "8", "--cache", str(tmp_path / "cache"), "--threads", "1", "--workers", workers]
    steps = 100
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main.main([*args, "--out", str(straight), "--max-steps", str(steps)]) == 0
    code, text = terminate_group_when([sys.executable, "main.py", *args, "--out", str(cut)],
                                      lambda: (cut / "log.csv").exists(), sig=signal.SIGINT)
    assert code == 130, text
    assert "Traceback" not in text and "interrupted: the last checkpoint is" in text
    done = load_checkpoint(cut)["step"]
    assert 20 <= done < steps
    assert main.main([*args, "--out", str(cut), "--resume", "--max-steps", str(steps - done)]) == 0
    a, b = load_checkpoint(cut), load_checkpoint(straight)
    assert a["step"] == b["step"] == steps
    # with workers too: they ignored the Ctrl-C and were shut down, and a batch's augmentation is seeded by the
    # batch, not by the loader that prepared it
    assert (cut / "log.csv").read_text() == (straight / "log.csv").read_text()
    for k, v in b["modules"]["net"].items():
        assert torch.equal(a["modules"]["net"][k], v), k


def test_a_resume_refuses_settings_that_differ_from_its_checkpoint_and_needs_no_dataset(tmp_path, tiny_utk, capsys):
    """--resume used to continue with the checkpoint's --size, --epochs, --lr, --compose and --dataset whatever the
    command line said, and the documented `train classifier --out RUN --resume` failed for want of --dataset."""
    assert _train(tmp_path, tiny_utk, "--max-steps", "2") == 0
    run, cache = tmp_path / "run", str(tmp_path / "cache")
    other = tmp_path / "other"
    other.mkdir()
    capsys.readouterr()
    changed = ["--dataset", f"utkface:{other}", "--size", "64", "--epochs", "3", "--lr", "0.01", "--compose", "balanced"]
    code = main.main(["train", "classifier", "--out", str(run), "--resume", "--cache", cache, "--threads", "1", *changed])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {run / 'last.pt'}: ")
    for said in (f"--dataset utkface:{other} differs from the checkpoint's utkface:{tiny_utk}",
                 "--size 64 differs from the checkpoint's 32", "--epochs 3 differs from the checkpoint's 1",
                 "--lr 0.01 differs from the checkpoint's 0.002", "--compose balanced differs from the checkpoint's none"):
        assert said in err
    assert "a resumed run keeps its settings; start a new --out to change them" in err
    assert load_checkpoint(run)["step"] == 2  # nothing trained
    # the same settings written another way, and what a resume may change, are accepted
    same = ["--dataset", f"utkface:{tiny_utk}/../{tiny_utk.name}", "--size", "32", "--epochs", "1", "--lr", "2e-3",
            "--workers", "0", "--precision", "fp32", "--name", "renamed"]
    assert main.main(["train", "classifier", "--out", str(run), "--resume", "--cache", cache, "--threads", "1", *same,
                      "--max-steps", "1"]) == 0
    assert load_checkpoint(run)["step"] == 3
    assert main.main(["train", "classifier", "--out", str(run), "--resume", "--cache", cache, "--threads", "1",
                      "--max-steps", "1"]) == 0  # no --dataset: the checkpoint's
    assert load_checkpoint(run)["step"] == 4
    code = main.main(["train", "classifier", "--out", str(tmp_path / "fresh"), "--threads", "1"])
    assert code == 2 and "--dataset KIND:PATH is needed to start a run" in capsys.readouterr().err


def test_a_resume_refuses_training_data_that_changed_since_its_checkpoint(tmp_path, tiny_utk, capsys):
    """The same settings on other images would go on training a run on data it did not start with: a file
    removed since (or, as when copies became counted once, a dataset read otherwise) is refused by its counts."""
    from inference.datasets import Sample, split_of

    assert _train(tmp_path, tiny_utk, "--max-steps", "2") == 0
    saved = load_checkpoint(tmp_path / "run")["data"]
    assert set(saved) == {"training images", "images in all splits"} and saved["training images"] > 100
    n, train = saved["images in all splits"], saved["training images"]
    trained = next(p for p in sorted(tiny_utk.glob("2*.jpg")) if split_of(Sample(str(p))) == "train")
    trained.unlink()
    capsys.readouterr()
    assert _train(tmp_path, tiny_utk, "--resume") == 2
    err = capsys.readouterr().err
    assert (f"the training data is not what this run started on (images in all splits {n} then, {n - 1} now, "
            f"training images {train} then, {train - 1} now; 1 file gone (e.g. {trained.name}))") in err
    assert str(tmp_path / "run" / "last.pt") in err
    assert load_checkpoint(tmp_path / "run")["step"] == 2


def test_a_setting_typed_again_with_its_own_value_is_accepted_whatever_it_depends_on(tmp_path, tiny_utk, monkeypatch):
    """--compose target means nothing without --target, and --distill-weight nothing without --distill-from: on a
    resume, the options left out are the checkpoint's, so typing a setting again is not refused for them. And a run
    started with a relative --dataset resumes from another folder."""
    teacher = tmp_path / "teacher.onnx"  # trained on the same split of UTKFace, as distillation requires
    net = CamClassifier(ClassifierConfig(arch="resnet", size=32, width=8)).eval()
    card = classifier_card("teacher", 32, ["male", "female"], net.cam_grid(), "test", {"dataset": "utkface"}, {})
    export_classifier(net, 32, teacher, card)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").symlink_to(tiny_utk)
    relative = "utkface:data"  # relative to tmp_path, where the run starts
    start = ["train", "classifier", "--dataset", relative, "--size", "32", "--width", "8", "--epochs", "1",
             "--batch-size", "16", "--cache", "cache", "--out", "run", "--threads", "1", "--compose", "target",
             "--target", "female:0.5,male:0.5", "--distill-from", str(teacher), "--distill-weight", "0.7",
             "--max-steps", "1"]
    assert main.main(start) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = str(tmp_path / "run")
    again = ["train", "classifier", "--out", run, "--resume", "--threads", "1", "--max-steps", "1"]
    assert main.main([*again, "--compose", "target", "--distill-weight", "0.7"]) == 0
    assert main.main([*again, "--dataset", f"utkface:{tmp_path / 'data'}"]) == 0
    assert load_checkpoint(tmp_path / "run")["step"] == 3
    assert main.main([*again, "--distill-weight", "0.6"]) == 2  # a different value is still refused


@pytest.mark.parametrize("trainer", ["classifier", "cyclegan"])
def test_every_trainer_option_is_either_kept_or_free_to_change_on_resume(trainer):
    """A new option must be put in one list or the other, or a resume would ignore it silently again."""
    import importlib

    from training.resume import unclassified_options

    module = importlib.import_module(f"training.tasks.{trainer}")
    argv = ["train", trainer]
    parser = main._subparser(main._subparser(main.build_parser(argv), "train"), trainer)
    assert unclassified_options(parser, module.RESUME_SETTINGS, module.MAY_CHANGE_ON_RESUME) == set()
    assert not set(module.RESUME_SETTINGS) & module.MAY_CHANGE_ON_RESUME


def test_the_card_lists_every_resume_after_the_first_command(tmp_path, tiny_utk):
    """CycleGAN cards listed their resumes; a classifier's card gave only the first command, as if trained in one go."""
    first = ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
             "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--threads", "1"]
    again = ["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--cache", str(tmp_path / "cache"),
             "--threads", "1"]
    assert main.main([*first, "--max-steps", "2"]) == 0
    assert main.main([*again, "--max-steps", "1"]) == 0
    assert main.main(again) == 0
    training = read_card(tmp_path / "run" / "model.onnx").training
    assert training["command"] == "python main.py " + " ".join([*first, "--max-steps", "2"])
    assert training["resumes"] == ["python main.py " + " ".join([*again, "--max-steps", "1"]),
                                   "python main.py " + " ".join(again)]


def test_compare_stopped_by_max_steps_ends_cleanly_and_continues_when_run_again(tmp_path, tiny_utk, capsys):
    """It used to print that it stopped, then fail on 'unbalanced/model.onnx: model file not found'."""
    args = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1"]
    assert main.main([*args, "--resume"]) == 2  # nothing to continue yet
    assert "no variant has been trained here yet" in capsys.readouterr().err
    assert main.main([*args, "--max-steps", "3"]) == 0
    out, err = capsys.readouterr()
    assert "the unbalanced variant has not finished training, so nothing is compared yet" in out
    assert "Traceback" not in err and "error" not in err
    assert load_checkpoint(tmp_path / "cmp" / "unbalanced")["step"] == 3
    assert not (tmp_path / "cmp" / "comparison.json").exists() and not (tmp_path / "cmp" / "balanced").exists()
    assert main.main([*args, "--resume"]) == 0
    assert set(json.loads((tmp_path / "cmp" / "comparison.json").read_text())["models"]) == {"unbalanced", "gender-balanced"}
    assert len(read_card(tmp_path / "cmp" / "unbalanced" / "model.onnx").training["resumes"]) == 1
    # stopped after model.onnx was exported but before its metrics were written: finished, not reused half-done
    (tmp_path / "cmp" / "unbalanced" / "metrics.json").unlink()
    capsys.readouterr()
    assert main.main([*args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"reusing {tmp_path / 'cmp' / 'unbalanced' / 'model.onnx'}" not in out
    assert f"reusing {tmp_path / 'cmp' / 'balanced' / 'model.onnx'}" in out
    assert (tmp_path / "cmp" / "unbalanced" / "metrics.json").exists()


def test_compare_reuses_only_variants_made_with_the_settings_given_and_records_how_each_was_made(tmp_path, tiny_utk,
                                                                                                capsys):
    """Built at --size 32 and rerun with --size 48 --width 16, compare printed 'reusing …' and rewrote
    comparison.json from the old models. Now it refuses by name, and comparison.json says how each was made."""
    base = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--epochs", "1", "--batch-size", "16",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1"]
    assert main.main([*base, "--size", "32", "--width", "8"]) == 0
    written = (tmp_path / "cmp" / "comparison.json").read_text()
    variants = json.loads(written)["variants"]
    assert set(variants) == {"unbalanced", "gender-balanced"} and not any(v["reused"] for v in variants.values())
    made = variants["gender-balanced"]["training"]
    assert made["architecture"]["size"] == 32 and made["composition"]["mode"] == "balanced" and made["command"]
    capsys.readouterr()
    assert main.main([*base, "--size", "48", "--width", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "cmp" / "unbalanced" / "last.pt") in err
    assert "--size 48 differs from the checkpoint's 32" in err and "--width 16 differs from the checkpoint's 8" in err
    assert (tmp_path / "cmp" / "comparison.json").read_text() == written  # not rewritten from the old models
    assert main.main([*base, "--size", "32"]) == 0  # the same settings: reused
    assert "reusing" in capsys.readouterr().out
    assert all(v["reused"] for v in json.loads((tmp_path / "cmp" / "comparison.json").read_text())["variants"].values())


def test_compare_does_not_train_its_second_variant_unlike_the_first(tmp_path, tiny_utk, capsys):
    """The first variant stopped with --min-age -1; the command run again without it would have trained the
    second on adults only (the default) and compared the two as if alike."""
    base = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1"]
    assert main.main([*base, "--min-age", "-1", "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main.main(base) == 2
    err = capsys.readouterr().err
    assert "--min-age 18 (the default) differs from the checkpoint's -1" in err
    assert "the gender-balanced variant is trained as the unbalanced one was" in err
    assert "give the settings the unbalanced variant was started with (those named above), or start a new --out" in err
    assert load_checkpoint(tmp_path / "cmp" / "unbalanced")["step"] == 1  # refused before anything was trained


def test_evaluate_takes_the_age_filter_from_the_cards_and_notes_another(tmp_path, capsys):
    """`train evaluate` used --min-age 18 even for a model whose card says it was trained and tested on all ages,
    and reported other numbers than its card's without a word."""
    from tests.test_cyclegan import write_utk

    data = write_utk(tmp_path / "UTKFace", per_cell=2, ages=(8, 30))  # half the faces are children
    models = {}
    for name, age in (("all-ages", None), ("adults", 18)):
        net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
        card = classifier_card(name, 32, ["male", "female"], net.cam_grid(), "m",
                               {"dataset": "utkface", "filters": {"min_age": age}}, {})
        models[name] = tmp_path / f"{name}.onnx"
        export_classifier(net, 32, models[name], card)

    def evaluate(*extra):
        out = tmp_path / "ev.json"
        assert main.main(["train", "evaluate", "--dataset", f"utkface:{data}", "--split", "all", "--json", str(out),
                          *extra]) == 0
        written = json.loads(out.read_text())
        counts = {k: v["overall"]["accuracy"]["n"] for k, v in written["models"].items()}
        assert written["evaluated"]["min_age"] == (18 if set(counts.values()) == {10} else None)  # which faces
        return counts, capsys.readouterr().out

    n, out = evaluate("--model", str(models["all-ages"]))
    assert list(n.values()) == [20] and "evaluating on faces of all ages, as the model card(s)" in out
    n, out = evaluate("--model", str(models["adults"]))
    assert list(n.values()) == [10] and "aged 18 or more, as the model card(s)" in out
    n, out = evaluate("--model", str(models["all-ages"]), "--min-age", "18")
    assert list(n.values()) == [10]
    assert "note: --min-age 18 differs from the card of all-ages (all-ages.onnx), trained and tested on faces of all " \
           "ages: its numbers here are on other faces than its card's" in out
    n, out = evaluate("--model", str(models["all-ages"]), "--model", str(models["adults"]))
    assert set(n.values()) == {10} and "the models' cards were tested on different ages" in out
    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()  # a card that does not say its ages
    export_classifier(net, 32, tmp_path / "silent.onnx",
                      classifier_card("silent", 32, ["male", "female"], net.cam_grid(), "m", {"dataset": "utkface"}, {}))
    n, out = evaluate("--model", str(models["all-ages"]), "--model", str(tmp_path / "silent.onnx"))
    assert set(n.values()) == {20} and "silent (silent.onnx): not said" in out


def assert_workers_train_the_very_model(tmp_path, data, workers: int, epochs: int, steps: int) -> None:
    """A tiny classifier trained with ``workers`` DataLoader workers has the weights of one trained without."""
    args = ["train", "classifier", "--dataset", f"utkface:{data}", "--size", "32", "--width", "8", "--epochs",
            str(epochs), "--batch-size", "8", "--cache", str(tmp_path / "cache"), "--threads", "1", "--max-steps",
            str(steps)]
    assert main.main([*args, "--out", str(tmp_path / "here"), "--workers", "0"]) == 0
    assert main.main([*args, "--out", str(tmp_path / "workers"), "--workers", str(workers)]) == 0
    a, b = load_checkpoint(tmp_path / "here"), load_checkpoint(tmp_path / "workers")
    for k, v in a["modules"]["net"].items():
        assert torch.equal(b["modules"]["net"][k], v), k


def test_workers_train_the_very_model_the_main_process_does(tmp_path, tiny_utk):
    """A batch's augmentation is seeded by the batch: preparing it in DataLoader workers changes nothing."""
    assert_workers_train_the_very_model(tmp_path, tiny_utk, workers=2, epochs=2, steps=6)


def test_erasing_hides_a_grey_patch_and_label_smoothing_softens_the_loss_and_both_are_in_the_card(tmp_path, tiny_utk,
                                                                                                   capsys):
    """--erase P paints one mid-grey patch of 2–20 % of the crop into a share P of the training crops (and none
    without it); --label-smoothing spreads that share of each target over both classes; the card names both, and a
    resume refuses a change to either."""
    from training.tasks.classifier import ERASE_SCALE, ClassifierTask, build_data
    data = build_data(f"utkface:{tiny_utk}", 32, 18, "none", ["gender"], None, 0, tmp_path / "cache")
    idx = data.train_idx[:32]
    base = {"epochs": 1, "batch_size": 4, "lr": 1e-3, "seed": 0}

    def grey_share(run_cfg):
        x, _ = ClassifierTask(data, ClassifierConfig(size=32, width=8), run_cfg).batch(idx, torch.device("cpu"))
        return (x == 128).all(-1).float().mean((1, 2)).numpy()  # per crop: pixels grey in all three channels

    plain, erased = grey_share(base), grey_share({**base, "erase": 1.0})
    # the tiny faces are noise 0..60 over 40 or 120 (jittered): an exact mid-grey pixel in all channels is rare
    assert plain.max() < ERASE_SCALE[0] / 4
    assert (erased >= ERASE_SCALE[0] * 0.8).all() and (erased <= ERASE_SCALE[1] * 1.1).all()
    half = grey_share({**base, "erase": 0.5})
    assert 0 < (half >= ERASE_SCALE[0] * 0.8).sum() < len(idx)

    logits, y = torch.tensor([[4.0, -4.0]]), torch.tensor([0])
    sharp = ClassifierTask(data, ClassifierConfig(size=32, width=8), base).loss(logits, y)
    soft = ClassifierTask(data, ClassifierConfig(size=32, width=8), {**base, "label_smoothing": 0.2}).loss(logits, y)
    # smoothing 0.2 aims at (0.9, 0.1): a confident right answer now costs more
    expected = -(0.9 * torch.log_softmax(logits, 1)[0, 0] + 0.1 * torch.log_softmax(logits, 1)[0, 1])
    assert float(sharp) < float(soft) == pytest.approx(float(expected), rel=1e-5)

    assert _train(tmp_path, tiny_utk, "--erase", "0.3", "--label-smoothing", "0.05") == 0
    training = read_card(tmp_path / "run" / "model.onnx").training
    assert "mid-grey patch of 2%–20% of the crop with p 0.3" in training["augmentation"]
    assert training["label_smoothing"] == 0.05
    capsys.readouterr()
    code = main.main(["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--cache",
                      str(tmp_path / "cache"), "--threads", "1", "--erase", "0.1", "--label-smoothing", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--erase 0.1 differs from the checkpoint's 0.3" in err
    assert "--label-smoothing 0 differs from the checkpoint's 0.05" in err


def test_the_card_counts_bad_names_apart_from_copies_and_label_conflicts(tmp_path, tiny_utk):
    """A file stored twice under one label counts once; stored under two genders, both are left out; neither is a
    file with an unusable name, which the card once counted them as (287 'bad names' on UTKFace, 3 of them real)."""
    import shutil
    from training.tasks.classifier import build_data
    males = sorted(f for f in tiny_utk.iterdir() if f.name.count("_") == 3 and f.name.split("_")[1] == "0")

    def copy_as(src: Path, gender: str) -> None:
        age, _, race, stamp = src.name.split("_")
        shutil.copyfile(src, tiny_utk / f"{age}_{gender}_{race}_{stamp.split('.')[0]}1.jpg.chip.jpg")

    copy_as(males[0], "0")  # the same label
    copy_as(males[5], "1")  # the other gender
    data = build_data(f"utkface:{tiny_utk}", 32, 18, "none", ["gender"], None, 0, tmp_path / "cache")
    assert data.filters == {"min_age": 18, "no_age_left_out": 0, "unreadable_skipped": 1, "bad_names_skipped": 1,
                            "listed_not_in_folder": 0, "label_conflicts_left_out": 2, "copies_counted_once": 1}


def test_a_resume_keeps_the_name_the_run_was_given_unless_told_another(tmp_path, tiny_utk):
    """A resume without --name used to rename the model after its run folder."""
    assert _train(tmp_path, tiny_utk, "--name", "given-name", "--max-steps", "2") == 0
    resume = ["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--cache", str(tmp_path / "cache"),
              "--threads", "1"]
    assert main.main([*resume, "--max-steps", "1"]) == 0
    assert main.main(resume) == 0
    assert read_card(tmp_path / "run" / "model.onnx").name == "given-name"
    assert main.main([*resume, "--name", "renamed"]) == 0
    assert read_card(tmp_path / "run" / "model.onnx").name == "renamed"


def test_evaluate_keeps_apart_two_models_with_one_name_and_one_file_name(tmp_path, capsys):
    """A retrained model beside its predecessor (same card name, same file name, other folder) replaced it in every
    table and comparison of `train evaluate`: the paired test compared the old model with itself."""
    from tests.test_cyclegan import write_utk

    data = write_utk(tmp_path / "UTKFace", per_cell=2, ages=(30,))
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
        card = classifier_card("same-name", 32, ["male", "female"], net.cam_grid(), "m", {"dataset": "utkface"}, {})
        paths.append(tmp_path / f"v{seed}" / "model.onnx")
        paths[-1].parent.mkdir()
        export_classifier(net, 32, paths[-1], card)
    out = tmp_path / "ev.json"
    assert main.main(["train", "evaluate", "--dataset", f"utkface:{data}", "--split", "all", "--json", str(out),
                      "--model", str(paths[0]), "--model", str(paths[1])]) == 0
    written = json.loads(out.read_text())
    assert list(written["models"]) == ["same-name (model.onnx)", "same-name#2 (model.onnx)"]
    assert "same-name (model.onnx) vs same-name#2 (model.onnx)" in capsys.readouterr().out


def test_compare_refuses_a_mix_short_of_a_batch_before_either_variant_trains(tmp_path, tiny_utk, capsys):
    """The balanced mix of a dataset short of women failed after the unbalanced variant had trained, and the batch
    size it advised was then refused as not the first variant's."""
    for i, p in enumerate(sorted(tiny_utk.glob("*_1_*.jpg.chip.jpg"))):
        if i >= 6:
            p.unlink()
    code = main.main(["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "cmp"), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "training face(s) listed after --compose balanced, fewer than one batch" in err
    assert not (tmp_path / "cmp" / "unbalanced" / CHECKPOINT).exists()



# --- found by a review of the trainer (2026-12-06) -------------------------------------------------------------------

def test_a_mix_of_one_gender_is_refused_before_decoding(tmp_path, tiny_utk, capsys):
    """--compose target female:1 trained a 'gender classifier' on women alone and exported it with exit 0."""
    code = main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--threads", "1", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "run"), "--compose", "target", "--target", "female:1"])
    assert code == 2
    assert "the training mix (--compose target) holds faces of one gender only" in capsys.readouterr().err
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_a_resume_refuses_a_replaced_teacher_and_an_export_over_it(tmp_path, tiny_utk, capsys, monkeypatch):
    """A resume re-read the teacher file and trained on whatever was there; and --export-to could replace the
    checkpoint's teacher, which a plain --resume does not name."""
    teacher = make_classifier(tmp_path / "teacher.onnx", 32, seed=1, dataset="utkface")
    base = ["train", "classifier", "--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "16",
            "--threads", "1", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    monkeypatch.chdir(tmp_path)  # given relative, as typed: the resume anchors it, and must still compare it
    assert main.main([*base, "--dataset", f"utkface:{tiny_utk}", "--distill-from", "teacher.onnx", "--max-steps",
                      "1"]) == 0
    capsys.readouterr()
    before = teacher.read_bytes()
    assert main.main([*base, "--resume", "--export-to", str(teacher)]) == 2
    assert "--export-to is an input of this command" in capsys.readouterr().err and teacher.read_bytes() == before
    make_classifier(teacher, 32, seed=2, dataset="utkface")
    assert main.main([*base, "--resume"]) == 2
    assert "changed since this run began" in capsys.readouterr().err


def test_a_resume_of_an_averaged_run_takes_its_own_swa_lr(tmp_path, tiny_utk, capsys):
    base = ["train", "classifier", "--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "16",
            "--threads", "1", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    assert main.main([*base, "--dataset", f"utkface:{tiny_utk}", "--swa-epochs", "1", "--swa-lr", "0.001",
                      "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main.main([*base, "--resume", "--swa-lr", "0.002", "--max-steps", "1"]) == 2
    assert "--swa-lr 0.002 differs from the checkpoint's 0.001" in capsys.readouterr().err  # not "without --swa-epochs"
    assert main.main([*base, "--resume", "--swa-lr", "0.001", "--max-steps", "1"]) == 0


def test_faces_without_an_age_are_left_out_by_any_age_bar_and_counted(tmp_path):
    from training.tasks.classifier import list_faces

    folder = labelled_folder(tmp_path / "faces", 8, no_age=2, split="train")
    listed = list_faces(f"folder:{folder}", 0)  # --min-age 0 had kept the two of no age
    assert len(listed.samples) == 6 and listed.no_age == 2
    assert len(list_faces(f"folder:{folder}", None).samples) == 8
    # a run begun under the old rule keeps it, or its resume would be refused as run on other data
    legacy = list_faces(f"folder:{folder}", 0, unknown_age_passes=True)
    assert len(legacy.samples) == 8 and legacy.no_age == 0


def test_a_run_begun_before_the_age_rule_changed_still_resumes(tmp_path):
    folder = labelled_folder(tmp_path / "faces", 40, no_age=6, split="train")
    base = ["train", "classifier", "--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "8",
            "--threads", "1", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    assert main.main([*base, "--dataset", f"folder:{folder}", "--min-age", "0", "--max-steps", "1"]) == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    state = torch.load(checkpoint, weights_only=False)
    assert state["data"]["training images"] == 34  # the six of no age left out
    # as a run begun before 2026-12-06 saved it: no rule in its config, the faces of no age among its data
    del state["config"]["age_rule"]
    state["data"] = {k: v + 6 for k, v in state["data"].items()}
    del state["data_faces"]  # kept since 2026-12: a run of before has none
    state["schedulers"]["net"]["total_steps"] = 5  # as 40 faces at batch 8 made it (34 had made 4)
    torch.save(state, checkpoint)
    assert main.main([*base, "--resume", "--max-steps", "1"]) == 0


def test_a_comparison_begun_before_the_age_rule_trains_its_second_variant_on_the_same_faces(tmp_path):
    """The variant begun before kept faces of no age, and the one started after left them out: two variants
    compared as alike, trained on different faces."""
    folder = labelled_folder(tmp_path / "faces", 60, no_age=10)
    base = ["train", "compare", "--dataset", f"folder:{folder}", "--min-age", "0", "--size", "32", "--width", "8",
            "--epochs", "1", "--batch-size", "8", "--threads", "1", "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "cmp")]
    import training.tasks.classifier as classifier_task

    recorded = classifier_task.config_from_args

    def as_before(args):  # the config of a run begun before 2026-12-06: no age rule recorded
        net, cfg = recorded(args)
        cfg.pop("age_rule")
        return net, cfg

    with pytest.MonkeyPatch.context() as m:
        m.setattr(classifier_task, "config_from_args", as_before)
        assert main.main([*base, "--max-steps", "1"]) == 0
    assert main.main(base) == 0
    counts = [load_checkpoint(tmp_path / "cmp" / v)["data"]["images in all splits"] for v in ("unbalanced", "balanced")]
    assert counts == [60, 60]  # both with the faces of no age, as the first began


def test_compare_says_what_the_age_bar_left_out_once_per_variant(tmp_path, capsys):
    folder = labelled_folder(tmp_path / "faces", 60, no_age=10)
    assert main.main(["train", "compare", "--dataset", f"folder:{folder}", "--min-age", "0", "--size", "32", "--width",
                      "8", "--epochs", "1", "--batch-size", "8", "--threads", "1", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "cmp"), "--max-steps", "1"]) == 0
    assert capsys.readouterr().out.count("have no age and are left out") == 1  # the first variant's; not its check's


def test_the_card_counts_images_left_out_for_want_of_a_gender_label(tmp_path):
    """Images a labels CSV left without a gender were kept by the reader and dropped by training, uncounted."""
    import cv2

    from training.tasks.classifier import build_data
    folder = labelled_folder(tmp_path / "faces", 8, no_age=0, split="train")
    rng = np.random.default_rng(0)
    for i in range(3):  # noise: no copy of a labelled face, whose label it would take (copies)
        cv2.imwrite(str(folder / f"unlabelled{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    data = build_data(f"folder:{folder}", 32, None, "none", ["gender"], None, 0, tmp_path / "cache")
    assert len(data.samples) == 8 and data.filters["no_gender_left_out"] == 3


def test_a_teacher_trained_on_another_folder_is_refused(tmp_path):
    """Both datasets were "folder", so a teacher whose labels CSV put this run's test faces in train was taken."""
    from inference.runtime import RuntimeConfig
    from training.data.teachers import open_teachers
    student, other = (labelled_folder(tmp_path / name, 4, no_age=0) for name in ("student", "other"))
    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
    teachers = {}
    for name, root in (("same", student), ("other", other)):
        teachers[name] = tmp_path / f"{name}.onnx"
        export_classifier(net, 32, teachers[name], classifier_card(
            name, 32, ["male", "female"], net.cam_grid(), "m", {"dataset": "folder", "dataset_root": str(root)}, {}))
    cpu = RuntimeConfig(provider="cpu")
    assert len(open_teachers([str(teachers["same"])], "folder", str(tmp_path / "." / "student"), cpu)) == 1
    with pytest.raises(BiasMirrorError, match=f"other.onnx: teacher was trained on the folder {other}, not on"):
        open_teachers([str(teachers["other"])], "folder", str(student), cpu)


def test_the_cards_split_says_which_faces_kept_their_copies_split_not_split_labels(tmp_path, tiny_utk):
    """UTKFace has no split labels; a face stored twice is kept in its copies' split, which the card called "the
    dataset's own split labels for 968 of 20824 images"."""
    import shutil

    first = sorted(f for f in tiny_utk.iterdir() if f.name.count("_") == 3)[0]
    age, gender, race, stamp = first.name.split("_")
    shutil.copyfile(first, tiny_utk / f"{age}_{gender}_{race}_{stamp.split('.')[0]}1.jpg.chip.jpg")
    assert _train(tmp_path, tiny_utk) == 0
    split = read_card(tmp_path / "run" / "model.onnx").training["split"]
    assert "own split labels" not in split
    assert "except 1 of" in split and "kept in one split with its copies" in split


# --- found by a review of the trainer (rev15) ------------------------------------------------------------------------

def test_compare_trains_its_second_variant_with_the_options_the_first_was_started_with(tmp_path, tiny_utk, capsys):
    """Stopped with --lr, --distill-from and --swa-epochs and run again without them, compare passed its check (which
    read the options left out from the first variant's checkpoint) and trained the balanced variant from the
    defaults: two models compared as "balanced vs unbalanced" that differed in three more ways."""
    teacher = make_classifier(tmp_path / "teacher.onnx", 32, seed=1, dataset="utkface")
    base = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1"]
    assert main.main([*base, "--lr", "0.001", "--swa-epochs", "1", "--distill-from", str(teacher),
                      "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main.main([*base, "--resume"]) == 0
    assert (f"as the unbalanced variant was started: --distill-from {teacher}, --swa-epochs 1, --lr 0.001"
            in capsys.readouterr().out)
    for variant in ("unbalanced", "balanced"):
        training = read_card(tmp_path / "cmp" / variant / "model.onnx").training
        assert training["lr"] == 0.001 and training["weight_averaging"]["epochs"] == 1, variant
        assert training["distillation"]["teachers"][0]["path"] == str(teacher), variant


def test_the_teachers_cached_soft_labels_are_those_of_the_faces_trained_on(tmp_path, tiny_utk):
    """A run killed before its first checkpoint leaves teacher_p_female.npz; a new run into that --out on as many other
    faces (another --seed's balanced mix) took those soft labels for its own faces' (75 % agreement, not 99 %)."""
    from training.tasks.classifier import build_data, distillation_targets

    teacher = make_classifier(tmp_path / "teacher.onnx", 32, seed=1, dataset="utkface")
    first, second = (build_data(f"utkface:{tiny_utk}", 32, 18, "balanced", ["gender", "race"], None, seed,
                                tmp_path / "cache") for seed in (0, 1))
    assert len(first.train_idx) == len(second.train_idx) and set(first.train_idx) != set(second.train_idx)
    cfg = {"distill_from": [str(teacher)], "distill_weight": 1.0}  # the targets are the teachers' probabilities
    run = tmp_path / "run"
    stale = distillation_targets(first, dict(cfg), run)[first.train_idx, 1]
    got = distillation_targets(second, dict(cfg), run)[second.train_idx, 1]
    model = load_model(teacher, "classifier")
    faces = second.images[second.train_idx]
    expect = (model.predict(faces)[0][:, 1] + model.predict(np.ascontiguousarray(faces[:, :, ::-1]))[0][:, 1]) / 2
    assert not np.allclose(stale, expect, atol=1e-6)  # the other faces' really differ, so the check below can fail
    assert np.allclose(got, expect, atol=1e-6)


def test_a_plain_resume_copies_the_model_where_the_run_was_told_to_and_says_so(tmp_path, tiny_utk, capsys):
    """--export-to was dropped by a plain --resume: model.onnx only, nothing copied, not a word (--name was kept)."""
    export = tmp_path / "exp" / "kept.onnx"
    assert _train(tmp_path, tiny_utk, "--export-to", str(export), "--max-steps", "2") == 0
    capsys.readouterr()
    resume = ["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--cache", str(tmp_path / "cache"),
              "--threads", "1"]
    assert main.main(resume) == 0
    assert f"as the run last ran: --export-to {export.resolve()}" in capsys.readouterr().out
    assert export.read_bytes() == (tmp_path / "run" / "model.onnx").read_bytes()
    elsewhere = tmp_path / "exp" / "elsewhere.onnx"
    assert main.main([*resume, "--export-to", str(elsewhere)]) == 0
    assert "as the run last ran" not in capsys.readouterr().out and elsewhere.exists()


def test_a_balanced_mix_names_a_value_no_training_face_has_as_an_empty_cell(tmp_path):
    """Race Others in the test split alone: the table showed four races at 0.250, no warning, and the card's
    composition.empty was [] though its test metrics had Others."""
    import cv2

    from training.tasks.classifier import build_data
    folder = tmp_path / "faces"
    folder.mkdir()
    rows = ["file,gender,race,age,split"]
    for i, (race, split) in enumerate([("White", "train"), ("Black", "train")] * 4 + [("Others", "test")] * 2):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((40, 40, 3), 20 * i, np.uint8))
        rows.append(f"f{i}.png,{'female' if i % 2 else 'male'},{race},30,{split}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    data = build_data(f"folder:{folder}", 32, 18, "balanced", ["race"], None, 0, tmp_path / "cache")
    assert data.composition.empty == ["Others"] and data.composition.achieved["Others"] == 0
    assert "warning: no training faces in Others" in data.composition.table()


def test_the_card_says_how_many_snapshots_were_averaged_an_epoch(tmp_path, tiny_utk):
    """It said "weights averaged 4× an epoch" of snapshots taken every steps // 4 steps (15 steps: 5 an epoch)."""
    assert _train(tmp_path, tiny_utk, "--swa-epochs", "2") == 0
    entry = read_card(tmp_path / "run" / "model.onnx").training["weight_averaging"]
    snapshots = int(_swa_state(tmp_path / "run")["n_averaged"])
    assert entry["snapshots"] == snapshots and snapshots % 4 != 0  # 7 steps an epoch: one a step, not 4 an epoch
    assert f"with {snapshots} snapshots of the weights averaged ({snapshots / 2:.3g} an epoch)" in entry["method"]


def test_a_cell_given_twice_in_the_target_is_refused_by_name(tmp_path, tiny_utk, capsys):
    """female:0.5,male:0.25,female:0.25 trained 0.5/0.5: the last share won without a word."""
    assert _train(tmp_path, tiny_utk, "--compose", "target", "--target", "female:0.5,male:0.25,female:0.25") == 2
    assert "the cell 'female' is given twice; give each cell one share" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_an_age_bar_above_every_face_says_so(tmp_path, tiny_utk, capsys):
    """--min-age 200 said "no samples with a gender label after filtering" of faces that all have one."""
    assert _train(tmp_path, tiny_utk, "--min-age", "200") == 2
    err = capsys.readouterr().err
    assert "--min-age 200 left no face to train on (the oldest labelled face is 59): give a lower --min-age" in err
    assert "gender label" not in err


def test_compare_refuses_a_teacher_replaced_before_its_second_variant_trains(tmp_path, tiny_utk, capsys):
    """The second variant would have learned from another file at the teacher's path than the first had."""
    teacher = make_classifier(tmp_path / "teacher.onnx", 32, seed=1, dataset="utkface")
    base = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1",
            "--distill-from", str(teacher)]
    assert main.main([*base, "--max-steps", "1"]) == 0
    assert main.main(["train", "classifier", "--resume", "--out", str(tmp_path / "cmp" / "unbalanced"), "--cache",
                      str(tmp_path / "cache"), "--threads", "1"]) == 0  # the first variant finished, checked then
    make_classifier(teacher, 32, seed=2, dataset="utkface")  # another model at the same path
    capsys.readouterr()
    assert main.main([*base, "--resume"]) == 2
    assert "changed since this run began" in capsys.readouterr().err
    assert not (tmp_path / "cmp" / "balanced" / "last.pt").exists()


def _compare_with_its_first_variant_finished(tmp_path, tiny_utk) -> tuple[Path, list[str]]:
    """A `train compare` run stopped after a step, its unbalanced variant then trained to the end: the run folder,
    and the compare command that goes on with it."""
    cmp = tmp_path / "cmp"
    base = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(cmp), "--threads", "1"]
    assert main.main([*base, "--max-steps", "1"]) == 0
    assert main.main(["train", "classifier", "--resume", "--out", str(cmp / "unbalanced"), "--cache",
                      str(tmp_path / "cache"), "--threads", "1"]) == 0  # the first variant finished
    return cmp, base


def test_compare_does_not_reuse_a_variant_trained_on_data_changed_since(tmp_path, tiny_utk, capsys):
    """Faces added to the dataset after a variant finished: compare reused it as it was and trained the other on
    the faces as they are now (or compared two finished on other data), one comparison of models trained on
    different data. A finished variant's data is checked as a resume checks it (the counts its checkpoint keeps)."""
    import cv2

    cmp, base = _compare_with_its_first_variant_finished(tmp_path, tiny_utk)
    rng = np.random.default_rng(1)
    added = [tiny_utk / f"30_{i % 2}_{i % 5}_2017010200{i:07d}.jpg.chip.jpg" for i in range(12)]

    def add_faces():
        for path in added:
            cv2.imwrite(str(path), rng.integers(0, 250, (40, 40, 3), dtype=np.uint8))

    add_faces()
    capsys.readouterr()
    assert main.main(base) == 2  # refused before the second variant trains on the faces as they are now
    out, err = capsys.readouterr()
    error = err.splitlines()[-1]  # one line, after the decoding's progress
    assert error.startswith(f"error: {cmp / 'unbalanced' / CHECKPOINT}: the unbalanced variant finished here is not")
    assert "the training data is not what this run started on (images in all splits 160 then, 172 now" in error
    assert "restore them, or start a new --out" in error
    assert "reusing" not in out and not (cmp / "balanced").exists() and not (cmp / "comparison.json").exists()
    for path in added:  # restored: the variant is reused and the other trained on the same faces
        path.unlink()
    assert main.main(base) == 0
    assert f"reusing {cmp / 'unbalanced' / 'model.onnx'}" in capsys.readouterr().out
    written = (cmp / "comparison.json").read_text()
    add_faces()  # both variants finished: comparing them again is refused too, comparison.json kept
    assert main.main(base) == 2
    assert "the training data is not what this run started on" in capsys.readouterr().err
    assert (cmp / "comparison.json").read_text() == written


def _card_trained_on(tmp_path, name: str, root, dataset: str = "utkface") -> Path:
    """A tiny untrained classifier whose card says it was trained on the train split of ``root``, as the trainer's
    cards say."""
    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
    training = {"dataset": dataset, "dataset_root": str(root), "split": "train (a stable hash of file name, 80/10/10)",
                "filters": {"min_age": 18}}
    path = tmp_path / f"{name}.onnx"
    export_classifier(net, 32, path, classifier_card(name, 32, ["male", "female"], net.cam_grid(), "m", training, {}))
    return path


def test_evaluate_names_the_split_and_warns_of_faces_the_model_was_trained_on(tmp_path, capsys):
    """`train evaluate --split train` printed tables without naming the split or the dataset (only --json said it),
    and without a word that these were the faces its card says it was trained on."""
    import shutil

    from inference.datasets import read_spec, select, split_of
    from tests.test_cyclegan import write_utk

    data = write_utk(tmp_path / "UTKFace", per_cell=4, ages=(30,))
    link = tmp_path / "link"
    link.symlink_to(tmp_path)  # the card's root spelled another way: resolved, it is the same folder
    model = _card_trained_on(tmp_path, "seen", link / "UTKFace")
    elsewhere = tmp_path / "other" / "UTKFace"  # another UTKFace, none of whose faces it was trained on
    write_utk(elsewhere, per_cell=1, ages=(30,))
    for p in elsewhere.iterdir():
        p.rename(p.with_name(p.name.replace("_20170101", "_20180101")))
    n_train = sum(split_of(s) == "train" for s in select(read_spec(f"utkface:{data}").samples, labelled=True))
    assert 0 < n_train < 40

    def evaluate(split, dataset=data):
        out = tmp_path / "ev.json"
        assert main.main(["train", "evaluate", "--model", str(model), "--dataset", f"utkface:{dataset}",
                          "--split", split, "--json", str(out)]) == 0
        return capsys.readouterr().out, json.loads(out.read_text())["evaluated"]

    out, evaluated = evaluate("train")
    assert f"evaluating split 'train' of utkface at {data}: {n_train} labelled face(s) aged 18 or more" in out
    assert "WARNING: these are faces seen (seen.onnx) was trained on (its card: the train split of utkface at " \
           f"{link / 'UTKFace'}): its accuracy here overstates how it does on faces it has not seen" in out
    assert f"; on faces it was trained on ({n_train} of {n_train}): overstated" in out
    assert evaluated["split"] == "train" and evaluated["faces_trained_on"] == {"seen (seen.onnx)": {"n": n_train,
                                                                                                  "upper_bound": False}}
    out, evaluated = evaluate("all")
    assert f"evaluating every split (--split all) of utkface at {data}: 40 labelled face(s)" in out
    assert f"WARNING: {n_train} of the 40 faces evaluated are faces seen (seen.onnx) was trained on" in out
    for split in ("val", "test"):  # held out: its card records val as measured, not as what chose its weights
        out, evaluated = evaluate(split)
        assert f"evaluating split '{split}' of utkface at {data}" in out
        assert "trained on" not in out and evaluated["faces_trained_on"] == {}
    out, evaluated = evaluate("train", elsewhere)  # another dataset of the same kind, sharing no file name
    assert f"evaluating split 'train' of utkface at {elsewhere}" in out and "trained on" not in out
    copy = tmp_path / "copy" / "UTKFace"  # a copy: its file names are those of the faces it was trained on
    shutil.copytree(data, copy)
    out, evaluated = evaluate("train", copy)
    assert f"note: {n_train} of the {n_train} faces evaluated share a file name with a face of the train split seen " \
           f"(seen.onnx) was trained on (its card: utkface at {link / 'UTKFace'})" in out
    assert evaluated["faces_trained_on"] == {}  # not sure: the JSON records only the very folder


def test_evaluate_blames_a_model_without_finite_outputs_not_the_images(tmp_path, tiny_utk, capsys, caplog):
    """A model trained to NaN read every face and predicted none: `train evaluate` called all its faces unreadable
    images and ended "none of the 11 face(s) could be read"."""
    from onnx import numpy_helper

    proto = onnx.load(str(make_classifier(tmp_path / "c.onnx")))
    for init in proto.graph.initializer:  # its weights diverged: every float one NaN
        w = numpy_helper.to_array(init)
        if w.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(np.full_like(w, np.nan), init.name))
    nan = tmp_path / "nan.onnx"
    onnx.save(proto, str(nan))
    assert np.isnan(load_model(nan).predict(np.zeros((1, 32, 32, 3), np.uint8))[0]).all()
    capsys.readouterr()
    assert main.main(["train", "evaluate", "--model", str(nan), "--dataset", f"utkface:{tiny_utk}", "--split",
                      "all"]) == 2
    err = capsys.readouterr().err
    # one image of tiny_utk is corrupt, and is said to be; the 160 read are not
    assert "1 unreadable image(s) skipped" in caplog.text and "160 unreadable" not in caplog.text
    assert f"error: {nan}: model tiny-classifier (nan.onnx) gave no finite P(female) on any of the 160 face(s) " \
           "read: its training diverged?" in err
    assert "could be read" not in err
    # beside a sound model, it is still the broken one that is named
    assert main.main(["train", "evaluate", "--model", str(tmp_path / "c.onnx"), "--model", str(nan), "--dataset",
                      f"utkface:{tiny_utk}", "--split", "all"]) == 2
    assert f"error: {nan}: model tiny-classifier#2 (nan.onnx) gave no finite P(female)" in capsys.readouterr().err


def _card_with(tmp_path, name: str, dataset: str, root, **training) -> Path:
    """``_card_trained_on``'s tiny model, with the card's training record given (``filters``, ``composition``…)."""
    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
    record = {"dataset": dataset, "dataset_root": str(root), "split": "train (the dataset's own split labels)",
              **training}
    path = tmp_path / f"{name}.onnx"
    export_classifier(net, 32, path, classifier_card(name, 32, ["male", "female"], net.cam_grid(), "m", record, {}))
    return path


def _distinct_faces(paths, seed: int = 0) -> None:
    """Images each of its own pattern (not one photograph to the near-identical check)."""
    import cv2

    from tests.conftest import own_pattern

    rng = np.random.default_rng(seed)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        img = np.clip(110 + own_pattern(rng, 40, 30) + rng.integers(0, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(path), img)


def test_evaluate_recognises_a_copy_of_a_celeba_or_fairface_training_root(tmp_path, capsys):
    """A copy of the CelebA or FairFace folder a model was trained on, the original still there, was evaluated
    without a note: the file names evaluated were compared with the original root's own listing, which for these
    datasets holds folders and label files, not images. They are compared with the faces its reader lists."""
    import csv
    import shutil

    from inference.datasets import read_spec, select, split_of

    celeb = tmp_path / "celebA"
    names = [f"{i:06d}.jpg" for i in range(1, 13)]
    _distinct_faces([celeb / "img_align_celeba" / n for n in names])
    (celeb / "list_attr_celeba.txt").write_text(
        f"{len(names)}\nMale Pale_Skin\n" + "".join(f"{n} {1 if i % 2 else -1} {1 if i % 4 < 2 else -1}\n"
                                                     for i, n in enumerate(names)))
    (celeb / "list_eval_partition.txt").write_text("".join(f"{n} {0 if i < 8 else 1 + i % 2}\n"
                                                           for i, n in enumerate(names)))
    fair = tmp_path / "ffA"
    train_rows = [(f"train/{i}.jpg", "20-29", ("Male", "Female")[i % 2], "White") for i in range(14)]
    val_rows = [(f"val/{i}.jpg", "30-39", ("Male", "Female")[i % 2], "Black") for i in range(4)]
    _distinct_faces([fair / r[0] for r in train_rows + val_rows], seed=1)
    for csv_name, rows in (("fairface_label_train.csv", train_rows), ("fairface_label_val.csv", val_rows)):
        with open(fair / csv_name, "w", newline="") as fh:
            csv.writer(fh).writerows([("file", "age", "gender", "race"), *rows])
    for kind, original, min_age in (("celeba", celeb, None), ("fairface", fair, 18)):
        copy = tmp_path / f"{original.name}-copy"
        shutil.copytree(original, copy)
        n_train = sum(split_of(s) == "train" for s in select(read_spec(f"{kind}:{original}").samples, labelled=True))
        assert n_train >= 8
        model = _card_with(tmp_path, kind, kind, original, filters={"min_age": min_age})
        capsys.readouterr()
        assert main.main(["train", "evaluate", "--model", str(model), "--dataset", f"{kind}:{copy}",
                          "--split", "train"]) == 0
        out = capsys.readouterr().out
        assert f"note: {n_train} of the {n_train} faces evaluated share a file name with a face of the train split " \
               f"{kind} ({kind}.onnx) was trained on (its card: {kind} at {original})" in out


def test_evaluate_counts_only_the_faces_the_card_trained_on(tmp_path, capsys):
    """`train evaluate --split train --min-age -1` counted every train-split face as one the model was trained on:
    children its card's age bar (18) had left out, and faces its --compose mix left out ("102 of 102" where the card
    trained on 100). Only those past the card's age bar count, its mix drawn again where its seed allows; where it
    cannot be, the figure is said, and written to the JSON, as an upper bound."""
    from inference.datasets import open_dataset, select, split_of
    from tests.test_cyclegan import write_utk
    from training.tasks.classifier import build_data

    kids = write_utk(tmp_path / "kids" / "UTKFace", per_cell=4, ages=(10, 30))
    model = _card_with(tmp_path, "adults", "utkface", kids, filters={"min_age": 18})
    train = [s for s in select(open_dataset(f"utkface:{kids}").samples, labelled=True) if split_of(s) == "train"]
    adults = sum(s.age >= 18 for s in train)
    assert 0 < adults < len(train)

    def evaluate(model, data, *extra):
        out = tmp_path / "ev.json"
        assert main.main(["train", "evaluate", "--model", str(model), "--dataset", f"utkface:{data}", "--split",
                          "train", "--json", str(out), *extra]) == 0
        return capsys.readouterr().out, json.loads(out.read_text())["evaluated"]["faces_trained_on"]

    out, seen = evaluate(model, kids, "--min-age", "-1")
    assert f"WARNING: {adults} of the {len(train)} faces evaluated are faces adults (adults.onnx) was trained on" in out
    assert f"on faces it was trained on ({adults} of {len(train)}): overstated" in out
    assert seen == {"adults (adults.onnx)": {"n": adults, "upper_bound": False}}

    # a balanced mix by age band leaves faces of the larger bands out: drawn again from the card's seed
    data = write_utk(tmp_path / "bands" / "UTKFace", per_cell=4)  # ages 25, 41, 63, 25: bands of 20, 10, 10
    assert main.main(["train", "classifier", "--dataset", f"utkface:{data}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "8", "--cache", str(tmp_path / "cache"), "--out",
                      str(tmp_path / "run"), "--threads", "1", "--compose", "balanced", "--by", "age_band",
                      "--seed", "3"]) == 0
    balanced = tmp_path / "run" / "model.onnx"
    card = read_card(balanced).training
    pool = [s for s in select(open_dataset(f"utkface:{data}").samples, labelled=True) if split_of(s) == "train"]
    assert card["composition"]["mode"] == "balanced" and 0 < card["n_train"] < len(pool)
    from training.evaluate import faces_trained  # the trainer's own faces, drawn again

    trained = build_data(f"utkface:{data}", 32, 18, "balanced", ["age_band"], None, 3, tmp_path / "cache")
    names, why = faces_trained(card, open_dataset(f"utkface:{data}"))
    assert why is None and names == {Path(trained.samples[i].path).name for i in trained.train_idx}
    out, seen = evaluate(balanced, data)
    assert f"WARNING: {card['n_train']} of the {len(pool)} faces evaluated are faces" in out
    assert seen == {f"{read_card(balanced).name} (model.onnx)": {"n": card["n_train"], "upper_bound": False}}

    # a mix the card does not let be drawn again (no seed recorded): at most the faces past its age bar
    mix = {**card["composition"]}
    unsure = _card_with(tmp_path, "unsure", "utkface", kids, filters={"min_age": 18}, composition=mix,
                        n_train=card["n_train"])
    out, seen = evaluate(unsure, kids, "--min-age", "-1")
    assert f"WARNING: up to {adults} of the {len(train)} faces evaluated are faces unsure (unsure.onnx) was trained " \
           f"on (its card: the train split of utkface at {kids}; up to, as its --compose balanced mix was drawn from " \
           "them, and could not be drawn again here)" in out
    assert f"on faces it was trained on (up to {adults} of {len(train)}): overstated" in out
    assert seen == {"unsure (unsure.onnx)": {"n": adults, "upper_bound": True}}


def test_evaluate_reads_no_verdict_from_a_card_root_relative_to_where_it_was_trained(tmp_path, capsys, monkeypatch):
    """A card's root as typed ("fold") was resolved where evaluate ran: another folder of that name, sharing one file
    name with the training folder, was warned to be "up to 20 of 20" faces the model was trained on, and the training
    folder itself went unnoticed from anywhere else. The trainer now records its root absolute."""
    from tests.test_cyclegan import write_utk

    other = tmp_path / "other"
    data = write_utk(other / "UTKFace", per_cell=4, ages=(30,))
    model = _card_trained_on(tmp_path, "relative", "UTKFace")
    monkeypatch.chdir(other)
    assert main.main(["train", "evaluate", "--model", str(model), "--dataset", f"utkface:{data}", "--split",
                      "train"]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out and "(its card does not say where)" in out


def test_the_card_records_a_dataset_typed_relative_as_an_absolute_root(tmp_path, tiny_utk, monkeypatch):
    """The root as typed was relative to a folder the card does not name: evaluate and the teacher check resolved it
    wherever they ran."""
    import os

    monkeypatch.chdir(tiny_utk.parent)
    assert main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk.name}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "run"), "--threads", "1"]) == 0
    root = read_card(tmp_path / "run" / "model.onnx").training["dataset_root"]
    assert os.path.isabs(root) and os.path.samefile(root, tiny_utk)


def test_a_teacher_whose_card_names_its_folder_relative_is_refused_wherever_the_command_runs(tmp_path, monkeypatch):
    """A card written before roots were recorded absolute names "student": resolved where the command ran, the same
    teacher was taken from the folder above it and refused from anywhere else."""
    from inference.runtime import RuntimeConfig
    from training.data.teachers import open_teachers

    student = labelled_folder(tmp_path / "student", 4, no_age=0)
    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
    teacher = tmp_path / "old.onnx"
    export_classifier(net, 32, teacher, classifier_card(
        "old", 32, ["male", "female"], net.cam_grid(), "m", {"dataset": "folder", "dataset_root": "student"}, {}))
    for where in (tmp_path, student):
        monkeypatch.chdir(where)
        with pytest.raises(BiasMirrorError, match="names only as 'student', relative to where it was trained"):
            open_teachers([str(teacher)], "folder", str(student), RuntimeConfig(provider="cpu"))


def test_a_stop_during_the_export_leaves_the_model_in_place_whole_with_its_metrics(tmp_path, tiny_utk, capsys,
                                                                                   monkeypatch):
    """A Ctrl-C after `exported …/model.onnx` (while the test faces were measured) had left a model in place whose
    card had no metrics, beside no metrics.json, or an export over a finished run beside the older one's. The new
    model, its copy and metrics.json are put in place only once whole; until then what was there stays, and the
    message says which model is in place and how to finish the export."""
    import training.tasks.classifier_report as report

    run, copy = tmp_path / "run", tmp_path / "shipped" / "m.onnx"
    measure = report.evaluate

    def stopped(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "evaluate", stopped)
    assert _train(tmp_path, tiny_utk, "--export-to", str(copy)) == 130
    err = capsys.readouterr().err
    finish = f"`python main.py train classifier --out {run} --resume` exports it (training is done"
    assert f"no model was put in place ({run / 'model.onnx'} does not exist yet)" in err and finish in err
    assert f"nothing was copied to {copy}" in err
    assert not (run / "model.onnx").exists() and not (run / "metrics.json").exists() and not copy.exists()
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # nothing staged left behind
    monkeypatch.setattr(report, "evaluate", measure)
    resume = ["train", "classifier", "--out", str(run), "--resume", "--cache", str(tmp_path / "cache"), "--threads", "1"]
    assert main.main(resume) == 0  # training was done: exported, measured, put in place and copied
    files = [run / "model.onnx", run / "metrics.json", copy]
    before = {p: p.read_bytes() for p in files}
    assert read_card(run / "model.onnx").metrics["overall"]["accuracy"]["n"] > 0 and before[copy] == before[files[0]]
    monkeypatch.setattr(report, "evaluate", stopped)
    capsys.readouterr()
    assert main.main(resume) == 130  # exported again over the finished run, stopped while measuring
    err = capsys.readouterr().err
    assert f"{run / 'model.onnx'} is still the model exported before, with its own card and metrics.json" in err
    assert finish in err
    assert {p: p.read_bytes() for p in files} == before
    assert not [p.name for p in (*run.iterdir(), *copy.parent.iterdir()) if p.name.startswith(".")]


def test_an_export_the_disk_refuses_is_one_line_and_leaves_the_model_before_in_place(tmp_path, tiny_utk, capsys,
                                                                                      monkeypatch):
    """A full disk (or `ulimit -f`) while the model was written gave a traceback, or an error naming another file
    (the copy's source); it names the model, the reason and the disk's free space, and the model before stays."""
    import errno

    import training.tasks.classifier_report as report

    assert _train(tmp_path, tiny_utk) == 0
    run = tmp_path / "run"
    before = {p: (run / p).read_bytes() for p in ("model.onnx", "metrics.json")}

    def full(*_args, **_kwargs):
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(report, "write_card", full)
    capsys.readouterr()
    assert main.main(["train", "classifier", "--out", str(run), "--resume", "--cache", str(tmp_path / "cache"),
                      "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: {run / 'model.onnx'}: could not write the exported model (File too large): the "
                          f"disk holding {run} has ")
    assert "a file size limit (ulimit -f)" in err and "is still the model exported before" in err and "--resume" in err
    assert {p: (run / p).read_bytes() for p in before} == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


def test_a_checkpoint_over_the_file_size_limit_is_refused_in_one_line_and_the_last_one_kept(tmp_path, tiny_utk):
    """`ulimit -f` below a checkpoint's size: torch.save's RuntimeError ("unexpected pos …") was a traceback."""
    import resource
    import subprocess
    import sys

    from tests.conftest import REPO

    assert _train(tmp_path, tiny_utk, "--max-steps", "2") == 0  # its faces are cached: the resume reads them
    checkpoint = tmp_path / "run" / CHECKPOINT
    before = checkpoint.read_bytes()
    limit = len(before) // 2

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, "main.py", "train", "classifier", "--out", str(checkpoint.parent),
                           "--resume", "--cache", str(tmp_path / "cache"), "--threads", "1"],
                          cwd=REPO, capture_output=True, text=True, preexec_fn=limited, timeout=300)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert err.startswith(f"error: {checkpoint}: could not write the checkpoint (")
    assert "the previous checkpoint last.pt is intact" in err and "ulimit -f" in err
    assert checkpoint.read_bytes() == before and not checkpoint.with_suffix(".tmp").exists()


def test_a_resume_refuses_a_training_face_swapped_for_another_that_keeps_the_counts(tmp_path, tiny_utk, capsys):
    """One woman's training face removed and one man's added kept both counts, and the resume went on ("resumed …
    at epoch 0, sample 32") with an epoch order that pointed at other faces. The checkpoint keeps the faces' record
    (path, split, labels used) and a resume is refused naming what changed; an older checkpoint, without it, is
    still checked by its counts."""
    assert _train(tmp_path, tiny_utk, "--max-steps", "2") == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    gone, new = _swap_a_training_face(tiny_utk, "*_1_*.jpg", "33_0_1_2017020200", seed=5, grey=(0, 90))
    capsys.readouterr()
    assert _train(tmp_path, tiny_utk, "--resume") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"error: {checkpoint}: the training data is not what this run started on (1 file gone (e.g. "
                   f"{gone.name}), 1 new (e.g. {new.name})): a resume goes on with the images it began with; restore "
                   "them, or start a new --out")
    assert load_checkpoint(checkpoint)["step"] == 2
    state = torch.load(checkpoint, weights_only=False)
    del state["data_faces"]  # as a checkpoint from before the record: the counts are all it can check
    torch.save(state, checkpoint)
    assert _train(tmp_path, tiny_utk, "--resume", "--max-steps", "1") == 0


def test_a_resume_whose_faces_are_listed_otherwise_by_newer_rules_says_the_reading_changed(tmp_path, tiny_utk,
                                                                                             capsys):
    """A run begun before the faces' listing rules changed (a folder's look-alike photos, a quoted labels CSV) was
    refused as if the user's files had changed ("restore them"), which no restoring could mend. Its checkpoint's
    record, without a listing version or with another, now names the reading as what changed; with the same faces
    listed, such a checkpoint resumes as before."""
    assert _train(tmp_path, tiny_utk, "--max-steps", "2") == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    state = torch.load(checkpoint, weights_only=False)
    assert state["data_faces"]["listing"] == LISTING_VERSION
    del state["data_faces"]["listing"]  # as a checkpoint written before the listing rules had a version
    torch.save(state, checkpoint)
    assert _train(tmp_path, tiny_utk, "--resume", "--max-steps", "1") == 0  # the same faces: nothing to say
    gone, new = _swap_a_training_face(tiny_utk, "*_1_*.jpg", "33_0_1_2017020200", seed=6, grey=(0, 90))
    state = torch.load(checkpoint, weights_only=False)
    del state["data_faces"]["listing"]
    torch.save(state, checkpoint)
    capsys.readouterr()
    assert _train(tmp_path, tiny_utk, "--resume") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"error: {checkpoint}: this version of Bias Mirror lists a dataset's faces by other rules (listing "
                   f"version {LISTING_VERSION}) than the one this run began with (a version from before 2026-12-07), "
                   f"and lists this run's data otherwise (1 file gone (e.g. {gone.name}), 1 new (e.g. {new.name})): a "
                   "resume goes on only with the faces it began with, so start a new --out, or finish this run with "
                   "the version that began it")


def _swap_a_training_face(folder, gone_glob: str, new_prefix: str, seed: int, grey: tuple[int, int]):
    """One training-split face of ``folder`` removed and one of the other gender (a new name: ``new_prefix``) added,
    so that every count stays as it was; returns both paths."""
    import cv2

    from inference.datasets import Sample, split_of

    gone = next(p for p in sorted(folder.glob(gone_glob)) if split_of(Sample(str(p))) == "train")
    new = next(p for p in (folder / f"{new_prefix}{i:07d}.jpg.chip.jpg" for i in range(200))
               if split_of(Sample(str(p))) == "train")
    gone.unlink()
    cv2.imwrite(str(new), np.random.default_rng(seed).integers(*grey, (40, 40, 3), dtype=np.uint8))
    return gone, new


def test_compare_does_not_reuse_a_variant_whose_faces_were_swapped_for_as_many_others(tmp_path, tiny_utk, capsys):
    """compare checks a finished variant's data as a resume does, by the record of its faces: one training face
    swapped for another had kept the counts, and the variant was reused beside one trained on the faces of now."""
    cmp, base = _compare_with_its_first_variant_finished(tmp_path, tiny_utk)
    gone, new = _swap_a_training_face(tiny_utk, "*_0_*.jpg", "33_1_2_2017020300", seed=6, grey=(120, 200))
    capsys.readouterr()
    assert main.main(base) == 2
    out, err = capsys.readouterr()
    assert err.splitlines()[-1].startswith(f"error: {cmp / 'unbalanced' / CHECKPOINT}: the unbalanced variant finished "
                                           f"here is not reused on other data: the training data is not what this run "
                                           f"started on (1 file gone (e.g. {gone.name}), 1 new (e.g. {new.name}))")
    assert "reusing" not in out and not (cmp / "balanced").exists()


def _failing_copy_to(monkeypatch, name: str) -> None:
    """Writing the --export-to copy staged for a file called ``name`` is refused (as /proc or a read-only disk
    refuses it); every other copy is made."""
    import errno
    import shutil

    import inference.writing as writing

    copy = shutil.copyfile

    def refused(src, dst, *args, **kwargs):
        if Path(dst).name == f".{name}.new":
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(writing.shutil, "copyfile", refused)


def test_a_copy_that_cannot_be_written_leaves_the_runs_model_in_place_and_advice_that_works(tmp_path, tiny_utk,
                                                                                          capsys, monkeypatch):
    """--export-to a place that cannot be written (/proc/x.onnx) kept the run's own model.onnx and metrics.json from
    being put in place, and the advice (`--resume`) failed on the same copy, since a resume keeps the run's
    --export-to; `--export-to ''` was refused as empty. The model goes in place all the same, the error says the
    copy alone is missing, and the commands it names work."""
    import shlex

    run, copy = tmp_path / "run", tmp_path / "shipped" / "x.onnx"
    _failing_copy_to(monkeypatch, "x.onnx")
    assert _train(tmp_path, tiny_utk, "--export-to", str(copy)) == 2
    out, err = capsys.readouterr()
    assert f"{copy}: could not write the copy of the exported model (--export-to) (Permission denied)" in err
    assert f"{run / 'model.onnx'} and {run / 'metrics.json'} were put in place all the same" in err
    assert f"`cp {run / 'model.onnx'} {copy}`" in err
    card = read_card(run / "model.onnx")
    assert card.metrics["overall"]["accuracy"]["n"] > 0 and (run / "metrics.json").exists() and not copy.exists()
    assert not [p.name for p in (*run.iterdir(), *copy.parent.iterdir()) if p.name.startswith(".")]
    advised = [shlex.split(c) for c in err.split("`")[1::2] if c.startswith("python main.py")]
    assert len(advised) == 2, err
    local = ["--cache", str(tmp_path / "cache"), "--threads", "1"]
    elsewhere = tmp_path / "elsewhere" / "o.onnx"
    other = [str(elsewhere) if w == "OTHER.onnx" else w for w in advised[0][2:]]
    assert main.main([*other, *local]) == 0, capsys.readouterr().err  # the copy made elsewhere
    assert elsewhere.read_bytes() == (run / "model.onnx").read_bytes()
    assert advised[1][-2:] == ["--export-to", ""]
    capsys.readouterr()
    assert main.main([*advised[1][2:], *local]) == 0  # no copy at all
    assert "copied to" not in capsys.readouterr().out and not copy.exists()


def test_a_resume_of_a_finished_run_is_recorded_as_an_export_not_a_resume(tmp_path, tiny_utk):
    """A resume of a run trained to its end trains nothing and exports again: the card had listed it among the
    resumes that trained the model; it names it as the export's command, as a CycleGAN --export-only card does."""
    assert _train(tmp_path, tiny_utk) == 0
    again = ["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--cache", str(tmp_path / "cache"),
             "--threads", "1"]
    assert main.main(again) == 0
    training = read_card(tmp_path / "run" / "model.onnx").training
    assert training["resumes"] == [] and training["exported_by"] == "python main.py " + " ".join(again)
    assert f"exported again from its checkpoint: `{training['exported_by']}`" in card_markdown(
        read_card(tmp_path / "run" / "model.onnx"), "m.onnx", 1.0)


def test_the_stop_line_is_the_last_thing_written_not_overdrawn_by_the_epoch_bar(tmp_path, tiny_utk):
    """The bar of the epoch cut short was closed after "interrupted: the last checkpoint is …" was written, and in a
    terminal its redraw came after that line, the last thing on screen (a reviewer's Ctrl-C of `train
    classifier`). The bar ends first now. Both streams in one pipe, unbuffered, in the order a terminal shows them."""
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "main.py", "train", "classifier", "--dataset", f"utkface:{tiny_utk}",
                           "--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "16", "--cache",
                           str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--threads", "1", "--max-steps", "1"],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stdout
    shown = [line for line in done.stdout.splitlines() if line.strip()]  # \r too ends what a terminal shows
    assert shown[-1].startswith("stopped after 1 steps as asked: the last checkpoint is "), shown[-3:]
