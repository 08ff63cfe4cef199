"""The exporter and the training logs under new trainers (the s27 review: a tiny DCGAN and a CVAE written on them).

1. ``export`` had written (exit 0) models the loader then refused: a latent named otherwise than the card's, a card
   size or latent the network does not have, a DCGAN whose latent is N×D×1×1 (PyTorch's tutorial), a CVAE whose
   condition is a 0/1 scalar or an nn.Embedding index. It now checks the file as the loader does before it is put in
   place, reshapes a card's N×D latent to a network's N×D×1×1, and maps the card's one-hot condition onto a scalar or
   an index where the graph is told each condition's value (adopt's ``Conditions``).
2. ``export`` and ``parity`` had left the trainer's own network in eval mode (a snapshot exported mid-training).
3. ``CsvLog.write`` had put values under other columns' names where a row's keys were not the first row's.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.card import filter_card, generator_card  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import load_model  # noqa: E402
from training.adopt_encoding import Conditions  # noqa: E402
from training.csv_log import CsvLog  # noqa: E402
from training.export import GeneratorGraph, ImageToImageGraph, check_parity, export, parity  # noqa: E402

Z, SIZE = 8, 16


class TutorialG(nn.Module):
    """A DCGAN generator as PyTorch's tutorial writes it: z N×Z×1×1 in, a 16 px face in [-1, 1] out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.ConvTranspose2d(Z, 8, 4, 1, 0), nn.BatchNorm2d(8), nn.ReLU(),  # 4
                                 nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.BatchNorm2d(4), nn.ReLU(),  # 8
                                 nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Tanh())  # 16

    def forward(self, z):
        return self.net(z)


class FlatG(TutorialG):
    """The same network taking N×Z, as the card's latent is."""

    def forward(self, z):
        return self.net(z.view(-1, Z, 1, 1))


def gen_card(latent: int = Z, size: int = SIZE):
    return generator_card("g", latent, size, "DCGAN (test)", {"dataset": "none"}, {})


def latents(n: int = 4, shape: tuple[int, ...] = (Z,)) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)


# --- 1a. a file the loader would refuse is not exported, and the one there before stays -----------------------------


@pytest.mark.parametrize("card, names, said", [
    (gen_card(), ["latent"], r"the card names input 'z' but the graph's inputs are \['latent'\]"),
    (gen_card(size=32), ["z"], r"output 'image' has shape \['N', 16, 16, 3\] in the graph but \['N', 32, 32, 3\]"),
    (gen_card(latent=100), ["z"], r"input 'z' has shape \['N', 8\] in the graph but \['N', 100\]"),
])
def test_an_export_whose_card_disagrees_with_its_graph_is_refused_and_the_model_before_stays(tmp_path, card, names,
                                                                                             said):
    path = tmp_path / "g.onnx"
    export(GeneratorGraph(FlatG().eval()), [torch.zeros(2, Z)], ["z"], ["image"], path, gen_card())
    before = path.read_bytes()
    with pytest.raises(BiasMirrorError, match=said) as err:
        export(GeneratorGraph(FlatG().eval()), [torch.zeros(2, Z)], names, ["image"], path, card)
    assert err.value.path == str(path) and "not exported" in str(err.value)
    assert path.read_bytes() == before  # the model exported before, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.onnx"]  # no part file left
    load_model(path)


# --- 1b. a DCGAN whose latent is N×Z×1×1 ------------------------------------------------------------------------------


def test_a_generator_taking_its_latent_as_n_z_1_1_is_exported_with_the_cards_n_z_latent(tmp_path):
    net = TutorialG().eval()
    graph = GeneratorGraph(net)
    path = export(graph, [torch.zeros(2, Z, 1, 1)], ["z"], ["image"], tmp_path / "g.onnx", gen_card())
    check_parity(parity(graph, path, [latents(4, (Z, 1, 1))]), {"image": 1}, path)  # fed as the network takes it
    model = load_model(path, "generator")
    assert model.card.inputs[0].shape == ["N", Z]
    z = latents()
    with torch.no_grad():
        want = ((net(torch.from_numpy(z).view(4, Z, 1, 1)).clamp(-1, 1) + 1) * 127.5).round()
    got = model.generate(z)
    assert np.abs(got.astype(int) - want.permute(0, 2, 3, 1).numpy().astype(int)).max() <= 1


