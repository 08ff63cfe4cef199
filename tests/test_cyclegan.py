"""CycleGAN trainer: domain composition, one smoke-preset step, export parity, card, exact resume, errors."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import main
from inference.datasets import Sample
from inference.errors import BiasMirrorError
from inference.file_identity import file_hash
from inference.models import load_model, read_card
from training.data.compose import compose, product_target
from training.data.domains import ENGINEER_MARGINALS, aging_domains, engineer_domains
from training.checkpoints import load_checkpoint
from training.nets.cyclegan import PRESETS, build_discriminator, build_generator
from training.tasks.cyclegan import CycleForward, ImagePool, JudgeForward, stream_pick

from .conftest import make_classifier, own_pattern

RACES = ("White", "Black", "Asian", "Indian", "Others")


def write_utk(root: Path, per_cell: int, ages=(25, 41, 63), genders=(0, 1), races=range(5)) -> Path:
    """A tiny UTKFace-style folder: gradient faces whose brightness follows the race code."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 60, 40, dtype=np.float32)[None, :, None]
    i = 0
    for g in genders:
        for r in races:
            for k in range(per_cell):
                base = 60 + 35 * r + rng.integers(0, 20, (40, 40, 3))
                img = np.clip(base + ramp + own_pattern(rng, 40), 0, 255).astype(np.uint8)
                age = ages[k % len(ages)]
                cv2.imwrite(str(root / f"{age}_{g}_{r}_20170101{i:09d}.jpg.chip.jpg"), img)
                i += 1
    return root


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    return write_utk(tmp_path_factory.mktemp("data") / "UTKFace", per_cell=14)


