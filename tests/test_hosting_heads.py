"""Research classifiers brought in from elsewhere, and a models folder doctor must judge as the commands do.

- A classifier adopted with --labels male,female,unsure was measured three ways: adopt compared P(female) with
  P(male), evaluate thresholded P(female) at 0.5, the audit called the top label (an "unsure" counted wrong). Adopt
  now refuses labels besides female and male.
- Calibrated and debiased heads, softmax(fc(x) / T) (temperature scaling), fc(x) − adj (logit adjustment) and a
  DB-VAE's sigmoid(fc(x)[:, 0:1]), were refused as having no global-average-pool → linear head: what follows the last
  linear layer now folds into its weights, and the map stays exact.
- `doctor` passed (status 0) a folder of a conditional filter, a generator and a smile classifier, where run, audit,
  bench and the app stop with "no classifier found".
- A model giving its logits z and its calibrated softmax(z / T) was hosted with softmax(z), its check comparing the
  logits; a head of 3 or 17 outputs was told to give as many --labels, then refused the third; a per-face constant
  on the pooled features ended in a NumPy traceback; and what stopped a head after its linear layer (an op after the
  softmax, a per-face constant) was refused as "found no global-average-pool → linear head".
- Of two heads on one pool (a multi-task model's 'attractive' and 'gender'), the first in node order was hosted,
  silently; a race head of seven classes given first hid the gender head; an embedding layer given as an output
  before the classifier was refused as the head; a DB-VAE's logit beside a latent of one or two values was refused
  as two calibrations, with no word of the latent. An age regressor's bare value beside the gender head was then
  refused as a second classifier; a deep-supervision model's auxiliary gender head, on an earlier layer's pool, was
  hosted in place of the main head where its pool came last in node order.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import load_model  # noqa: E402
from tests.conftest import make_classifier, run_main  # noqa: E402
from tests.test_adopt import (SIZE, BrightnessNet, MLPHeadNet, adopted_as_pytorch_maps_it,  # noqa: E402
                              export, faces_of, grad_cam, quiet)
from training.adopt import adopt  # noqa: E402
from training.adopt_classifier_checks import MAX_CAM_MISMATCH, MAX_DPROB  # noqa: E402

FLOAT32_REL = 1e-4  # float32 rounding, relative to the map's largest value
TEMPERATURE = 1.7
LATENT = 8  # the DB-VAE's latent size: its one linear layer gives 1 + 2 × LATENT values
BATCH = 4  # a batch fixed at export, other than the features' count (3): a per-face constant is not one per feature
SQUEEZE, FLOOR = 0.9, 0.05  # sigmoid(z) · 0.9 + 0.05: probabilities kept off 0 and 1, after the sigmoid


def adopt_brightness(src: Path, out: Path, labels: list[str], tiny_utk: Path, **kw) -> Path:
    return adopt(src, out, "classifier", labels=labels, value_range="unit", dataset=f"utkface:{tiny_utk.parent}", n=40,
                 echo=quiet, **kw)


# --- 1. labels besides female and male -----------------------------------------------------------------------------

class UnsureNet(BrightnessNet):
    """BrightnessNet's female and male outputs, and a third, "unsure", for the faces near its threshold."""

    def __init__(self):
        super().__init__(2)
        two = self.fc
        self.fc = nn.Linear(3, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.cat([two.weight, torch.zeros(1, 3)]))
            self.fc.bias.copy_(torch.cat([two.bias, torch.zeros(1)]))


def test_a_classifier_of_a_third_label_beside_female_and_male_is_refused_at_adopt(tmp_path, tiny_utk):
    src = export(UnsureNet(), tmp_path / "three.onnx")
    out = tmp_path / "adopted.onnx"
    with pytest.raises(BiasMirrorError, match=r"--labels female,male,unsure has a label besides female and male "
                                              r"\('unsure'\)") as refused:
        adopt_brightness(src, out, ["female", "male", "unsure"], tiny_utk, force=True)
    assert str(src) in str(refused.value) and "binary female/male" in str(refused.value)
    assert not out.exists()