def test_a_generator_told_its_latent_shape_takes_the_cards_latent_in_pytorch_too(tmp_path):
    graph = GeneratorGraph(TutorialG().eval(), latent_shape=(Z, 1, 1))
    path = export(graph, [torch.zeros(2, Z)], ["z"], ["image"], tmp_path / "g.onnx", gen_card())
    check_parity(parity(graph, path, [latents()]), {"image": 1}, path)
    assert load_model(path).latent_dim == Z


# --- 1c. a CVAE conditioned on a 0/1 scalar or an nn.Embedding index -------------------------------------------------


class ScalarCVAE(nn.Module):
    """Brightens a face by its condition: a 0/1 scalar N×1 (Linear), or an index N (nn.Embedding)."""

    def __init__(self, embed: bool = False):
        super().__init__()
        self.embed = embed
        self.e = nn.Embedding(2, 3) if embed else nn.Linear(1, 3)
        with torch.no_grad():
            if embed:
                self.e.weight.copy_(torch.tensor([[0.0] * 3, [0.6] * 3]))
            else:
                self.e.weight.fill_(0.6)
                self.e.bias.zero_()

    def forward(self, x, c):
        return (x + self.e(c)[:, :, None, None]).clamp(-1, 1)


def cvae_card():
    return filter_card("cvae", SIZE, "gender", "CVAE (test)", {"dataset": "none"}, {}, condition_labels=["male",
                                                                                                        "female"])


