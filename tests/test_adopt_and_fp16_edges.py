"""`train adopt` and `train fp16` on the edges a review found: uint8 at one end of a filter, a batch axis fixed above
1, a 1×1 Conv as a classifier's last layer, --mean/--std for a uint8 input, a wrong --layout, fp16 weights made
elsewhere, the --keep-fp32 advice, and the record of what fp16 parity was measured on."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.card_markdown import card_markdown  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import load_model, read_card  # noqa: E402
from tests.conftest import require_utk  # noqa: E402
from tests.test_adopt import SIZE, BrightnessNet, SquashingFilter, export, faces_of, quiet  # noqa: E402
from training import fp16  # noqa: E402
from training.adopt import adopt  # noqa: E402


class WarmFilter(nn.Module):
    """A 1×1 colour shift through a tanh, on [-1, 1] faces: what both byte-ended filters below compute."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3)[:, :, None, None] * 0.9)
            self.conv.bias.copy_(torch.tensor([0.08, 0.0, -0.05]))

    def shifted(self, x):
        return torch.tanh(self.conv(x))


class ByteInUnitOut(WarmFilter):
    """uint8 N×H×W×3 in, float [0, 1] N×H×W×3 out: it normalises inside, and gives its output in [0, 1]."""

    def forward(self, x):
        return ((self.shifted(x.float().permute(0, 3, 1, 2) / 127.5 - 1) + 1) / 2).permute(0, 2, 3, 1)


class FloatInByteOut(WarmFilter):
    """float N×3×H×W [-1, 1] in, uint8 out: it rounds its own output to 0..255."""

    def forward(self, x):
        return ((self.shifted(x) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


class ByteInClassifier(BrightnessNet):
    """uint8 N×H×W×3 in, normalised inside (to [0, 1]), as many deployed classifiers take their faces."""

    def forward(self, x):
        return super().forward(x.float().permute(0, 3, 1, 2) / 255)


class ConvLastHead(BrightnessNet):
    """Keras' MobileNet ending: pool with keepdims, a 1×1 Conv as the last layer, Flatten, Softmax."""

    def __init__(self):
        super().__init__()
        self.conv_fc = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv_fc.weight.copy_(self.fc.weight[:, :, None, None])
            self.conv_fc.bias.copy_(self.fc.bias)

    def forward(self, x):
        return torch.softmax(torch.flatten(self.conv_fc(self.features(x).mean((2, 3), keepdim=True)), 1), 1)


def export_bytes(net: nn.Module, path: Path) -> Path:
    """``net`` exported taking a uint8 N×SIZE×SIZE×3 batch (its batch axis open)."""
    torch.onnx.export(net.eval(), torch.randint(0, 255, (1, SIZE, SIZE, 3), dtype=torch.uint8), str(path),
                      input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "b"}}, dynamo=False)
    return path


def as_torch_input(faces: np.ndarray, lo: float, hi: float) -> "torch.Tensor":
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float() * ((hi - lo) / 255) + lo


