"""`train adopt`: ONNX models made elsewhere (plain torch exports, normalised their own way) wrapped with a card,
checked against PyTorch run on the same faces."""
from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.errors import BiasMirrorError  # noqa: E402
from inference.images import read_rgb  # noqa: E402
from inference.models import load_model  # noqa: E402
from tests.conftest import utk_images  # noqa: E402
from training.adopt import adopt  # noqa: E402
from training.adopt_filter_checks import WRONG_RANGE_GREY  # noqa: E402

SIZE = 32
THRESHOLD = 0.43  # tiny_utk: female faces average about 0.59 of full scale, male ones 0.27


class BrightnessNet(nn.Module):
    """Calls a face female when it is bright: a conv, a global average pool, one linear layer (softmax or one
    logit), as an exported ResNet ends. ``nhwc_bgr``: takes N×H×W×3 BGR, as many OpenCV pipelines feed."""

    def __init__(self, outputs: int = 2, nhwc_bgr: bool = False, pool_nhwc: bool = False):
        super().__init__()
        self.nhwc_bgr, self.pool_nhwc = nhwc_bgr, pool_nhwc
        self.conv = nn.Conv2d(3, 3, 1)
        self.fc = nn.Linear(3, outputs)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None])
            self.conv.bias.zero_()
            k = 10.0
            rgb = torch.tensor([0.5, 0.3, 0.2]) * k  # unequal, so that channels in the wrong order show
            if outputs == 2:  # female, male
                self.fc.weight.copy_(torch.stack([rgb, -rgb]))
                self.fc.bias.copy_(torch.tensor([-k * THRESHOLD, k * THRESHOLD]))
            else:  # one logit: P(female)
                self.fc.weight.copy_(2 * rgb[None])
                self.fc.bias.fill_(-2 * k * THRESHOLD)

    def features(self, x):
        if self.nhwc_bgr:
            x = x.flip(3).permute(0, 3, 1, 2)
        return torch.relu(self.conv(x))

    def forward(self, x):
        f = self.features(x)
        # ReduceMean (torchvision's avgpool gives GlobalAveragePool); over a channels-last map as Keras exports pool
        pooled = f.permute(0, 2, 3, 1).mean((1, 2)) if self.pool_nhwc else f.mean((2, 3))
        logits = self.fc(pooled)
        return torch.softmax(logits, 1) if logits.shape[1] > 1 else logits


class SquashingFilter(nn.Module):
    """A filter trained on [-1, 1], as CycleGAN's are: instance norm, a 1×1 conv, tanh."""

    def __init__(self):
        super().__init__()
        self.norm = nn.InstanceNorm2d(3)
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None] * 0.6)
            self.conv.bias.fill_(0.1)

    def forward(self, x):
        return torch.tanh(self.conv(self.norm(x)))


class ConditionalFilterNet(nn.Module):
    """A filter made elsewhere with a second input, a one-hot condition: darker (gain 0.7) or lighter (1.3), in
    [-1, 1] as GANs take faces."""

    def forward(self, x, condition):
        gain = condition @ torch.tensor([0.7, 1.3])
        return torch.clamp((x + 1) * gain.view(-1, 1, 1, 1) - 1, -1, 1)


class FixedBatchNet(BrightnessNet):
    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)).reshape(1, -1))


class NoPoolNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * SIZE * SIZE, 2)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))


class MLPHeadNet(nn.Module):
    """A conv, a global average pool, then a head of several layers, as torchvision's MobileNetV3 (Linear, Hardswish,
    Linear) and many fine-tuned models end."""

    def __init__(self, *between: nn.Module, hidden: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Sequential(nn.Linear(6, hidden), *between, nn.Linear(hidden, 2))
        for m in self.head:
            if isinstance(m, nn.BatchNorm1d):  # stats of their own, so that the layer is not the identity
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.3, 0.3)

    def features(self, x):
        return torch.relu(self.conv(x))

    def forward(self, x):
        return torch.softmax(self.head(self.features(x).mean((2, 3))), 1)


def grad_cam(features: "torch.Tensor", head, k: int) -> np.ndarray:
    """Grad-CAM as PyTorch's autograd gives it (Selvaraju et al.): each channel weighted by the class score's
    gradient summed over the map."""
    f = features.detach().requires_grad_()
    (g,) = torch.autograd.grad(head(f)[:, k].sum(), f)
    return torch.einsum("nc,nchw->nhw", g.sum((2, 3)), f).detach().numpy()


def export(net: nn.Module, path: Path, shape=(1, 3, SIZE, SIZE), dynamic: bool = True) -> Path:
    torch.onnx.export(net.eval(), torch.rand(*shape), str(path), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "b"}} if dynamic else None, dynamo=False)
    return path


def faces_of(folder: Path, n: int = 12) -> np.ndarray:
    paths = sorted(p for p in folder.iterdir() if p.name[0].isdigit())[:n]
    return np.stack([f for f in (read_rgb(str(p), SIZE) for p in paths) if f is not None])


def quiet(_: str) -> None:
    pass


