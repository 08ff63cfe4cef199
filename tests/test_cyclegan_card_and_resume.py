"""A CycleGAN's card and resume, as a review found them (2026-12-07): the composition of the images actually trained
on, the schedule and an early stop in the card's Markdown, a --classifier read once for the run, and --threads
carried by a plain resume (both trainers)."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import torch

import main
from inference.card_markdown import card_markdown
from inference.datasets import Sample, split_of
from inference.file_identity import file_hash
from inference.models import read_card
from training.data.domains import engineer_domains, folder_domains
from training.checkpoints import load_checkpoint
from training.resume import carry_outputs

from .conftest import make_classifier
from .test_cyclegan import train, train_folders, two_folders, write_utk


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    return write_utk(tmp_path_factory.mktemp("data") / "UTKFace", per_cell=14)


@pytest.fixture
def thread_count():
    """Torch's thread count is the process's: put back as it was, whatever a test's runs set."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def unreadable_training_file(folder: Path) -> Path:
    """An unreadable image in ``folder`` whose name the hash split puts in the train split."""
    name = next(f"zz_broken{i}.jpg" for i in range(1000) if split_of(Sample(f"zz_broken{i}.jpg")) == "train")
    (folder / name).write_bytes(b"not an image")
    return folder / name


def markdown(path: Path) -> str:
    return card_markdown(read_card(path), path.name, path.stat().st_size / 2**20)


@pytest.fixture(scope="module")
def folder_with_a_broken_image(tmp_path_factory, utk) -> Path:
    """The filter of two domain folders, A with one unreadable training image."""
    root = tmp_path_factory.mktemp("broken")
    a, b = two_folders(root, utk)
    unreadable_training_file(a)
    assert train_folders(root / "run", a, b) == 0
    return root / "run" / "filter_A2B.onnx"


@pytest.fixture(scope="module")
def engineer_stopped(tmp_path_factory):
    """The engineer recipe with one face of domain B's mix unreadable, stopped after one of its two epochs and
    exported as it is, without a classifier: the filter, the face, and domain B as listed."""
    utk = write_utk(tmp_path_factory.mktemp("engineer") / "UTKFace", per_cell=14)
    listed = engineer_domains(f"utkface:{utk}", seed=0, min_size=4).b
    lost = listed.train[0]
    Path(lost.path).write_bytes(b"corrupt")
    run = utk.parent / "run"
    assert train(run, utk, "--n-epochs", "2", "--max-steps", "1") == 0
    export_only = ["train", "cyclegan", "--out", str(run), "--export-only", "--cache", str(utk.parent / "cache")]
    assert main.main(export_only) == 0
    return run / "filter_A2B.onnx", lost, listed


def test_the_cards_composition_counts_the_images_read_not_those_listed(folder_with_a_broken_image):
    """One unreadable file in a folder domain: the log said it was skipped, the card said "A, 242 training faces;
    composition (none over ?):  243"."""
    training = read_card(folder_with_a_broken_image).training
    a, b = training["domain_a"], training["domain_b"]
    assert sum(a["composition"]["achieved"].values()) == a["n_train"] and a["composition"]["unreadable"] == 1
    assert sum(b["composition"]["achieved"].values()) == b["n_train"] and b["composition"]["unreadable"] == 0
    shown = markdown(folder_with_a_broken_image)
    assert (f"- domain A: A, {a['n_train']} training faces; composition {a['n_train']} images (no labels to compose "
            "over); 1 unreadable image(s) left out, not trained on") in shown
    assert "none over ?" not in shown


def test_an_engineer_card_counts_no_face_of_a_cell_whose_image_could_not_be_read(engineer_stopped):
    """The only male|Others face of domain B unreadable: the card listed male|Others 1, though none was trained on."""
    filter_path, lost, listed = engineer_stopped
    cell = f"{lost.gender}|{lost.race}"
    b = read_card(filter_path).training["domain_b"]
    assert b["composition"]["achieved"][cell] == listed.composition.achieved[cell] - 1
    assert sum(b["composition"]["achieved"].values()) == b["n_train"] == len(listed.train) - 1
    assert b["composition"]["unreadable"] == 1


def test_min_domain_size_counts_the_images_that_can_be_read(tmp_path, utk, capsys):
    """--min-domain-size counted the files listed, an unreadable one among them."""
    a, b = two_folders(tmp_path, utk)
    for face in sorted(utk.iterdir())[60:]:  # B larger than A: A alone is short of the limit
        shutil.copy(face, b / face.name)
    unreadable_training_file(a)
    listed = len(folder_domains(str(a), str(b), 0, 1).a.train)
    capsys.readouterr()
    assert train_folders(tmp_path / "run", a, b, "--min-domain-size", str(listed)) == 2
    err = capsys.readouterr().err
    assert (f"domain A has only {listed - 1} readable training image(s) (1 of its {listed} listed could not be "
            f"read), fewer than --min-domain-size {listed}") in err
    assert not (tmp_path / "run" / "filter_A2B.onnx").exists()