def test_a_uint8_input_filter_with_a_unit_output_gives_back_faces_not_black(tmp_path, tiny_utk):
    """Its [0, 1] output had been taken for 0..255 (every face black), written without a word."""
    net = ByteInUnitOut().eval()
    src = export_bytes(net, tmp_path / "f.onnx")
    lines: list[str] = []
    out = adopt(src, tmp_path / "a.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=16, echo=lines.append)
    model = load_model(out, "filter")
    faces = faces_of(tiny_utk)
    with torch.no_grad():
        want = (net(torch.from_numpy(faces)) * 255).round().numpy()
    assert np.abs(model.apply(faces).astype(int) - want).max() <= 1, lines
    adopted = model.card.training["adopted"]
    assert adopted["range_chosen"].startswith("auto: [0, 1]") and "output read as [0, 1]" in adopted["input"]


def test_a_float_input_filter_with_a_uint8_output_is_checked_as_it_is(tmp_path, tiny_utk):
    """Its uint8 output had been mapped through the range by the check alone: refused, "differs from the model run
    alone by 222 grey levels"."""
    net = FloatInByteOut().eval()
    src = export(net, tmp_path / "f.onnx")
    out = adopt(src, tmp_path / "a.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=16, echo=quiet)
    model = load_model(out, "filter")
    faces = faces_of(tiny_utk)
    with torch.no_grad():
        want = net(as_torch_input(faces, -1, 1)).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(model.apply(faces), want)
    assert model.card.training["adopted"]["checks"]["max_grey_vs_model_alone"] <= 1


@pytest.mark.parametrize("kind", ["classifier", "filter"])
def test_a_batch_axis_fixed_above_one_is_fed_batches_of_its_size(tmp_path, tiny_utk, kind):
    """Fed one face at a time, a graph fixed at a batch of 4 ended in onnxruntime's "Got invalid dimensions"."""
    batch, n = 4, 10  # n not a multiple of the batch: the last batch is padded
    net = (BrightnessNet() if kind == "classifier" else SquashingFilter()).eval()
    src = export(net, tmp_path / "m.onnx", (batch, 3, SIZE, SIZE), dynamic=False)
    assert onnx.load(str(src)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == batch
    kw = dict(value_range="unit") if kind == "classifier" else {}
    out = adopt(src, tmp_path / "a.onnx", kind, dataset=f"utkface:{tiny_utk.parent}", n=n, echo=quiet, **kw)
    checks = load_model(out, kind).card.training["adopted"]["checks"]
    assert checks["faces"].startswith(f"{n} faces")
    if kind == "classifier":
        assert checks["max_dprob_vs_model_alone"] <= 1e-5 and checks["labels"]["n"] == n
    else:
        assert checks["max_grey_vs_model_alone"] <= 1


def test_a_classifier_whose_last_layer_is_a_1x1_conv_gives_n_by_k_probabilities(tmp_path, tiny_utk):
    """Its softmax had been taken of the N×K×1×1 conv output: "output 'probs' has shape ['N', 2, 1, 1] in the
    graph but ['N', 2] in the card"."""
    net = ConvLastHead().eval()
    src = export(net, tmp_path / "c.onnx")
    out = adopt(src, tmp_path / "a.onnx", "classifier", labels=["female", "male"], value_range="unit",
                dataset=f"utkface:{tiny_utk.parent}", n=16, echo=quiet)
    model = load_model(out, "classifier")
    faces = faces_of(tiny_utk)
    probs, cam = model.predict(faces)
    with torch.no_grad():
        want = net(as_torch_input(faces, 0, 1)).numpy()
    assert probs.shape == want.shape and np.abs(probs - want).max() < 1e-5
    assert cam.shape[:2] == want.shape


def test_mean_and_std_for_a_uint8_input_are_refused_as_normalised_inside(tmp_path, tiny_utk):
    """The wrapper feeds a uint8 input as it is, but the check had applied --mean/--std: the difference was blamed
    on the head ("its output is not the softmax of the head found")."""
    src = export_bytes(ByteInClassifier(), tmp_path / "c.onnx")
    kw = dict(labels=["female", "male"], dataset=f"utkface:{tiny_utk.parent}", n=16, echo=quiet)
    with pytest.raises(BiasMirrorError, match="its input is uint8.* normalises inside: --mean and --std") as err:
        adopt(src, tmp_path / "a.onnx", "classifier", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), **kw)
    assert str(src) in str(err.value) and not (tmp_path / "a.onnx").exists()
    adopted = load_model(adopt(src, tmp_path / "a.onnx", "classifier", **kw), "classifier").card.training["adopted"]
    assert adopted["checks"]["max_dprob_vs_model_alone"] <= 1e-5 and "output" not in adopted["input"]


def test_a_wrong_layout_is_said_to_be_one_not_a_non_square_input(tmp_path, tiny_utk):
    """`--layout NHWC` for an NCHW model had said "its input is 3×32: Bias Mirror's face crops are square"."""
    src = export(BrightnessNet(), tmp_path / "c.onnx")
    with pytest.raises(BiasMirrorError, match="--layout NHWC puts colour on axis 3 .* its axis 1 has 3, so give "
                                              "--layout NCHW") as err:
        adopt(src, tmp_path / "a.onnx", "classifier", value_range="unit", layout="NHWC",
              dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    assert "square" not in str(err.value)


def fp16_filter(tmp_path: Path) -> Path:
    """A filter made elsewhere at fp16: its weights float16, its input and output float32."""
    from onnxconverter_common.float16 import convert_float_to_float16

    src = export(SquashingFilter(), tmp_path / "f32.onnx")
    path = tmp_path / "f16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(path))
    return path


def test_a_model_made_at_fp16_is_carded_fp16_and_not_converted_again(tmp_path, tiny_utk):
    """Its card said fp32, and `train fp16` on it failed on the converter's "already converted to float16 …
    check_fp16_ready=False"."""
    out = adopt(fp16_filter(tmp_path), tmp_path / "a.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8,
                echo=quiet)
    card = read_card(out)
    assert card.precision == "fp16"
    assert "precision: fp16, as the model was made" in card_markdown(card, out.name, 0.1)
    with pytest.raises(BiasMirrorError, match="already fp16; convert its fp32 parent"):
        fp16.make_variant(out, tmp_path / "v.onnx", require_utk(), 4, "cpu", echo=quiet)
    # a graph at fp16 under a card that says fp32 (as adopt had written them): said in one line, not the converter's
    model = onnx.load(str(out))
    fp16.with_card(model, replace(card, precision="fp32"), out)
    onnx.save(model, str(out))
    with pytest.raises(BiasMirrorError, match="its graph is already fp16") as err:
        fp16.make_variant(out, tmp_path / "v.onnx", require_utk(), 4, "cpu", echo=quiet)
    assert "check_fp16_ready" not in str(err.value) and "\n" not in str(err.value)


def test_the_keep_fp32_advice_adds_the_op_named_to_those_kept(tiny_models, tmp_path):
    """Keeping Einsum (whose weights Gemm shares) advised "try --keep-fp32 Gemm", which advised Einsum again."""
    out = tmp_path / "v.onnx"
    with pytest.raises(BiasMirrorError, match="invalid") as err:
        fp16.make_variant(tiny_models["classifier"], out, require_utk(), 4, "cpu", keep_fp32=["Einsum"], echo=quiet)
    advice = str(err.value).rpartition("try --keep-fp32 ")[2].split(",")
    assert "Einsum" in advice and len(advice) > 1, str(err.value)
    fp16.make_variant(tiny_models["classifier"], out, require_utk(), 4, "cpu", keep_fp32=advice, force=True, echo=quiet)
    assert read_card(out).training["fp16"]["kept_fp32"] == sorted(advice)


def test_fp16_parity_says_which_faces_it_was_measured_on(tiny_models, tmp_path, monkeypatch):
    """The card kept the folder's name alone ('' for `--images .`), named a folder for a generator fed random
    latents, and its Markdown did not show it."""
    faces = require_utk()
    monkeypatch.chdir(faces)
    said: list[str] = []
    out = fp16.make_variant(tiny_models["darken"], tmp_path / "d.onnx", ".", 4, "cpu", force=True, echo=said.append)
    card = read_card(out)
    assert card.metrics["fp16_parity"]["images"] == str(faces.resolve())
    assert f"of {faces.resolve()}" in card_markdown(card, out.name, 0.1)
    assert any(f"of {faces.resolve()}" in s for s in said), said
    out = fp16.make_variant(tiny_models["generator"], tmp_path / "g.onnx", ".", 4, "cpu", force=True, echo=quiet)
    latents = f"N(0,1) latents, seed {fp16.LATENT_SEED}"
    card = read_card(out)
    assert card.metrics["fp16_parity"]["images"] == latents and latents in card_markdown(card, out.name, 0.1)
