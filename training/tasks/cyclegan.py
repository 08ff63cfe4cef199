"""Trainer for CycleGAN face filters (Zhu et al. 2017), on the shared training loop.

The recipe is the reference implementation's: LSGAN losses, cycle weight
λ=10, identity weight 0.5·λ, a pool of 50 generated images for the
discriminators, Adam 2e-4 (β1 0.5), a constant learning rate then a linear
decay to zero. Augmentation is a horizontal flip only: no colour jitter,
because skin colour is exactly what the filter's drift is measured on.

An "epoch" is ``--iters-per-epoch`` batches (one pass over domain A by default; as many steps with one
process, 1/N of them with N), so a CPU run can have a real LR schedule without hour-long epochs.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import logging
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from inference.arg_checks import check_cache_dir, check_output_file, data_folders
from inference.cli_common import dataset_cache_dir
from inference.datasets import USER_CACHE, DatasetCache, Sample
from inference.errors import BiasMirrorError
from inference.program_name import program
from inference.file_identity import file_hash
from inference.user_dirs import default_cache_dir
from inference.writing import writing
from training.checkpoints import CHECKPOINT, load_checkpoint, renumber_old_logs
from training.csv_log import RUN_KEPT, CsvLog
from training.data.cache import load_images, unreadable_note
from training.data.domains import (Domains, aging_domains, check_readable_size, describe, engineer_domains,
                                   folder_domains)
from training.distributed import Dist
from training.epoch_batches import KeptRows
from training.loop import StepContext, run_for_cli
from training.nets.cyclegan import CycleGANConfig, build_discriminator, build_generator, preset
from training.resume import (DATA_PLACES, RUN_OPTIONS_THAT_MAY_CHANGE, Where, anchored, carry_outputs, checked_places,
                             command_line, given_options, model_name, record_resume, refuse_a_dataset_gone,
                             started_here)
from training.run_arguments import check_run_arguments, loop_config_from_args, new_run, run_folder_held
from training.same_data import check_data_recorded, check_same_data
# The command line, kept without torch so that main.py answers --help without loading it; its names are imported
# from here too.
from training.tasks.cyclegan_args import EVAL_FACES, SCHEDULE_DEFAULTS, add_arguments  # noqa: F401

log = logging.getLogger(__name__)
LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5  # × LAMBDA_CYCLE, as in the reference code
POOL_SIZE = 50
VAL_FACES = 16  # fixed faces for the sample grid (first 8) and the drift curve (all)
# The drift of the last sample point, which log.csv repeats until the next one. Kept in the run's config, which every
# checkpoint holds and a resume gives back (as it does "outputs" and "name"): a resumed run had logged NaN until its
# next sample point, and its log.csv differed from the uninterrupted run's.
LAST_DRIFT = "last_drift"
# The weight average's warm-up (--ema), as TensorFlow's ExponentialMovingAverage with num_updates has it: at a plain
# 0.999 the average of an 80-step run still held 92 % of its first step's weights, and a short run exported a filter
# practically untrained without a word. Kept in the run's config: a run begun before it came in (no such key) goes on
# averaging as it began, so that its resume is still the run it began as.
EMA_WARMUP = "min(decay, (1+n)/(10+n)) at the n-th update after the first, which copies the weights"
EMA_WARMUP_KEY = "ema_warmup"
# Above this share of the exported average held by the weights of the first step, the card and the console warn.
EMA_START_WEIGHT_LIMIT = 0.05


@dataclass
class DomainImages:
    """A domain's decoded faces at the training size (memory-mapped when cached)."""

    train: np.ndarray | KeptRows  # N×S×S×3 uint8 RGB
    val: np.ndarray | KeptRows  # the fixed validation batch
    samples: list[Sample] | None = None  # the training faces read, in the order of ``train`` (None: not known)


def decode(samples: list[Sample], size: int, cache_dir: Path | None, what: str,
           kept: list[Sample] | None = None) -> np.ndarray | KeptRows:
    """``samples`` decoded at ``size``, those that could not be read left out (and said); ``kept`` is given the
    samples read, in order. The faces read stay the cache's file mapping (KeptRows): one unreadable face had copied
    the rest out of it, into the private memory of every process that trains (each of torchrun's), where the mapped
    file's pages are shared by all; the step reads only the batch it draws."""
    paths = [s.path for s in samples]
    arr = load_images(paths, size, cache_dir)
    if arr.n_bad:
        log.warning("%s", unreadable_note(paths, arr.ok, what))
    if kept is not None:
        kept.extend(s for s, ok in zip(samples, arr.ok) if ok)
    return arr.images if arr.n_bad == 0 else KeptRows(arr.images, np.flatnonzero(arr.ok))


def fixed_val(samples: list[Sample], n: int, seed: int) -> list[Sample]:
    """The same n validation faces for the whole run (and its resumes)."""
    if not samples:
        return []
    pick = np.random.default_rng([seed, 7]).choice(len(samples), min(n, len(samples)), replace=False)
    return [samples[i] for i in sorted(pick)]


def build_images(domains: Domains, size: int, seed: int, cache_dir: Path | None) -> tuple[DomainImages, DomainImages]:
    out = []
    for label, d in (("A", domains.a), ("B", domains.b)):
        val = fixed_val(d.val, VAL_FACES, seed) or fixed_val(d.train, VAL_FACES, seed)
        read: list[Sample] = []
        out.append(DomainImages(decode(d.train, size, cache_dir, f"domain {label}", read),
                                decode(val, size, cache_dir, f"domain {label} val"), read))
    return out[0], out[1]


@lru_cache(maxsize=8)
def _pass_order(n: int, seed: int, salt: int, p: int) -> np.ndarray:
    return np.random.default_rng([seed, salt, p]).permutation(n)