def test_a_filter_made_elsewhere_runs_as_it_would_alone_and_its_range_is_found(tmp_path, tiny_utk):
    net = SquashingFilter().eval()
    src = export(net, tmp_path / "filter.onnx")
    out = adopt(src, tmp_path / "adopted.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=24, echo=quiet)
    model = load_model(out, "filter")
    assert model.card.training["adopted"]["range_chosen"].startswith("auto: [-1, 1], whose output lies nearest the "
                                                                     "input (mean change in grey levels: [-1, 1] ")
    assert "[-1, 1]" in model.card.training["adopted"]["input"]
    faces = faces_of(tiny_utk)
    got = model.apply(faces)  # a batch of 12: the export's batch axis was left open
    with torch.no_grad():
        y = net(torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1)
    want = ((y.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
    assert got.shape == faces.shape and np.abs(got.astype(int) - want).max() <= 1


@pytest.mark.parametrize("outputs,nhwc_bgr,pool_nhwc,labels", [
    (2, False, False, "female,male"), (1, False, False, "male,female"), (2, True, False, "female,male"),
    (2, False, True, "female,male")])
def test_a_classifier_made_elsewhere_gets_its_probabilities_and_a_true_cam(tmp_path, tiny_utk, outputs, nhwc_bgr,
                                                                           pool_nhwc, labels):
    net = BrightnessNet(outputs, nhwc_bgr, pool_nhwc).eval()
    shape = (1, SIZE, SIZE, 3) if nhwc_bgr else (1, 3, SIZE, SIZE)
    src = export(net, tmp_path / "classifier.onnx", shape)
    lines: list[str] = []
    out = adopt(src, tmp_path / "adopted.onnx", "classifier", labels=labels.split(","), value_range="unit",
                order="BGR" if nhwc_bgr else "RGB", dataset=f"utkface:{tiny_utk.parent}", n=40, echo=lines.append)
    model = load_model(out, "classifier")
    assert model.card.labels == labels.split(",")
    faces = faces_of(tiny_utk)
    probs, cam = model.predict(faces)
    x = torch.from_numpy(faces).float() / 255
    x = x.flip(3) if nhwc_bgr else x.permute(0, 3, 1, 2)
    with torch.no_grad():
        features = net.features(x)
        logits = net.fc(features.mean((2, 3)))
        # CAM (Zhou et al.): the female output's (or the one logit's) weights at every cell of the feature map
        want_cam = torch.einsum("c,nchw->nhw", net.fc.weight[0], features).numpy()
    p_female = torch.softmax(logits, 1)[:, 0] if outputs == 2 else torch.sigmoid(logits[:, 0])
    assert np.abs(probs[:, model.labels.index("female")] - p_female.numpy()).max() < 1e-5
    assert cam.shape[2:] == (SIZE, SIZE)
    assert np.abs(cam[:, model.labels.index("female")] - want_cam).max() < 1e-4 * np.abs(want_cam).max()
    checked = model.card.training["adopted"]["checks"]["labels"]
    assert checked["accuracy"] == 1.0 and checked["n"] == 40, lines


def adopted_as_pytorch_maps_it(net, head, tmp_path, tiny_utk, probs_of=None):
    """``net`` adopted (random weights: the label order is a coin toss, so forced), with its probabilities
    (``probs_of(x)``, default ``net(x)``) and, for each class, its map against PyTorch's: the autograd Grad-CAM of
    ``head`` (feature map → logits)."""
    out = adopt(export(net, tmp_path / "classifier.onnx"), tmp_path / "adopted.onnx", "classifier", value_range="unit",
                dataset=f"utkface:{tiny_utk.parent}", n=24, force=True, echo=quiet)
    model = load_model(out, "classifier")
    faces = faces_of(tiny_utk)
    probs, cam = model.predict(faces)
    x = torch.from_numpy(faces).float().permute(0, 3, 1, 2) / 255
    with torch.no_grad():
        features = net.features(x)
    assert np.abs(probs - (probs_of or net)(x).detach().numpy()).max() < 1e-5
    for k in range(2):
        want = grad_cam(features, head, k)
        assert np.abs(cam[:, k] - want).max() < 1e-4 * np.abs(want).max(), k
    return model


@pytest.mark.parametrize("between", [
    [nn.ReLU()], [nn.Hardswish()], [nn.SiLU()],
    [nn.LeakyReLU(0.1), nn.Linear(8, 8), nn.ELU(), nn.Linear(8, 8), nn.Tanh()],
    [nn.BatchNorm1d(8), nn.Sigmoid(), nn.Linear(8, 8), nn.Softplus(), nn.Linear(8, 8), nn.ReLU6(), nn.Hardsigmoid()],
    [nn.BatchNorm1d(8), nn.Dropout(0.2)],
], ids=["relu", "hardswish", "silu", "leaky-elu-tanh", "bn-sigmoid-softplus-relu6-hardsigmoid", "affine"])
def test_a_head_of_several_layers_gets_the_grad_cam_pytorch_gives(tmp_path, tiny_utk, between):
    net = MLPHeadNet(*between).eval()
    model = adopted_as_pytorch_maps_it(net, lambda f: net.head(f.mean((2, 3))), tmp_path, tiny_utk)
    checks = model.card.training["adopted"]["checks"]
    affine = all(isinstance(m, (nn.BatchNorm1d, nn.Dropout)) for m in between)
    # an affine head folds into one layer: exact CAM, checked against the head's output; else Grad-CAM, its
    # gradient checked against central differences of the model's own head
    assert ("Grad-CAM" in model.card.cam["formula"]) is not affine
    assert ("cam_mismatch" in checks) is affine and ("gradient" in checks) is not affine
    if not affine:
        assert checks["gradient"]["median_rel_error"] < 2e-2 and checks["gradient"]["n"] == 48


class ConvHeadNet(MLPHeadNet):
    """timm's MobileNetV3 ending: the pool, a 1×1 convolution of the pooled 1×1 map, Hardswish, flatten, linear."""

    def __init__(self):
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(6, 8, 1), nn.Hardswish(), nn.Flatten(), nn.Linear(8, 2))

    def forward(self, x):
        return torch.softmax(self.head(self.features(x).mean((2, 3), keepdim=True)), 1)


def test_a_head_that_convolves_the_pooled_map_gets_grad_cam(tmp_path, tiny_utk):
    net = ConvHeadNet().eval()
    model = adopted_as_pytorch_maps_it(net, lambda f: net.head(f.mean((2, 3), keepdim=True)), tmp_path, tiny_utk)
    assert "HardSwish" in model.card.method


class EmbeddingNet(MLPHeadNet):
    """Gives its pooled features too (an embedding beside the probabilities), so the pool has two takers."""

    def __init__(self):
        super().__init__(nn.ReLU())

    def forward(self, x):
        pooled = self.features(x).mean((2, 3))
        return torch.softmax(self.head(pooled), 1), pooled * 2


def test_a_model_that_also_gives_its_pooled_features_is_adopted_by_its_head(tmp_path, tiny_utk):
    net = EmbeddingNet().eval()
    model = adopted_as_pytorch_maps_it(net, lambda f: net.head(f.mean((2, 3))), tmp_path, tiny_utk,
                                       probs_of=lambda x: net(x)[0])
    assert "Relu" in model.card.method


def test_a_wrong_gradient_through_the_head_is_caught(tmp_path, tiny_utk, monkeypatch):
    from training import adopt_head

    right = adopt_head.Activation.derivative
    monkeypatch.setattr(adopt_head.Activation, "derivative",
                        lambda self, b, prefix: b.op("Mul", [right(self, b, prefix), b.const(np.float32(1.5))]))
    src = export(MLPHeadNet(nn.ReLU()), tmp_path / "classifier.onnx")
    with pytest.raises(BiasMirrorError, match="differs from the head's own central differences") as err:
        adopt(src, tmp_path / "adopted.onnx", "classifier", value_range="unit", dataset=f"utkface:{tiny_utk.parent}",
              n=8, force=True, echo=quiet)
    assert str(src) in str(err.value) and not (tmp_path / "adopted.onnx").exists()


def test_torchvisions_mobilenet_v3_is_adopted_with_grad_cam(tmp_path, tiny_utk):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small(num_classes=2).eval()
    src = export(net, tmp_path / "mobilenet_v3.onnx", (1, 3, 64, 64))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    out = adopt(src, tmp_path / "adopted.onnx", "classifier", value_range="unit", mean=mean, std=std,
                dataset=f"utkface:{tiny_utk.parent}", n=8, force=True, echo=quiet)
    model = load_model(out, "classifier")
    assert "Grad-CAM" in model.card.method and "HardSwish" in model.card.method
    faces = np.stack([read_rgb(str(p), 64) for p in utk_images(4)])  # real faces
    probs, cam = model.predict(faces)
    x = ((torch.from_numpy(faces).float() / 255 - torch.tensor(mean)) / torch.tensor(std)).permute(0, 3, 1, 2)
    with torch.no_grad():
        features = net.features(x)
        assert np.abs(probs - torch.softmax(net(x), 1).numpy()).max() < 1e-5
    head = lambda f: net.classifier(torch.flatten(net.avgpool(f), 1))  # noqa: E731
    for k in range(2):
        want = grad_cam(features, head, k)
        assert cam.shape[2:] == want.shape[1:] and np.abs(cam[:, k] - want).max() < 1e-4 * np.abs(want).max()


def test_labels_in_the_wrong_order_are_refused_unless_forced(tmp_path, tiny_utk):
    src = export(BrightnessNet(), tmp_path / "classifier.onnx")
    kw = dict(labels=["male", "female"], value_range="unit", dataset=f"utkface:{tiny_utk.parent}", n=40, echo=quiet)
    with pytest.raises(BiasMirrorError, match="right on 0.0% of 40 labelled faces.*other order"):
        adopt(src, tmp_path / "adopted.onnx", "classifier", **kw)
    assert not (tmp_path / "adopted.onnx").exists()
    adopt(src, tmp_path / "adopted.onnx", "classifier", force=True, **kw)
    assert load_model(tmp_path / "adopted.onnx").card.training["adopted"]["checks"]["labels"]["accuracy"] == 0.0



def test_a_classifier_adopted_on_faces_without_labels_says_and_records_its_order_was_not_checked(tmp_path, tiny_utk):
    """On a plain folder the order was not checked, and nothing said so: a swapped order was written without a word,
    every P(female) the model gave then 1 − the truth."""
    from inference.card_markdown import card_markdown

    folder = tmp_path / "plain"
    folder.mkdir()
    for i, face in enumerate(sorted(tiny_utk.iterdir())[:12]):
        shutil.copy(face, folder / f"{i:04d}.jpg")  # the labels in UTKFace's names hidden
    src = export(BrightnessNet(), tmp_path / "classifier.onnx")
    said: list[str] = []
    adopt(src, tmp_path / "adopted.onnx", "classifier", labels=["male", "female"], value_range="unit",
          dataset=f"folder:{folder}", n=12, echo=said.append)
    assert any("was not checked" in s and "--labels male,female" in s for s in said)
    card = load_model(tmp_path / "adopted.onnx").card
    assert card.training["adopted"]["checks"]["labels"]["order"] == "not checked"
    assert "- label order not checked: no face it was checked on had a gender label" in card_markdown(
        card, "adopted.onnx", 0.1)


class ConstantNet(BrightnessNet):
    """The same softmax for every face, as an untrained torchvision MobileNetV3 gives (exactly [0.5, 0.5]): its
    head's weights are zero, its bias says ``p_first``."""

    def __init__(self, p_first: float = 0.5):
        super().__init__()
        with torch.no_grad():
            self.fc.weight.zero_()
            logit = float(np.log(p_first / (1 - p_first)))
            self.fc.bias.copy_(torch.tensor([logit / 2, -logit / 2]))


class RedOverGreenNet(BrightnessNet):
    """A weak classifier: calls a face female when it is redder than green, which tiny_utk's faces are by chance
    (right on 36 of its 64 sampled faces, 56 %)."""

    def __init__(self):
        super().__init__()
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[20.0, -20.0, 0.0], [-20.0, 20.0, 0.0]]))
            self.fc.bias.zero_()