# --- 2. what follows the last linear layer, folded into it -----------------------------------------------------------

class TemperatureScaledNet(BrightnessNet):
    """Calibrated by temperature scaling (Guo et al. 2017): softmax(fc(x) / T)."""

    def logits(self, f):
        return self.fc(f.mean((2, 3))) / TEMPERATURE

    def forward(self, x):
        return torch.softmax(self.logits(self.features(x)), 1)

    def p_female(self, x):
        return self(x)[:, 0]


class LogitAdjustedNet(BrightnessNet):
    """Logit adjustment (Menon et al. 2021): fc(x) − τ·log(prior) per class, given as logits."""

    def __init__(self):
        super().__init__(2)
        self.register_buffer("adjustment", torch.tensor([0.12, -0.12]))

    def logits(self, f):
        return self.fc(f.mean((2, 3))) - self.adjustment

    def forward(self, x):
        return self.logits(self.features(x))

    def p_female(self, x):
        return torch.softmax(self(x), 1)[:, 0]


class ReorderedNet(BrightnessNet):
    """Its outputs picked into another order (a Gather of the class axis): male, female."""

    def logits(self, f):
        return self.fc(f.mean((2, 3)))[:, [1, 0]]

    def forward(self, x):
        return torch.softmax(self.logits(self.features(x)), 1)

    def p_female(self, x):
        return self(x)[:, 1]


class DBVAENet(BrightnessNet):
    """A DB-VAE's encoder (Amini et al. 2019): one linear layer gives the classifier's logit (P(female)) beside the
    latent mean and log-variance; exported for classification as sigmoid of the first."""

    def __init__(self):
        super().__init__(1)
        one = self.fc
        self.fc = nn.Linear(3, 1 + 2 * LATENT)
        with torch.no_grad():
            self.fc.weight[:1] = one.weight
            self.fc.bias[:1] = one.bias

    def logits(self, f):
        return self.fc(f.mean((2, 3)))[:, 0:1]

    def forward(self, x):
        return torch.sigmoid(self.logits(self.features(x)))

    def p_female(self, x):
        return self(x)[:, 0]


@pytest.mark.parametrize("net_type,labels", [
    (TemperatureScaledNet, "female,male"), (LogitAdjustedNet, "female,male"), (ReorderedNet, "male,female"),
    (DBVAENet, "male,female")], ids=["temperature", "logit-adjustment", "gather", "db-vae-slice"])
def test_a_calibrated_or_debiased_head_is_adopted_with_its_probabilities_and_an_exact_cam(tmp_path, tiny_utk,
                                                                                         net_type, labels):
    net = net_type().eval()
    out = adopt_brightness(export(net, tmp_path / "classifier.onnx"), tmp_path / "adopted.onnx", labels.split(","),
                           tiny_utk)
    model = load_model(out, "classifier")
    checks = model.card.training["adopted"]["checks"]
    # checked against the model run alone, and the CAM's grid mean against the head's output, when adopted
    assert checks["max_dprob_vs_model_alone"] <= MAX_DPROB and checks["cam_mismatch"] <= MAX_CAM_MISMATCH
    assert checks["labels"]["accuracy"] == 1.0 and "Grad-CAM" not in model.card.cam["formula"]
    cam, features, female = _adopted_against_the_net(model, net, tiny_utk)
    # the map of the output the model squashes: exact CAM (its gradient through the mean pool, times the features);
    # the DB-VAE's one logit is P(female)'s
    want = grad_cam(features, net.logits, 0 if net_type is DBVAENet else female)
    assert cam.shape[2:] == (SIZE, SIZE)
    assert np.abs(cam[:, female] - want).max() < FLOAT32_REL * np.abs(want).max()