def stream_pick(n: int, seed: int, salt: int, draws: np.ndarray) -> np.ndarray:
    """Index of the ``draws``-th image in a domain's endless shuffled stream.

    Each pass over the domain is its own seeded permutation; A and B use
    different salts, so their pairing is independent. Keyed by the global
    step (which every checkpoint stores), a resume draws exactly the images
    the uninterrupted run would have.
    """
    return np.array([_pass_order(n, seed, salt, int(g) // n)[int(g) % n] for g in draws], dtype=np.int64)


class ImagePool(nn.Module):
    """Shrivastava et al.'s history of generated images, kept in buffers so checkpoints carry it.

    The fill count is mirrored on the host: reading the buffer once per image
    made the CPU wait for the GPU several times a step. The draws, and so the
    images returned and stored, are those of taking the fakes one by one.
    """

    def __init__(self, size: int, image_size: int):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, 3, image_size, image_size))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self._count: int | None = None  # the host's copy of ``count``; None: read it once
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "_count", None))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Half the time the discriminator sees an older fake instead, which steadies training."""
        fakes = fakes.detach()
        n = int(self.count) if self._count is None else self._count
        # Decide on the host, one fake at a time as the paper's pool does; a slot written earlier in
        # this batch hands out that fake, not what the buffer held before.
        slot_holds: dict[int, int] = {}  # slot → index of the fake written there in this batch
        reads: list[int] = []  # slots handed out as they were before this batch
        picks: list[int] = []  # each output: a row of fakes, or len(fakes) + k for the k-th read
        for i in range(len(fakes)):
            if n < self.size:
                slot_holds[n] = i
                n += 1
                picks.append(i)
            elif rng.random() < 0.5:
                j = int(rng.integers(self.size))
                if j in slot_holds:
                    picks.append(slot_holds[j])
                else:
                    picks.append(len(fakes) + len(reads))
                    reads.append(j)
                slot_holds[j] = i
            else:
                picks.append(i)
        source = fakes
        if reads:  # read before any write below
            source = torch.cat([fakes, self.images[torch.tensor(reads, device=fakes.device)].to(fakes.dtype)])
        if slot_holds:
            slots = torch.tensor(list(slot_holds), device=fakes.device)
            self.images[slots] = fakes[torch.tensor(list(slot_holds.values()), device=fakes.device)].to(self.images.dtype)
        if n != self._count:
            self.count.fill_(n)
        self._count = n
        return fakes if picks == list(range(len(fakes))) else source[torch.tensor(picks, device=fakes.device)]


def to_net(x_uint8_nhwc: torch.Tensor) -> torch.Tensor:
    return x_uint8_nhwc.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def on_device(x_uint8_nhwc: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 faces as network input on ``device``. The bytes cross as uint8 (a quarter of float's),
    from pinned memory on a GPU: a copy from pageable memory first waits for the GPU to finish the
    previous step, which leaves it idle while the next step is launched."""
    if device.type == "cuda":
        x_uint8_nhwc = x_uint8_nhwc.pin_memory()  # from PyTorch's caching host allocator: cheap after the first
    return to_net(x_uint8_nhwc.to(device, non_blocking=True))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def ema_decay_at(decay: float, n: int, warmup: bool) -> float:
    """The decay of the moving average's n-th update after the first (which copies the weights)."""
    return min(decay, (1 + n) / (10 + n)) if warmup else decay


def ema_update(decay: float, warmup: bool):
    """AveragedModel's multi_avg_fn: moves the averages towards the weights by 1 − the update's decay. The update
    count is the average's own (n_averaged, kept in checkpoints), so a resume continues the warm-up, not restarts
    it."""

    @torch.no_grad()
    def update(averages: list[torch.Tensor], weights: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        # n_averaged read on the host, as AveragedModel.update_parameters reads it twice per update already; one
        # foreach kernel for all weights, as torch's get_ema_multi_avg_fn has
        torch._foreach_lerp_(averages, weights, 1.0 - ema_decay_at(decay, int(n_averaged), warmup))

    return update


def ema_start_weight(decay: float, updates: int, warmup: bool) -> float:
    """The share of an average of ``updates`` updates still held by the weights its first update copied: the
    product of the decays of the updates after it."""
    weight = 1.0
    for n in range(1, updates):
        d = ema_decay_at(decay, n, warmup)
        if d == decay:  # the warm-up is over: the rest at once (a long run averages hundreds of thousands of steps)
            return weight * decay ** (updates - n)
        weight *= d
    return weight


def linear_decay(n_epochs: int, n_epochs_decay: int):
    """LR factor: 1 for n_epochs, then linearly to ~0 over n_epochs_decay (reference 'linear' policy)."""

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)

    return factor


class CycleForward(nn.Module):
    """Every generator pass of one step in a single forward call.

    DistributedDataParallel expects one forward per backward; the generators run
    three times each per step (translate, close the cycle, identity), so they
    are wrapped together, not one by one. Each generator's translation and
    identity inputs go through it as one stacked batch: convolutions and
    InstanceNorm treat every image on its own, so this gives what two calls
    give, with half the kernel launches, which bound a GPU step at batch 1.
    """

    def __init__(self, G_A: nn.Module, G_B: nn.Module):
        super().__init__()
        self.G_A, self.G_B = G_A, G_B

    def forward(self, real_A: torch.Tensor, real_B: torch.Tensor):
        na, nb = len(real_A), len(real_B)
        fake_B, idt_B = self.G_A(torch.cat([real_A, real_B])).split([na, nb])
        fake_A, idt_A = self.G_B(torch.cat([real_B, real_A])).split([nb, na])
        rec_A, rec_B = self.G_B(fake_B), self.G_A(fake_A)
        return fake_B, fake_A, rec_A, rec_B, idt_B, idt_A