@pytest.mark.parametrize("p_first", [0.5, 0.7], ids=["ties", "one-call"])
def test_outputs_that_do_not_tell_the_faces_apart_are_said_so_not_taken_for_swapped_labels(tmp_path, tiny_utk,
                                                                                          p_first):
    """An untrained MobileNetV3 (exactly [0.5, 0.5] for every face) was refused in both orders with "give them in
    the other order": a tie was called female, so its "accuracy" was the share of women (19 of 39 here)."""
    src = export(ConstantNet(p_first), tmp_path / "classifier.onnx")
    kw = dict(value_range="unit", dataset=f"utkface:{tiny_utk.parent}", n=39, echo=quiet)
    for labels in (["female", "male"], ["male", "female"]):
        with pytest.raises(BiasMirrorError, match="its outputs do not tell these faces apart: .*untrained.*--range, "
                                                  "--mean, --std") as err:
            adopt(src, tmp_path / "adopted.onnx", "classifier", labels=labels, **kw)
        assert "other order" not in str(err.value) and not (tmp_path / "adopted.onnx").exists()
    lines: list[str] = []
    adopt(src, tmp_path / "adopted.onnx", "classifier", force=True, **{**kw, "echo": lines.append})
    checked = load_model(tmp_path / "adopted.onnx").card.training["adopted"]["checks"]["labels"]
    assert checked["order"] == "not told apart" and "written with --force" in checked["note"]
    if p_first == 0.5:  # a tie is neither right nor wrong
        assert checked["ties"] == 39 and checked["accuracy"] == checked["accuracy_labels_swapped"] == 0.0
        assert "P(female) 0.5000" in str(err.value)
    else:
        assert checked["ties"] == 0 and "calls every face it decides male" in str(err.value)
    assert any(line.startswith("warning: its outputs do not tell these faces apart") for line in lines), lines


