"""`train adopt --kind filter` on what a filter's output may be that its input does not say: scaled otherwise
(--output-range), flat, NaN, RGBA, mixed across the batch, one of several outputs, weights in an external data file,
quantised to int8; and the colour order adopt cannot check."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.card_markdown import card_markdown  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import Filter, load_model  # noqa: E402
from tests.test_adopt import SIZE, BrightnessNet, export, faces_of, quiet  # noqa: E402
from training.adopt import adopt  # noqa: E402
from training.adopt_run import run_wrapped, sample_faces  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LIFT = 0.02  # what the filters below add, on [0, 1]: a mild filter (5 grey levels), near the faces read as trained
# A strong darkener's shift, on [0, 1] (31 grey levels): read through an input's mean/std or [-1, 1] range, its [0, 1]
# output lay within 20 grey levels of its reading on [0, 1] alone, and had been written without a word
DARKEN = -0.12


def faces_kw(tiny_utk: Path, n: int = 16) -> dict:
    return dict(dataset=f"utkface:{tiny_utk.parent}", n=n, echo=quiet)


def faces_args(tiny_utk: Path, n: int = 16) -> list[str]:
    """``faces_kw`` as the command line gives them."""
    return ["--dataset", f"utkface:{tiny_utk.parent}", "--n", str(n)]


def shifted(faces: np.ndarray, shift: float = LIFT) -> np.ndarray:
    """The faces as the filters below give them back, read as they are trained: ``shift`` added on [0, 1], clamped."""
    return np.clip(np.round(faces.astype(np.float64) + shift * 255), 0, 255)


def lifted(faces: np.ndarray) -> np.ndarray:
    return shifted(faces, LIFT)


def advised(message: str) -> list[str]:
    """The options a refusal says to give first, as a user copies them."""
    found = re.search(r"Give `([^`]+)`", message)
    assert found, message
    return found.group(1).split()


@pytest.fixture
def lit_faces(tmp_path) -> Path:
    """Faces lit from one side, as photographs are: every grey level from shadow to highlight, the darker half of each
    below mid-grey (tiny_utk's noise faces hold none darker than 40). On such faces a [-1, 1] filter's output goes
    below 0, as on UTKFace's."""
    import cv2

    root = tmp_path / "lit" / "UTKFace"
    root.mkdir(parents=True)
    ramp = np.repeat(np.linspace(0, 255, SIZE)[None, :, None], SIZE, 0).repeat(3, 2)
    for i in range(16):
        face = ramp[:, ::-1] if i % 2 else ramp  # lit from the left or the right,
        face = face.transpose(1, 0, 2) if i % 4 >= 2 else face  # or from above or below
        name = f"{20 + i}_{i % 2}_{(i // 2) % 5}_2017010100{i:07d}.jpg.chip.jpg"  # as tiny_utk's
        cv2.imwrite(str(root / name), face.astype(np.uint8))
    return root


class NormalisedInUnitOut(nn.Module):
    """ImageNet-normalised in, [0, 1] out, as an enhancement net ending in a sigmoid gives: a lift, or ``shift``."""

    def __init__(self, shift: float = LIFT):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (x * std + mean + self.shift).clamp(0, 1)


class SymmetricInUnitOut(nn.Module):
    """[-1, 1] in, [0, 1] out: a lift, or ``shift``."""

    def __init__(self, shift: float = LIFT):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        return ((x + 1) / 2 + self.shift).clamp(0, 1)


class ByteInUnitOut(nn.Module):
    """0..255 in, as a Keras export takes pixels, [0, 1] out: a lift."""

    def forward(self, x):
        return ((x + LIFT * 255) / 255).clamp(0, 1)


class TanhLighter(nn.Module):
    """A [-1, 1] filter that lightens faces strongly, black and white kept: tanh(atanh(x) + lift), as a GAN's tanh
    ends one."""

    def __init__(self, lift: float):
        super().__init__()
        self.lift = lift

    def forward(self, x):
        x = x.clamp(-0.999, 0.999)
        return torch.tanh(0.5 * torch.log((1 + x) / (1 - x)) + self.lift)  # atanh, which ONNX export lacks


class FadeToWhite(nn.Module):
    """A [-1, 1] filter: x·keep + (1 − keep), a face faded towards white."""

    def __init__(self, keep: float):
        super().__init__()
        self.keep = keep

    def forward(self, x):
        return x * self.keep + (1 - self.keep)


class SymmetricShift(nn.Module):
    """A [-1, 1] filter: ``shift`` added (on [0, 1]'s scale), clamped."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        return (x + 2 * self.shift).clamp(-1, 1)


def as_symmetric(net: nn.Module, faces: np.ndarray) -> np.ndarray:
    """The faces ``net`` gives back, fed and read on [-1, 1] as it is trained."""
    x = torch.from_numpy(faces.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    with torch.no_grad():
        y = net(x).numpy().transpose(0, 2, 3, 1)
    return np.clip(np.round((y + 1) * 127.5), 0, 255)


def test_a_normalised_input_with_a_unit_output_is_refused_read_through_mean_and_std_and_taken_as_advised(
        tmp_path, tiny_utk, capsys):
    """Its [0, 1] output, mapped back through ImageNet's mean and std, was written 44.5 grey levels from UTKFace faces
    without a word, and its audit failed the gate at ΔITA +22°: --output-range reads it on [0, 1] alone. The advice
    names every option to give: "Give --output-range unit … with --range unit", given so, dropped --mean/--std, and
    wrapped it wrongly without a word."""
    from main import main

    src = export(NormalisedInUnitOut(), tmp_path / "imagenet.onnx")
    normalised = dict(value_range="unit", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    full = (f"--range unit --mean {','.join(map(str, IMAGENET_MEAN))} --std {','.join(map(str, IMAGENET_STD))} "
            "--output-range unit")
    with pytest.raises(BiasMirrorError, match=r"its raw output lies within \[0, 1\] .* read on its input's range "
                                              r"\[0, 1\], de-normalised by --mean/--std [\d.]+: .* Give "
                                              + re.escape(f"`{full}`")) as err:
        adopt(src, tmp_path / "a.onnx", "filter", **normalised, **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    out = tmp_path / "b.onnx"  # as advised, copied as it is
    assert main(["train", "adopt", str(src), "--kind", "filter", *advised(str(err.value)), *faces_args(tiny_utk),
                 "--out", str(out)]) == 0
    model = load_model(out, "filter")
    faces = faces_of(tiny_utk)
    assert np.abs(model.apply(faces).astype(int) - lifted(faces)).max() <= 1
    adopted = model.card.training["adopted"]
    assert adopted["output"] == "float32 NCHW RGB, [0, 1] mapped onto 0..255", adopted  # not de-normalised
    assert adopted["input"].endswith("; its output read as [0, 1] (--output-range)"), adopted
    capsys.readouterr()
    # a classifier's output is scores: --output-range is refused, not dropped
    assert main(["train", "adopt", str(export(BrightnessNet(), tmp_path / "c.onnx")), "--kind", "classifier",
                 "--range", "unit", "--output-range", "unit", "--out", str(tmp_path / "c_bm.onnx")]) == 2
    assert "--output-range reads a filter's output" in capsys.readouterr().err


def test_a_symmetric_input_with_a_unit_output_is_refused_and_taken_with_output_range(tmp_path, tiny_utk):
    """A [-1, 1]-in, [0, 1]-out filter was taken as symmetric, its output 68 grey levels from the faces under both
    ranges that feed it (its audit: ΔITA +51.6°)."""
    src = export(SymmetricInUnitOut(), tmp_path / "f.onnx")
    with pytest.raises(BiasMirrorError, match=r"with --range symmetric its raw output lies within \[0, 1\] .* Give "
                                              r"`--range symmetric --output-range unit` where it gives \[0, 1\]") \
            as err:
        adopt(src, tmp_path / "a.onnx", "filter", **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    model = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="symmetric", output_range="unit",
                             **faces_kw(tiny_utk)))
    faces = faces_of(tiny_utk)
    assert np.abs(model.apply(faces).astype(int) - lifted(faces)).max() <= 1


def test_a_byte_input_with_a_unit_output_given_range_byte_is_refused_and_taken_with_output_range(tmp_path, tiny_utk):
    """0..255 in, [0, 1] out, given --range byte: its output read as 0..255 gave back black faces, written. Refused
    as flat, or as far from the faces where it is (as on UTKFace), each naming the reading that gives them back."""
    src = export(ByteInUnitOut(), tmp_path / "keras.onnx")
    with pytest.raises(BiasMirrorError, match=r"--range byte .*--output-range unit") as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="byte", **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    model = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="byte", output_range="unit",
                             **faces_kw(tiny_utk)))
    faces = faces_of(tiny_utk)
    assert np.abs(model.apply(faces).astype(int) - lifted(faces)).max() <= 1


@pytest.mark.parametrize("net", [TanhLighter(0.6), FadeToWhite(0.6), SymmetricShift(0.24)],
                         ids=["tanh", "fade", "shift"])
def test_a_strong_lightener_on_symmetric_is_written_as_it_gives_its_output(tmp_path, lit_faces, net):
    """Lying far from the faces under every range, strong [-1, 1] lighteners (+60 grey levels, tanh(atanh(x) + 0.5),
    a 0.6 fade towards white: 45 to 56 from UTKFace faces) had been refused as giving a sigmoid's [0, 1], which read
    them nearer: wrapped so, as advised, they darkened the faces. Their raw output, below 0 on the darker half of a
    face, is no sigmoid's."""
    src = export(net, tmp_path / "f.onnx")
    model = load_model(adopt(src, tmp_path / "a.onnx", "filter", value_range="symmetric", **faces_kw(lit_faces)))
    faces = faces_of(lit_faces)
    got = model.apply(faces).astype(int)
    assert np.abs(got - as_symmetric(net, faces)).max() <= 1
    assert got.mean() > faces.mean()  # lighter, as it gives them


@pytest.mark.parametrize("net, fed", [
    (NormalisedInUnitOut(DARKEN), dict(value_range="unit", mean=IMAGENET_MEAN, std=IMAGENET_STD)),
    (SymmetricInUnitOut(DARKEN), dict(value_range="symmetric")),
    (SymmetricInUnitOut(-DARKEN), dict(value_range="symmetric"))], ids=["imagenet", "symmetric", "symmetric-lift"])
def test_a_unit_output_that_changes_faces_much_is_asked_its_scale_and_taken_as_advised(tmp_path, tiny_utk, net, fed):
    """An ImageNet-in, [0, 1]-out darkener by 30 grey levels, 43.2 from UTKFace faces read through mean/std and 28.3
    on [0, 1] alone, had been written without a word, its dark faces lightened by 44 (and [-1, 1]-in ones, lighteners
    too): where its raw output lies within [0, 1] and its input is fed otherwise, it is asked, distance aside."""
    from main import main

    src = export(net, tmp_path / "f.onnx")
    with pytest.raises(BiasMirrorError, match=r"its raw output lies within \[0, 1\] .* Give `[^`]*--output-range "
                                              r"unit` where it gives \[0, 1\]") as err:
        adopt(src, tmp_path / "a.onnx", "filter", **fed, **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    out = tmp_path / "b.onnx"
    assert main(["train", "adopt", str(src), "--kind", "filter", *advised(str(err.value)), *faces_args(tiny_utk),
                 "--out", str(out)]) == 0
    faces = faces_of(tiny_utk)
    assert np.abs(load_model(out).apply(faces).astype(int) - shifted(faces, net.shift)).max() <= 1


def test_where_adopt_asks_for_range_a_nearer_reading_on_unit_is_named_with_it(tmp_path, lit_faces):
    """A [-1, 1]-in, [0, 1]-out darkener, without --range, was asked between [0, 1] and [-1, 1], each read as its
    input's: answered --range unit, it was written so, fed [0, 1], without a word. Its reading on [0, 1] alone, fed
    [-1, 1], nearer the faces than either, is named with the question."""
    src = export(SymmetricInUnitOut(DARKEN), tmp_path / "f.onnx")
    with pytest.raises(BiasMirrorError, match=r"its output lies about as near the faces with --range .* Give --range: "
                                              r".*; read on \[0, 1\] alone, .* with `--range symmetric --output-range "
                                              r"unit` it lies") as err:
        adopt(src, tmp_path / "a.onnx", "filter", **faces_kw(lit_faces))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()


def test_an_output_range_its_raw_output_lies_past_is_refused(tmp_path, lit_faces):
    """A [-1, 1] lightener given --output-range unit, as the check had advised, was written to darken faces: a quarter
    of its output lies below 0, where no sigmoid's goes. Its own reading is named."""
    src = export(TanhLighter(0.5), tmp_path / "f.onnx")
    with pytest.raises(BiasMirrorError, match=r"with --range symmetric --output-range unit \[0, 1\], \d+% of its raw "
                                              r"output lies past that range's bounds .* Read on its input's range "
                                              r"\[-1, 1\], --output-range left out, .* give `--range symmetric`,") \
            as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="symmetric", output_range="unit", **faces_kw(lit_faces))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()


class Lift(nn.Module):
    def __init__(self, lift: float):
        super().__init__()
        self.lift = nn.Parameter(torch.full((1, 3, 1, 1), lift))

    def forward(self, x):
        return (x + self.lift).clamp(0, 1)


def test_a_given_output_range_its_input_range_reads_much_nearer_is_refused(tmp_path, tiny_utk):
    """A mild lift on [0, 1] given --output-range symmetric was written 74 grey levels from UTKFace faces."""
    src = export(Lift(LIFT), tmp_path / "f.onnx")
    with pytest.raises(BiasMirrorError, match=r"with --range unit --output-range symmetric its output lies [\d.]+ grey "
                                              r"levels from the faces .* read on its input's range \[0, 1\], without "
                                              r"--output-range, [\d.]+, .* Give `--range unit`, --output-range left "
                                              r"out") as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", output_range="symmetric", **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()


def test_an_output_range_without_range_asks_where_its_input_range_reads_it_as_near(tmp_path, tiny_utk):
    """A mild [-1, 1] lift given --output-range unit alone was fed [0, 1], as its [0, 1] reading put it nearest the
    faces of those that feed it, and audited as lifting faces twice as much as it does: read on its input's range,
    fed [-1, 1], it lies nearer still."""
    src = export(SymmetricShift(LIFT), tmp_path / "f.onnx")
    with pytest.raises(BiasMirrorError, match=r"its output lies about as near the faces read on its input's range, "
                                              r"without --output-range, with --range symmetric .* `--range symmetric` "
                                              r"where it gives its input's range") as err:
        adopt(src, tmp_path / "a.onnx", "filter", output_range="unit", **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    faces = faces_of(tiny_utk)
    model = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="symmetric", **faces_kw(tiny_utk)))
    assert np.abs(model.apply(faces).astype(int) - as_symmetric(SymmetricShift(LIFT), faces)).max() <= 1