def train(out: Path, utk: Path, *extra: str) -> int:
    return main.main(["train", "cyclegan", "--dataset", f"utkface:{utk}", "--preset-domains", "engineer",
                      "--preset", "smoke", "--min-domain-size", "4", "--iters-per-epoch", "1",
                      "--n-epochs-decay", "0", "--sample-every", "2", "--eval-faces", "12", "--threads", "1",
                      "--cache", str(out.parent / "cache"), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, utk) -> Path:
    """Two smoke-preset steps, then export with a classifier for ΔP(female)."""
    d = tmp_path_factory.mktemp("run")
    clf = make_classifier(d / "clf.onnx", size=24)
    assert train(d / "run", utk, "--n-epochs", "2", "--classifier", str(clf), "--export-both") == 0
    return d / "run"


def test_engineer_target_is_hit_on_synthetic_labels():
    samples = [Sample(f"{g}{r}{i}.jpg", gender=g, race=r, age=30)
               for g in ("male", "female") for r in RACES for i in range(300)]
    target = product_target(ENGINEER_MARGINALS)
    assert sum(target.values()) == pytest.approx(1.0)
    assert target["male|White"] == pytest.approx(0.67 * 0.48)
    idx, comp = compose(samples, ("gender", "race"), "target", target, seed=0)
    n = len(idx)
    for cell, share in target.items():
        assert abs(comp.achieved_share[cell] - share) <= 1.0 / n + 1e-9, cell  # within one face of rounding


def test_engineer_domains_are_disjoint_and_balanced(utk):
    d = engineer_domains(f"utkface:{utk}", seed=0, min_size=4)
    assert not {s.path for s in d.a.train} & {s.path for s in d.b.train}
    assert len(set(d.a.composition.achieved.values())) == 1  # A is balanced over gender×race
    assert all(s.age >= 18 for s in d.a.train + d.b.train)
    assert d.b.composition.target is not None


def test_aging_domains_by_age(utk):
    d = aging_domains(f"utkface:{utk}", seed=0, min_size=4)
    assert all(20 <= s.age <= 35 for s in d.a.train) and all(s.age >= 60 for s in d.b.train)


def test_empty_or_small_domain_names_counts(tmp_path):
    only_men = write_utk(tmp_path / "men" / "UTKFace", per_cell=6, genders=(0,))
    with pytest.raises(BiasMirrorError, match="counts per cell"):
        engineer_domains(f"utkface:{only_men}", seed=0, min_size=1)  # B needs women
    full = write_utk(tmp_path / "all" / "UTKFace", per_cell=14)
    with pytest.raises(BiasMirrorError, match=r"fewer than --min-domain-size 1000.*counts per cell"):
        engineer_domains(f"utkface:{full}", seed=0, min_size=1000)
    with pytest.raises(BiasMirrorError, match="domain A is empty"):
        aging_domains(f"utkface:{write_utk(tmp_path / 'old' / 'UTKFace', per_cell=2, ages=(70,))}", 0, 1)


def test_networks_shapes():
    cfg = PRESETS["smoke"]
    g, d = build_generator(cfg), build_discriminator(cfg)
    x = torch.randn(2, 3, cfg.size, cfg.size)
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert d(x).shape[:2] == (2, 1)


def _grads(nets, outputs) -> list[torch.Tensor]:
    for net in nets:
        net.zero_grad(set_to_none=True)
    sum(o.square().mean() for o in outputs).backward()
    return [p.grad.clone() for net in nets for p in net.parameters()]


def test_stacked_passes_give_what_separate_calls_give():
    """One call per network on stacked inputs, as the step now makes: the same outputs and gradients."""
    torch.manual_seed(0)
    cfg = PRESETS["smoke"]
    G_A, G_B, D_A, D_B = build_generator(cfg), build_generator(cfg), build_discriminator(cfg), build_discriminator(cfg)
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    got = CycleForward(G_A, G_B)(a, b)
    got_grads = _grads((G_A, G_B), got)
    fake_B, fake_A = G_A(a), G_B(b)
    want = (fake_B, fake_A, G_B(fake_B), G_A(fake_A), G_A(b), G_B(a))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)
    for g, w in zip(got_grads, _grads((G_A, G_B), want), strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-3)
    pa, pb = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    got = JudgeForward(D_A, D_B)(a, pa, b, pb)
    want = (D_A(a), D_A(pa), D_B(b), D_B(pb))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_a_step_calls_each_network_twice_and_copies_no_views(tmp_path):
    """The launch count of a GPU step at batch 1: two calls per network (not three generator and three
    discriminator calls), and no CopySlices/AsStrided nodes from in-place activations on views."""
    from training.bench_train import cyclegan_task
    from training.loop import LoopConfig, make_context, place_modules

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    task = cyclegan_task(images, "smoke", 1, tmp_path)
    cpu = torch.device("cpu")
    place_modules(task, cpu)
    calls = {name: 0 for name in ("G_A", "G_B", "D_A", "D_B")}
    for name in calls:
        getattr(task, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    losses = task.step(cpu, make_context(LoopConfig(tmp_path, epochs=1, batch_size=1), cpu))
    assert calls == {"G_A": 2, "G_B": 2, "D_A": 2, "D_B": 2}
    assert all(np.isfinite(v) for k, v in losses.items() if k != "delta_ita")

    out = task.D_B(task.G_A(torch.rand(1, 3, 32, 32)))
    seen, todo = set(), [out.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            todo += [f for f, _ in fn.next_functions]
    names = {type(fn).__name__ for fn in seen}
    assert "ConvolutionBackward0" in names and not any("CopySlices" in n or "AsStrided" in n for n in names)


def test_the_step_networks_trace_into_one_graph_each(tmp_path):
    """--compile fuses (and with CUDA graphs replays) each traced graph whole: a graph break would split the
    step back into many launches."""
    from training.bench_train import cyclegan_task

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    task = cyclegan_task(images, "smoke", 1, tmp_path)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    for module, args in ((task.cycle, (a, b)), (task.judge, (a, a, b, b))):
        explained = torch._dynamo.explain(module)(*args)
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def _pool_one_by_one(images: torch.Tensor, count: int, fakes: torch.Tensor, rng) -> tuple[torch.Tensor, int, bool]:
    """The reference pool: each fake in turn; also says whether a slot was drawn twice in this batch."""
    out, drawn = [], []
    for img in fakes:
        if count < len(images):
            images[count] = img
            count += 1
            out.append(img)
        elif rng.random() < 0.5:
            j = int(rng.integers(len(images)))
            drawn.append(j)
            out.append(images[j].clone())
            images[j] = img
        else:
            out.append(img)
    return torch.stack(out), count, len(drawn) != len(set(drawn))


def test_pool_hands_out_what_taking_fakes_one_by_one_would():
    torch.manual_seed(0)
    pool, ref_images, ref_count = ImagePool(4, 8), torch.zeros(4, 3, 8, 8), 0
    rng, ref_rng = np.random.default_rng(5), np.random.default_rng(5)
    repeats = 0
    for bs in (3, 3, 5, 1, 6, 6, 2):  # fills up mid-batch, then draws slots, some twice in one batch
        fakes = torch.randn(bs, 3, 8, 8)
        got = pool.query(fakes, rng)
        want, ref_count, repeated = _pool_one_by_one(ref_images, ref_count, fakes, ref_rng)
        repeats += repeated
        assert torch.equal(got, want)
        assert torch.equal(pool.images, ref_images) and int(pool.count) == ref_count
    assert repeats > 0  # the case where a slot written in this batch is drawn again was exercised

    # the pool fills up in a batch and then hands out a fake written earlier in that same batch
    handed_back = 0
    for seed in range(12):
        small, small_ref = ImagePool(2, 8), torch.zeros(2, 3, 8, 8)
        first = torch.randn(1, 3, 8, 8)
        small.query(first, np.random.default_rng(seed))
        _, small_count, _ = _pool_one_by_one(small_ref, 0, first, np.random.default_rng(seed))
        fakes = torch.randn(2, 3, 8, 8)
        got = small.query(fakes, np.random.default_rng(seed))
        want, _, _ = _pool_one_by_one(small_ref, small_count, fakes, np.random.default_rng(seed))
        assert torch.equal(got, want) and torch.equal(small.images, small_ref)
        handed_back += torch.equal(got[1], fakes[0])
    assert handed_back > 0

    # a pool that has run, then loads a checkpoint, continues from the loaded count, not its own
    other = ImagePool(4, 8)
    other.query(torch.randn(2, 3, 8, 8), np.random.default_rng(1))
    other.load_state_dict(pool.state_dict())
    fakes = torch.randn(3, 3, 8, 8)
    assert torch.equal(other.query(fakes, np.random.default_rng(9)), pool.query(fakes, np.random.default_rng(9)))
    assert torch.equal(other.images, pool.images)


def test_streams_cover_each_domain_and_differ():
    a = stream_pick(10, 0, 1, np.arange(20))
    assert sorted(a[:10]) == list(range(10)) and sorted(a[10:]) == list(range(10))
    assert not np.array_equal(a[:10], stream_pick(10, 0, 2, np.arange(10)))


def test_training_writes_grid_drift_and_log(trained):
    assert (trained / "samples" / "latest.png").exists()
    grid = cv2.imread(str(trained / "samples" / "step_0000002.png"))
    assert grid.shape[0] > 6 * PRESETS["smoke"].size  # six rows
    rows = list(csv.DictReader(open(trained / "drift.csv")))
    assert rows and rows[0]["step"] == "2" and int(rows[0]["n_faces"]) > 0


def test_export_parity_loads_as_filter_and_card_round_trips(trained):
    path = trained / "filter_A2B.onnx"
    filt = load_model(path, "filter")
    size = PRESETS["smoke"].size
    out = filt.apply(np.full((3, size, size, 3), 128, np.uint8))
    assert out.shape == (3, size, size, 3) and out.dtype == np.uint8
    card = read_card(path)
    assert card.kind == "filter" and card.direction.startswith("A->B")
    assert card.training["iterations"] == 2 and card.training["preset"] == "smoke"
    assert card.training["domain_b"]["composition"]["target"]["male|White"] == pytest.approx(0.67 * 0.48)
    assert "commit" in card.training and "date" in card.training and "train cyclegan" in card.training["command"]
    m = card.metrics
    assert m["parity_max_abs_grey_levels"] <= 1.0
    assert m["cycle_l1"] >= 0 and "mean_abs_delta_ita" in m and "mean_delta_ita" in m
    assert 0 <= m["classifier"]["mean_abs_delta_p_female"] <= 1
    # the classifier is named by content: the file at its path may be replaced by a retrained model
    assert m["classifier"]["sha256"] == file_hash(trained.parent / "clf.onnx")
    assert m["sample_grid"]["faces_A"] > 0 and m["sample_grid"]["faces_B"] > 0
    assert read_card(trained / "filter_B2A.onnx").direction.startswith("B->A")
    assert path.stat().st_size < 20 * 2**20


def test_resume_is_exact_to_the_step(tmp_path, utk, trained):
    # `trained` stopped after 2 steps; resume a copy of it to 4, and compare with 4 straight steps.
    import shutil

    resumed = tmp_path / "resumed"
    shutil.copytree(trained, resumed)
    assert train(resumed, utk, "--resume", "--n-epochs", "4") == 0
    straight = tmp_path / "straight"
    assert train(straight, utk, "--n-epochs", "4") == 0
    a, b = load_checkpoint(resumed), load_checkpoint(straight)
    assert a["step"] == b["step"] == 4
    assert a["optimizers"]["G"]["state"][0]["step"] == 4  # Adam's counters continued, not restarted
    assert a["optimizers"]["D"]["state"][0]["step"] == 4
    for name in ("G_A", "D_B", "pool_A"):
        for k, v in a["modules"][name].items():
            assert torch.allclose(v.float(), b["modules"][name][k].float(), atol=1e-6), (name, k)
    assert read_card(resumed / "filter_A2B.onnx").training["iterations"] == 4


def test_help_works(capsys):
    with pytest.raises(SystemExit) as exc:
        main.main(["train", "cyclegan", "--help"])
    assert exc.value.code == 0
    assert "--preset-domains" in capsys.readouterr().out


def test_drift_measures_each_face_as_measure_pair_does():
    """The training drift log measures a batch at a time; it must say what the pipeline's per-face pairing says."""
    from inference.skin import measure_pair
    from tests.conftest import utk_images
    from training.tasks.cyclegan_report import delta_ita

    faces = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (64, 64)) for p in utk_images(12)])
    darker = (faces * 0.85).astype(np.uint8)
    darker[3] = 128  # a grey face: not measurable, NaN
    want = [measure_pair(o, f)[2].delta_ita for o, f in zip(faces, darker)]
    got = delta_ita(faces, darker)
    assert np.isnan(got[3]) and want[3] is None
    mine = [g for i, g in enumerate(got) if i != 3]
    assert mine == pytest.approx([w for i, w in enumerate(want) if i != 3], abs=1e-9) and all(g < 0 for g in mine)