def test_the_markdown_gives_the_schedule_and_says_a_filter_exported_before_its_end(engineer_stopped):
    """The card's JSON said "finished": false; its Markdown (doctor --cards, the app's card dialog) said nothing."""
    training = read_card(engineer_stopped[0]).training
    assert training["finished"] is False
    shown = markdown(engineer_stopped[0])
    schedule = training["schedule"]
    assert (f"- schedule: {schedule['n_epochs']} epoch(s) at learning rate {schedule['lr']:g}, then "
            f"{schedule['n_epochs_decay']} of linear decay to 0; {schedule['iters_per_epoch']} batch(es) of "
            f"{schedule['batch_size']} image(s) an epoch") in shown
    assert f"- NOT FINISHED: {training['stopped_early']}" in shown


def test_the_markdown_says_why_no_delta_p_female_was_measured(engineer_stopped):
    """A card exported without --classifier showed "–" in every ΔP(female) cell without saying why."""
    metrics = read_card(engineer_stopped[0]).metrics
    assert metrics["by_gender_race"] and "classifier" not in metrics
    assert "ΔP(female) not measured: no classifier was given" in markdown(engineer_stopped[0])


def test_a_classifier_deleted_during_training_still_measures_the_card(tmp_path, utk, capsys, monkeypatch):
    """The classifier was checked at the start and opened again from its path after training: deleted meanwhile,
    the export failed with a bare "model file not found". It is read once and kept; a plain --resume without it
    says how to export without it."""
    import training.tasks.cyclegan as cyclegan_task

    clf = make_classifier(tmp_path / "clf.onnx", size=24)
    checked = file_hash(clf)
    trains = cyclegan_task.run_for_cli

    def deleted_while_training(task, cfg):
        clf.unlink()
        return trains(task, cfg)

    monkeypatch.setattr(cyclegan_task, "run_for_cli", deleted_while_training)
    run = tmp_path / "run"
    assert train(run, utk, "--n-epochs", "1", "--classifier", str(clf)) == 0
    measured = read_card(run / "filter_A2B.onnx").metrics["classifier"]
    assert measured["sha256"] == checked and measured["path"] == str(clf)
    monkeypatch.setattr(cyclegan_task, "run_for_cli", trains)
    capsys.readouterr()
    resume = ["train", "cyclegan", "--out", str(run), "--resume", "--cache", str(tmp_path / "cache")]
    assert main.main(resume) == 2
    err = capsys.readouterr().err
    assert "the classifier the run last ran with" in err and "--classifier '' to measure none" in err
    assert main.main([*resume, "--classifier", ""]) == 0


def test_a_plain_resume_keeps_the_runs_threads_and_is_the_uninterrupted_run(tmp_path, utk, capsys, thread_count):
    """--threads was not kept: a plain resume of a --threads 1 run went on with PyTorch's default count, whose
    sums round otherwise (G_A 0.0016 off the uninterrupted run after 16 steps)."""
    run = tmp_path / "run"
    assert train(run, utk, "--n-epochs", "2", "--max-steps", "1") == 0
    torch.set_num_threads(thread_count + 1)  # what a fresh process without --threads would take
    capsys.readouterr()
    assert main.main(["train", "cyclegan", "--out", str(run), "--resume", "--cache", str(tmp_path / "cache")]) == 0
    assert "--threads 1" in capsys.readouterr().out and torch.get_num_threads() == 1
    assert load_checkpoint(run)["config"]["outputs"]["threads"] == 1
    straight = tmp_path / "straight"
    assert train(straight, utk, "--n-epochs", "2") == 0
    resumed, uninterrupted = load_checkpoint(run)["modules"], load_checkpoint(straight)["modules"]
    for name in ("G_A", "G_B", "D_A", "D_B"):
        for k, v in resumed[name].items():
            assert torch.equal(v, uninterrupted[name][k]), (name, k)


def test_a_plain_classifier_resume_keeps_the_runs_threads(tmp_path, tiny_utk, capsys, thread_count):
    run, cache = tmp_path / "run", str(tmp_path / "cache")
    assert main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--cache", cache, "--out", str(run), "--threads", "1",
                      "--max-steps", "1"]) == 0
    torch.set_num_threads(thread_count + 1)
    capsys.readouterr()
    assert main.main(["train", "classifier", "--out", str(run), "--resume", "--cache", cache]) == 0
    assert "as the run last ran: --threads 1" in capsys.readouterr().out and torch.get_num_threads() == 1
    torch.set_num_threads(thread_count + 1)  # given again, it is the one used
    assert main.main(["train", "classifier", "--out", str(run), "--resume", "--cache", cache,
                      "--threads", str(thread_count + 1)]) == 0
    assert torch.get_num_threads() == thread_count + 1


def test_a_checkpoint_from_before_threads_were_kept_resumes_as_before():
    args = argparse.Namespace(threads=None, cache="/c", _given=set())
    run_cfg = {"outputs": {"cache": "/c"}}  # no "threads"
    assert carry_outputs(args, run_cfg, ("cache", "threads"), paths=("cache",)) == ["--cache /c"]
    assert args.threads is None and run_cfg["outputs"]["threads"] is None