def test_a_given_range_refused_under_a_given_output_range_keeps_it_in_the_advice(tmp_path, tiny_utk):
    """"Leave --range out to take the nearest" named neither reading's --output-range."""
    src = export(SymmetricInUnitOut(), tmp_path / "f.onnx")
    with pytest.raises(BiasMirrorError, match=r"with --range unit --output-range unit its output lies .* with --range "
                                              r"symmetric --output-range unit .* Give --range symmetric, keeping "
                                              r"--output-range unit") as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", output_range="unit", **faces_kw(tiny_utk))
    assert "Leave --range out" not in str(err.value)


class Grey(nn.Module):
    """Gives back one grey whatever the face."""

    def forward(self, x):
        return x * 0 + 0.5


def test_a_filter_giving_back_flat_faces_is_refused_unless_forced(tmp_path, tiny_utk):
    src = export(Grey(), tmp_path / "grey.onnx")
    with pytest.raises(BiasMirrorError, match=r"with --range unit \[0, 1\] every face it gives back is flat, one grey "
                                              r"edge to edge: .* or --force") as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    adopt(src, tmp_path / "b.onnx", "filter", value_range="unit", force=True, **faces_kw(tiny_utk))


DARK = 0.2  # below it the filter below has no value


class NaNOnDarkPixels(nn.Module):
    """sqrt(x − DARK): NaN wherever a pixel is darker than DARK."""

    def forward(self, x):
        return torch.sqrt(x - DARK)