def faces(n: int = 4) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.mark.parametrize("embed, conditions, network_condition", [
    (False, Conditions(("male", "female"), ((0.0,), (1.0,))), torch.tensor([[1.0]] * 4)),
    (True, Conditions(("male", "female"), ((0,), (1,)), rank=1, integer=True), torch.tensor([1] * 4)),
])
def test_a_cvae_taking_a_scalar_or_an_index_is_fed_each_conditions_value(tmp_path, embed, conditions,
                                                                          network_condition):
    net = ScalarCVAE(embed).eval()
    graph = ImageToImageGraph(net, conditional=True, conditions=conditions)
    one_hot = np.eye(2, dtype=np.float32)
    path = export(graph, [torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8), torch.from_numpy(one_hot)],
                  ["image", "condition"], ["filtered"], tmp_path / "cvae.onnx", cvae_card())
    x = faces()
    check_parity(parity(graph, path, [x, one_hot[[0, 1, 0, 1]]]), {"filtered": 1}, path)
    model = load_model(path, "filter")
    got = model.apply(x, model.condition_rows("female", len(x)))
    with torch.no_grad():
        want = net(torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1, network_condition)
    want = ((want.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert got.astype(int).mean() > x.astype(int).mean() + 10  # female (1) is the brighter: the value, not the row
    assert model.card.training["conditions"]["values"] == ({"male": [0.0], "female": [1.0]} if not embed
                                                          else {"male": 0, "female": 1})


@pytest.mark.parametrize("embed, condition, said", [
    (False, torch.zeros(2, 1), r"'condition' has shape \['N', 1\] in the graph but \['N', 2\]"),
    (True, torch.zeros(2, dtype=torch.long), r"'condition' is tensor\(int64\) in the graph but float32"),
])
def test_a_cvae_exported_with_its_own_condition_is_refused_saying_how_to_wrap_it(tmp_path, embed, condition, said):
    path = tmp_path / "cvae.onnx"
    with pytest.raises(BiasMirrorError, match=said) as err:
        export(ImageToImageGraph(ScalarCVAE(embed).eval(), conditional=True),
               [torch.zeros(2, SIZE, SIZE, 3, dtype=torch.uint8), condition], ["image", "condition"], ["filtered"],
               path, cvae_card())
    assert "one-hot" in str(err.value) and "conditions=Conditions(" in str(err.value)
    assert not path.exists()


# --- 2. the trainer's own network, as it was --------------------------------------------------------------------------


def test_export_and_parity_leave_a_network_in_training_in_training_mode(tmp_path):
    net = FlatG().train()
    graph = GeneratorGraph(net)
    path = export(graph, [torch.zeros(2, Z)], ["z"], ["image"], tmp_path / "g.onnx", gen_card())
    assert all(m.training for m in net.modules())
    parity(graph, path, [latents()])
    assert all(m.training for m in net.modules()) and graph.training


def test_export_and_parity_leave_a_network_in_eval_mode_in_it(tmp_path):
    net = FlatG()
    net.net[1].eval()  # a frozen BatchNorm in a network otherwise training: each module's own mode comes back
    graph = GeneratorGraph(net)
    path = export(graph, [torch.zeros(2, Z)], ["z"], ["image"], tmp_path / "g.onnx", gen_card())
    parity(graph, path, [latents()])
    assert [m.training for m in net.net] == [True, False, True, True, True, True, True, True]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_export_and_parity_leave_a_network_on_its_device(tmp_path):
    net = FlatG().cuda().train()
    opt = torch.optim.Adam(net.parameters())
    graph = GeneratorGraph(net)
    path = export(graph, [torch.zeros(2, Z)], ["z"], ["image"], tmp_path / "g.onnx", gen_card())
    parity(graph, path, [latents()])
    assert {p.device.type for p in net.parameters()} == {b.device.type for b in net.buffers()} == {"cuda"}
    assert all(p is q for p, q in zip(net.parameters(), opt.param_groups[0]["params"]))
    net(torch.zeros(2, Z, device="cuda")).sum().backward()
    opt.step()  # the optimiser's parameters are the network's, where they were


# --- 3. the training logs' columns --------------------------------------------------------------------------------


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_row_without_a_column_leaves_it_empty_and_its_values_stay_under_their_names(tmp_path):
    log = CsvLog(tmp_path / "log.csv")
    log.write({"step": 20, "epoch": 1, "D": 0.5, "G": 1.5})
    log.write({"step": 40, "epoch": 1, "G": 1.87})  # D trained (and logged) on some steps only
    log.write({"step": 60, "epoch": 2, "G": 1.2, "D": 0.4})  # the keys in another order
    assert read(log.path) == [{"step": "20", "epoch": "1", "D": "0.5", "G": "1.5"},
                              {"step": "40", "epoch": "1", "D": "", "G": "1.87"},
                              {"step": "60", "epoch": "2", "D": "0.4", "G": "1.2"}]


def test_a_row_with_a_new_column_widens_the_header_and_earlier_rows_leave_it_empty(tmp_path):
    log = CsvLog(tmp_path / "epochs.csv")
    log.write({"step": 8, "epoch": 1, "w0": 0.1})
    log.write({"step": 16, "epoch": 2, "w0": 0.2, "sample_std": 0.25})  # a metric end_epoch adds from epoch 2
    CsvLog(log.path).write({"step": 24, "epoch": 3, "sample_std": 0.3})  # a resume: the header read back
    assert log.path.read_text().splitlines()[0] == "step,epoch,w0,sample_std"
    assert read(log.path) == [{"step": "8", "epoch": "1", "w0": "0.1", "sample_std": ""},
                              {"step": "16", "epoch": "2", "w0": "0.2", "sample_std": "0.25"},
                              {"step": "24", "epoch": "3", "w0": "", "sample_std": "0.3"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epochs.csv"]  # rewritten whole, no part file left


def test_rows_with_the_same_keys_are_written_byte_for_byte_as_before(tmp_path):
    rows = [{"step": 20 * i, "epoch": i, "loss": 1 / i, "lr": 1e-4} for i in range(1, 5)]
    log = CsvLog(tmp_path / "log.csv")
    for row in rows:
        log.write(row)
    want = io.StringIO(newline="")
    w = csv.DictWriter(want, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    assert log.path.read_bytes() == want.getvalue().encode("utf-8")


def test_a_trainer_logging_some_losses_on_some_steps_reads_back_under_their_names(tmp_path):
    from tests.test_loop import ToyTask
    from training.loop import LoopConfig, run

    class Sched(ToyTask):
        def step(self, batch, ctx):
            out = super().step(batch, ctx)
            return {**out, "every_2nd": 1.0} if ctx.step % 40 == 19 else out  # logged as step 20, 60…

        def end_epoch(self, epoch, ctx):
            return {**super().end_epoch(epoch, ctx), **({"extra": 7.0} if epoch >= 1 else {})}

    run(Sched(), LoopConfig(tmp_path, epochs=3, batch_size=2, threads=1))  # 32 steps an epoch, a row each 20
    steps = read(tmp_path / "log.csv")
    assert [r["every_2nd"] for r in steps] == ["1.0" if int(r["step"]) % 40 == 20 else "" for r in steps]
    assert all(float(r["loss"]) >= 0 and None not in r for r in steps)
    epochs = read(tmp_path / "epochs.csv")
    assert [r["extra"] for r in epochs] == ["", "7.0", "7.0"] and all(None not in r for r in epochs)