def test_a_weak_classifier_is_not_told_to_swap_its_labels_and_its_card_says_the_order_is_unconfirmed(tmp_path,
                                                                                                    tiny_utk):
    """Refused whenever swapped beat right by any margin: a classifier right on 44 % of 64 faces in one order was
    told to "give them in the other order", which a weak model that is right in that order is, 18 % of the time."""
    src = export(RedOverGreenNet(), tmp_path / "classifier.onnx")
    accuracy = {}
    for labels in ("female,male", "male,female"):
        lines: list[str] = []
        out = adopt(src, tmp_path / f"{labels}.onnx", "classifier", labels=labels.split(","), value_range="unit",
                    dataset=f"utkface:{tiny_utk.parent}", n=64, echo=lines.append)
        checked = load_model(out).card.training["adopted"]["checks"]["labels"]
        assert checked["order"] == "not confirmed" and "could not be confirmed" in checked["note"]
        from inference.card_markdown import _adoption_lines  # the card as docs/models.md and doctor --cards show it

        assert any("could not be confirmed" in line for line in _adoption_lines(load_model(out).card.training))
        assert checked["p_right_better"] > 0.01 and checked["p_swapped_better"] > 0.01
        assert any(line.startswith("warning: neither order of the labels is shown better") for line in lines), lines
        # a model near chance is usually one fed wrongly: said, not only "a larger --n may confirm it"
        assert any("check --range, --mean, --std and --channels" in line for line in lines), lines
        accuracy[labels] = checked["accuracy"], checked["accuracy_labels_swapped"]
    assert accuracy["female,male"] == (36 / 64, 28 / 64) and accuracy["male,female"] == (28 / 64, 36 / 64)


@pytest.mark.parametrize("right,ties,order", [
    (64, 0, "confirmed"), (42, 0, "confirmed"), (41, 0, "not confirmed"), (32, 0, "not confirmed"),
    (23, 0, "not confirmed"), (22, 0, "looks swapped"), (0, 0, "looks swapped"),
    (0, 56, "looks swapped"), (0, 58, "not confirmed"),  # 8 of 8 called faces wrong: p = 1/256; 6 of 6: 1/64
])
def test_an_order_is_taken_as_better_only_where_a_sign_test_shows_it(right, ties, order):
    """P(X >= k | n faces called, p = 1/2) < 0.01: 42 of 64 right confirms the order (p = 0.0084), 41 does not
    (0.016); ties are counted as neither."""
    from training.adopt_labels import label_check

    genders = ["female", "male"] * 32
    probs = np.full((64, 2), 0.5, np.float32)
    called = [i for i in range(64) if i >= ties]
    for j, i in enumerate(called):
        p_female = 0.9 if (genders[i] == "female") == (j < right) else 0.1
        probs[i] = [p_female, 1 - p_female]
    checked = label_check(probs, genders, ["female", "male"])
    assert checked["order"] == order and checked["ties"] == ties
    assert checked["accuracy"] == right / 64 and checked["accuracy_labels_swapped"] == (64 - ties - right) / 64
    swapped = label_check(probs, genders, ["male", "female"])
    assert swapped["order"] == {"confirmed": "looks swapped", "looks swapped": "confirmed"}.get(order, order)


def test_without_dataset_adopt_names_its_default_and_how_to_give_one(tmp_path, monkeypatch, capsys):
    """Without the shared UTKFace copy, `train adopt` without --dataset said "/x/shared/datasets/utkface: the UTKFace
    folder does not exist", a path the user never typed, and nothing of --dataset. Then it said so in words of its
    own ("cannot be read" of a copy that is not there, no source of UTKFace): it says it as `bench detect` says it of
    --data, with its own option's name."""
    import inference.bench_detect
    import inference.defaults
    from main import main
    from training import adopt_run

    nowhere = tmp_path / "shared" / "datasets" / "utkface"
    monkeypatch.setattr(adopt_run, "DEFAULT_DATASET", f"utkface:{nowhere}")
    monkeypatch.setattr(inference.defaults, "DEFAULT_DATASET_DIR", nowhere)
    monkeypatch.setattr(inference.bench_detect, "DEFAULT_DATASET", f"utkface:{nowhere}")
    src = export(BrightnessNet(), tmp_path / "c.onnx")
    assert main(["train", "adopt", str(src), "--kind", "classifier", "--range", "unit",
                 "--out", str(tmp_path / "c_bm.onnx")]) == 2
    err = capsys.readouterr().err
    assert (f"error: --dataset was not given, and its default, the shared UTKFace copy at {nowhere}, does not exist; "
            "give --dataset KIND:PATH (e.g. --dataset utkface:DIR of UTKFace from https://susanqq.github.io/UTKFace/"
            in err), err
    assert not (tmp_path / "c_bm.onnx").exists()
    assert main(["bench", "detect", "--detectors", "haar-default"]) == 2
    bench_err = capsys.readouterr().err
    assert "--data was not given" in bench_err, bench_err
    assert err.strip() == bench_err.strip().replace("--data", "--dataset"), (err, bench_err)