def test_a_filter_giving_nan_is_refused_naming_how_many_faces(tmp_path, tiny_utk):
    """NaN on ~8% of its pixels was read as black and written, with a NumPy RuntimeWarning alone."""
    kw = faces_kw(tiny_utk)
    faces = sample_faces(kw["dataset"], kw["n"], SIZE)[0]
    x = faces.astype(np.float32) * np.float32(1 / 255)  # as the wrapper feeds [0, 1]
    dark = int((x < np.float32(DARK)).reshape(len(x), -1).any(1).sum())
    assert 0 < dark < len(faces)
    src = export(NaNOnDarkPixels(), tmp_path / "nan.onnx")
    with pytest.raises(BiasMirrorError, match=rf"it gives NaN or infinite values on {dark} of {len(faces)} faces") \
            as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", **kw)
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()


class WithAlpha(nn.Module):
    def forward(self, x):
        return torch.cat([x, torch.ones_like(x[:, :1])], 1)


def test_an_rgba_output_is_refused_as_four_colours_naming_the_users_file(tmp_path, tiny_utk):
    """It had been asked whether its batch axis was fixed at 1, naming a trial copy (.adopt-XXXX/symmetric.onnx)."""
    src = export(WithAlpha(), tmp_path / "rgba.onnx")
    with pytest.raises(BiasMirrorError, match=rf"its output 'output' has 4 colour channels, not 3 \(\[None, 4, {SIZE}, "
                                              rf"{SIZE}\] in NCHW.*y\[:, :3\]") as err:
        adopt(src, tmp_path / "a.onnx", "filter", **faces_kw(tiny_utk))
    said = str(err.value)
    assert said.startswith(str(src)) and ".adopt-" not in said and "fixed at 1" not in said


