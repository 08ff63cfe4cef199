"""Defaults that hold from any folder, one-output classifiers adopted by what their graph ends in, and `bench train`'s
figures said once.

- `bench detect` and `bench train` took their default dataset, "../shared/datasets/utkface", from the current folder:
  run from anywhere but the repository they failed with "the UTKFace folder does not exist", where `train adopt`
  found the same copy from the repository's own path.
- `train adopt` took a one-output classifier's raw logit for a probability whenever every value lay in [0, 1], and
  refused it: "its output is not the softmax of the head found".
- `train adopt` compared the wrapped classifier with the model's first output: one giving (probabilities, logits), in
  that order, had its probabilities taken for logits and was refused ("its output is not the softmax of the head
  found", off by 0.17).
- `bench train` printed a row's rate from the unrounded figure and the summary's "best" from one rounded to two
  places: 39.349 images/s read 39.3 in the row and 39.4 in the summary.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference import bench_detect, defaults  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import load_model  # noqa: E402
from tests.conftest import run_main  # noqa: E402
from tests.test_adopt import SIZE, BrightnessNet, export, faces_of, quiet  # noqa: E402
from training import adopt as adopt_module  # noqa: E402
from training import adopt_run  # noqa: E402  (where `train adopt` reads its default faces)
from training import bench_train  # noqa: E402


# --- the shared UTKFace copy, from any folder --------------------------------------------------------------------

@pytest.mark.parametrize("add_arguments", [bench_detect.add_arguments, bench_train.add_arguments],
                         ids=["bench detect", "bench train"])
def test_the_benches_default_dataset_is_the_shared_copy_wherever_they_are_run(add_arguments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a folder with no ../shared beside it
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    given = parser.parse_args([]).data
    assert given is None  # not given: opened as the default, and said to be it where it cannot be read
    opened: list[str] = []
    monkeypatch.setattr(defaults, "open_dataset", lambda spec, cache: opened.append(spec))
    defaults.open_data_or_default(given, None)
    [spec] = opened
    kind, _, folder = spec.partition(":")
    assert spec == adopt_run.DEFAULT_DATASET  # the copy `train adopt` checks on, said the same way
    assert kind == "utkface" and Path(folder).is_absolute() and (Path(folder) / "UTKFace").is_dir(), spec


@pytest.mark.parametrize("command", [["bench", "detect"], ["bench", "train"]])
def test_the_benches_help_says_where_the_default_dataset_is(command, capsys, monkeypatch):
    from tests.test_help_and_exit_codes import help_entries

    entry = help_entries(command, capsys, monkeypatch)["--data"]
    assert adopt_run.DEFAULT_DATASET in entry and "relative to the repository" in entry, entry


# --- a one-output classifier: its sigmoid, or its own probability ---------------------------------------------------

class NarrowLogitNet(BrightnessNet):
    """One raw logit, P(female) through a sigmoid, scaled and shifted so that every face's logit lies in [0, 1]:
    ``sigmoid`` ends the graph in a Sigmoid node, so that its output is the probability itself."""

    def __init__(self, sigmoid: bool = False):
        super().__init__(outputs=1)
        self.sigmoid = sigmoid
        with torch.no_grad():
            self.fc.weight.mul_(0.05)
            self.fc.bias.mul_(0.05).add_(0.5)

    def forward(self, x):
        logit = super().forward(x)
        return torch.sigmoid(logit) if self.sigmoid else logit


class OneSoftmaxNet(BrightnessNet):
    """One output through a softmax: always 1, not the sigmoid of its head."""

    def __init__(self):
        super().__init__(outputs=1)

    def forward(self, x):
        return torch.softmax(super().forward(x), 1)


def p_female_of(net: nn.Module, faces: np.ndarray) -> np.ndarray:
    """The one output's P(female) as PyTorch gives it: the sigmoid of the logit."""
    x = torch.from_numpy(faces).float().permute(0, 3, 1, 2) / 255
    with torch.no_grad():
        return torch.sigmoid(net.fc(net.features(x).mean((2, 3)))[:, 0]).numpy()