def test_a_temperature_after_a_head_of_several_layers_keeps_its_grad_cam(tmp_path, tiny_utk):
    net = MLPHeadNet(nn.ReLU()).eval()

    class Calibrated(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def features(self, x):
            return net.features(x)

        def forward(self, x):
            return torch.softmax(net.head(net.features(x).mean((2, 3))) / TEMPERATURE, 1)

    model = adopted_as_pytorch_maps_it(Calibrated().eval(), lambda f: net.head(f.mean((2, 3))) / TEMPERATURE,
                                       tmp_path, tiny_utk)
    assert "gradient" in model.card.training["adopted"]["checks"]


class ReciprocalNet(TemperatureScaledNet):
    """T / fc(x): not affine in the pooled features, so no CAM of it is exact."""

    def forward(self, x):
        return torch.softmax(TEMPERATURE / self.fc(self.features(x).mean((2, 3))), 1)


def test_what_is_not_affine_after_the_last_linear_layer_is_still_refused(tmp_path, tiny_utk):
    src = export(ReciprocalNet().eval(), tmp_path / "classifier.onnx")
    # exported as Reciprocal, then Mul by T
    with pytest.raises(BiasMirrorError, match=r"its last linear layer's outputs go through a Reciprocal \('.*'\), "
                                              "which does not fold into the layer") as refused:
        adopt_brightness(src, tmp_path / "adopted.onnx", ["female", "male"], tiny_utk)
    assert str(src) in str(refused.value)


def pooled_logits(net: BrightnessNet, x: "torch.Tensor") -> "torch.Tensor":
    return net.fc(net.features(x).mean((2, 3)))


def export_outputs(net: nn.Module, path: Path, names: tuple[str, ...], batch: int | None = None) -> Path:
    """``net`` exported with its outputs named; ``batch``: its batch fixed at that (else open)."""
    torch.onnx.export(net.eval(), torch.rand(batch or 1, 3, SIZE, SIZE), str(path), input_names=["input"],
                      output_names=list(names), dynamic_axes=None if batch else {"input": {0: "b"}}, dynamo=False)
    return path


class LogitsAndCalibratedNet(TemperatureScaledNet):
    """Its logits z and its calibrated probabilities softmax(z / T), both given (in either order): what it ships
    is the calibrated P(female)."""

    def __init__(self, probs_first: bool):
        super().__init__()
        self.probs_first = probs_first

    def forward(self, x):
        z = pooled_logits(self, x)
        both = (z, torch.softmax(z / TEMPERATURE, 1))
        return both[::-1] if self.probs_first else both

    def p_female(self, x):
        return torch.softmax(self.logits(self.features(x)), 1)[:, 0]


@pytest.mark.parametrize("probs_first", [False, True], ids=["logits-then-probs", "probs-then-logits"])
def test_a_model_giving_its_logits_and_calibrated_probabilities_is_hosted_with_its_probabilities(tmp_path, tiny_utk,
                                                                                                probs_first):
    net = LogitsAndCalibratedNet(probs_first).eval()
    names = ("probs", "logits") if probs_first else ("logits", "probs")
    out = adopt_brightness(export_outputs(net, tmp_path / "classifier.onnx", names), tmp_path / "adopted.onnx",
                           ["female", "male"], tiny_utk)
    model = load_model(out, "classifier")
    checks = model.card.training["adopted"]["checks"]
    assert checks["model_output_compared"] == "probs" and checks["max_dprob_vs_model_alone"] <= MAX_DPROB
    cam, features, female = _adopted_against_the_net(model, net, tiny_utk)  # the model's own, calibrated P(female)
    want = grad_cam(features, net.logits, female)  # the map of the calibrated logits, z / T
    assert np.abs(cam[:, female] - want).max() < FLOAT32_REL * np.abs(want).max()


class TwoCalibrationsNet(BrightnessNet):
    """softmax(z) and softmax(z / T), both given: which one it ships, its graph cannot tell."""

    def forward(self, x):
        z = pooled_logits(self, x)
        return torch.softmax(z, 1), torch.softmax(z / TEMPERATURE, 1)


def test_two_outputs_of_different_probabilities_are_refused_naming_both(tmp_path, tiny_utk):
    src = export_outputs(TwoCalibrationsNet(), tmp_path / "classifier.onnx", ("raw", "calibrated"))
    with pytest.raises(BiasMirrorError, match="its head gives two different sets of probabilities, its outputs 'raw' "
                                              "and 'calibrated'") as refused:
        adopt_brightness(src, tmp_path / "adopted.onnx", ["female", "male"], tiny_utk)
    assert str(src) in str(refused.value) and not (tmp_path / "adopted.onnx").exists()


class DBVAEEncoderNet(DBVAENet):
    """A DB-VAE's whole encoder exported as it is: the classifier's logit, the latent mean and log-variance as one
    output."""

    def forward(self, x):
        return pooled_logits(self, x)


class SmallLatentDBVAENet(DBVAENet):
    """A DB-VAE's encoder of a latent of ``latent`` values, exported with its classifier's raw logit, the latent mean
    and log-variance as three outputs: the mean as narrow as a classifier's logits."""

    def __init__(self, latent: int):
        super().__init__()
        wide = self.fc
        self.fc = nn.Linear(3, 1 + 2 * latent)
        self.latent = latent
        with torch.no_grad():
            self.fc.weight[:1] = wide.weight[:1]
            self.fc.bias[:1] = wide.bias[:1]

    def forward(self, x):
        z = pooled_logits(self, x)
        return z[:, 0:1], z[:, 1:1 + self.latent], z[:, 1 + self.latent:]


@pytest.mark.parametrize("latent", [1, 2])
def test_a_db_vae_logit_beside_a_narrow_latent_is_refused_saying_the_other_may_be_its_latent(tmp_path, tiny_utk,
                                                                                             latent):
    """Refused as two calibrations of one head, softmax(z) and softmax(z / T), with no word of the latent."""
    src = export_outputs(SmallLatentDBVAENet(latent), tmp_path / "classifier.onnx", ("logit", "mu", "logvar"))
    with pytest.raises(BiasMirrorError, match="its head gives two different sets of logits") as refused:
        adopt_brightness(src, tmp_path / "adopted.onnx", ["male", "female"], tiny_utk)
    said = str(refused.value)
    assert "a DB-VAE's latent mean" in said and "torch.sigmoid(fc(x)[:, 0:1])" in said and str(src) in said


@pytest.mark.parametrize("net_type,outputs,how", [
    (UnsureNet, 3, r"torch.softmax(fc(x)[:, [i, j]], 1)"),
    (DBVAEEncoderNet, 1 + 2 * LATENT, r"torch.sigmoid(fc(x)[:, 0:1])"),
], ids=["three-classes", "db-vae-encoder"])
def test_a_head_of_more_than_two_outputs_is_told_only_two_classes_are_hosted_and_how_to_export_them(
        tmp_path, tiny_utk, net_type, outputs, how):
    """It had been told to give 3 (or 17) --labels, and a third label was then refused."""
    src = export(net_type().eval(), tmp_path / "classifier.onnx")
    with pytest.raises(BiasMirrorError, match=f"its head gives {outputs} outputs, and only a classifier of two "
                                              "classes, female and male, can be hosted") as refused:
        adopt_brightness(src, tmp_path / "adopted.onnx", ["female", "male"], tiny_utk)
    said = str(refused.value)
    assert how in said and "--labels" not in said and str(src) in said


class PerFaceScaleNet(BrightnessNet):
    """softmax(fc(gap(x) · c)), c one value per face of a batch fixed at export ([BATCH, 1]), not one per feature."""

    def __init__(self):
        super().__init__()
        self.register_buffer("per_face", torch.linspace(0.5, 2.0, BATCH).view(BATCH, 1))

    def forward(self, x):
        return torch.softmax(self.fc(self.features(x).mean((2, 3)) * self.per_face), 1)


def test_a_per_face_constant_on_the_pooled_features_is_refused_naming_it_not_a_traceback(tmp_path, tiny_utk):
    src = export_outputs(PerFaceScaleNet(), tmp_path / "classifier.onnx", ("probs",), batch=BATCH)
    with pytest.raises(BiasMirrorError, match=rf"its pooled features go through a Mul \('.*'\) with a constant of "
                                              rf"shape \[{BATCH}, 1\]: only one value for every feature, or one for "
                                              "each on the feature axis, folds") as refused:
        adopt_brightness(src, tmp_path / "adopted.onnx", ["female", "male"], tiny_utk)
    assert str(src) in str(refused.value)


class AfterSoftmaxNet(BrightnessNet):
    def forward(self, x):
        return torch.softmax(pooled_logits(self, x), 1) / TEMPERATURE


class AfterLogSoftmaxNet(BrightnessNet):
    def forward(self, x):
        return torch.log_softmax(pooled_logits(self, x), 1) / TEMPERATURE


class AfterSigmoidNet(BrightnessNet):
    def __init__(self):
        super().__init__(1)

    def forward(self, x):
        return torch.sigmoid(pooled_logits(self, x)) * SQUEEZE + FLOOR


class LogitDifferenceNet(BrightnessNet):
    def forward(self, x):
        z = pooled_logits(self, x)
        return torch.sigmoid(z[:, 0:1] - z[:, 1:2])


class PerFaceShiftNet(BrightnessNet):
    """softmax(fc(x) + c), c a value per face and class of a batch fixed at export ([BATCH, 2])."""

    def __init__(self):
        super().__init__()
        self.register_buffer("per_face", torch.linspace(-1.0, 1.0, BATCH * 2).view(BATCH, 2))

    def forward(self, x):
        return torch.softmax(pooled_logits(self, x) + self.per_face, 1)


@pytest.mark.parametrize("net_type,batch,cause", [
    (AfterSoftmaxNet, None, r"its Softmax is followed by a Div \('.*'\): only a constant scale, shift or choice of "
                            r"the logits before the Softmax folds"),
    (AfterLogSoftmaxNet, None, r"its LogSoftmax is followed by a Div \('.*'\)"),
    (AfterSigmoidNet, None, r"its Sigmoid is followed by a Mul \('.*'\)"),
    (LogitDifferenceNet, None, r"its last linear layer's outputs are combined with each other by a Sub"),
    (PerFaceShiftNet, BATCH, rf"its last linear layer's outputs go through an Add \('.*'\) with a constant of shape "
                             rf"\[{BATCH}, 2\]: only one value for every class, or one for each on the class axis"),
], ids=["div-after-softmax", "div-after-log-softmax", "scale-after-sigmoid", "logit-difference", "per-face-shift"])
def test_a_head_stopped_after_its_linear_layer_is_refused_naming_what_stops_it(tmp_path, tiny_utk, net_type, batch,
                                                                               cause):
    """Each had been refused as "found no global-average-pool → linear head": a head it has."""
    src = export_outputs(net_type(), tmp_path / "classifier.onnx", ("output",), batch=batch)
    with pytest.raises(BiasMirrorError, match="its global-average-pool → linear head cannot be hosted: " + cause) \
            as refused:
        adopt_brightness(src, tmp_path / "adopted.onnx", ["female", "male"], tiny_utk)
    assert "found no global-average-pool" not in str(refused.value) and str(src) in str(refused.value)


class ZeroedLogitsNet(BrightnessNet):
    def forward(self, x):
        return torch.softmax(pooled_logits(self, x) * 0, 1)


def test_logits_times_zero_are_said_to_fold_to_a_head_of_zero_weights(tmp_path, tiny_utk):
    """It had been asked whether it was untrained or its inputs read wrongly."""
    src = export(ZeroedLogitsNet(), tmp_path / "classifier.onnx")
    with pytest.raises(BiasMirrorError, match="its outputs do not tell these faces apart: .* Its head's folded "
                                              "weights are all zero") as refused:
        adopt_brightness(src, tmp_path / "adopted.onnx", ["female", "male"], tiny_utk)
    assert "untrained" not in str(refused.value)


# --- 3. several heads on one pool, and an embedding layer before the classifier ---------------------------------------

RACES = 7  # FairFace's race classes: a head of more than two, which adopt never hosts
OTHER_SCALE, OTHER_SHIFT = 0.6, 0.8  # the other head: the gender head's rows, weaker and with a bias of its own
EMBEDDING = 4  # wider than two classes, so that the embedding layer cannot pass for the classifier


class MultiTaskNet(BrightnessNet):
    """A multi-task model (CelebA's attributes, FairFace's age): another head of ``width`` outputs beside the gender
    head, on the same pooled features, given first or second; ``squashed``: the other head through a softmax."""

    def __init__(self, width: int, other_first: bool = True, squashed: bool = True):
        super().__init__(2)
        self.other_first, self.squashed = other_first, squashed
        self.other = nn.Linear(3, width)
        rows = torch.arange(width) % 2  # female, male, female, ...
        with torch.no_grad():  # correlated with gender, as CelebA's 'attractive' is, so that its checks pass
            self.other.weight.copy_(self.fc.weight[rows] * OTHER_SCALE)
            self.other.bias.copy_(self.fc.bias[rows] * OTHER_SCALE + OTHER_SHIFT * (1 - 2 * rows))

    def forward(self, x):
        pooled = self.features(x).mean((2, 3))
        other = self.other(pooled)
        both = (torch.softmax(other, 1) if self.squashed else other, torch.softmax(self.fc(pooled), 1))
        return both if self.other_first else both[::-1]

    def p_female(self, x):
        return self(x)[1 if self.other_first else 0][:, 0]


@pytest.mark.parametrize("other_first", [True, False], ids=["attractive-head-first", "gender-head-first"])
def test_two_heads_that_could_each_be_the_classifier_are_refused_naming_both(tmp_path, tiny_utk, other_first):
    """The first head in node order had been hosted: an 'attractive' head taken for the gender classifier with status
    0 (its card saying it compared 'attractive')."""
    names = ("other", "gender") if other_first else ("gender", "other")
    src = export_outputs(MultiTaskNet(2, other_first), tmp_path / "classifier.onnx", names)
    out = tmp_path / "adopted.onnx"
    with pytest.raises(BiasMirrorError, match="its pooled features feed 2 heads that could each be its female/male "
                                              "classifier") as refused:
        adopt_brightness(src, out, ["female", "male"], tiny_utk)
    said = str(refused.value)
    assert all(f"'{name}'" in said for name in names) and "onnx.utils.extract_model" in said
    assert str(src) in said and not out.exists()


def test_a_gender_head_beside_a_head_of_more_classes_is_the_one_hosted(tmp_path, tiny_utk):
    """A race head of seven classes given first had been taken as the head, and refused as one of seven outputs."""
    net = MultiTaskNet(RACES).eval()
    _hosted_on(net, ("race", "gender"), "gender", lambda f: net.fc(f.mean((2, 3))), tmp_path, tiny_utk)


@pytest.mark.parametrize("other_first", [True, False], ids=["age-regressor-first", "gender-head-first"])
def test_a_gender_head_beside_a_bare_regressor_of_one_output_is_the_one_hosted(tmp_path, tiny_utk, other_first):
    """An age regressor's one bare value had been counted as a second classifier, and the model refused (before that,
    given first, hosted and refused as a mismatch of nan)."""
    net = MultiTaskNet(1, other_first, squashed=False).eval()
    names = ("age", "gender") if other_first else ("gender", "age")
    _hosted_on(net, names, "gender", lambda f: net.fc(f.mean((2, 3))), tmp_path, tiny_utk)


class DeepSupervisionNet(MultiTaskNet):
    """Deep supervision (GoogLeNet's auxiliary classifiers): an auxiliary gender head on the pool of an earlier layer,
    exported beside the main head on the last layer's pool; ``aux_last``: its pool after the main one in node order,
    as a forward that computes the main head first exports it."""

    def __init__(self, aux_last: bool):
        super().__init__(2)
        self.aux_last = aux_last
        self.late = nn.Conv2d(3, 3, 1)
        with torch.no_grad():  # the later layer keeps the features, so that both heads tell faces apart
            self.late.weight.copy_(torch.eye(3)[:, :, None, None])
            self.late.bias.zero_()

    def forward(self, x):
        early = self.features(x)
        heads = (lambda: torch.softmax(self.fc(torch.relu(self.late(early)).mean((2, 3))), 1),
                 lambda: torch.softmax(self.other(early.mean((2, 3))), 1))
        main, aux = (h() for h in (heads if self.aux_last else heads[::-1]))
        return main, aux


@pytest.mark.parametrize("aux_last", [True, False], ids=["aux-pool-last", "aux-pool-first"])
def test_an_auxiliary_gender_head_on_an_earlier_pool_is_refused_naming_both_outputs(tmp_path, tiny_utk, aux_last):
    """The head of the last pool in node order had been hosted: the auxiliary head, where its pool came last, with
    adopt's status 0 and its P(female) in place of the model's."""
    src = export_outputs(DeepSupervisionNet(aux_last), tmp_path / "classifier.onnx", ("gender", "aux_gender"))
    out = tmp_path / "adopted.onnx"
    with pytest.raises(BiasMirrorError, match="feed 2 heads that could each be its female/male classifier") as refused:
        adopt_brightness(src, out, ["female", "male"], tiny_utk)
    said = str(refused.value)
    assert "'gender'" in said and "'aux_gender'" in said and "onnx.utils.extract_model" in said
    assert str(src) in said and not out.exists()


class EmbeddingThenClassifierNet(BrightnessNet):
    """A linear embedding layer, given as an output (for retrieval or clustering), then the classifier on it, with or
    without a ReLU between: pool → Linear → embedding; → (ReLU) → Linear → softmax."""

    def __init__(self, relu: bool):
        super().__init__(2)
        self.relu = relu
        self.embed = nn.Linear(3, EMBEDDING)
        two = self.fc
        self.fc = nn.Linear(EMBEDDING, 2)
        with torch.no_grad():  # the embedding keeps the three features, the classifier reads them as before
            self.embed.weight.copy_(torch.eye(EMBEDDING, 3))
            self.embed.bias.zero_()
            self.fc.weight.copy_(torch.cat([two.weight, torch.zeros(2, EMBEDDING - 3)], 1))
            self.fc.bias.copy_(two.bias)

    def logits(self, f):
        e = self.embed(f.mean((2, 3)))
        return self.fc(torch.relu(e) if self.relu else e)

    def forward(self, x):
        f = self.features(x)
        return self.embed(f.mean((2, 3))), torch.softmax(self.logits(f), 1)

    def p_female(self, x):
        return self(x)[1][:, 0]


@pytest.mark.parametrize("relu", [False, True], ids=["linear-embedding", "embedding-then-relu"])
def test_an_embedding_layer_before_the_classifier_is_walked_through_to_it(tmp_path, tiny_utk, relu):
    """The walk had stopped at the embedding layer, whose output is a graph output, and refused it as a head of as
    many outputs as the embedding has."""
    net = EmbeddingThenClassifierNet(relu).eval()
    _hosted_on(net, ("embedding", "probs"), "probs", net.logits, tmp_path, tiny_utk)


# --- 4. doctor judges the models folder as the commands load it ------------------------------------------------------

def doctor_on(folder: Path, monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    from inference import doctor

    monkeypatch.setattr(doctor, "MODELS_DIR", folder)
    return run_main(["doctor", *argv], capsys)


def test_doctor_fails_a_folder_the_commands_find_no_classifier_in(tmp_path, tiny_models, monkeypatch, capsys):
    from inference.defaults import load_folder
    from inference.runtime import RuntimeConfig

    shutil.copy(tiny_models["conditional"], tmp_path / "conditional.onnx")
    shutil.copy(tiny_models["generator"], tmp_path / "generator.onnx")
    make_classifier(tmp_path / "smile.onnx", labels=("neutral", "smile"))
    assert not load_folder(tmp_path, RuntimeConfig(provider="cpu")).classifiers  # as run, audit, bench and the app
    code, out, err = doctor_on(tmp_path, monkeypatch, capsys, "--cameras", "0", "--no-gpu-probe")
    assert code == 1, out
    assert "smile.onnx: UNUSABLE — " in out and "its labels are neutral, smile" in out
    assert "generator (latent → face), not used" in out and "generator.onnx: UNUSABLE" not in out
    assert "conditional.onnx: UNUSABLE" not in out
    assert f"no usable default classifier in {tmp_path}" in err and '"no classifier found"' in err
    code, out, err = doctor_on(tmp_path, monkeypatch, capsys, "--cards")
    assert code == 1 and "UNUSABLE — " in out and "its labels are neutral, smile" in out
    assert f"no usable default classifier in {tmp_path}" in err


def test_doctor_passes_a_folder_of_a_gender_classifier_and_says_a_generator_is_left_aside(tmp_path, tiny_models,
                                                                                          monkeypatch, capsys):
    shutil.copy(tiny_models["classifier"], tmp_path / "gender.onnx")
    shutil.copy(tiny_models["generator"], tmp_path / "generator.onnx")
    code, out, err = doctor_on(tmp_path, monkeypatch, capsys, "--cameras", "0", "--no-gpu-probe")
    assert code == 0, err
    assert "UNUSABLE" not in out and "note: " in out and "a generator (latent → face), not used" in out


def test_a_card_with_a_third_label_is_refused_where_p_female_is_measured(tmp_path):
    """A card from elsewhere (or adopted before adopt refused it) with female, male and unsure had been audited with
    argmax, evaluated with P(female) ≥ 0.5 and checked by adopt with P(female) > P(male): three accuracies."""
    import torch

    from inference.card import classifier_card
    from inference.errors import BiasMirrorError
    from inference.models import load_model
    from training.export import export

    class Constant(torch.nn.Module):
        def forward(self, image):
            zero = image.float().mean(dim=(1, 2, 3)) * 0
            return torch.stack([zero + 0.5, zero + 0.3, zero + 0.2], dim=1), zero[:, None, None, None].expand(-1, 3, 4, 4)

    for labels, refused in ((["female", "male", "unsure"], True), (["male", "female"], False)):
        card = classifier_card("three", 32, labels, (4, 4), "constant (test)", {"dataset": "none"}, {})
        path = tmp_path / f"{len(labels)}.onnx"
        model = Constant() if refused else _two_of(Constant())
        export(model, [torch.zeros(2, 32, 32, 3, dtype=torch.uint8)], ["image"], ["probs", "cam"], path, card)
        loaded = load_model(path)
        if refused:
            with pytest.raises(BiasMirrorError, match="labels are female, male, unsure; .* female and male alone"):
                loaded.require_gender("--classifier")
        else:
            loaded.require_gender("--classifier")


def _two_of(three):
    import torch

    class Two(torch.nn.Module):
        def forward(self, image):
            probs, cam = three(image)
            return probs[:, :2] / probs[:, :2].sum(dim=1, keepdim=True), cam[:, :2]
    return Two()


def _adopted_against_the_net(model, net, folder: Path):
    """(CAM, the net's features, the female index) of the adopted ``model`` on faces of ``folder``, once its
    P(female) is checked against the net's own."""
    faces = faces_of(folder)
    probs, cam = model.predict(faces)
    x = torch.from_numpy(faces).float().permute(0, 3, 1, 2) / 255
    with torch.no_grad():
        p_female, features = net.p_female(x), net.features(x)
    female = model.labels.index("female")
    assert np.abs(probs[:, female] - p_female.numpy()).max() <= MAX_DPROB
    return cam, features, female


def _hosted_on(net, names: tuple[str, ...], compared: str, logits_of, tmp_path: Path, folder: Path) -> None:
    """``net`` exported with outputs ``names`` and adopted: checked against its output ``compared``, its P(female)
    the net's own and its map the exact CAM of ``logits_of`` (the pooled features' logits)."""
    out = adopt_brightness(export_outputs(net, tmp_path / "classifier.onnx", names), tmp_path / "adopted.onnx",
                           ["female", "male"], folder)
    model = load_model(out, "classifier")
    assert model.card.training["adopted"]["checks"]["model_output_compared"] == compared
    cam, features, female = _adopted_against_the_net(model, net, folder)
    want = grad_cam(features, logits_of, female)
    assert np.abs(cam[:, female] - want).max() < FLOAT32_REL * np.abs(want).max()