@pytest.mark.parametrize("case,match", [
    ("carded", "already carries a Bias Mirror card"),
    ("truncated", "not a readable ONNX model"),
    ("no_pool", "no global-average-pool"),
    ("gelu_head", "no global-average-pool .* with only Clip, Elu"),
    ("fixed_batch", "batch axis fixed at 1"),
    ("no_range", "give --range"),
    ("pytorch", r"a PyTorch checkpoint or saved model, not an ONNX model: export the model to ONNX first"),
])
def test_what_cannot_be_adopted_is_refused_with_the_reason(tmp_path, tiny_utk, tiny_models, case, match):
    kw = dict(value_range="unit", dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    if case == "carded":
        src = tiny_models["classifier"]
    elif case == "truncated":
        whole = export(BrightnessNet(), tmp_path / "whole.onnx").read_bytes()
        src = tmp_path / "cut.onnx"
        src.write_bytes(whole[: len(whole) // 2])
    elif case == "no_pool":
        src = export(NoPoolNet(), tmp_path / "m.onnx")
    elif case == "gelu_head":  # GELU's derivative is not one the head's map is built for
        src = export(MLPHeadNet(nn.GELU()), tmp_path / "m.onnx")
    elif case == "fixed_batch":
        src = export(FixedBatchNet(), tmp_path / "m.onnx", dynamic=False)
    elif case == "pytorch":  # a model made elsewhere, saved by torch and not yet exported: not "corrupt"
        src = tmp_path / "model.pt"
        torch.save(BrightnessNet().state_dict(), src)
    else:
        src, kw["value_range"] = export(BrightnessNet(), tmp_path / "m.onnx"), "auto"
    with pytest.raises(BiasMirrorError, match=match) as err:
        adopt(src, tmp_path / "adopted.onnx", "classifier", **kw)
    assert str(src) in str(err.value)
    assert not (tmp_path / "adopted.onnx").exists()


def export_conditional(path: Path) -> Path:
    torch.onnx.export(ConditionalFilterNet().eval(), (torch.rand(1, 3, SIZE, SIZE), torch.eye(2)[:1]), str(path),
                      input_names=["input", "cond"], output_names=["output"],
                      dynamic_axes={"input": {0: "b"}, "cond": {0: "b"}}, dynamo=False)
    return path


def test_a_conditional_filter_made_elsewhere_runs_each_condition_as_it_would_alone(tmp_path, tiny_utk, capsys):
    from main import main

    src = export_conditional(tmp_path / "conditional.onnx")
    lines: list[str] = []
    out = adopt(src, tmp_path / "adopted.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=16,
                conditions=["darker", "lighter"], echo=lines.append)
    model = load_model(out, "filter")
    assert model.condition_labels == ("darker", "lighter")
    checks = model.card.training["adopted"]["checks"]
    assert checks["max_grey_vs_model_alone"] <= 1 and set(checks["mean_change_grey_by_condition"]) == {"darker", "lighter"}
    from inference.card_markdown import card_markdown

    assert "under each condition; mean change of the face: darker " in card_markdown(model.card, out.name, 0.1)
    faces = faces_of(tiny_utk)
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
    for k, label in enumerate(model.condition_labels):
        with torch.no_grad():
            y = ConditionalFilterNet()(x, torch.eye(2)[[k] * len(faces)])
        want = ((y + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
        got = model.apply(faces, model.condition_rows(label, len(faces)))
        assert np.abs(got.astype(int) - want).max() <= 1, label
    # the command line: named conditions, then run with one of them
    assert main(["train", "adopt", str(src), "--kind", "filter", "--conditions", "darker,lighter", "--dataset",
                 f"utkface:{tiny_utk.parent}", "--n", "8", "--out", str(tmp_path / "cli.onnx")]) == 0
    assert "mean change per condition (grey levels): darker" in capsys.readouterr().out


@pytest.mark.parametrize("kind,conditions,match", [
    ("filter", [], r"second input 'cond' \[N, 2\] looks like a condition: name its 2 entries"),
    ("filter", ["a", "b", "c"], r"name its 2 entries.*; 3 given"),
    ("filter", ["a", "a"], r"each once"),
    ("classifier", [], r"only a filter may take a condition"),
])
def test_a_second_input_needs_its_conditions_named_and_only_a_filter_takes_one(tmp_path, tiny_utk, kind, conditions,
                                                                              match):
    src = export_conditional(tmp_path / "conditional.onnx")
    with pytest.raises(BiasMirrorError, match=match) as err:
        adopt(src, tmp_path / "adopted.onnx", kind, value_range="symmetric", dataset=f"utkface:{tiny_utk.parent}",
              n=8, conditions=conditions, echo=quiet)
    assert str(src) in str(err.value) and not (tmp_path / "adopted.onnx").exists()


def test_conditions_for_a_filter_without_a_condition_input_are_refused(tmp_path, tiny_utk):
    src = export(SquashingFilter(), tmp_path / "filter.onnx")
    with pytest.raises(BiasMirrorError, match="takes no condition input"):
        adopt(src, tmp_path / "adopted.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8,
              conditions=["a", "b"], echo=quiet)


def test_a_filter_whose_output_is_not_a_face_of_the_same_size_is_refused(tmp_path, tiny_utk):
    src = export(nn.Upsample(scale_factor=2), tmp_path / "upscaler.onnx")
    with pytest.raises(BiasMirrorError, match=r"of 32×32 faces, it does not fit: .*\[None, 64, 64, 3\] in the graph") as err:
        adopt(src, tmp_path / "adopted.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    assert str(err.value).startswith(str(src))


def test_a_given_range_that_reads_the_faces_wrongly_is_refused_unless_forced(tmp_path, tiny_utk):
    """A tanh filter adopted with --range byte gave back black faces, written without a word."""
    src = export(SquashingFilter().eval(), tmp_path / "filter.onnx")
    kw = dict(dataset=f"utkface:{tiny_utk.parent}", n=24, echo=quiet)
    with pytest.raises(BiasMirrorError, match=r"with --range byte its output lies \d+\.\d grey levels from the face on "
                                              r"average, with --range symmetric \d+\.\d") as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="byte", **kw)
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    forced = load_model(adopt(src, tmp_path / "a.onnx", "filter", value_range="byte", force=True, **kw))
    assert re.fullmatch(r"given: \[0, 255\] \(mean change in grey levels: \[-1, 1\] [\d.]+, \[0, 1\] [\d.]+, "
                        r"\[0, 255\] [\d.]+\)", forced.card.training["adopted"]["range_chosen"])
    # the right range given is written as given
    given = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="symmetric", **kw))
    assert given.card.training["adopted"]["range_chosen"].startswith("given: [-1, 1] (mean change in grey levels: ")
    assert "[-1, 1]" in given.card.training["adopted"]["input"]


class ShadowLift(nn.Module):
    """Trained on [-1, 1]: lifts the darker half (x < 0) towards grey; to [0, 1] inputs it does nothing at all."""

    def forward(self, x):
        return torch.clamp(x + torch.relu(-x), -1, 1)


def test_a_range_under_which_the_filter_does_nothing_is_not_taken_for_its_own(tmp_path, tiny_utk):
    """"Nearest the faces" took [0, 1], under which the shadow lift is an identity: the audit measured a no-op and
    passed the gate on a filter that lightens Black faces by about 13° ITA, and its right range, given, was refused
    as 32.6 grey levels further from the faces than [0, 1]'s 0.0."""
    src = export(ShadowLift().eval(), tmp_path / "lift.onnx")
    kw = dict(dataset=f"utkface:{tiny_utk.parent}", n=24, echo=quiet)
    with pytest.raises(BiasMirrorError, match=r"with --range unit \[0, 1\] it leaves the faces as they were \(0\.0 grey "
                                              r"levels on average\), with --range symmetric \[-1, 1\] it changes them "
                                              r"\([\d.]+\): either it does nothing, or unit is not its range .* Give "
                                              r"--range"):
        adopt(src, tmp_path / "a.onnx", "filter", **kw)
    assert not (tmp_path / "a.onnx").exists()
    given = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="symmetric", **kw))
    assert given.card.training["adopted"]["checks"]["mean_change_grey"] > WRONG_RANGE_GREY  # more than the margin
    faces = faces_of(tiny_utk)
    assert np.abs(given.apply(faces).astype(int) - faces).mean() > 1  # it does what it does


class BrightenedOnRequest(nn.Module):
    """[0, 1] in: condition 0 ("none") leaves the face as it is, condition 1 ("bright") adds 0.02. A lift small enough
    that [0, 1] lies clearly nearest the faces: one of 0.1 lies as near as [-1, 1] does, and adopt asks for --range."""

    def forward(self, x, condition):
        return x + condition[:, 1].view(-1, 1, 1, 1) * ((x + 0.02).clamp(0, 1) - x)


def test_the_range_of_a_conditional_filter_is_judged_under_every_condition_and_a_given_no_op_range_is_said(
        tmp_path, tiny_utk):
    """A conditional filter whose first condition does nothing was judged on that one alone: every range left the
    faces as they were, and the first range was taken without a word. And the shadow lift given --range unit, under
    which it does nothing, was written without one either."""
    src = tmp_path / "on_request.onnx"
    torch.onnx.export(BrightenedOnRequest().eval(), (torch.rand(1, 3, SIZE, SIZE), torch.eye(2)[:1]), str(src),
                      input_names=["input", "cond"], output_names=["output"],
                      dynamic_axes={"input": {0: "b"}, "cond": {0: "b"}}, dynamo=False)
    kw = dict(dataset=f"utkface:{tiny_utk.parent}", n=16)
    lines: list[str] = []
    out = adopt(src, tmp_path / "a.onnx", "filter", conditions=["none", "bright"], echo=lines.append, **kw)
    assert load_model(out).card.training["adopted"]["range_chosen"].startswith("auto: [0, 1]"), lines
    lift = export(ShadowLift().eval(), tmp_path / "lift.onnx")
    lines = []
    adopt(lift, tmp_path / "b.onnx", "filter", value_range="unit", echo=lines.append, **kw)
    assert any(line.startswith("warning: with --range unit [0, 1] it leaves the faces as they were, with --range "
                               "symmetric [-1, 1] it changes them") for line in lines), lines


class ColourShift(nn.Module):
    """Trained on [0, 1]: ``x · gain + offset``, a simple colour filter. Read on another range it is another filter
    whose output lies about as near the faces (a lightener read on [0, 255] darkens them)."""

    def __init__(self, gain: float, offset: float):
        super().__init__()
        self.gain, self.offset = gain, offset

    def forward(self, x):
        return x * self.gain + self.offset


@pytest.mark.parametrize("gain,offset,lighter", [(0.85, 0.15, True), (0.85, 0.0, False)],
                         ids=["lightener", "darkener"])
def test_a_filter_whose_output_cannot_tell_its_range_is_refused_without_one(tmp_path, tiny_utk, gain, offset,
                                                                           lighter):
    """"Nearest the faces" took [0, 255] for a lightener on [0, 1], a few grey levels nearer than [0, 1], and the audit
    said it darkened skin by 16° ITA; it took [-1, 1] for a darkener on [0, 1], and the gate passed it as lightening.
    Without --range each is refused, --force or not (it writes a given range, it does not choose one); with --range
    unit each is written as given and does what it does."""
    src = export(ColourShift(gain, offset).eval(), tmp_path / "shift.onnx")
    kw = dict(dataset=f"utkface:{tiny_utk.parent}", n=24, echo=quiet)
    for force in (False, True):
        with pytest.raises(BiasMirrorError, match=r"its output lies about as near the faces with --range .* the output "
                                                  r"cannot tell which range it was trained on.* Give --range: the "
                                                  r"range of the inputs it was trained on") as err:
            adopt(src, tmp_path / "a.onnx", "filter", force=force, **kw)
        assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
        for r in ("symmetric [-1, 1]", "unit [0, 1]", "byte [0, 255]"):  # every range, with its distance
            assert re.search(rf"--range {re.escape(r)} \([\d.]+", str(err.value)), r
    given = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="unit", **kw))
    assert given.card.training["adopted"]["range_chosen"].startswith("given: [0, 1] (mean change in grey levels: ")
    faces = faces_of(tiny_utk)
    assert (given.apply(faces).mean() > faces.mean()) == lighter