class Grayscale(nn.Module):
    def forward(self, x):
        return x.mean(1, keepdim=True)


def test_a_grey_output_of_one_channel_is_still_taken_as_a_grey_face(tmp_path, tiny_utk):
    model = load_model(adopt(export(Grayscale(), tmp_path / "grey.onnx"), tmp_path / "a.onnx", "filter",
                             value_range="unit", **faces_kw(tiny_utk)))
    faces = faces_of(tiny_utk)
    got = model.apply(faces).astype(int)
    assert (got == got[..., :1]).all() and np.abs(got[..., 0] - faces.mean(3)).max() <= 1


class FailsFrom(Filter):
    """A wrapped filter that fails on ``n`` faces or more, as a trial copy says it."""

    def __init__(self, n: int):  # noqa: D107 - no session: run_wrapped calls apply alone
        self.n = n

    def apply(self, faces, condition=None):
        if len(faces) >= self.n:
            raise BiasMirrorError("it failed", "/somewhere/.adopt-x/symmetric.onnx")
        return faces


def test_a_batch_is_blamed_only_where_one_face_runs_and_the_trial_copy_is_never_named(tmp_path, tiny_utk):
    faces, src = faces_of(tiny_utk), tmp_path / "theirs.onnx"
    with pytest.raises(BiasMirrorError, match=r"runs on one of the faces at a time, not on a batch of them: is its "
                                              r"batch axis fixed at 1\? .*\(it failed\)") as err:
        run_wrapped(FailsFrom(2), faces, src)
    assert str(err.value).startswith(str(src)) and ".adopt-" not in str(err.value)
    with pytest.raises(BiasMirrorError, match=r"does not run on faces, even one at a time \(it failed\)") as err:
        run_wrapped(FailsFrom(1), faces, src)
    assert "fixed at 1" not in str(err.value) and ".adopt-" not in str(err.value)