def test_a_resume_refuses_settings_that_differ_from_its_checkpoint(tmp_path, utk, capsys):
    """--preset, --dataset, --preset-domains, --iters-per-epoch and --lr used to be replaced by the checkpoint's."""
    run = tmp_path / "run"
    assert train(run, utk, "--n-epochs", "3", "--max-steps", "1") == 0
    counts = load_checkpoint(run)["data"]  # what a resume checks the domains against
    assert set(counts) == {"domain A images", "domain B images"} and min(counts.values()) >= 4
    other = tmp_path / "other"
    other.mkdir()
    capsys.readouterr()
    code = main.main(["train", "cyclegan", "--dataset", f"utkface:{other}", "--preset-domains", "aging", "--preset", "cpu",
                      "--iters-per-epoch", "5", "--lr", "1e-3", "--threads", "1", "--cache", str(tmp_path / "cache"),
                      "--out", str(run), "--resume"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {run / 'last.pt'}: ")
    for said in ("--preset cpu differs from the checkpoint's smoke",
                 f"--dataset utkface:{other} differs from the checkpoint's utkface:{utk}",
                 "--preset-domains aging differs from the checkpoint's engineer",
                 "--iters-per-epoch 5 differs from the checkpoint's 1", "--lr 0.001 differs from the checkpoint's 0.0002"):
        assert said in err
    assert load_checkpoint(run)["step"] == 1
    # unchanged settings, and what a resume may change, are accepted
    assert train(run, utk, "--resume", "--max-steps", "1", "--sample-every", "0", "--checkpoint-every", "7") == 0
    assert load_checkpoint(run)["step"] == 2 and load_checkpoint(run)["config"]["sample_every"] == 0


def test_a_resume_that_would_rewrite_the_schedule_already_trained_is_refused(tmp_path, utk, trained, capsys):
    """A finished run resumed with a shorter schedule used to re-export a card saying 'iterations 2' and a schedule
    of 1 + 0 epochs. A resume may only lengthen the constant-LR phase while the run is still in it; the card keeps
    saying what was trained."""
    import shutil

    done = tmp_path / "done"
    shutil.copytree(trained, done)  # 2 + 0 epochs of 1 step, finished
    card = read_card(done / "filter_A2B.onnx").training
    assert train(done, utk, "--resume", "--n-epochs", "1") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n-epochs 1 would end the constant learning rate before the 2 epoch(s)" in err
    assert train(done, utk, "--export-only", "--n-epochs", "3") == 2
    assert "--export-only exports the run as it was trained" in capsys.readouterr().err
    assert read_card(done / "filter_A2B.onnx").training == card and load_checkpoint(done)["step"] == 2

    decaying = tmp_path / "decaying"  # 1 + 1 epochs, stopped inside the decay
    assert train(decaying, utk, "--n-epochs", "1", "--n-epochs-decay", "1", "--max-steps", "2") == 0
    capsys.readouterr()
    assert train(decaying, utk, "--resume", "--n-epochs", "1", "--n-epochs-decay", "3") == 2
    assert "would change the learning rate of epochs already trained" in capsys.readouterr().err
    assert train(decaying, utk, "--resume", "--n-epochs", "1", "--n-epochs-decay", "1", "--max-steps", "1") == 0
    assert load_checkpoint(decaying)["step"] == 2  # the same schedule, given again: resumed (it had nothing left)

    early = tmp_path / "early"  # 3 + 0 epochs, stopped in the first: shorter was accepted though the help says longer
    assert train(early, utk, "--n-epochs", "3", "--max-steps", "1") == 0
    capsys.readouterr()
    assert train(early, utk, "--resume", "--n-epochs", "2") == 2
    assert "--n-epochs 2 would shorten the checkpoint's constant learning rate (3 + 0 epochs)" in capsys.readouterr().err


def test_a_resume_keeps_the_filters_name_unless_told_another(tmp_path, utk):
    """A resume without --name used to rename the filter after its run folder."""
    run = tmp_path / "named"
    assert train(run, utk, "--n-epochs", "2", "--name", "my-filter", "--max-steps", "1") == 0
    assert train(run, utk, "--resume", "--n-epochs", "2") == 0
    assert read_card(run / "filter_A2B.onnx").name == "my-filter"


def test_ema_exports_and_measures_the_weight_average_and_resumes_it_exactly(tmp_path, utk, capsys):
    """--ema keeps a moving average of each generator's weights beside the trained ones; the filter exported, its
    card's metrics and the sample grid are the average's, drift.csv logs both curves, and a resume carries the
    average on from the checkpoint, not from the weights it resumes with."""
    from training.nets.cyclegan import preset as net_preset
    from training.tasks.cyclegan import to_net, to_uint8

    run = tmp_path / "ema"
    assert train(run, utk, "--n-epochs", "4", "--ema", "0.5", "--max-steps", "2") == 0
    assert train(run, utk, "--resume", "--n-epochs", "4") == 0
    straight = tmp_path / "straight"
    assert train(straight, utk, "--n-epochs", "4", "--ema", "0.5") == 0
    a, b = load_checkpoint(run), load_checkpoint(straight)
    for name in ("ema_G_A", "ema_G_B"):
        assert int(a["modules"][name]["n_averaged"]) == 4
        for k, v in a["modules"][name].items():
            assert torch.allclose(v.float(), b["modules"][name][k].float(), atol=1e-6), (name, k)

    def generator(weights: dict) -> torch.nn.Module:
        net = build_generator(net_preset("smoke")).eval()
        net.load_state_dict(weights)
        return net

    trained_A = generator(a["modules"]["G_A"])
    averaged_A = generator({k.removeprefix("module."): v for k, v in a["modules"]["ema_G_A"].items()
                            if k.startswith("module.")})
    size = PRESETS["smoke"].size
    faces = np.random.default_rng(0).integers(0, 256, (4, size, size, 3), dtype=np.uint8)
    exported = load_model(run / "filter_A2B.onnx", "filter").apply(faces).astype(int)
    with torch.no_grad():
        want = to_uint8(averaged_A(to_net(torch.from_numpy(faces)))).astype(int)
        last = to_uint8(trained_A(to_net(torch.from_numpy(faces)))).astype(int)
    assert np.abs(exported - want).max() <= 1
    assert np.abs(exported - last).max() > 1  # the average is not the last weights (decay 0.5 over 4 steps)

    card = read_card(run / "filter_A2B.onnx")
    assert card.training["ema"]["decay"] == 0.5 and card.training["ema"]["updates"] == 4
    assert "moving average" in card.method
    rows = list(csv.DictReader(open(run / "drift.csv")))
    assert [r["step"] for r in rows] == ["2", "4"] and "ema_mean_delta_ita" in rows[0]

    capsys.readouterr()
    assert train(run, utk, "--resume", "--n-epochs", "4", "--ema", "0.9") == 2
    assert "--ema 0.9 differs from the checkpoint's 0.5" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "-1", "nan", "x"])