class JudgeForward(nn.Module):
    """Both discriminators on real and pooled fakes, in one forward call (see CycleForward); each
    judges its real and pooled images as one stacked batch (PatchGAN's InstanceNorm is per image)."""

    def __init__(self, D_A: nn.Module, D_B: nn.Module):
        super().__init__()
        self.D_A, self.D_B = D_A, D_B

    def forward(self, real_A, pooled_A, real_B, pooled_B):
        s_real_A, s_pool_A = self.D_A(torch.cat([real_A, pooled_A])).split([len(real_A), len(pooled_A)])
        s_real_B, s_pool_B = self.D_B(torch.cat([real_B, pooled_B])).split([len(real_B), len(pooled_B)])
        return s_real_A, s_pool_A, s_real_B, s_pool_B


class CycleGANTask:
    # each process keeps a pool of its own fakes, which a resume under torchrun gives back to it
    per_process_modules = ("pool_A", "pool_B")
    step_logs = ("drift.csv",)

    def __init__(self, a: DomainImages, b: DomainImages, net_cfg: CycleGANConfig, run_cfg: dict, out: Path,
                 domains: Domains | None = None):
        """``domains``: what ``a`` and ``b`` were decoded from, whose faces checkpoints list (data_faces)."""
        self.a, self.b, self.net_cfg, self.out, self.domains = a, b, net_cfg, out, domains
        self.config = {"net": net_cfg.to_dict(), **run_cfg}
        self.seed, self.bs = run_cfg["seed"], run_cfg["batch_size"]
        self.iters_per_epoch = run_cfg["iters_per_epoch"]
        self.sample_every = run_cfg["sample_every"]
        torch.manual_seed(self.seed)  # the loop seeds only after tasks are built; same seed, same initial weights
        self.G_A, self.G_B = build_generator(net_cfg), build_generator(net_cfg)  # A→B, B→A
        self.D_A, self.D_B = build_discriminator(net_cfg), build_discriminator(net_cfg)  # judge A, judge B
        self.pool_A, self.pool_B = ImagePool(POOL_SIZE, net_cfg.size), ImagePool(POOL_SIZE, net_cfg.size)
        lr, betas = run_cfg["lr"], (0.5, 0.999)
        # fused: one kernel for all weights instead of several per weight; at batch 1 a step is
        # bound by how many operations it launches, not by arithmetic
        self.opt_G = torch.optim.Adam(itertools.chain(self.G_A.parameters(), self.G_B.parameters()), lr=lr, betas=betas,
                                      fused=True)
        self.opt_D = torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr=lr, betas=betas,
                                      fused=True)
        decay = linear_decay(run_cfg["n_epochs"], run_cfg["n_epochs_decay"])
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, decay)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, decay)
        self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()
        # what the step calls; DistributedDataParallel around each under torchrun, torch.compile with --compile
        self.plain_cycle, self.plain_judge = CycleForward(self.G_A, self.G_B), JudgeForward(self.D_A, self.D_B)
        self.cycle: nn.Module = self.plain_cycle
        self.judge: nn.Module = self.plain_judge
        # Weight averages of the generators (--ema): at the cpu preset a generator's colour cast swings from
        # step to step with the adversarial game, and an average over the last ~1/(1−decay) steps is exported instead
        # of wherever the swing stood at the last one.
        self.ema_decay: float | None = run_cfg.get("ema")
        self.ema_A = self.ema_B = None
        self.ema_warmup = bool(run_cfg.get(EMA_WARMUP_KEY))
        if self.ema_decay:
            average = ema_update(self.ema_decay, self.ema_warmup)
            self.ema_A = AveragedModel(self.G_A, multi_avg_fn=average)
            self.ema_B = AveragedModel(self.G_B, multi_avg_fn=average)
        self.last_drift = float(run_cfg.get(LAST_DRIFT, float("nan")))
        self.config[LAST_DRIFT] = self.last_drift
        self._schedule_synced = False

    # --- what the loop asks for ---------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        averages = {"ema_G_A": self.ema_A, "ema_G_B": self.ema_B} if self.ema_decay else {}
        return {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B,
                "pool_A": self.pool_A, "pool_B": self.pool_B, **averages}

    def generators(self) -> tuple[nn.Module, nn.Module]:
        """A→B and B→A as exported and measured: the weight averages under --ema, else the trained weights."""
        if self.ema_decay:
            return self.ema_A.module, self.ema_B.module
        return self.G_A, self.G_B

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def wrap_for_training(self, wrap) -> None:
        # The frozen discriminators' calls in the generators' loss stay plain: under DistributedDataParallel
        # a module whose weights get no gradient in a step stalls the next all-reduce.
        # Always the plain modules, as the classifier wraps its net: wrapping what the step called last had wrapped
        # a wrapper, and the loop's release (wrap = identity) then handed back the DDP module it means to free.
        self.cycle, self.judge = wrap(self.plain_cycle), wrap(self.plain_judge)

    def schedulers(self):
        return {"G": self.sched_G, "D": self.sched_D}

    def data_counts(self) -> dict[str, int]:
        return {"domain A images": len(self.a.train), "domain B images": len(self.b.train)}

    def data_faces(self) -> list[tuple[str, ...]] | None:
        """Each face of both domains, kept in checkpoints: its path below its domain's root, its domain and split
        (the training faces those read, which the stream draws from by position), its gender and race (the mixes
        are composed over them, and the card's held-out metrics grouped by them). None where the task was built
        without its domains (``bench train``)."""
        listed = self._listed()
        if listed is None:
            return None
        return [(os.path.relpath(s.path, root) if root else s.path, role, str(s.gender), str(s.race))
                for role, root, s in listed]

    def image_paths(self) -> list[str]:
        """The file of each face ``data_faces`` lists: a resume checks how they are framed (``same_data``)."""
        return [s.path for _, _, s in self._listed() or []]

    def _listed(self) -> list[tuple[str, str | None, Sample]] | None:
        """(domain and split, the domain's root, sample) of each face of both domains; None without the domains."""
        if self.domains is None or self.a.samples is None or self.b.samples is None:
            return None
        return [(f"{label} {split}", d.root, s)
                for label, d, images in (("A", self.domains.a, self.a), ("B", self.domains.b, self.b))
                for split, samples in (("train", images.samples), ("val", d.val), ("test", d.test))
                for s in samples]

    def indices(self) -> np.ndarray:
        # Only the count matters: images are drawn from each domain's stream by
        # the global sample position (see stream_pick), so epochs need not align with A's size.
        return np.arange(self.iters_per_epoch * self.bs)

    def batch(self, idx: np.ndarray, device: torch.device) -> torch.device:
        return device  # the images depend on the sample position, which only step() sees

    def draw(self, first: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of stream positions first … first+bs-1 (the same images whatever the process count)."""
        draws = np.arange(first, first + self.bs)
        step = first // self.bs
        ia = stream_pick(len(self.a.train), self.seed, 1, draws)
        ib = stream_pick(len(self.b.train), self.seed, 2, draws)
        xa = torch.from_numpy(np.ascontiguousarray(self.a.train[ia]))
        xb = torch.from_numpy(np.ascontiguousarray(self.b.train[ib]))
        flips = np.random.default_rng([self.seed, 3, step]).random((2, self.bs)) < 0.5
        for x, f in ((xa, flips[0]), (xb, flips[1])):
            x[torch.from_numpy(f)] = x[torch.from_numpy(f)].flip(2)  # NHWC: dim 2 is width
        return on_device(xa, device), on_device(xb, device)

    def step(self, device: torch.device, ctx: StepContext) -> dict[str, float]:
        if not self._schedule_synced:
            self._sync_schedule(ctx.epoch)
        real_A, real_B = self.draw(ctx.samples + ctx.rank * self.bs, device)
        for m in (self.G_A, self.G_B, self.D_A, self.D_B):
            m.train()
        # Generators: fool both discriminators, close both cycles, keep colours on identity inputs.
        self._freeze(self.D_A, self.D_B)
        with ctx.autocast():
            fake_B, fake_A, rec_A, rec_B, idt_B, idt_A = self.cycle(real_A, real_B)
            idt_w = LAMBDA_CYCLE * LAMBDA_IDENTITY
            loss_idt = idt_w * (self.l1(idt_B, real_B) + self.l1(idt_A, real_A))
            # the frozen discriminators are called directly: no gradient reaches their weights
            loss_gan = self._lsgan(self.D_B(fake_B), True) + self._lsgan(self.D_A(fake_A), True)
            loss_cyc = LAMBDA_CYCLE * (self.l1(rec_A, real_A) + self.l1(rec_B, real_B))
            loss_G = loss_gan + loss_cyc + loss_idt
        self.opt_G.zero_grad(set_to_none=True)
        ctx.scaler.scale(loss_G).backward()
        ctx.scaler.step(self.opt_G)
        if self.ema_decay:
            self.ema_A.update_parameters(self.G_A)
            self.ema_B.update_parameters(self.G_B)
        # Discriminators: real vs a mix of current and pooled fakes, halved as in the paper.
        self._freeze(self.D_A, self.D_B, frozen=False)
        rng = np.random.default_rng([self.seed, 4, ctx.step] + ([ctx.rank] if ctx.rank else []))
        pooled_B, pooled_A = self.pool_B.query(fake_B, rng), self.pool_A.query(fake_A, rng)
        with ctx.autocast():
            s_real_A, s_pool_A, s_real_B, s_pool_B = self.judge(real_A, pooled_A, real_B, pooled_B)
            loss_D_B = 0.5 * (self._lsgan(s_real_B, True) + self._lsgan(s_pool_B, False))
            loss_D_A = 0.5 * (self._lsgan(s_real_A, True) + self._lsgan(s_pool_A, False))
        self.opt_D.zero_grad(set_to_none=True)
        ctx.scaler.scale(loss_D_A + loss_D_B).backward()
        ctx.scaler.step(self.opt_D)
        ctx.scaler.update()
        done = ctx.step + 1
        if ctx.is_main and self.sample_every and done % self.sample_every == 0:
            self.sample(done, ctx.device)
        # one transfer for all five: each .item() makes the CPU wait for the GPU
        losses = (loss_gan, loss_cyc, loss_idt, loss_D_A, loss_D_B)
        g_gan, cyc, idt, d_a, d_b = torch.stack([v.float() for v in losses]).detach().tolist()
        return {"G_gan": g_gan, "cycle": cyc, "idt": idt, "D_A": d_a, "D_B": d_b, "lr": self.sched_G.get_last_lr()[0],
                "delta_ita": self.last_drift}

    def end_epoch(self, epoch: int, ctx: StepContext) -> dict[str, float]:
        # read before stepping: after it, the scheduler holds the next epoch's (epochs.csv had said lr 0 for an
        # epoch trained at 2e-4)
        trained_at = self.sched_G.get_last_lr()[0]
        self.sched_G.step()
        self.sched_D.step()
        return {"lr": trained_at}

    def ema_start_weight(self) -> float:
        """The share of the exported averages still held by the generators' weights after the first step."""
        return ema_start_weight(self.ema_decay, int(self.ema_A.n_averaged), self.ema_warmup)

    def ema_warning(self) -> str | None:
        """What the console and the card say where the average exported is still mostly the first step's weights
        (a short run; or a run begun before the warm-up, whose average still holds them thousands of steps on)."""
        weight = self.ema_start_weight()
        if weight <= EMA_START_WEIGHT_LIMIT:
            return None
        fix = ("train longer, or with a lower --ema" if self.ema_warmup else
               "train longer, or start the run again: a run begun now has a warm-up")
        return (f"after {int(self.ema_A.n_averaged)} update(s) of --ema {self.ema_decay:g}, the exported average still "
                f"gives the weights of the first step {weight:.0%} of its weight: the filter is barely trained; {fix}")

    # --- helpers --------------------------------------------------------------
    def _sync_schedule(self, epoch: int) -> None:
        """Recompute the LR for this epoch once per process: a resume may have lengthened the
        schedule, and the optimiser state it restored still holds the old schedule's LR."""
        with warnings.catch_warnings():  # "scheduler stepped before optimiser": deliberate here
            warnings.simplefilter("ignore", UserWarning)
            for sched in (self.sched_G, self.sched_D):
                sched.last_epoch = epoch - 1
                sched.step()
        self._schedule_synced = True

    def _lsgan(self, scores: torch.Tensor, real: bool) -> torch.Tensor:
        return self.mse(scores.float(), torch.full_like(scores.float(), 1.0 if real else 0.0))

    @staticmethod
    def _freeze(*nets: nn.Module, frozen: bool = True) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(not frozen)

    @torch.no_grad()
    def translate(self, a_uint8: np.ndarray, b_uint8: np.ndarray, device: torch.device) -> list[torch.Tensor]:
        """real A, fake B, rec A, real B, fake A, rec B (each N×3×S×S in [-1, 1])."""
        real_A = to_net(torch.from_numpy(np.array(a_uint8))).to(device)  # a copy: memmaps are read-only
        real_B = to_net(torch.from_numpy(np.array(b_uint8))).to(device)
        G_A, G_B = self.generators()
        fake_B, fake_A = G_A(real_A), G_B(real_B)
        return [real_A, fake_B, G_B(fake_B), real_B, fake_A, G_A(fake_A)]

    @torch.no_grad()
    def sample(self, step: int, device: torch.device) -> None:
        """Sample grid PNG (of the generators exported) and one point of the skin-tone drift curve, on the fixed val
        faces: the trained A→B generator's, and under --ema its average's beside it."""
        from torchvision.utils import save_image

        from training.tasks.cyclegan_report import drift_row

        for net in (self.G_A, self.G_B, *self.generators()):
            net.eval()
        rows = self.translate(self.a.val[:8], self.b.val[:8], device)
        n = min(len(r) for r in rows)
        grid = torch.cat([r[:n] for r in rows]).cpu()
        folder = self.out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        for name in (f"step_{step:07d}.png", "latest.png"):
            with writing(folder / name, "a sample grid", RUN_KEPT):
                save_image((grid + 1) / 2, folder / name, nrow=n, padding=2)
        val_A = to_net(torch.from_numpy(np.array(self.a.val))).to(device)
        row = drift_row(step, np.asarray(self.a.val), to_uint8(self.G_A(val_A)))
        if self.ema_decay:
            averaged = drift_row(step, np.asarray(self.a.val), to_uint8(self.ema_A.module(val_A)))
            row.update({f"ema_{k}": averaged[k] for k in ("mean_delta_ita", "mean_abs_delta_ita", "n_measured")})
        CsvLog(self.out / "drift.csv").write(row)
        self.last_drift = row[drift_column(bool(self.ema_decay))]
        self.config[LAST_DRIFT] = self.last_drift


def drift_column(ema: bool) -> str:
    """The drift.csv column log.csv's delta_ita repeats: the exported generator's (the average's under --ema)."""
    return "ema_mean_delta_ita" if ema else "mean_delta_ita"


def logged_drift(drift_log: Path, step: int, ema: bool) -> float:
    """The drift a checkpoint from before it kept LAST_DRIFT had last logged: the last row of the run's drift.csv
    at or before its ``step`` (a kill after a sample point leaves rows past it); NaN where there is none."""
    try:
        with open(drift_log, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if (r.get("step") or "").isdigit() and int(r["step"]) <= step]
        return float(rows[-1][drift_column(ema)]) if rows else float("nan")
    except (OSError, KeyError, TypeError, ValueError, csv.Error):  # no log, or not one this trainer wrote
        return float("nan")


# --- command line -------------------------------------------------------------
def config_from_args(args: argparse.Namespace) -> tuple[CycleGANConfig, dict]:
    if (args.domain_a or args.domain_b) and (args.dataset or args.preset_domains):
        raise BiasMirrorError("give --domain-a and --domain-b, or --dataset with --preset-domains, not both: the "
                              "folders would be trained on and the rest ignored")
    if args.domain_a and args.domain_b and Path(args.domain_a).resolve() == Path(args.domain_b).resolve():
        raise BiasMirrorError("--domain-a and --domain-b are the same folder: a filter learns the difference between "
                              "two domains", args.domain_a)
    if args.dataset and args.preset_domains:
        source = {"dataset": args.dataset, "recipe": args.preset_domains}
    elif args.domain_a and args.domain_b:
        source = {"domain_a": args.domain_a, "domain_b": args.domain_b, "recipe": "folders"}
    else:
        raise BiasMirrorError("give --domain-a DIR --domain-b DIR, or --dataset KIND:PATH --preset-domains engineer|aging")
    run_cfg = {
        **source, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
        "n_epochs": args.n_epochs if args.n_epochs is not None else SCHEDULE_DEFAULTS["n_epochs"],
        "n_epochs_decay": args.n_epochs_decay if args.n_epochs_decay is not None else SCHEDULE_DEFAULTS["n_epochs_decay"],
        "iters_per_epoch": args.iters_per_epoch, "sample_every": args.sample_every,
        "min_domain_size": args.min_domain_size, "ema": args.ema,
        **({EMA_WARMUP_KEY: EMA_WARMUP} if args.ema else {}),
        "command": command_line(args), **started_here(),
    }
    return preset(args.preset), run_cfg


# What a resume keeps (given on its command line, each must be the checkpoint's), as its config holds it.
RESUME_SETTINGS = {
    "preset": lambda c: c["net"]["preset"],
    "dataset": lambda c: Where(c.get("dataset")),
    "preset_domains": lambda c: c.get("recipe") if c.get("recipe") != "folders" else None,
    "domain_a": lambda c: Where(c.get("domain_a")),
    "domain_b": lambda c: Where(c.get("domain_b")),
    "min_domain_size": "min_domain_size", "iters_per_epoch": "iters_per_epoch", "batch_size": "batch_size",
    "lr": "lr", "seed": "seed", "ema": lambda c: c.get("ema"),
}
# --n-epochs and --n-epochs-decay may lengthen the schedule; --sample-every and --checkpoint-every are progress;
# the rest say what is exported and measured at the end.
MAY_CHANGE_ON_RESUME = RUN_OPTIONS_THAT_MAY_CHANGE | {
    "n_epochs", "n_epochs_decay", "sample_every", "checkpoint_every",
    "export_only", "export_both", "export_to", "classifier", "eval_faces", "no_dataset_cache"}


def schedule_problems(saved: dict, state: dict, n_epochs: int | None, n_epochs_decay: int | None,
                      training: bool) -> list[str]:
    """Why a new --n-epochs / --n-epochs-decay cannot apply to a checkpoint, or nothing. A resume may lengthen the
    constant-LR phase while the run is still in it; any other change would give the epochs already trained another
    learning rate than they had (or, when only exporting, a card whose schedule is not the one trained)."""
    old = (saved["n_epochs"], saved["n_epochs_decay"])
    new = (old[0] if n_epochs is None else n_epochs, old[1] if n_epochs_decay is None else n_epochs_decay)
    if new == old:
        return []
    asked = " ".join(f"--{k} {v}" for k, v, was in (("n-epochs", new[0], old[0]), ("n-epochs-decay", new[1], old[1]))
                     if v != was)
    if not training:
        return [f"{asked} differs from the checkpoint's schedule of {old[0]} + {old[1]} epochs: --export-only exports "
                "the run as it was trained"]
    begun = state["epoch"] + (1 if state.get("samples_in_epoch") else 0)  # epochs whose learning rate has been used
    if begun > old[0]:
        return [f"{asked} would change the learning rate of epochs already trained: {begun} of the checkpoint's "
                f"{old[0]} + {old[1]} epochs are trained or begun and its decay has started, so its schedule is fixed"]
    if new[0] < begun:
        return [f"{asked} would end the constant learning rate before the {begun} epoch(s) already trained at it "
                f"(the checkpoint's schedule is {old[0]} + {old[1]}): a resume may only lengthen --n-epochs"]
    if new[0] < old[0]:  # harmless to the epochs trained, but not what the help and the docs allow
        return [f"{asked} would shorten the checkpoint's constant learning rate ({old[0]} + {old[1]} epochs): a "
                "resume may only lengthen --n-epochs"]
    return []


def checked_settings(args: argparse.Namespace, requested: dict, saved: dict, checkpoint: Path, state: dict,
                     problems: list[str]) -> dict:
    """``saved`` (the checkpoint's config, anchored), after refusing any setting given on the command line that
    differs from it, and ``problems`` (of the schedule). A --dataset of the checkpoint's kind, or a --domain-a or
    --domain-b folder, at another place, with every other setting the checkpoint's, is no changed setting: the
    config returned reads it there, the move recorded (``moved_to``), and the faces there must be the checkpoint's
    (``check_same_data``, by its record of them, each below its folder). Compared as places, a dataset or domain
    folder moved had been refused as a changed setting, and the run could not be resumed nor exported at all."""
    return checked_places(args, RESUME_SETTINGS, requested, saved, checkpoint, int(state.get("step", 0)), problems)


def resumed_config(args: argparse.Namespace, out: Path) -> tuple[CycleGANConfig, dict, str | None]:
    """The checkpoint's settings (a resume may lengthen its schedule), after refusing any given on the command line
    that differ from them, and this command where it trains nothing and only exports (an --export-only, or a resume
    of a run trained to its end): the card's "exported_by", never a resume."""
    checkpoint = out / CHECKPOINT
    state = load_checkpoint(checkpoint, "cyclegan")
    saved = anchored(state["config"], tuple(DATA_PLACES))
    requested = {"net": {"preset": args.preset}, "dataset": args.dataset, "recipe": args.preset_domains,
                 "domain_a": args.domain_a, "domain_b": args.domain_b, "min_domain_size": args.min_domain_size,
                 "iters_per_epoch": args.iters_per_epoch, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                 "ema": args.ema}
    saved = checked_settings(args, requested, saved, checkpoint, state,
                             schedule_problems(saved, state, args.n_epochs, args.n_epochs_decay, not args.export_only))
    check_data_recorded(state, checkpoint)
    run_cfg = {k: v for k, v in saved.items() if k != "net"}
    if LAST_DRIFT not in run_cfg:  # a checkpoint from before it was kept
        run_cfg[LAST_DRIFT] = logged_drift(out / "drift.csv", state["step"], bool(run_cfg.get("ema")))
    # A resume may lengthen the schedule (train longer) and change how often it samples; the rest is the checkpoint's.
    for key in ("n_epochs", "n_epochs_decay"):
        if getattr(args, key) is not None:
            run_cfg[key] = getattr(args, key)
    if "sample_every" in given_options(args):
        run_cfg["sample_every"] = args.sample_every
    if args.export_only:  # --resume with it adds nothing: an export is no resume
        exported_by = command_line(args)
    else:
        epochs = run_cfg["n_epochs"] + run_cfg["n_epochs_decay"]
        exported_by = record_resume(run_cfg, args, state, epochs)
    return CycleGANConfig.from_dict(saved["net"]), run_cfg, exported_by


def build_domains(run_cfg: dict, cache_dir: DatasetCache = USER_CACHE) -> Domains:
    """The run's two domains; ``cache_dir``: where the copy detection keeps what it computes (``open_dataset``'s)."""
    seed, min_size = run_cfg["seed"], run_cfg["min_domain_size"]
    if run_cfg["recipe"] == "engineer":
        return engineer_domains(run_cfg["dataset"], seed, min_size, cache_dir)
    if run_cfg["recipe"] == "aging":
        return aging_domains(run_cfg["dataset"], seed, min_size, cache_dir)
    return folder_domains(run_cfg["domain_a"], run_cfg["domain_b"], seed, min_size, cache_dir)


def check_batch_fits(label: str, n_samples: int, images: DomainImages | None, batch_size: int, where: object) -> None:
    """A batch draws distinct images only from a domain with at least a batch of them (the stream wraps
    around a smaller one, and an empty one has nothing to draw). Without ``images`` the listed count is checked,
    before minutes of decoding; with them, the readable one."""
    n = n_samples if images is None else len(images.train)
    if n >= batch_size:
        return
    unreadable = f" ({n_samples - n} unreadable)" if n_samples > n else ""
    counted = "listed" if images is None else "readable"
    fix = f"give --batch-size {n} or less, or more images" if n else "give it readable images"
    raise BiasMirrorError(f"domain {label} has {n} {counted} training image(s){unreadable}, fewer than one batch of "
                          f"--batch-size {batch_size}: {fix}", where)


def check_epoch_fits(run_cfg: dict, world: int, n_a: int, given: bool, resumed: bool, where: object) -> None:
    """An epoch is --iters-per-epoch batches, and a step of N processes draws N of them: an epoch of fewer
    batches than processes ran no step at all, and its untrained generator was exported with exit status 0."""
    iters, bs = run_cfg["iters_per_epoch"], run_cfg["batch_size"]
    if iters >= world:
        return
    if resumed:
        fix = f"a resumed run keeps its settings: run it with --nproc_per_node {iters} or fewer"
    elif given:
        fix = f"give --iters-per-epoch {world} or more"
    else:
        fix = (f"give --batch-size {n_a // world} or less" if n_a >= world else "use fewer processes") + \
            f", or --iters-per-epoch {world} or more"
    raise BiasMirrorError(f"an epoch of {iters} batch(es) of --batch-size {bs} is less than one step of {world} "
                          f"processes, each of which draws a batch: {fix}", where)


def epoch_batches(iters_per_epoch: int, world: int) -> int:
    """The batches an epoch of ``iters_per_epoch`` draws under ``world`` processes: a step draws one on each, and
    the loop's epoch order leaves out a tail short of a step (``epoch_batches.epoch_order``), as for the classifier."""
    return iters_per_epoch - iters_per_epoch % world


# what the run's end writes and measures, where its faces are decoded and on how many threads: a plain --resume had
# decoded them again into the default cache (several GB at 256 px) where the run was started with --cache elsewhere
# or none, and trained a --threads 1 run on PyTorch's default count, whose sums round otherwise (its weights ended
# 0.0016 off the uninterrupted run's after 16 steps). --threads is per process under torchrun, and kept as given.
# --no-dataset-cache too: a run meant to leave nothing of its dataset in the user's cache must not write it there
# once continued.
OUTPUT_OPTIONS = ("classifier", "export_both", "export_to", "eval_faces", "cache", "threads", "no_dataset_cache")


@dataclass
class CardClassifier:
    """The --classifier the card's ΔP(female) is measured with: read once as the run starts (or resumes) and kept
    to its end. Opened again from its path after training, a file moved or deleted meanwhile had failed the export
    with a bare "model file not found", and one replaced would have measured another model than the one checked."""

    model: Any  # inference.models' classifier
    path: str
    sha256: str  # of the file read: the path may name another model by the time the card is read


def card_classifier(path: str | None, carried: bool) -> CardClassifier | None:
    """The classifier at ``path`` (None: none given), checked to give P(female); ``carried``: the path is the
    checkpoint's (a plain --resume), which the message says, with how to measure without it."""
    if not path:
        return None
    if not Path(path).exists():
        fix = ("; it is the classifier the run last ran with, which a plain --resume keeps: give --classifier again "
               "to measure with another, or --classifier '' to measure none" if carried else
               f" (train one with `{program()} train classifier`)")
        raise BiasMirrorError(f"--classifier: no such ONNX file{fix}", path)
    from inference.models import load_model
    from inference.runtime import RuntimeConfig

    sha256 = file_hash(path)
    # read now: a truncated or wrong-kind file would otherwise be found only after training and export
    model = load_model(path, "classifier", RuntimeConfig(provider="cpu"))
    model.require_gender("--classifier")
    try_on_grey_faces(model)
    return CardClassifier(model, str(path), sha256)


def try_on_grey_faces(model: Any) -> None:
    """Runs ``model`` once on two plain grey faces: what its predictions are checked for (probs that are
    probabilities, outputs of the card's shapes) is checked at the first prediction, and a classifier giving logits
    had been refused only after the whole run had trained and exported."""
    model.predict(np.full((2, *model.size, 3), 128, np.uint8))


def main(args: argparse.Namespace) -> int:
    if args.export_only and args.max_steps is not None:  # it had been accepted, and trained nothing
        raise BiasMirrorError(f"--max-steps {args.max_steps} stops training after that many steps, and --export-only "
                              "trains none: leave --max-steps out to export the checkpoint as it is, or drop --export-only "
                              f"to train on (--resume --max-steps {args.max_steps})")
    out, cache = check_run_arguments(args)
    if args.export_only and not Dist.from_env().is_main:
        return 0  # rank 0 alone exports: every process had written the same files at once, and raced on them
    with run_folder_held(out, "train cyclegan", new_run(args)):
        return _train(args, out, cache)


def _train(args: argparse.Namespace, out: Path, cache: Path | None) -> int:
    if args.resume or args.export_only:
        net_cfg, run_cfg, exported_by = resumed_config(args, out)
        refuse_a_dataset_gone(args, run_cfg, tuple(DATA_PLACES), "--export-only" if args.export_only else "--resume")
    else:
        (net_cfg, run_cfg), exported_by = config_from_args(args), None
    default_cache = str((default_cache_dir() / "faces").resolve())  # add_cache_argument's default is no news
    taken = carry_outputs(args, run_cfg, OUTPUT_OPTIONS, paths=("classifier", "export_to", "cache"),
                          unremarkable={"eval_faces": EVAL_FACES, "cache": default_cache})
    if taken and Dist.from_env().is_main:
        print("as the run last ran: " + ", ".join(taken) + " (give them again to change them; --classifier '', "
              "--export-to '' and --no-export-both leave them out, --cache '' decodes without a cache, "
              "--with-dataset-cache keeps the dataset's digests again)")
    cache = check_cache_dir(args.cache)  # it may be the checkpoint's, which check_run_arguments did not see
    if args.export_to:  # it, the classifier or the domains may come from the checkpoint, which the first check did not see
        for read in (args.classifier, *data_folders(run_cfg)):
            if read:
                args.export_to = str(check_output_file(args.export_to, "--export-to", read))
    classifier = card_classifier(args.classifier, carried="classifier" not in given_options(args)
                                 and bool(args.resume or args.export_only))
    if not args.export_only and run_cfg["n_epochs"] + run_cfg["n_epochs_decay"] < 1:
        raise BiasMirrorError("--n-epochs and --n-epochs-decay are both 0: there is nothing to train; give at least "
                              "one epoch")
    domains = build_domains(run_cfg, dataset_cache_dir(args))
    main_rank = Dist.from_env().is_main
    for label, d in (("A", domains.a), ("B", domains.b)):
        if main_rank:
            print(f"[{label}] " + describe(d), end="\n\n")
    where = {label: run_cfg.get(f"domain_{label.lower()}") or run_cfg.get("dataset") for label in "AB"}
    for label, d in (("A", domains.a), ("B", domains.b)):
        check_batch_fits(label, len(d.train), None, run_cfg["batch_size"], where[label])
    a, b = build_images(domains, net_cfg.size, run_cfg["seed"], cache)
    for label, d, images in (("A", domains.a, a), ("B", domains.b, b)):
        check_batch_fits(label, len(d.train), images, run_cfg["batch_size"], where[label])
        if not (args.resume or args.export_only):  # a run begun before this check keeps the faces it began with
            check_readable_size(label, d, images.samples, run_cfg["min_domain_size"], where[label])
    if run_cfg["iters_per_epoch"] is None:
        run_cfg["iters_per_epoch"] = max(1, len(a.train) // run_cfg["batch_size"])
    world = Dist.from_env().world
    if not args.export_only:
        check_epoch_fits(run_cfg, world, len(a.train), given=args.iters_per_epoch is not None or args.resume,
                         resumed=args.resume, where=where["A"])
    name = model_name(args, run_cfg, out)
    task = CycleGANTask(a, b, net_cfg, run_cfg, out, domains)
    epochs = run_cfg["n_epochs"] + run_cfg["n_epochs_decay"]
    if main_rank:
        iters = run_cfg["iters_per_epoch"]
        drawn = epoch_batches(iters, world)
        if drawn != iters and not args.export_only:  # as the classifier's epochs leave a tail short of a step
            fix = "" if args.resume else f" (give --iters-per-epoch {drawn} or {drawn + world}, a multiple of {world})"
            print(f"note: an epoch of {iters} batches is not a multiple of the {world} processes, each of which draws "
                  f"a batch a step: each epoch draws {drawn}, and the last {iters - drawn} is left out{fix}")
        shared = "" if world == 1 else f" of {world} processes (each draws a batch: {drawn} batches an epoch)"
        print(f"{epochs} epochs × {drawn // world} steps{shared}, batch {run_cfg['batch_size']}, preset {net_cfg.preset}")
    if args.export_only:
        state = load_checkpoint(out, "cyclegan")
        # as a resume does: a card had given a domain's count of today for weights trained on fewer images
        check_same_data(state, task, out / CHECKPOINT)
        renumber_old_logs(out, state)  # as a resume would: exported, the run's logs had still counted from 0
        for k, m in task.modules().items():
            m.load_state_dict(state["modules"][k])
    else:
        loop_cfg = loop_config_from_args(args, out, epochs, run_cfg["batch_size"], run_cfg["seed"],
                                         checkpoint_every=args.checkpoint_every)
        status = run_for_cli(task, loop_cfg)
        if status is not None:
            return status  # stopped, or not rank 0 (which exports)
        state = load_checkpoint(out)
    from training.tasks.cyclegan_report import finish, trained_progress  # lazy: export pulls in onnx

    warning = task.ema_warning() if task.ema_decay else None
    if warning:  # said before the export's minutes of measuring, and on its card
        log.warning("the filter exported to %s: %s", out / "filter_A2B.onnx", warning)

    finish(task, domains, out, name, trained_progress(state, run_cfg["batch_size"]), args, exported_by,
           classifier=classifier)
    return 0
