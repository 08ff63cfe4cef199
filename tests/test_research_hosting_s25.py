"""Research models hosted through the exporter and `train adopt` (the s25 hosting review): a VAE on [0, 1] exported
with its range or refused, a model that samples refused as one, generators checked in batches, a generator's card
as the Markdown shows it, a long --method, and a grey generator."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.card import filter_card, generator_card  # noqa: E402
from inference.card_markdown import card_markdown  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import Generator, load_model  # noqa: E402
from training.adopt import adopt  # noqa: E402
from training.export import GeneratorGraph, ImageToImageGraph, check_parity, export, parity  # noqa: E402

SIZE = 16


def quiet(_: str) -> None:
    pass


def noise_faces(n: int = 4, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# --- 1. the exporter's value range ----------------------------------------------------------------------------


class UnitCVAE(nn.Module):
    """A CVAE trained on [0, 1] with a sigmoid decoder (BCE), the identity in its own terms; its condition does
    nothing. Fed [-1, 1], as the exporter fed every model, it gave every pixel darker than mid-grey back as 128."""

    def __init__(self):
        super().__init__()
        self.cond = nn.Linear(2, 3)
        with torch.no_grad():
            self.cond.weight.zero_()
            self.cond.bias.zero_()

    def forward(self, x, c):
        return torch.sigmoid(torch.logit(x.clamp(1e-3, 1 - 1e-3)) + self.cond(c)[:, :, None, None])


def export_filter(graph, path: Path, conditional: bool = True) -> Path:
    card = filter_card("unit-cvae", SIZE, "female<->male", "CVAE, sigmoid decoder", {"dataset": "none"}, {},
                       ["female", "male"] if conditional else None)
    example = [torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8), *([torch.zeros(2, 2)] if conditional else [])]
    return export(graph, example, ["image", "condition"][:len(example)], ["filtered"], path, card)


def test_a_unit_range_vae_exported_as_symmetric_is_refused_naming_its_likely_range(tmp_path):
    path = tmp_path / "vae.onnx"
    with pytest.raises(BiasMirrorError, match=r"\[-1, 1\].*value_range='unit'"):
        export_filter(ImageToImageGraph(UnitCVAE(), conditional=True), path)
    assert not path.exists()


def test_a_unit_range_vae_exported_with_its_range_gives_back_the_faces_and_its_card_says_so(tmp_path):
    graph = ImageToImageGraph(UnitCVAE(), conditional=True, value_range="unit")
    path = export_filter(graph, tmp_path / "vae.onnx")
    faces = noise_faces()
    check_parity(parity(graph, path, [faces, np.eye(2, dtype=np.float32)[[0, 1, 0, 1]]]), {"filtered": 1}, path)
    model = load_model(path)
    got = model.apply(faces, model.condition_rows("female", len(faces)))
    assert np.abs(got.astype(int) - faces).max() <= 1  # the identity it is: dark pixels are not lifted to 128
    pixels = model.card.training["pixels"]
    assert "[0, 1]" in pixels["input"] and "[0, 1]" in pixels["output"]


def test_a_filter_whose_output_range_is_its_own_is_read_on_it(tmp_path):
    """A [-1, 1] input, a sigmoid's [0, 1] output (output_range): the identity, hosted as one."""

    class Half(nn.Module):
        def forward(self, x):
            return (x + 1) / 2

    graph = ImageToImageGraph(Half(), value_range="symmetric", output_range="unit")
    path = export_filter(graph, tmp_path / "half.onnx", conditional=False)
    faces = noise_faces()
    assert np.abs(load_model(path).apply(faces).astype(int) - faces).max() <= 1
    with pytest.raises(BiasMirrorError, match="output_range='unit'"):  # its output, read on [-1, 1], is refused
        export_filter(ImageToImageGraph(Half()), tmp_path / "half_default.onnx", conditional=False)


def test_a_card_written_again_for_the_same_graph_keeps_its_range(tmp_path):
    """The CycleGAN trainer writes its card again once the metrics are measured, with the card it built: the record
    of the graph's range is the graph's, and is kept."""
    from training.export import write_card

    path = export_filter(ImageToImageGraph(UnitCVAE(), conditional=True, value_range="unit"), tmp_path / "vae.onnx")
    card = filter_card("unit-cvae", SIZE, "female<->male", "CVAE", {"dataset": "none"}, {"mean_change": 0.0},
                       ["female", "male"])
    write_card(path, card)
    got = load_model(path).card
    assert got.metrics == {"mean_change": 0.0} and "[0, 1]" in got.training["pixels"]["input"]