@pytest.mark.parametrize("sigmoid", [False, True], ids=["raw logit", "ends in Sigmoid"])
def test_a_one_output_classifier_is_adopted_by_what_its_graph_ends_in(sigmoid, tmp_path, tiny_utk):
    net = NarrowLogitNet(sigmoid).eval()
    faces = faces_of(tiny_utk)
    with torch.no_grad():
        own = net(torch.from_numpy(faces).float().permute(0, 3, 1, 2) / 255).numpy()
    assert ((own >= 0) & (own <= 1)).all()  # values alone cannot tell a logit from a probability here
    src = export(net, tmp_path / "one_output.onnx")
    # every face's P(female) lies above one half: the labels cannot be confirmed, hence force
    out = adopt_module.adopt(src, tmp_path / "adopted.onnx", "classifier", labels=["male", "female"],
                             value_range="unit", dataset=f"utkface:{tiny_utk.parent}", n=16, force=True, echo=quiet)
    model = load_model(out, "classifier")
    probs, _ = model.predict(faces)
    assert np.abs(probs[:, model.labels.index("female")] - p_female_of(net, faces)).max() < 1e-5


def test_a_one_output_classifier_whose_output_is_not_the_sigmoid_of_its_head_is_refused_saying_so(tmp_path, tiny_utk):
    src = export(OneSoftmaxNet(), tmp_path / "one_softmax.onnx")
    with pytest.raises(BiasMirrorError, match="its output is not the sigmoid of the head found") as err:
        adopt_module.adopt(src, tmp_path / "adopted.onnx", "classifier", labels=["male", "female"], value_range="unit",
                           dataset=f"utkface:{tiny_utk.parent}", n=8, force=True, echo=quiet)
    assert str(src) in str(err.value) and not (tmp_path / "adopted.onnx").exists()


def test_adopts_help_says_when_one_output_is_taken_as_a_probability(capsys, monkeypatch):
    from tests.test_help_and_exit_codes import help_entries

    entry = help_entries(["train", "adopt"], capsys, monkeypatch)["--labels"]
    assert "its sigmoid" in entry and "ends in a Sigmoid" in entry, entry


# --- a classifier giving both its probabilities and its logits ------------------------------------------------------

class TwoOutputsNet(BrightnessNet):
    """Its head's logits and their softmax, both graph outputs, in the order given."""

    def __init__(self, probs_first: bool):
        super().__init__(outputs=2)
        self.probs_first = probs_first

    def forward(self, x):
        logits = self.fc(self.features(x).mean((2, 3)))
        probs = torch.softmax(logits, 1)
        return (probs, logits) if self.probs_first else (logits, probs)


@pytest.mark.parametrize("probs_first", [True, False], ids=["(probs, logits)", "(logits, probs)"])
def test_a_classifier_giving_probabilities_and_logits_is_adopted_in_either_order(probs_first, tmp_path, tiny_utk):
    net = TwoOutputsNet(probs_first).eval()
    names = ["probs", "logits"] if probs_first else ["logits", "probs"]
    src = tmp_path / "two_outputs.onnx"
    torch.onnx.export(net, torch.rand(1, 3, SIZE, SIZE), str(src), input_names=["input"], output_names=names,
                      dynamic_axes={"input": {0: "b"}}, dynamo=False)
    out = adopt_module.adopt(src, tmp_path / "adopted.onnx", "classifier", labels=["female", "male"],
                             value_range="unit", dataset=f"utkface:{tiny_utk.parent}", n=16, echo=quiet)
    model = load_model(out, "classifier")
    # checked against the model's own probabilities, whichever place they have among its outputs
    assert model.card.training["adopted"]["checks"]["model_output_compared"] == "probs"
    faces = faces_of(tiny_utk)
    probs, _ = model.predict(faces)
    with torch.no_grad():
        own = net(torch.from_numpy(faces).float().permute(0, 3, 1, 2) / 255)[names.index("probs")].numpy()
    assert np.abs(probs - own).max() < 1e-5


# --- bench train: one rate, said once --------------------------------------------------------------------------------

def test_bench_trains_row_and_summary_say_the_same_rate(tmp_path, tiny_utk, monkeypatch, capsys):
    steps, batch = 2, 16
    # a rate just under a half at the second decimal: rounded there first, it then rounds up at the first
    rate = 39.349

    def timed(*a, **kw):  # seconds, data-wait share, ops per step, first step's seconds
        return steps * batch / rate, 0.0, 1, 0.0

    monkeypatch.setattr(bench_train, "time_steps", timed)
    code, out, err = run_main(["bench", "train", "--data", f"utkface:{tiny_utk}", "--faces", "64", "--size", str(SIZE),
                               "--trainers", "classifier", "--variants", "fp32", "--classifier-batch", str(batch),
                               "--warmup", "1", "--steps", str(steps), "--device", "cpu", "--threads", "1",
                               "--cache", ""], capsys)
    assert code == 0, err
    row = re.search(r"batch +\d+: +([\d.]+) images/s", out)
    best = re.search(r"classifier: best ([\d.]+) images/s", out)
    assert row and best and row.group(1) == best.group(1), out