def test_ema_decay_must_lie_between_0_and_1(tmp_path, utk, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        train(tmp_path / "run", utk, "--ema", bad)
    said = "'x' is not a number" if bad == "x" else f"must be above 0 and below 1, got {bad}"  # 1.5 said "at most 1"
    assert exc.value.code == 2 and f"argument --ema: {said}" in capsys.readouterr().err


# --- found by a review of the trainer (2026-12-06) -------------------------------------------------------------------

def test_a_plain_resume_keeps_the_runs_export_and_measurement_options(tmp_path, utk, capsys):
    """The stop message says 'continue with --resume', and a plain resume dropped --classifier, --export-both,
    --export-to and --eval-faces: no B→A filter, no copy, a card without the ΔP(female) its command promised."""
    clf = make_classifier(tmp_path / "clf.onnx", size=24)
    run, copy = tmp_path / "run", tmp_path / "shipped" / "f.onnx"
    assert train(run, utk, "--n-epochs", "2", "--classifier", str(clf), "--export-both", "--export-to", str(copy),
                 "--eval-faces", "6", "--lr", "0.001", "--max-steps", "1") == 0
    capsys.readouterr()
    assert main.main(["train", "cyclegan", "--out", str(run), "--resume", "--threads", "1",
                      "--cache", str(tmp_path / "cache")]) == 0
    assert "as the run last ran: --classifier" in capsys.readouterr().out
    card = read_card(run / "filter_A2B.onnx")
    assert "classifier" in card.metrics and card.metrics["n_faces"] <= 6
    assert (run / "filter_B2A.onnx").exists() and copy.exists()
    assert "Adam 0.001 β1 0.5" in card.method  # it said 2e-4 whatever --lr was
    # the classifier a resume carries is checked against --export-to too (it had been replaced by the filter)
    before = clf.read_bytes()
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--export-to", str(clf),
                      "--cache", str(tmp_path / "cache")]) == 2
    assert clf.read_bytes() == before
    trained_on = load_checkpoint(run)["data"]  # the images read and trained on, which the card's counts now are
    assert [card.training[f"domain_{d}"]["n_train"] for d in "ab"] == [trained_on["domain A images"],
                                                                       trained_on["domain B images"]]


