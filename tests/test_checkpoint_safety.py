"""A checkpoint is read as weights, never as a program: a last.pt a colleague sends (a run folder to continue,
export or compare) ran any code its pickle named as it was read. Refused unrun, in one line naming it; the
checkpoints the trainers write still resume."""
from pathlib import Path

import pytest
import torch

import main
from inference.errors import BiasMirrorError
from training.checkpoints import CHECKPOINT, load_checkpoint
from training.resume import RecordedPaths
from tests.test_cyclegan import train as train_cyclegan
from tests.test_cyclegan import write_utk

REFUSED = "holds objects that no checkpoint of this project holds"
NOT_RUN = "it was not loaded and nothing in it was run"


class _Payload:
    """What a crafted pickle runs as it is read: here, only a marker file written."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


def _crafted(run: Path, marker: Path, config: dict) -> Path:
    """A last.pt shaped as the project's (config, weights) with code beside them."""
    run.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "modules": {}, "step": 0, "x": _Payload(marker)}, run / CHECKPOINT)
    return run / CHECKPOINT


def _one_line_refusal(capsys, path: Path) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {REFUSED} (" in err and NOT_RUN in err, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    return write_utk(tmp_path_factory.mktemp("data") / "UTKFace", per_cell=14)


def _classifier_config(utk: Path) -> dict:
    return {"net": {"arch": "resnet", "size": 32, "width": 8}, "labels": ["male", "female"],
            "dataset": f"utkface:{utk}", "epochs": 1}


@pytest.mark.parametrize("entry", ["classifier --resume", "cyclegan --resume", "cyclegan --export-only",
                                   "compare finding a variant"])
def test_a_checkpoint_holding_code_is_refused_without_running_it(entry, tmp_path, utk, capsys):
    marker = tmp_path / "pwned_marker"
    out = tmp_path / "shared_run"
    cache = ["--cache", str(tmp_path / "cache"), "--threads", "1"]
    if entry == "classifier --resume":
        path = _crafted(out, marker, {})
        args = ["train", "classifier", "--out", str(out), "--resume", *cache]
    elif entry.startswith("cyclegan"):
        path = _crafted(out, marker, {})
        args = ["train", "cyclegan", "--out", str(out), entry.split()[1], *cache]
    else:  # a comparison's folder sent whole: its unbalanced variant's checkpoint is read to reuse or continue it
        path = _crafted(out / "unbalanced", marker, {})
        args = ["train", "compare", "--dataset", f"utkface:{utk}", "--size", "32", "--width", "8", "--epochs", "1",
                "--batch-size", "16", "--out", str(out), "--resume", *cache]
    code = main.main(args)
    assert not marker.exists()
    assert code == 2
    _one_line_refusal(capsys, path)


def test_the_record_of_faces_a_resume_maps_is_read_as_weights_too(tmp_path, utk):
    """A resume whose dataset folder looks emptied reads the faces its checkpoint records (resume.RecordedPaths,
    a read of its own, mapped): a crafted file there is no record, and runs nothing."""
    marker = tmp_path / "pwned_marker"
    path = _crafted(tmp_path / "run", marker, _classifier_config(utk))
    assert RecordedPaths(str(path.parent))() == set()
    assert not marker.exists()


def test_load_checkpoint_refuses_a_crafted_file_naming_it(tmp_path, utk):
    marker = tmp_path / "pwned_marker"
    path = _crafted(tmp_path / "run", marker, _classifier_config(utk))
    with pytest.raises(BiasMirrorError, match=REFUSED) as refused:
        load_checkpoint(path, "classifier")
    assert not marker.exists()
    assert refused.value.path == str(path) and "exec" in refused.value.message and NOT_RUN in refused.value.message


def test_a_pickle_of_another_protocol_is_refused_alike(tmp_path, utk):
    """A pickle protocol that names its callables otherwise (STACK_GLOBAL) is refused alike, unrun."""
    marker = tmp_path / "pwned_marker"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"config": _classifier_config(utk), "modules": {}, "x": _Payload(marker)}, run / CHECKPOINT,
               pickle_protocol=4)
    with pytest.raises(BiasMirrorError, match=REFUSED):
        load_checkpoint(run / CHECKPOINT)
    assert not marker.exists()


def test_the_trainers_checkpoints_are_weights_and_still_resume(tmp_path, utk):
    """Every trainer's last.pt holds tensors and plain values only (no numpy, no classes of ours), so a weights-only
    read takes it whole: a classifier stopped mid-run continues, a CycleGAN continues and exports."""
    cls = ["train", "classifier", "--dataset", f"utkface:{utk}", "--size", "32", "--width", "8", "--epochs", "1",
           "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cls"), "--threads", "1"]
    assert main.main([*cls, "--max-steps", "2", "--swa-epochs", "1", "--compose", "balanced"]) == 0
    torch.load(tmp_path / "cls" / CHECKPOINT, weights_only=True)  # nothing refused
    assert main.main(["train", "classifier", "--out", str(tmp_path / "cls"), "--resume", "--threads", "1",
                      "--cache", str(tmp_path / "cache")]) == 0
    assert (tmp_path / "cls" / "model.onnx").exists() and load_checkpoint(tmp_path / "cls")["step"] > 2

    cyc = tmp_path / "cyc"
    assert train_cyclegan(cyc, utk, "--n-epochs", "2", "--ema", "0.9", "--max-steps", "1") == 0
    torch.load(cyc / CHECKPOINT, weights_only=True)
    assert main.main(["train", "cyclegan", "--out", str(cyc), "--export-only", "--threads", "1",
                      "--cache", str(tmp_path / "cache")]) == 0
    assert main.main(["train", "cyclegan", "--out", str(cyc), "--resume", "--threads", "1",
                      "--cache", str(tmp_path / "cache")]) == 0
    assert load_checkpoint(cyc, "cyclegan")["step"] == 2