def test_the_default_range_is_the_symmetric_one_the_trainers_export_with(tmp_path):
    """The shipped trainers give no range: their graphs are the ones an explicit [-1, 1] gives."""
    import onnx

    from tests.conftest import _Gain

    graphs = {}
    for name, graph in (("default", ImageToImageGraph(_Gain(0.8))),
                        ("symmetric", ImageToImageGraph(_Gain(0.8), value_range="symmetric"))):
        model = onnx.load(str(export_filter(graph, tmp_path / f"{name}.onnx", conditional=False)))
        graphs[name] = model.graph.SerializeToString()
        assert "[-1, 1]" in load_model(tmp_path / f"{name}.onnx").card.training["pixels"]["input"]
    assert graphs["default"] == graphs["symmetric"]


class SigmoidGenerator(nn.Module):
    """A VAE's decoder used as a generator: a latent → a sigmoid face in [0, 1]."""

    def __init__(self, latent: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(latent, 3 * SIZE * SIZE)

    def forward(self, z):
        return torch.sigmoid(3 * self.fc(z)).view(-1, 3, SIZE, SIZE)


def export_generator(graph, path: Path, latent: int = 8) -> Path:
    return export(graph, [torch.zeros(1, latent)], ["z"], ["image"], path,
                  generator_card("vae-decoder", latent, SIZE, "VAE decoder", {"dataset": "none"}, {}))


def test_a_sigmoid_generator_is_refused_as_symmetric_and_gives_whole_faces_as_unit(tmp_path):
    with pytest.raises(BiasMirrorError, match=r"value_range='unit'"):
        export_generator(GeneratorGraph(SigmoidGenerator()), tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()
    path = export_generator(GeneratorGraph(SigmoidGenerator(), value_range="unit"), tmp_path / "g.onnx")
    z = np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    faces = load_model(path).generate(z)
    assert faces.min() < 40  # its dark pixels are dark: not 128 and above
    assert "[0, 1]" in load_model(path).card.training["pixels"]["output"]


def test_a_blackout_filter_is_still_exported(tmp_path):
    """The plausibility check refuses a range another reads plausibly, not a filter whose output is implausible under
    every range (the audit's tests export one that blacks every face out)."""

    class Blackout(nn.Module):
        def forward(self, x):
            return torch.full_like(x, -1.0)

    assert export_filter(ImageToImageGraph(Blackout()), tmp_path / "black.onnx", conditional=False).exists()


# --- 2. a model that samples ----------------------------------------------------------------------------------


class SamplingCVAE(nn.Module):
    """A CVAE exported with its reparameterisation left in: RandomNormalLike in its graph."""

    def __init__(self):
        super().__init__()
        self.enc, self.cond, self.dec = nn.Conv2d(3, 8, 3, 1, 1), nn.Linear(2, 8), nn.Conv2d(8, 3, 3, 1, 1)

    def forward(self, x, c):
        mu = torch.relu(self.enc(x)) + self.cond(c)[:, :, None, None]
        return (x + 0.3 * torch.tanh(self.dec(mu + 0.5 * torch.randn_like(mu)))).clamp(-1, 1)


def test_the_exporter_refuses_a_model_that_samples_naming_its_node(tmp_path):
    with pytest.raises(BiasMirrorError, match=r"samples at random \(RandomNormalLike .*\).*deterministic path"):
        export_filter(ImageToImageGraph(SamplingCVAE(), conditional=True), tmp_path / "stoch.onnx")
    assert not (tmp_path / "stoch.onnx").exists()


def test_parity_says_a_pytorch_model_that_samples_outside_its_graph_samples(tmp_path):
    """Noise drawn by NumPy is a constant of the traced graph: the ONNX model is deterministic, the PyTorch one is
    not, and the parity check had blamed the export."""

    class NumpyNoise(nn.Module):
        def forward(self, x):
            noise = torch.from_numpy(np.random.default_rng().normal(0, 0.3, x.shape[1:]).astype(np.float32))
            return (x + noise).clamp(-1, 1)

    graph = ImageToImageGraph(NumpyNoise())
    path = export_filter(graph, tmp_path / "numpy_noise.onnx", conditional=False)
    with pytest.raises(BiasMirrorError, match=r"samples at random \(its output differs between two runs"):
        parity(graph, path, [noise_faces()])
    assert not path.exists()  # it holds one draw of the noise as a constant: nothing should load it


def onnx_of(net: nn.Module, path: Path, example: tuple, names: list[str]) -> Path:
    torch.onnx.export(net.eval(), example, str(path), input_names=names, output_names=["y"],
                      dynamic_axes={n: {0: "N"} for n in [*names, "y"]}, opset_version=17, dynamo=False)
    return path


class SamplingGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3 * SIZE * SIZE)

    def forward(self, z):
        return torch.tanh(self.fc(z + 0.1 * torch.randn_like(z))).view(-1, 3, SIZE, SIZE)


@pytest.mark.parametrize("kind", ["filter", "generator"])
def test_adopt_refuses_a_model_that_samples_before_any_check(tmp_path, kind):
    """Said first, naming the node: it had been "the wrapped filter differs from the model run alone by 21 grey
    levels", after every check. No faces are read (the --dataset given does not exist)."""
    if kind == "filter":
        src = onnx_of(SamplingCVAE(), tmp_path / "cv.onnx", (torch.rand(1, 3, SIZE, SIZE), torch.ones(1, 2)),
                      ["x", "c"])
        extra = dict(conditions=["female=1:0", "male=0:1"], dataset=f"folder:{tmp_path / 'none'}")
    else:
        src = onnx_of(SamplingGenerator(), tmp_path / "g.onnx", (torch.randn(1, 8),), ["z"])
        extra = {}
    with pytest.raises(BiasMirrorError, match=r"samples at random \(RandomNormalLike '.*'\).*deterministic path"):
        adopt(src, tmp_path / "a.onnx", kind, value_range="symmetric", n=8, echo=quiet, **extra)


def test_adopt_tells_sampling_by_two_runs_where_no_node_shows_it(tmp_path, tiny_utk, monkeypatch):
    """Where the graph's nodes do not show it (sampled in an op of another domain), two runs of the model alone on
    the same faces that differ say it, not a wrapper that differs from the model."""
    import training.adopt_read as adopt_read

    monkeypatch.setattr(adopt_read, "random_nodes", lambda model: [])
    src = onnx_of(SamplingCVAE(), tmp_path / "cv.onnx", (torch.rand(1, 3, SIZE, SIZE), torch.ones(1, 2)), ["x", "c"])
    with pytest.raises(BiasMirrorError, match=r"samples at random \(its output differs between two runs"):
        adopt(src, tmp_path / "a.onnx", "filter", value_range="symmetric", conditions=["female=1:0", "male=0:1"],
              dataset=f"utkface:{tiny_utk.parent}", n=8, echo=quiet)
    gen = onnx_of(SamplingGenerator(), tmp_path / "g.onnx", (torch.randn(1, 8),), ["z"])
    with pytest.raises(BiasMirrorError, match=r"samples at random \(its output differs between two runs"):
        adopt(gen, tmp_path / "g_a.onnx", "generator", value_range="symmetric", n=8, echo=quiet)


# --- 3. memory ------------------------------------------------------------------------------------------------


class TanhGenerator(nn.Module):
    def __init__(self, latent: int = 8, size: int = SIZE, channels: int = 3, nhwc: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.shape = (-1, size, size, channels) if nhwc else (-1, channels, size, size)
        self.fc = nn.Linear(latent, channels * size * size)
        with torch.no_grad():
            self.fc.weight.mul_(3)

    def forward(self, z):
        return torch.tanh(self.fc(z)).view(*self.shape)


def test_a_generator_is_run_in_batches_and_its_checks_never_hold_its_whole_output(tmp_path, monkeypatch):
    """All the latents had gone through ONNX Runtime at once, and the checks kept float copies of every output: at
    1024 px, 10 GB for 64 latents."""
    size, n = 32, 256
    src = onnx_of(TanhGenerator(size=size), tmp_path / "g.onnx", (torch.randn(1, 8),), ["z"])
    sizes: list[int] = []
    generate = Generator.generate
    monkeypatch.setattr(Generator, "generate", lambda self, z: sizes.append(len(z)) or generate(self, z))
    whole = n * 3 * size * size * 4  # its output, float32, on every latent
    tracemalloc.start()
    try:
        adopt(src, tmp_path / "a.onnx", "generator", value_range="symmetric", n=n, echo=quiet)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert max(sizes) <= 16 and sum(sizes) >= n
    assert peak < whole, f"{peak / 2**20:.1f} MB held at once, its whole output is {whole / 2**20:.1f} MB"


def test_the_filter_checks_keep_no_float64_copies_of_the_faces():
    from training.adopt_encoding import Encoding
    from training.adopt_filter_checks import _beyond, _darkener_ratio, _largest_change

    """Float64 copies of the faces had taken 4.8 GB of 64 faces of 1024 px: each check holds a batch at a time, less
    than the faces' own uint8 (or the raw output's float32) size."""
    faces = noise_faces(256, 32)
    raw, moved = [Encoding(-1.0, 1.0).encode(faces)], [faces[::-1].copy()]
    for name, call, against in (("_darkener_ratio", lambda: _darkener_ratio(faces), faces.nbytes),
                                ("_largest_change", lambda: _largest_change(moved, faces), faces.nbytes),
                                ("_beyond", lambda: _beyond(Encoding(-1.0, 1.0), raw), raw[0].nbytes / 2)):
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < against, f"{name}: {peak / 2**20:.2f} MB held at once, against {against / 2**20:.2f} MB"


# --- 4. a generator's card, as the Markdown shows it ------------------------------------------------------------


def test_an_adopted_generators_card_shows_its_output_and_its_face_size(tmp_path):
    src = onnx_of(TanhGenerator(), tmp_path / "g.onnx", (torch.randn(1, 8),), ["z"])
    card = load_model(adopt(src, tmp_path / "a.onnx", "generator", value_range="symmetric", n=8, echo=quiet)).card
    text = card_markdown(card, "a.onnx", 0.1)
    assert "its input: ?" not in text
    assert "its output: float32 NCHW RGB, [-1, 1] mapped onto 0..255 (range given)" in text
    assert card.summary().startswith("generator 'a', latent 8 → 16×16, ")


def test_the_fields_a_research_trainer_records_are_shown_as_the_card_dialog_shows_them():
    card = generator_card("dcgan", 100, 64, "DCGAN", {"dataset": "celeba", "latent_prior": "U(-1, 1)", "beta": 0.5,
                                                      "debias": {"alpha": 0.01, "bins": 10}, "kl_warmup": [0, 10]},
                          {})
    text = card_markdown(card, "dcgan.onnx", 1.0)
    for line in ("- latent prior: U(-1, 1)", "- beta: 0.5", "- debias: alpha: 0.01; bins: 10", "- kl warmup: 0, 10"):
        assert line in text.splitlines(), text


def test_records_of_plain_fields_are_shown_whole_in_words():
    """A card's amendments (a list of records) had been shown as one JSON string, "×" as "\\u00d7", cut at 4,000
    characters."""
    what = "intervals recomputed (successes = value × n); " + "a bound moved; " * 300
    card = generator_card("dcgan", 100, 64, "DCGAN", {"amendments": [{"date": "2026-12-07", "what": what},
                                                                      {"date": "2026-12-08", "what": "again"}]}, {})
    line = next(x for x in card_markdown(card, "dcgan.onnx", 1.0).splitlines() if x.startswith("- amendments:"))
    assert line == f"- amendments: date: 2026-12-07; what: {' '.join(what.split())} | date: 2026-12-08; what: again"


# --- 5. a long --method ---------------------------------------------------------------------------------------


def test_a_method_within_the_cap_is_written_once_and_the_command_refers_to_it(tmp_path, monkeypatch):
    import sys

    src = onnx_of(TanhGenerator(), tmp_path / "g.onnx", (torch.randn(1, 8),), ["z"])
    method = "m" * 9_900
    monkeypatch.setattr(sys, "argv", ["main.py", "train", "adopt", str(src), "--kind", "generator", "--range",
                                      "symmetric", "--method", method, "--out", str(tmp_path / "a.onnx")])
    said: list[str] = []
    card = load_model(adopt(src, tmp_path / "a.onnx", "generator", value_range="symmetric", method=method, n=8,
                            echo=said.append)).card
    assert card.method == method
    command = card.training["command"]
    assert method not in command and "--method '<the method on this card, 9,900 characters>'" in command
    assert any(line.startswith("--method's text (9,900 characters) is written once, as the card's method")
               for line in said), said


@pytest.mark.parametrize("name,method,match", [
    ("n" * 300, "", r"the card adopt would write: its name is 300 characters long"),
    (None, "m" * 10_001, r"the card adopt would write: method is a text of 10,001 characters"),
])
def test_a_card_adopt_cannot_write_is_refused_before_any_check(tmp_path, name, method, match):
    """Refused after every check had run (minutes for a large model), as an "invalid model card". No faces are read
    here (the --dataset given does not exist)."""
    src = onnx_of(TanhGenerator(), tmp_path / "f.onnx", (torch.randn(1, 8),), ["z"])
    with pytest.raises(BiasMirrorError, match=match):
        adopt(tmp_path / "f.onnx", tmp_path / "a.onnx", "filter", name=name, method=method,
              dataset=f"folder:{tmp_path / 'none'}", echo=quiet)
    assert src.exists()


# --- 6. a grey generator --------------------------------------------------------------------------------------


@pytest.mark.parametrize("nhwc", [False, True])
def test_a_grey_generator_is_adopted_as_filters_are_giving_three_alike(tmp_path, nhwc):
    net = TanhGenerator(channels=1, nhwc=nhwc)
    src = onnx_of(net, tmp_path / "grey.onnx", (torch.randn(1, 8),), ["z"])
    model = load_model(adopt(src, tmp_path / "a.onnx", "generator", value_range="symmetric", n=8, echo=quiet))
    z = np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)
    faces = model.generate(z).astype(int)
    want = ((net(torch.from_numpy(z)).detach().numpy() + 1) * 127.5).round().reshape(4, SIZE, SIZE)
    assert (faces == faces[..., :1]).all() and np.abs(faces[..., 0] - want).max() <= 1
    assert "grey" in model.card.training["adopted"]["output"]