def test_a_plain_resume_decodes_into_the_runs_cache_or_none(tmp_path, utk, capsys, monkeypatch):
    """A run started with --cache elsewhere (or '' for none) decoded its faces again into the default cache when
    resumed plainly: several GB at 256 px in the home folder the user had kept it out of."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))  # the default cache, this test's own
    from inference.user_dirs import default_cache_dir

    default = default_cache_dir() / "faces"
    run = tmp_path / "run"  # train() gives --cache tmp_path/cache
    assert train(run, utk, "--n-epochs", "2", "--max-steps", "1") == 0
    assert any((tmp_path / "cache").iterdir())
    shutil.rmtree(tmp_path / "cache")
    capsys.readouterr()
    assert main.main(["train", "cyclegan", "--out", str(run), "--resume", "--threads", "1", "--max-steps", "2"]) == 0
    assert f"--cache {(tmp_path / 'cache').resolve()}" in capsys.readouterr().out
    assert any((tmp_path / "cache").iterdir()) and not default.exists()
    bare = tmp_path / "bare"
    assert train(bare, utk, "--n-epochs", "2", "--max-steps", "1", "--cache", "") == 0
    assert main.main(["train", "cyclegan", "--out", str(bare), "--resume", "--threads", "1"]) == 0
    assert not default.exists()


def test_folder_domains_count_a_photo_once_and_may_not_nest(tmp_path, utk):
    import shutil

    from training.data.domains import folder_domains

    a, b = tmp_path / "A", tmp_path / "B"
    a.mkdir(), b.mkdir()
    faces = sorted(utk.iterdir())
    for p in faces[:12]:
        shutil.copy(p, a / p.name)
    for p in faces[12:24]:
        shutil.copy(p, b / p.name)
    for i in range(3):  # one photograph under three more names
        shutil.copy(faces[0], a / f"copy{i}.jpg")
    d = folder_domains(str(a), str(b), 0, 1)
    held = [s for s in (*d.a.train, *d.a.val, *d.a.test)]
    assert len(held) == 12  # the copies count once, in the split of the first
    (a / "inner").mkdir()
    for p in faces[24:30]:
        shutil.copy(p, a / "inner" / p.name)
    with pytest.raises(BiasMirrorError, match="one domain folder lies inside the other"):
        folder_domains(str(a), str(a / "inner"), 0, 1)


# --- found by a review of the trainer (2026-12-07) -------------------------------------------------------------------

def train_folders(out: Path, a: Path, b: Path, *extra: str) -> int:
    return main.main(["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset", "smoke",
                      "--min-domain-size", "4", "--iters-per-epoch", "1", "--n-epochs", "1", "--n-epochs-decay", "0",
                      "--sample-every", "0", "--eval-faces", "12", "--threads", "1",
                      "--cache", str(out.parent / "cache"), "--out", str(out), *extra])


def two_folders(root: Path, utk: Path, a_split: str | None = None) -> tuple[Path, Path]:
    """Folders A and B of 30 faces each; with ``a_split``, A's labels.csv puts all of A in that split."""
    import shutil

    faces = sorted(utk.iterdir())
    a, b = root / "A", root / "B"
    for folder, some in ((a, faces[:30]), (b, faces[30:60])):
        folder.mkdir(parents=True)
        for p in some:
            shutil.copy(p, folder / p.name)
    if a_split:
        (a / "labels.csv").write_text("file,split\n" + "".join(f"{p.name},{a_split}\n" for p in faces[:30]))
    return a, b


def test_a_domain_without_test_faces_exports_a_card_whose_metrics_say_not_measured(tmp_path, utk, caplog):
    """Domain A without test faces crashed after export (np.concatenate of no batch): a card without metrics, no
    --export-to copy, and a run that --resume and --export-only crashed the same way."""
    a, b = two_folders(tmp_path, utk, a_split="train")
    run, copy = tmp_path / "run", tmp_path / "shipped" / "f.onnx"
    assert train_folders(run, a, b, "--export-to", str(copy)) == 0
    m = read_card(run / "filter_A2B.onnx").metrics
    assert m["n_faces"] == 0 and m["mean_delta_ita"] is None and m["cycle_l1"] is None
    assert "no held-out faces" in m["note"] and "not measured" in m["note"]
    assert any("no held-out faces" in r.getMessage() for r in caplog.records)
    assert copy.exists()
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--cache", str(tmp_path / "cache")]) == 0