class BatchOfOneAutoExposure(nn.Module):
    """Moves a face a quarter of the way to mid-grey brightness, its mean taken as an export traced at a batch of 1
    takes it: x.view(1, -1), which on a batch of N pools all N faces."""

    def forward(self, x):
        return (x + 0.25 * (0.5 - x.view(1, -1).mean(1).view(1, 1, 1, 1))).clamp(0, 1)


def test_a_graph_that_mixes_the_batch_is_said_to_and_told_to_re_export(tmp_path, tiny_utk):
    """Refused only as "the wrapped filter differs from the model run alone by 177 grey levels (limit 1)"."""
    src = export(BatchOfOneAutoExposure(), tmp_path / "exposure.onnx", dynamic=False)
    with pytest.raises(BiasMirrorError, match=r"its output depends on the other faces in the batch: on one face at a "
                                              r"time .*re-export it with a dynamic batch axis") as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()


class ImageAndMask(nn.Module):
    def __init__(self, mask_first: bool = False, second_image: bool = False):
        super().__init__()
        self.mask_first, self.second_image = mask_first, second_image

    def forward(self, x):
        y = (x + LIFT).clamp(0, 1)
        other = 1 - y if self.second_image else y.mean(1, keepdim=True)
        return (other, y) if self.mask_first else (y, other)


def export_two(net: nn.Module, path: Path) -> Path:
    torch.onnx.export(net.eval(), torch.rand(1, 3, SIZE, SIZE), str(path), input_names=["x"], output_names=["a", "b"],
                      dynamic_axes={"x": {0: "n"}, "a": {0: "n"}, "b": {0: "n"}}, dynamo=False)
    return path