class Mirror(nn.Module):
    """Flips the face left to right: what it gives back is the same under every range."""

    def forward(self, x):
        return torch.flip(x, dims=[3])


def test_a_filter_that_gives_back_the_same_faces_under_every_range_is_still_adopted_without_one(tmp_path, tiny_utk):
    """A mirror moves the faces as far under every range, into the same faces: which range it is read with changes
    nothing an audit measures, so it is not asked for."""
    src = export(Mirror().eval(), tmp_path / "mirror.onnx")
    out = adopt(src, tmp_path / "a.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=24, echo=quiet)
    assert load_model(out).card.training["adopted"]["range_chosen"].startswith("auto: ")


def test_faces_of_one_gender_are_too_few_to_check_a_label_order(tmp_path, tiny_utk):
    """`--n 1` was told its model "does not tell these faces apart: is it untrained?" (one face has no spread)."""
    from training.adopt_labels import label_check, label_verdict

    checked = label_check(np.array([[0.9, 0.1]]), ["female"], ["female", "male"])
    assert checked["order"] == "too few faces"
    with pytest.raises(BiasMirrorError, match=r"the 1 labelled face\(s\) it was checked on are all of one gender: "
                                              r"the order female,male cannot be checked; give more faces with --n"):
        label_verdict(checked, ["female", "male"], False, tmp_path / "m.onnx", quiet)


def test_a_classifier_adopted_as_a_filter_is_told_so_and_repeated_labels_are_refused(tmp_path, tiny_utk):
    src = export(BrightnessNet(), tmp_path / "classifier.onnx")
    with pytest.raises(BiasMirrorError, match=r"its output 'output' has shape \[None, 2\], not a batch of images: .*"
                                              "--kind classifier"):
        adopt(src, tmp_path / "a.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    with pytest.raises(BiasMirrorError, match="--labels male,male names a label twice"):
        adopt(src, tmp_path / "a.onnx", "classifier", labels=["male", "male"], value_range="unit",
              dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    assert not (tmp_path / "a.onnx").exists()


def test_the_command_line_adopts_and_run_hosts_both_kinds(tmp_path, tiny_utk, capsys):
    from main import main

    cls = export(BrightnessNet(), tmp_path / "c.onnx")
    flt = export(SquashingFilter(), tmp_path / "f.onnx")
    data = f"utkface:{tiny_utk.parent}"
    assert main(["train", "adopt", str(cls), "--kind", "classifier", "--range", "unit", "--dataset", data,
                 "--out", str(tmp_path / "c_bm.onnx"), "--name", "their-classifier"]) == 0
    assert main(["train", "adopt", str(flt), "--kind", "filter", "--dataset", data, "--out", str(tmp_path / "f_bm.onnx")]) == 0
    assert "symmetric chosen" in capsys.readouterr().out
    # the uncarded original: the message says how to adopt it
    assert main(["run", "--source", str(tiny_utk), "--classifier", str(cls), "--out", str(tmp_path / "x.csv")]) == 2
    assert "train adopt" in capsys.readouterr().err
    rows, photos = tmp_path / "rows.csv", tmp_path / "photos"
    photos.mkdir()
    for p in utk_images(4):  # real faces, for the face detector
        shutil.copy(p, photos)
    assert main(["run", "--source", str(photos), "--classifier", str(tmp_path / "c_bm.onnx"), "--filter",
                 str(tmp_path / "f_bm.onnx"), "--out", str(rows)]) == 0
    with open(rows) as fh:
        table = list(csv.DictReader(fh))
    assert table and all(r["filter"] == "f_bm" for r in table)
    assert all(r["p_female[their-classifier]"] and r["delta_p_female[their-classifier]"] for r in table)


def test_a_model_whose_external_data_file_is_missing_is_refused_by_name(tmp_path, tiny_utk):
    """A model saved with its weights in a .data file, given without it, crashed adopt with onnx's ValidationError
    (a traceback) where run says it is not a readable ONNX model."""
    import onnx

    src = tmp_path / "ext.onnx"
    onnx.save(onnx.load(str(export(BrightnessNet(), tmp_path / "whole.onnx"))), str(src), save_as_external_data=True,
              all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(BiasMirrorError, match=r"not a readable ONNX model: its weights are kept in an external data "
                                              r"file, .*ext\.onnx\.data, which does not exist") as err:
        adopt(src, tmp_path / "adopted.onnx", "classifier", value_range="unit", dataset=f"utkface:{tiny_utk.parent}",
              n=8, force=True, echo=quiet)
    assert str(err.value).startswith(f"{src}: ") and str(tmp_path / "ext.onnx.data") in str(err.value)
    assert not (tmp_path / "adopted.onnx").exists()


def test_a_card_that_run_refuses_is_replaced_and_a_card_it_takes_is_not(tmp_path, tiny_utk, tiny_models):
    """A file whose card had lost its labels was refused by adopt as "already carries a Bias Mirror card: the app,
    run and audit take it as it is", while run refused it: "invalid model card"."""
    import json

    import onnx

    good = tiny_models["classifier"]  # random weights, labels male,female: the label order is a coin toss, so forced
    kw = dict(labels=["male", "female"], value_range="byte", dataset=f"utkface:{tiny_utk.parent}", n=8, force=True)
    with pytest.raises(BiasMirrorError, match="already carries a Bias Mirror card, of a classifier: the app, run and audit take it"):
        adopt(good, tmp_path / "again.onnx", "classifier", echo=quiet, **kw)
    proto = onnx.load(str(good))
    for p in proto.metadata_props:
        if p.key == "model_card":
            card = json.loads(p.value)
            del card["labels"]
            p.value = json.dumps(card)
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(BiasMirrorError, match="invalid model card: a classifier needs at least two labels"):
        load_model(bad)  # as run, the audit and the app load it
    lines: list[str] = []
    out = adopt(bad, tmp_path / "fixed.onnx", "classifier", echo=lines.append, **kw)
    assert any(line.startswith(f"{bad}: this file carries a Bias Mirror card, but the app, run and audit refuse it "
                               "(invalid model card: a classifier needs at least two labels)") and "replaces" in line
               for line in lines), lines
    fixed = load_model(out, "classifier")
    assert fixed.card.labels == ["male", "female"] and fixed.card.training["adopted"]["from"] == "bad.onnx"
    faces = faces_of(tiny_utk)
    assert np.abs(fixed.predict(faces)[0] - load_model(good).predict(faces)[0]).max() < 1e-5  # the same model


def test_a_conditional_filter_exported_with_its_condition_axis_open_takes_k_from_its_conditions(tmp_path, tiny_utk):
    """A condition input exported as [N, K] with K open was refused as "2 inputs: only … one condition vector", a
    message that described the very model given and said nothing of K."""
    src = tmp_path / "open_k.onnx"
    torch.onnx.export(ConditionalFilterNet().eval(), (torch.rand(1, 3, SIZE, SIZE), torch.eye(2)[:1]), str(src),
                      input_names=["input", "cond"], output_names=["output"],
                      dynamic_axes={"input": {0: "b"}, "cond": {0: "b", 1: "k"}}, dynamo=False)
    with pytest.raises(BiasMirrorError, match=r"\[N, K\] looks like a condition whose K is left open"):
        adopt(src, tmp_path / "refused.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    out = adopt(src, tmp_path / "adopted.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8,
                conditions=["darker", "lighter"], echo=quiet)
    model = load_model(out, "filter")
    assert model.condition_labels == ("darker", "lighter")
    faces = faces_of(tiny_utk)
    darker, lighter = (model.apply(faces, model.condition_rows(c, len(faces))) for c in model.condition_labels)
    assert not np.array_equal(darker, lighter)


class ConditionByPairsNet(ConditionalFilterNet):
    """Its condition read as rows of two: with K open it loads whatever K, and fails only when run on another."""

    def forward(self, x, condition):
        return super().forward(x, condition.reshape(-1, 2))


class BatchOfOneFilterNet(ConditionalFilterNet):
    def forward(self, x, condition):
        return super().forward(x, condition).reshape(1, 3, SIZE, SIZE)


@pytest.mark.parametrize("net", [ConditionalFilterNet, ConditionByPairsNet])  # fails as it loads; as it runs
def test_a_filter_with_its_condition_axis_open_that_takes_another_k_says_so(tmp_path, tiny_utk, net):
    """Exported with K open but computing with K=2, it was given --conditions a,b,c and called "not a readable ONNX
    model (truncated, corrupt or another format): … MatMul … Incompatible dimensions": a corrupt file, not a K."""
    kw = dict(dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    src = tmp_path / "open_k.onnx"
    torch.onnx.export(net().eval(), (torch.rand(1, 3, SIZE, SIZE), torch.eye(2)[:1]), str(src),
                      input_names=["input", "cond"], output_names=["output"],
                      dynamic_axes={"input": {0: "b"}, "cond": {0: "b", 1: "k"}}, dynamo=False)
    with pytest.raises(BiasMirrorError) as err:
        adopt(src, tmp_path / "three.onnx", "filter", conditions=["a", "b", "c"], **kw)
    said = str(err.value)
    assert said.startswith(f"{src}: it does not take condition vectors of K=3") and "corrupt" not in said
    assert "Check the number of --conditions: the model may take another count" in said
    assert not (tmp_path / "three.onnx").exists()
    adopt(src, tmp_path / "two.onnx", "filter", conditions=["a", "b"], **kw)  # its own K: adopted
    # a K fixed in the model is not blamed for a failure that is not the condition's (here its batch fixed at 1)
    fixed = tmp_path / "fixed_k.onnx"
    torch.onnx.export(BatchOfOneFilterNet().eval(), (torch.rand(1, 3, SIZE, SIZE), torch.eye(2)[:1]), str(fixed),
                      input_names=["input", "cond"], output_names=["output"],
                      dynamic_axes={"input": {0: "b"}, "cond": {0: "b"}}, dynamo=False)
    with pytest.raises(BiasMirrorError, match="fixed at 1") as err:
        adopt(fixed, tmp_path / "batch1.onnx", "filter", conditions=["a", "b"], **kw)
    assert "condition vectors" not in str(err.value) and "--conditions" not in str(err.value)
    # nor one whose K is open and right, failing for that other reason: the model alone runs with K=2
    open_batch1 = tmp_path / "open_k_batch1.onnx"
    torch.onnx.export(BatchOfOneFilterNet().eval(), (torch.rand(1, 3, SIZE, SIZE), torch.eye(2)[:1]),
                      str(open_batch1), input_names=["input", "cond"], output_names=["output"],
                      dynamic_axes={"input": {0: "b"}, "cond": {0: "b", 1: "k"}}, dynamo=False)
    with pytest.raises(BiasMirrorError, match="fixed at 1") as err:
        adopt(open_batch1, tmp_path / "open_batch1.onnx", "filter", conditions=["a", "b"], **kw)
    assert "condition vectors" not in str(err.value), str(err.value)


def test_adopt_says_a_carded_generator_is_not_run_by_the_app_rather_than_taken_as_it_is(tmp_path, tiny_utk,
                                                                                         tiny_models):
    """A generator with its card was refused as "already carries a Bias Mirror card: the app, run and audit take it
    as it is", which they do not: they run classifiers and filters."""
    gen = tiny_models["generator"]
    with pytest.raises(BiasMirrorError, match="of a generator .*: the app, run and audit run classifiers and filters"):
        adopt(gen, tmp_path / "adopted.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    assert not (tmp_path / "adopted.onnx").exists()
