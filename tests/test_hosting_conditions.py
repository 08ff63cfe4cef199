"""`train adopt` of the models research brings: conditional filters whose condition is not a one-hot row (a CVAE's 0/1
scalar, a StarGAN's attribute vector, an nn.Embedding's label index), given a value per condition with
``--conditions NAME=VALUE``; and generators (a DCGAN's z N×D×1×1, or N×D) with ``--kind generator``. Each adopted
model, under each condition or on each latent, gives what the model made elsewhere gives run alone with the value
intended."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.errors import BiasMirrorError  # noqa: E402
from inference.images import read_rgb  # noqa: E402
from inference.models import load_model  # noqa: E402
from tests.conftest import run_main  # noqa: E402
from training.adopt import adopt  # noqa: E402
from training.adopt_encoding import RANGES  # noqa: E402
from training.adopt_filter_checks import MAX_FILTER_GREY  # noqa: E402

SIZE = 32
LATENT = 8


def quiet(_: str) -> None:
    pass


class ScalarConditionNet(nn.Module):
    """A CVAE-style filter whose condition is one number a face, [N, 1]: 1 lightens the face, 0 darkens it."""

    def forward(self, x, c):
        return torch.clamp(x + (c.view(-1, 1, 1, 1) - 0.5) * 0.6, -1, 1)


class EmbeddedLabelNet(nn.Module):
    """A filter conditioned on a label index (N,) through nn.Embedding, as class-conditional GANs take it: each of
    its three classes shifts the face's brightness its own way."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(3, 1)
        with torch.no_grad():
            self.emb.weight.copy_(torch.tensor([[-0.3], [0.0], [0.3]]))

    def forward(self, x, label):
        return torch.clamp(x + self.emb(label).view(-1, 1, 1, 1), -1, 1)