@pytest.mark.parametrize("mask_first", [False, True])
def test_of_an_image_and_a_mask_the_image_is_taken_and_said(tmp_path, tiny_utk, mask_first):
    """"a filter should have one output; this one has 2 (a, b)" left no way forward."""
    src = export_two(ImageAndMask(mask_first), tmp_path / "two.onnx")
    lines: list[str] = []
    out = adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", **{**faces_kw(tiny_utk), "echo": lines.append})
    taken = "b" if mask_first else "a"
    assert any(f"'{taken}', the one that is a face, taken" in line for line in lines), lines
    model = load_model(out)
    faces = faces_of(tiny_utk)
    assert np.abs(model.apply(faces).astype(int) - lifted(faces)).max() <= 1
    # the card says which output it is of, as the command did (it had said it on stdout alone)
    adopted = model.card.training["adopted"]
    assert adopted["output_taken"] == taken and adopted["outputs_left_out"] == ["a" if mask_first else "b"], adopted
    # the colour order is not checked, and said so
    assert any("give --channels BGR" in line and "no output tells it" in line for line in lines), lines


def test_of_two_images_neither_is_taken_and_both_are_named_with_their_shapes(tmp_path, tiny_utk):
    src = export_two(ImageAndMask(second_image=True), tmp_path / "two.onnx")
    with pytest.raises(BiasMirrorError, match=rf"it has 2 outputs \('a' \[None, 3, {SIZE}, {SIZE}\], 'b' \[None, 3, "
                                              rf"{SIZE}, {SIZE}\]\) and 2 are a face.*onnx\.utils\.extract_model") \
            as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", **faces_kw(tiny_utk))
    assert str(err.value).startswith(str(src))


def with_external_data(net: nn.Module, folder: Path) -> Path:
    """``net`` saved as f.onnx with its weights in f.onnx.data beside it."""
    folder.mkdir()
    whole = export(net, folder / "whole.onnx")
    path = folder / "f.onnx"
    onnx.save(onnx.load(str(whole)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="f.onnx.data", size_threshold=0)
    whole.unlink()
    return path


def test_models_differing_only_in_their_external_data_have_different_digests(tmp_path, tiny_utk):
    """Both were carded with the sha256 of the .onnx stub alone, which is the same."""
    first, second = (with_external_data(Lift(lift), tmp_path / name) for lift, name in ((LIFT, "v1"), (2 * LIFT, "v2")))
    assert first.read_bytes() == second.read_bytes()  # the stubs alike: only the weights differ
    digests = []
    for src in (first, second):
        adopted = load_model(adopt(src, src.with_name("a.onnx"), "filter", value_range="unit",
                                   **faces_kw(tiny_utk))).card.training["adopted"]
        assert adopted["sha256"] == hashlib.sha256(src.read_bytes()
                                                   + src.with_name("f.onnx.data").read_bytes()).hexdigest()
        assert adopted["sha256_of"] == "f.onnx, then its external data (f.onnx.data)"
        digests.append(adopted["sha256"])
    assert digests[0] != digests[1]


def quantised_lift(path: Path) -> Path:
    """A QDQ model, as onnxruntime.quantization writes one: its input quantised to uint8 and back, then LIFT."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, SIZE, SIZE])
    weights = [numpy_helper.from_array(np.array(1 / 255, np.float32), "scale"),
               numpy_helper.from_array(np.array(0, np.uint8), "zero"),
               numpy_helper.from_array(np.array(LIFT, np.float32), "lift")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["d"]),
             helper.make_node("Add", ["d", "lift"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [x], [y], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))
    return path


def test_a_quantised_model_is_carded_int8_and_its_card_is_read(tmp_path, tiny_utk):
    """It was carded fp32."""
    out = adopt(quantised_lift(tmp_path / "qdq.onnx"), tmp_path / "a.onnx", "filter", value_range="unit",
                **faces_kw(tiny_utk))
    card = load_model(out).card
    assert card.precision == "int8"
    assert re.search(r"\bint8\b", card.summary())
    assert "- precision: int8, as the model was made" in card_markdown(card, out.name, 0.1)


@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_the_colour_order_is_said_to_be_taken_not_checked(tmp_path, tiny_utk, order):
    """"input taken as … RGB" read as checked: a BGR-trained warm filter taken as RGB is audited as a cooling one."""
    lines: list[str] = []
    adopt(export(Lift(LIFT), tmp_path / "f.onnx"), tmp_path / "a.onnx", "filter", value_range="unit", order=order,
          **{**faces_kw(tiny_utk), "echo": lines.append})
    said = [line for line in lines if line.startswith(f"its colour order is taken as {order}")]
    assert len(said) == 1 and "no output tells it" in said[0], lines
    assert ("give --channels BGR" in said[0]) == (order == "RGB"), said