def test_export_only_refuses_training_data_that_changed_as_a_resume_does(tmp_path, utk, capsys):
    """--export-only wrote a card counting a domain's images of today for weights trained on fewer."""
    import shutil

    a, b = two_folders(tmp_path, utk)
    run = tmp_path / "run"
    assert train_folders(run, a, b, "--n-epochs", "2", "--max-steps", "1") == 0
    for p in sorted(utk.iterdir())[60:80]:
        shutil.copy(p, a / p.name)
    capsys.readouterr()
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--cache", str(tmp_path / "cache")]) == 2
    assert "the training data is not what this run started on (domain A images" in capsys.readouterr().err
    assert not (run / "filter_A2B.onnx").exists()


def test_split_rule_counts_each_file_once_and_says_which_kept_their_copies_split():
    from inference.datasets.splits import split_rule

    a, b, c = Sample("a.jpg"), Sample("b.jpg", partition="test"), Sample("c.jpg", partition="train")
    assert split_rule([a, b, c, b], with_copies={"b.jpg"}) == (
        "the dataset's own split labels for 1 of 3 images, a stable hash of file name, 80/10/10 for the rest, "
        "except 1 of 3 images of a photograph stored more than once, each kept in one split with its copies "
        "(the earliest any copy was in)")
    assert split_rule([a, b], with_copies={"b.jpg"}).startswith("a stable hash of file name, 80/10/10, except 1 of 2 ")


def test_a_utkface_cards_split_names_no_split_labels_and_counts_distinct_files(tmp_path):
    """UTKFace has no split labels: the card called the split its copy-merging gave copies "the dataset's own split
    labels", and counted domain B's val faces (also domain A's) twice."""
    import shutil

    from inference.datasets import split_of
    from training.tasks.cyclegan_report import split_text

    root = write_utk(tmp_path / "UTKFace", per_cell=14)
    source = next(p for p in sorted(root.iterdir()) if split_of(Sample(str(p))) == "test")
    twin = next(n for i in range(1000) if split_of(Sample(n := f"25_0_0_29990101{i:09d}.jpg.chip.jpg")) == "test")
    shutil.copy(source, root / twin.replace("25_0_0", "_".join(source.name.split("_")[:3])))
    d = engineer_domains(f"utkface:{root}", seed=0, min_size=4)
    listed = [s.path for x in (d.a, d.b) for s in (*x.train, *x.val, *x.test)]
    assert len(listed) > len(set(listed))  # B's val faces are A's too
    assert split_text(d) == (f"train split (a stable hash of file name, 80/10/10, except 1 of {len(set(listed))} "
                             "images of a photograph stored more than once, each kept in one split with its copies "
                             "(the earliest any copy was in)); metrics on the test split")


def test_the_engineer_recipe_on_faces_without_ages_says_it_needs_them(tmp_path, utk):
    """A folder labelled file,gender,race was told "domain A is empty: no training faces match it"."""
    import shutil

    photos = tmp_path / "lab"
    photos.mkdir()
    rows = []
    for p in sorted(utk.iterdir())[:20]:
        shutil.copy(p, photos / p.name)
        g, r = p.name.split("_")[1:3]
        rows.append(f"{p.name},{('male', 'female')[int(g)]},{RACES[int(r)]}")
    (photos / "labels.csv").write_text("file,gender,race\n" + "\n".join(rows) + "\n")
    with pytest.raises(BiasMirrorError, match=r"needs each face's gender, race and age, and keeps only adults "
                                              r"\(age ≥ 18\): none of this dataset's 20 faces is one \(20 have no "
                                              r"age\); give it an age column"):
        engineer_domains(f"folder:{photos}", 0, 1)


def test_the_cards_held_out_shifts_are_also_given_by_gender_and_race(trained):
    """ΔITA by race alone and ΔP(female) overall hid opposite shifts of the women and men of one race."""
    from training.tasks.cyclegan import build_domains
    from training.tasks.cyclegan_report import delta_ita, held_out_people, p_female

    card = read_card(trained / "filter_A2B.onnx")
    m, t = card.metrics, card.training
    domains = build_domains({"seed": t["seed"], "min_domain_size": 4, "recipe": "engineer", "dataset": t["dataset"]})
    faces, people = held_out_people(domains, m["n_faces"], t["seed"], card.input_size[0], None)
    fake = load_model(trained / "filter_A2B.onnx", "filter").apply(faces)
    d = delta_ita(faces, fake)
    clf = load_model(trained.parent / "clf.onnx", "classifier")
    dp = p_female(clf, fake) - p_female(clf, faces)
    cells = [f"{s.gender}|{s.race}" for s in people]
    assert set(m["by_gender_race"]) == set(cells) and len(set(cells)) > len({s.race for s in people})
    for cell, got in m["by_gender_race"].items():
        mask = np.array([c == cell for c in cells])
        ok = d[mask][~np.isnan(d[mask])]
        assert got["n"] == mask.sum() and got["n_skin_measured"] == len(ok)
        assert got["mean_delta_ita"] == (pytest.approx(ok.mean(), abs=1e-4) if len(ok) else None)
        assert got["mean_delta_p_female"] == pytest.approx(dp[mask].mean(), abs=1e-4)
    races = [s.race for s in people]
    assert {r: v["n"] for r, v in m["by_race"].items()} == {r: races.count(r) for r in set(races)}  # kept as it was