class AttributeNet(nn.Module):
    """A StarGAN-style filter whose condition is a vector of attributes [N, 3], any of them on at once: each moves
    one colour channel."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shifts", torch.tensor([[0.3, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, -0.3]]))

    def forward(self, x, attributes):
        shift = attributes @ self.shifts
        return torch.clamp(x + shift.view(-1, 3, 1, 1), -1, 1)


def export_conditional(net: nn.Module, path: Path, condition: "torch.Tensor", name: str) -> Path:
    torch.onnx.export(net.eval(), (torch.rand(1, 3, SIZE, SIZE), condition), str(path), input_names=["input", name],
                      output_names=["output"], dynamic_axes={"input": {0: "b"}, name: {0: "b"}}, dynamo=False)
    return path


def faces_of(folder: Path, n: int = 8) -> np.ndarray:
    paths = sorted(p for p in folder.iterdir() if p.name[0].isdigit())[:n]
    return np.stack([f for f in (read_rgb(str(p), SIZE) for p in paths) if f is not None])


def filtered_alone(net: nn.Module, faces: np.ndarray, condition: "torch.Tensor") -> np.ndarray:
    """What the model made elsewhere gives the faces, in [-1, 1], run alone with ``condition`` as it takes it."""
    x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        y = net.eval()(x, condition)
    return ((y + 1) * 127.5).round().clamp(0, 255).permute(0, 2, 3, 1).numpy().astype(np.uint8)


SCALAR = (ScalarConditionNet, "gender", torch.tensor([[1.0]]), ["female=1", "male=0"],
          {"female": torch.tensor([1.0]), "male": torch.tensor([0.0])})
INDEX = (EmbeddedLabelNet, "label", torch.tensor([0]), ["female=2", "male=0"],  # not each one's position
         {"female": torch.tensor(2), "male": torch.tensor(0)})
VECTOR = (AttributeNet, "attributes", torch.zeros(1, 3), ["red_blue=1:0:1", "green=0:1:0", "red_green=1:1:0"],
          {"red_blue": torch.tensor([1.0, 0, 1]), "green": torch.tensor([0, 1.0, 0]),
           "red_green": torch.tensor([1.0, 1, 0])})


@pytest.mark.parametrize("net,name,example,conditions,intended", [SCALAR, INDEX, VECTOR],
                         ids=["scalar", "index", "vector"])
def test_each_condition_runs_the_model_with_the_value_given_for_it(tmp_path, tiny_utk, net, name, example, conditions,
                                                                  intended):
    src = export_conditional(net(), tmp_path / "conditional.onnx", example, name)
    out = adopt(src, tmp_path / "adopted.onnx", "filter", value_range="symmetric", conditions=conditions,
                dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    model = load_model(out, "filter")
    assert model.condition_labels == tuple(intended)  # the card's condition stays one-hot, one entry a name
    assert model.card.input("condition").shape == ["N", len(intended)]
    faces = faces_of(tiny_utk)
    outputs = []
    for label, value in intended.items():
        got = model.apply(faces, model.condition_rows(label, len(faces)))
        want = filtered_alone(net(), faces, value.expand(len(faces), *value.shape))
        assert np.abs(got.astype(np.int16) - want).max() <= MAX_FILTER_GREY, label
        outputs.append(got)
    assert not np.array_equal(outputs[0], outputs[1])  # the conditions are told apart
    recorded = model.card.training["adopted"]["conditions"]
    assert f"'{name}'" in recorded["input"] and recorded["values"] == {k: v.tolist() for k, v in intended.items()}


@pytest.mark.parametrize("case,conditions,match", [
    ("scalar", ["female", "male"], r"its condition input 'gender' \[N, 1\] is one number a face, not a one-hot row: "
                                   r"give each condition its value, e.g. --conditions female=1,male=0"),
    ("scalar", ["female"], r"one name alone, fed one-hot, is always 1: the model's other values never run"),
    ("index", ["female", "male"], r"its condition input 'label' \(N,\) is an integer index, not a one-hot row: give "
                                  r"each condition its index, e.g. --conditions female=0,male=1"),
    ("index", ["female=0", "male=0.5"], r"'label' \(N,\) is an integer index: male=0.5 is not a whole number"),
    ("index", ["female=0", "male=5"], r"it does not run with male=5 of --conditions female=0,male=5, where it runs "
                                      r"with the others \(.*out of data bounds"),
    ("vector", ["smiling=0:1", "frowning=1:0"], r"'attributes' \[N, 3\] takes 3 number\(s\) a face: give each "
                                                r"condition 3, separated by ':'.*smiling has 2"),
    ("vector", ["smiling=0:1:0", "frowning"], r"give every condition a value .* or none .*'frowning' has none"),
    ("vector", ["smiling=0:1:0", "grinning=0:1:0"], r"smiling and grinning give the model the same value \(0:1:0\)"),
    ("vector", ["smiling=0:x:0", "frowning=1:0:0"], r"'smiling=0:x:0': the value of smiling should be finite numbers"),
])
def test_a_condition_given_in_the_wrong_terms_is_refused_saying_what_it_takes(tmp_path, tiny_utk, case, conditions,
                                                                              match):
    net, name, example = {"scalar": SCALAR, "index": INDEX, "vector": VECTOR}[case][:3]
    src = export_conditional(net(), tmp_path / "conditional.onnx", example, name)
    with pytest.raises(BiasMirrorError, match=match) as err:
        adopt(src, tmp_path / "adopted.onnx", "filter", value_range="symmetric", conditions=conditions,
              dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    assert str(src) in str(err.value)
    assert not (tmp_path / "adopted.onnx").exists()


@pytest.mark.parametrize("net,name,example,conditions,intended", [SCALAR, INDEX, VECTOR],
                         ids=["scalar", "index", "vector"])
def test_an_adopted_filters_card_shows_the_value_each_condition_is_fed(tmp_path, tiny_utk, net, name, example,
                                                                       conditions, intended):
    """`doctor --cards` and the card dialog had listed the condition names alone: a CVAE fed female=-1 read as one
    fed 1."""
    from inference.card_markdown import card_markdown

    src = export_conditional(net(), tmp_path / "conditional.onnx", example, name)
    out = adopt(src, tmp_path / "adopted.onnx", "filter", value_range="symmetric", conditions=conditions,
                dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    card = card_markdown(load_model(out, "filter").card, out.name, out.stat().st_size / 1e6)
    line = next((line for line in card.splitlines() if line.startswith("- conditions as the model takes them")), "")
    assert f"its input '{name}'" in line and line.endswith("; " + ", ".join(conditions)), card


def test_the_command_line_gives_a_scalar_condition_its_values_and_run_chooses_one(tmp_path, tiny_utk, capsys):
    src = export_conditional(ScalarConditionNet(), tmp_path / "scalar.onnx", torch.tensor([[1.0]]), "gender")
    out = tmp_path / "adopted.onnx"
    code, said, _ = run_main(["train", "adopt", str(src), "--kind", "filter", "--range", "symmetric", "--conditions",
                              "female=1,male=0", "--dataset", f"utkface:{tiny_utk.parent}", "--n", "8", "--out",
                              str(out)], capsys)
    assert code == 0 and "its condition 'gender' fed female=1,male=0" in said
    faces = faces_of(tiny_utk)
    model = load_model(out, "filter")
    male = filtered_alone(ScalarConditionNet(), faces, torch.zeros(len(faces), 1))  # c = 0 runs too
    assert np.abs(model.apply(faces, model.condition_rows("male", len(faces))).astype(np.int16) - male).max() \
        <= MAX_FILTER_GREY


# --- generators ------------------------------------------------------------------------------------------------------

class TinyDCGAN(nn.Module):
    """A DCGAN generator as PyTorch's tutorial makes it: z N×D×1×1, transposed convolutions, tanh; NCHW out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.ConvTranspose2d(LATENT, 8, 4, 1, 0), nn.ReLU(),
                                 nn.ConvTranspose2d(8, 3, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class TinyChannelsLastGenerator(nn.Module):
    """z N×D → a sigmoid image N×H×W×3, channels last."""

    def __init__(self, side: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.side = side
        self.fc = nn.Linear(LATENT, side * side * 3)

    def forward(self, z):
        return torch.sigmoid(self.fc(z)).view(-1, self.side, self.side, 3)


class LatentIgnoredGenerator(TinyDCGAN):
    def forward(self, z):
        return super().forward(z * 0)


def export_generator(net: nn.Module, path: Path, latent_shape: tuple[int, ...]) -> Path:
    torch.onnx.export(net.eval(), torch.randn(1, *latent_shape), str(path), input_names=["z"], output_names=["img"],
                      dynamic_axes={"z": {0: "b"}, "img": {0: "b"}}, dynamo=False)
    return path


def generated_alone(net: nn.Module, z: np.ndarray, latent_shape: tuple[int, ...], value_range: str,
                    channels_last: bool) -> np.ndarray:
    """The faces the model made elsewhere gives for latents ``z`` (N×D), run alone, read in ``value_range``."""
    with torch.no_grad():
        y = net.eval()(torch.from_numpy(z).reshape(len(z), *latent_shape)).numpy()
    lo, hi = RANGES[value_range]
    y = y if channels_last else y.transpose(0, 2, 3, 1)
    return np.clip(np.round((y - lo) * 255 / (hi - lo)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("net,latent_shape,value_range,channels_last", [
    (TinyDCGAN, (LATENT, 1, 1), "symmetric", False),
    (TinyChannelsLastGenerator, (LATENT,), "unit", True),
], ids=["dcgan_nchw_tanh", "flat_nhwc_sigmoid"])
def test_a_generator_made_elsewhere_gives_the_faces_it_gives_alone(tmp_path, net, latent_shape, value_range,
                                                                  channels_last):
    src = export_generator(net(), tmp_path / "g.onnx", latent_shape)
    lines: list[str] = []
    out = adopt(src, tmp_path / "adopted.onnx", "generator", value_range=value_range, n=16, echo=lines.append)
    generator = load_model(out, "generator")
    assert generator.latent_dim == LATENT
    z = np.random.default_rng(1).standard_normal((5, LATENT)).astype(np.float32)
    got = generator.generate(z)
    want = generated_alone(net(), z, latent_shape, value_range, channels_last)
    assert got.shape == want.shape and np.abs(got.astype(np.int16) - want).max() <= MAX_FILTER_GREY
    adopted = generator.card.training["adopted"]
    assert adopted["checks"]["max_grey_vs_model_alone"] <= MAX_FILTER_GREY and adopted["range_chosen"] == "given"
    assert any("load_model(" in line and ".generate(z)" in line for line in lines)  # how it is hosted, said


@pytest.mark.parametrize("value_range,force,match", [
    ("auto", False, r"give --range, .*does not guess it \(a DCGAN's tanh: symmetric.*its output lies in \["),
    ("unit", False, r"with --range unit \[0, 1\], .* of its output lies past the range's bounds"),
    ("byte", False, r"with --range byte \[0, 255\] every face it gives is flat"),
    ("unit", True, None),
])
def test_a_generators_range_is_never_guessed_and_one_that_reads_it_wrongly_is_refused(tmp_path, value_range, force,
                                                                                     match):
    src = export_generator(TinyDCGAN(), tmp_path / "g.onnx", (LATENT, 1, 1))
    out = tmp_path / "adopted.onnx"
    if match is None:  # forced: written as given
        adopt(src, out, "generator", value_range=value_range, force=force, n=16, echo=quiet)
        assert load_model(out, "generator").latent_dim == LATENT
        return
    with pytest.raises(BiasMirrorError, match=match) as err:
        adopt(src, out, "generator", value_range=value_range, force=force, n=16, echo=quiet)
    assert str(src) in str(err.value) and not out.exists()


def test_a_generator_whose_faces_do_not_depend_on_its_latent_is_refused(tmp_path):
    src = export_generator(LatentIgnoredGenerator(), tmp_path / "g.onnx", (LATENT, 1, 1))
    with pytest.raises(BiasMirrorError, match="it gives the same face for every one of 16 latents"):
        adopt(src, tmp_path / "adopted.onnx", "generator", value_range="symmetric", n=16, echo=quiet)


@pytest.mark.parametrize("latent_shape", [(LATENT, 1, 1), (LATENT,)], ids=["dcgan_z", "flat_z"])
def test_a_generator_adopted_as_a_filter_is_told_it_looks_like_a_generator(tmp_path, tiny_utk, latent_shape):
    net = TinyDCGAN() if len(latent_shape) == 3 else TinyChannelsLastGenerator()
    src = export_generator(net, tmp_path / "g.onnx", latent_shape)
    with pytest.raises(BiasMirrorError, match="it looks like a generator's latent .*adopt it with --kind generator") \
            as err:
        adopt(src, tmp_path / "adopted.onnx", "filter", dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    assert "cannot tell" not in str(err.value)


def test_the_command_line_adopts_a_generator_and_refuses_what_a_generator_has_no_use_for(tmp_path, capsys):
    src = export_generator(TinyDCGAN(), tmp_path / "g.onnx", (LATENT, 1, 1))
    out = tmp_path / "adopted.onnx"
    argv = ["train", "adopt", str(src), "--kind", "generator", "--range", "symmetric", "--n", "8", "--out", str(out)]
    code, said, _ = run_main(argv, capsys)
    assert code == 0 and "the app, run and the audit do not host generators yet" in said
    assert load_model(out, "generator").latent_dim == LATENT
    code, _, err = run_main([*argv, "--dataset", f"folder:{tmp_path}"], capsys)
    assert code == 2 and "a generator is checked on latents" in err
    code, _, err = run_main(["train", "adopt", str(out), "--kind", "generator", "--range", "symmetric", "--out",
                             str(tmp_path / "again.onnx")], capsys)
    assert code == 2 and ".generate(z)" in err  # already carded: the Python API takes it as it is