def test_export_to_a_domains_image_is_refused_given_or_carried_by_the_checkpoint(tmp_path, utk, capsys):
    """--export-only --export-to onto an image of a domain the checkpoint names overwrote that image with the filter."""
    a, b = two_folders(tmp_path, utk)
    run = tmp_path / "run"
    image = sorted(a.iterdir())[0]
    assert train_folders(run, a, b, "--export-to", str(image)) == 2  # given: refused before training
    assert "an input folder" in capsys.readouterr().err
    assert train_folders(run, a, b) == 0
    before = image.read_bytes()
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--export-to", str(image),
                      "--cache", str(tmp_path / "cache")]) == 2
    assert "an input folder" in capsys.readouterr().err and image.read_bytes() == before


def test_export_only_card_names_the_export_command_its_commit_and_date_belong_to(tmp_path, utk):
    """A card written by --export-only kept the training command but took the export's commit and date, so it
    read as if those weights were trained by that commit; it now names the export that wrote it."""
    from inference.card_markdown import card_markdown

    a, b = two_folders(tmp_path, utk)
    run = tmp_path / "run"
    assert train_folders(run, a, b) == 0
    assert "exported_by" not in read_card(run / "filter_A2B.onnx").training
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--cache", str(tmp_path / "cache")]) == 0
    card = read_card(run / "filter_A2B.onnx")
    assert "--export-only" in card.training["exported_by"] and "--export-only" not in card.training["command"]
    assert f"exported again from its checkpoint: `{card.training['exported_by']}`" in card_markdown(card, "f.onnx", 1.0)


def test_a_card_written_on_resume_or_export_only_records_the_dataset_as_typed(tmp_path, utk, monkeypatch):
    """A resume or --export-only made the checkpoint's relative dataset path absolute to read it, and the card took
    that: the shipped filter's card, and every audit report quoting it, carried this machine's path. The card
    names the folders as typed, and records where they are (dataset_root) as the classifier's card does."""
    import os

    a, b = two_folders(tmp_path, utk)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main.main(["train", "cyclegan", "--domain-a", a.name, "--domain-b", b.name, "--preset", "smoke",
                      "--min-domain-size", "4", "--iters-per-epoch", "2", "--n-epochs", "1", "--n-epochs-decay", "0",
                      "--sample-every", "0", "--eval-faces", "8", "--threads", "1", "--cache", "", "--out", "run"]) == 0
    typed, roots = f"{a.name} | {b.name}", f"{os.path.abspath(a)} | {os.path.abspath(b)}"
    training = read_card(run / "filter_A2B.onnx").training
    assert (training["dataset"], training["dataset_root"]) == (typed, roots)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--cache", ""]) == 0
    training = read_card(run / "filter_A2B.onnx").training
    assert (training["dataset"], training["dataset_root"]) == (typed, roots)


def test_a_dataset_typed_absolute_is_recorded_absolute_though_it_lies_below_where_the_run_started(tmp_path, utk,
                                                                                                   monkeypatch):
    """`cd /data/.. && train cyclegan --dataset utkface:/data/utk …` gave a card saying `utkface:utk`, relative to
    a folder the card does not name: a path below the start folder was cut down whether typed so or not."""
    import os

    monkeypatch.chdir(utk.parent.parent)
    spec = f"utkface:{utk.parent}"  # absolute, below the folder the run starts in
    run = tmp_path / "run"
    assert train(run, utk.parent, "--n-epochs", "1") == 0  # train() gives --dataset utkface:<absolute>
    card = read_card(run / "filter_A2B.onnx")
    assert card.training["dataset"] == spec and f"trained on {spec}" in card.summary()
    root = card.training["dataset_root"]
    assert os.path.isabs(root) and os.path.samefile(root, utk)
    monkeypatch.chdir(tmp_path)
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--eval-faces", "6", "--cache",
                      str(tmp_path / "cache")]) == 0
    assert read_card(run / "filter_A2B.onnx").training["dataset"] == spec


def test_the_typed_path_of_a_config_survives_resumes_and_is_read_from_the_command_in_old_ones():
    from training.resume import anchored, as_typed

    new = {"dataset": "utkface:../data", "started_in": "/home/a", "command": "python main.py train cyclegan"}
    once = anchored(new, ("dataset", "domain_a"))
    assert once["dataset"] == "utkface:/home/a/../data" and as_typed(once, "dataset") == "utkface:../data"
    twice = anchored({**once, "resumes": ["r"]}, ("dataset",))  # a resume saves the anchored config
    assert as_typed(twice, "dataset") == "utkface:../data"
    typed_absolute = {"dataset": "utkface:/home/a/data", "started_in": "/home/a"}
    assert as_typed(anchored(typed_absolute, ("dataset",)), "dataset") == "utkface:/home/a/data"
    # a checkpoint resumed before "typed" was kept holds the anchored path: the recorded command says what was typed
    old = {"dataset": "utkface:/home/a/data", "started_in": "/home/a", "resumes": ["r"],
           "command": "python main.py train cyclegan --dataset utkface:data --out 'my run'"}
    assert as_typed(anchored(old, ("dataset",)), "dataset") == "utkface:data"
    assert as_typed({**old, "command": "python main.py train cyclegan --dataset=utkface:d2"}, "dataset") == "utkface:d2"
    assert as_typed({"dataset": "utkface:/x"}, "dataset") == "utkface:/x"  # from before started_in: as it is


def test_a_copy_that_cannot_be_written_leaves_the_filter_in_place_and_advice_that_works(tmp_path, utk, capsys,
                                                                                      monkeypatch):
    """As for the classifier: a failed --export-to copy (/proc/g8.onnx) left no filter_A2B.onnx, and the advised
    `--resume` failed the same way. The run's files go in place; the resume advised, with --export-to '', exports
    again without the copy, and its card names it as the export's command, not as a resume."""
    import errno
    import shlex
    import shutil

    import inference.writing as writing

    copyfile = shutil.copyfile

    def refused(src, dst, *args, **kwargs):
        if Path(dst).name == ".g8.onnx.new":
            raise PermissionError(errno.EACCES, "Permission denied", str(dst))
        return copyfile(src, dst, *args, **kwargs)

    monkeypatch.setattr(writing.shutil, "copyfile", refused)
    run, copy = tmp_path / "run", tmp_path / "shipped" / "g8.onnx"
    assert train(run, utk, "--n-epochs", "1", "--export-to", str(copy)) == 2
    err = capsys.readouterr().err
    assert f"{copy}: could not write the copy of the exported filter (--export-to) (Permission denied)" in err
    assert f"{run / 'filter_A2B.onnx'} and {run / 'metrics.json'} were put in place all the same" in err
    assert (run / "filter_A2B.onnx").exists() and (run / "metrics.json").exists() and not copy.exists()
    advised = [shlex.split(c) for c in err.split("`")[1::2] if c.startswith("python main.py")]
    assert advised[-1][-3:] == ["--resume", "--export-to", ""], err
    assert main.main([*advised[-1][2:], "--eval-faces", "6", "--cache", str(tmp_path / "cache")]) == 0
    training = read_card(run / "filter_A2B.onnx").training
    assert training["resumes"] == [] and "--resume --export-to ''" in training["exported_by"]
    assert not copy.exists()


def test_export_only_with_resume_is_no_resume_and_a_run_stopped_early_says_so(tmp_path, utk):
    """`--export-only --resume` exported, and its card listed the export among the resumes as well as exported_by;
    a run stopped early and exported gave `iterations: 1` beside a schedule of 2 epochs, and no word that it had
    not finished."""
    run = tmp_path / "run"
    assert train(run, utk, "--n-epochs", "2", "--max-steps", "1") == 0
    assert main.main(["train", "cyclegan", "--out", str(run), "--export-only", "--resume", "--eval-faces", "6",
                      "--cache", str(tmp_path / "cache")]) == 0
    training = read_card(run / "filter_A2B.onnx").training
    assert training["resumes"] == [] and "--export-only --resume" in training["exported_by"]
    assert training["iterations"] == 1 and training["finished"] is False
    assert "before the schedule's end: 1 batches drawn of 2 epochs × 1, 1 of the 2 epochs complete" in training["stopped_early"]
    assert main.main(["train", "cyclegan", "--out", str(run), "--resume", "--cache", str(tmp_path / "cache")]) == 0
    training = read_card(run / "filter_A2B.onnx").training
    assert training["finished"] is True and "stopped_early" not in training and len(training["resumes"]) == 1


def test_a_stop_during_an_export_leaves_the_filter_in_place_whole_with_its_metrics(tmp_path, utk, capsys,
                                                                                    monkeypatch):
    """A Ctrl-C after `exported …/filter_A2B.onnx` (while held-out faces were measured) had put in place a filter
    whose card had `metrics: {}`, beside the metrics.json of the filter before, and said only "interrupted". The
    filters, the copy and metrics.json are put in place only once whole; the message says the filter in place is
    the one before and how to finish."""
    import training.tasks.cyclegan_report as report

    run, copy = tmp_path / "run", tmp_path / "shipped" / "f.onnx"
    assert train(run, utk, "--export-both", "--export-to", str(copy)) == 0
    files = [run / "filter_A2B.onnx", run / "filter_B2A.onnx", run / "metrics.json", copy]
    before = {p: p.read_bytes() for p in files}
    measure = report.grid_stats

    def stopped(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "grid_stats", stopped)
    capsys.readouterr()
    export_only = ["train", "cyclegan", "--out", str(run), "--export-only", "--eval-faces", "6", "--threads", "1",
                   "--cache", str(tmp_path / "cache")]
    assert main.main(export_only) == 130
    out, err = capsys.readouterr()
    assert "exported filter_A2B.onnx" in out  # the point the stop came after
    assert (f"{run / 'filter_A2B.onnx'} is still the model exported before, with its own card and metrics.json, "
            f"filter_B2A.onnx is as it was, and nothing was copied to {copy}; run the same command again") in err
    assert {p: p.read_bytes() for p in files} == before
    assert not [p.name for p in (*run.iterdir(), *copy.parent.iterdir()) if p.name.startswith(".")]
    monkeypatch.setattr(report, "grid_stats", measure)
    assert main.main(export_only) == 0
    card, record = read_card(run / "filter_A2B.onnx").metrics, json.loads((run / "metrics.json").read_text())
    assert card["n_faces"] == record["n_faces"] == 6 and card == record
    assert copy.read_bytes() == (run / "filter_A2B.onnx").read_bytes()


def test_a_resume_refuses_a_domain_face_swapped_for_another(tmp_path, utk, capsys):
    """A face of domain A replaced by another kept its count, and the resume went on drawing other faces at the
    positions it had drawn. The checkpoint keeps the faces' record and names what changed."""
    import shutil

    a, b = two_folders(tmp_path, utk)
    run = tmp_path / "run"
    assert train_folders(run, a, b, "--n-epochs", "2", "--max-steps", "1") == 0
    gone = sorted(a.iterdir())[0]
    new = a / ("x" + gone.name)
    shutil.move(gone, new)
    capsys.readouterr()
    assert main.main(["train", "cyclegan", "--out", str(run), "--resume", "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert (f"the training data is not what this run started on (1 file gone (e.g. {gone.name}), 1 new (e.g. "
            f"{new.name}))") in err
    assert load_checkpoint(run)["step"] == 1
