"""End of CycleGAN training: skin-tone drift, held-out metrics, ONNX export with its card."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from inference.card import OUTPUT_NAMES, filter_card
from inference.datasets import Sample
from inference.datasets.splits import split_rule
from inference.images import resize_batch
from inference.models import load_model
from inference.program_name import program
from inference.runtime import RuntimeConfig
from inference.skin import measure_pairs
from inference.writing import writing
from training.export import (ImageToImageGraph, check_parity, copy_not_made, export, export_left, parity, place_with_record,
                             stage_copy, staged_export, write_card)
from training.provenance import provenance
from training.resume import as_typed
from training.data.cache import load_images, unreadable_note
from training.data.compose import cell_of
from training.data.domains import Domain, Domains, trained_composition
from training.tasks.cyclegan import (EMA_WARMUP, CardClassifier, CycleGANTask, DomainImages, fixed_val, to_net,
                                     to_uint8)

log = logging.getLogger(__name__)
PARITY_LIMITS = {OUTPUT_NAMES["filter"]: 1.0}  # grey levels: rounding may flip by one
MAX_ONNX_MB = 20.0
def method_text(lr: float) -> str:
    """The card's method, with the learning rate the run used (it said 2e-4 whatever --lr was)."""
    return ("CycleGAN (Zhu et al. 2017): ResNet generator (reflection padding, InstanceNorm), PatchGAN "
            f"discriminators, LSGAN loss, cycle λ=10, identity 0.5·λ, image pool 50, Adam {lr:g} β1 0.5, "
            "constant then linearly decayed LR; horizontal flips only (no colour augmentation)")


def delta_ita(originals: np.ndarray, filtered: np.ndarray) -> np.ndarray:
    """Per face ΔITA° (filtered − original, positive = a higher ITA); NaN where skin is not measurable."""
    shifts = [shift for _, _, shift in measure_pairs(originals, filtered)]
    return np.array([np.nan if s.delta_ita is None else s.delta_ita for s in shifts], float)


def drift_row(step: int, originals: np.ndarray, filtered: np.ndarray) -> dict:
    d = delta_ita(originals, filtered)
    ok = d[~np.isnan(d)]
    return {"step": step, "mean_delta_ita": float(ok.mean()) if len(ok) else float("nan"),
            "mean_abs_delta_ita": float(np.abs(ok).mean()) if len(ok) else float("nan"),
            "n_measured": int(len(ok)), "n_faces": int(len(d))}


def p_female(classifier, faces: np.ndarray) -> np.ndarray:
    resized = resize_batch(faces, classifier.size)
    probs = np.concatenate([classifier.predict(resized[i : i + 64])[0] for i in range(0, len(resized), 64)])
    return probs[:, list(classifier.labels).index("female")]


def _mean(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return round(float(x.mean()), 4) if len(x) else None


def by_group(d: np.ndarray, dp: np.ndarray | None, groups: list[str]) -> dict:
    """Per group (a blank name: not labelled, left out): its faces, those whose skin was measured before and after
    (the mean ΔITA's; a card had shown the mean over 9 faces under n = 10), mean ΔITA and, with a classifier, mean
    ΔP(female) (over all its faces)."""
    out = {}
    for g in sorted(set(groups) - {""}):
        mask = np.array([x == g for x in groups])
        row = {"n": int(mask.sum()), "n_skin_measured": int((~np.isnan(d[mask])).sum()), "mean_delta_ita": _mean(d[mask])}
        if dp is not None:
            row["mean_delta_p_female"] = _mean(dp[mask])
        out[g] = row
    return out


def not_measured(note: str) -> dict:
    """Held-out metrics of no faces, each null ("not measured" on a card, as ``figure`` prints it): averaging zero
    batches had crashed the export after training, and the run could never finish."""
    return {"n_faces": 0, "note": note, "cycle_l1": None, "mean_pixel_change": None, "skin_measured": 0,
            "mean_abs_delta_ita": None, "mean_delta_ita": None, "by_race": {}, "by_gender_race": {}}


def no_test_note(domains: Domains) -> str:
    """Said plainly, as the classifier trainer says it, where the card's held-out metrics are null."""
    return (f"no held-out faces: domain A ({domains.a.name}) has no readable face in its test split, so the "
            "filter's held-out metrics are not measured (null on its card); give domain A test faces to measure them")


def held_out_metrics(task: CycleGANTask, filt, faces: np.ndarray, people: list[Sample],
                     classifier: CardClassifier | None) -> dict:
    """Filter held-out domain-A faces with the exported model (what users get) and measure the change, overall, by
    race and by gender × race (a shift by race alone had hidden opposite shifts of women and men); ``classifier``:
    the one read as the run started, for ΔP(female)."""
    fake = np.concatenate([filt.apply(faces[i : i + 32]) for i in range(0, len(faces), 32)])
    G_B = task.generators()[1]
    with torch.no_grad():
        G_B.cpu().eval()
        rec = np.concatenate([to_uint8(G_B(to_net(torch.from_numpy(fake[i : i + 32]))))
                              for i in range(0, len(fake), 32)])
    d = delta_ita(faces, fake)
    clf = classifier.model if classifier is not None else None
    dp = None if clf is None else p_female(clf, fake) - p_female(clf, faces)
    metrics: dict = {
        "n_faces": int(len(faces)),
        "cycle_l1": round(float(np.abs(rec.astype(np.float64) - faces).mean() / 255.0), 4),
        "cycle_l1_unit": "mean |G_B(G_A(x)) − x| on a 0..1 scale",
        "mean_pixel_change": round(float(np.abs(fake.astype(np.float64) - faces).mean() / 255.0), 4),
        "skin_measured": int((~np.isnan(d)).sum()),
        "mean_abs_delta_ita": _mean(np.abs(d)),
        "mean_delta_ita": _mean(d),
        "delta_ita_sign": "filtered − original; positive = a higher ITA (lighter skin, or less yellow where L* > 50)",
        "by_race": by_group(d, None, [s.race or "" for s in people]),
        "by_gender_race": by_group(d, dp, [cell_of(s, ("gender", "race")) if s.gender and s.race else ""
                                           for s in people]),
    }
    if clf is not None:
        # by content too: a path such as resources/models/x.onnx names whatever model is there today
        metrics["classifier"] = {"name": clf.name, "path": classifier.path, "sha256": classifier.sha256,
                                 "input": f"original and filtered faces at {faces.shape[1]} px, resized to {clf.size}",
                                 "mean_abs_delta_p_female": round(float(np.abs(dp).mean()), 4),
                                 "mean_delta_p_female": round(float(dp.mean()), 4)}
    return metrics


# How the card's held-out faces are chosen (``fixed_val``), said on the card with its seed and count: its figures
# could not be measured again on the same faces without it.
EVALUATED_FACES_RULE = ("domain A's test split by file path; of its test_faces, those at the positions "
                        "numpy.random.default_rng([seed, 7]).choice(test_faces, min(n, test_faces), replace=False) "
                        "picks, in order (training.tasks.cyclegan.fixed_val); unreadable ones left out")


def held_out_seed(seed: int) -> int:
    """The seed of the card's held-out faces: the run's, moved on from the sample grid's (``build_images``)."""
    return seed + 1


def evaluated_faces(domains, n: int, seed: int) -> dict:
    """The card's record of which held-out faces its figures are measured on: the rule, its seed, the count asked
    for and the test faces it picks from (not the paths: hundreds of them)."""
    return {"rule": EVALUATED_FACES_RULE, "seed": held_out_seed(seed), "n": n, "test_faces": len(domains.a.test)}


def held_out_people(domains, n: int, seed: int, size: int, cache: Path | None) -> tuple[np.ndarray, list[Sample]]:
    """The card's held-out domain-A faces at ``size`` px and their samples: the same ones for the same run seed,
    so that a card's figures can be measured again from the dataset alone (``evaluated_faces`` says how)."""
    # A seeded random subset: file order is by age (UTKFace names start with it), so a prefix would be young.
    test = fixed_val(domains.a.test, n, held_out_seed(seed))
    if not test:
        return np.zeros((0, size, size, 3), np.uint8), []
    arr = load_images([s.path for s in test], size, cache)
    if arr.n_bad:
        log.warning("%s", unreadable_note([s.path for s in test], arr.ok, "held-out domain A faces"))
    keep = np.flatnonzero(arr.ok)  # unreadable files drop out of faces and labels alike
    return np.ascontiguousarray(np.asarray(arr.images)[keep]), [test[i] for i in keep]


def split_text(domains: Domains) -> str:
    """The card's split, over every file of both domains once (B's val faces are also A's)."""
    everyone = [s for d in (domains.a, domains.b) for s in (*d.train, *d.val, *d.test)]
    return f"train split ({split_rule(everyone, domains.with_copies)}); metrics on the test split"


def grid_stats(task: CycleGANTask) -> dict:
    """How much the fixed val faces change: a sanity number next to the sample grid."""
    rows = task.translate(task.a.val[:8], task.b.val[:8], torch.device("cpu"))
    u = [to_uint8(r).astype(np.float64) / 255.0 for r in rows]
    return {"faces_A": int(len(u[0])), "faces_B": int(len(u[3])), "rows": "real A, fake B, rec A, real B, fake A, rec B",
            "mean_abs_change_A_to_B": round(float(np.abs(u[1] - u[0]).mean()), 4),
            "mean_abs_change_B_to_A": round(float(np.abs(u[4] - u[3]).mean()), 4),
            "cycle_l1_A": round(float(np.abs(u[2] - u[0]).mean()), 4),
            "fake_B_pixel_std": round(float(u[1].std()), 4), "real_A_pixel_std": round(float(u[0].std()), 4)}


def export_generator(net, size: int, path: Path, card, place: Path | None = None) -> dict[str, float]:
    """``net`` exported to ``path`` with ``card`` and checked against PyTorch; ``place``: where ``path``, written
    beside it, is to go (what a failed check and the size warning name)."""
    graph = ImageToImageGraph(net.cpu().eval())
    export(graph, [torch.zeros(2, size, size, 3, dtype=torch.uint8)], ["image"], [OUTPUT_NAMES["filter"]], path, card)
    rng = np.random.default_rng(0)
    diffs = parity(graph, path, [rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8)])
    check_parity(diffs, PARITY_LIMITS, path, place)
    mb = path.stat().st_size / 2**20
    if mb > MAX_ONNX_MB:
        log.warning("%s is %.1f MB, over the %.0f MB the app bundles; use a smaller preset", place or path, mb,
                    MAX_ONNX_MB)
    return diffs


def ema_entry(task: CycleGANTask) -> dict:
    """The card's record of the weight averages exported (--ema): their decay and warm-up, the updates averaged, and
    the share of the average the first step's weights still hold, with a warning where it is large enough that the
    filter is still mostly those weights (a short run)."""
    entry = {"decay": task.ema_decay, "exported": "the generators' exponential moving averages",
             "updates": int(task.ema_A.n_averaged),
             "warmup": EMA_WARMUP if task.ema_warmup else "none (the run was begun before the average had a warm-up)",
             "start_weight": float(f"{task.ema_start_weight():.3g}"),
             "start_weight_is": "the share of the exported average still held by the generator's weights after the "
                                "first step, where the average starts: the product of the decays of the updates"}
    warning = task.ema_warning()
    return entry if warning is None else {**entry, "warning": warning}


def trained_progress(state: dict, batch_size: int) -> dict:
    """How far the checkpoint ``state`` trained, for the card: its optimiser steps, and the batches and images it
    drew, all processes together (its samples; checkpoints from before multi-process training count one process's
    batches), and its completed epochs."""
    samples = int(state.get("samples", state["step"] * batch_size))
    return {"steps": int(state["step"]), "samples": samples, "epoch": int(state["epoch"]),
            "in_epoch": int(state.get("samples_in_epoch", 0))}


def training_counts(progress: dict, cfg: dict) -> dict:
    """The card's count of what was trained: iterations are the batches drawn (one per process per step, so the
    same images count alike whatever the process count), images_seen_per_domain the images drawn from each domain,
    and steps the optimiser steps (a step of N processes draws N batches). Under N processes an epoch draws a
    multiple of N batches; a finished run that drew other than its schedule's epochs × iters_per_epoch says so."""
    bs = cfg["batch_size"]
    iterations = progress["samples"] // bs
    counts: dict = {"iterations": iterations, "steps": progress["steps"], "images_seen_per_domain": progress["samples"]}
    schedule = {k: cfg[k] for k in ("n_epochs", "n_epochs_decay", "iters_per_epoch", "batch_size", "lr")}
    epochs = cfg["n_epochs"] + cfg["n_epochs_decay"]
    finished = progress["epoch"] >= epochs and not progress["in_epoch"]
    # an --export-only of a run stopped early: its iterations beside the schedule had not said it was cut short
    counts["finished"] = finished
    if not finished:
        counts["stopped_early"] = (f"exported from a checkpoint before the schedule's end: {iterations} batches drawn "
                                   f"of {epochs} epochs × {cfg['iters_per_epoch']}, {progress['epoch']} of the "
                                   f"{epochs} epochs complete")
    if finished and iterations != epochs * cfg["iters_per_epoch"]:
        schedule["batches_drawn"] = (f"{iterations} in {epochs} epochs, not {epochs} × {cfg['iters_per_epoch']}: a step "
                                     "of N processes draws a batch on each, and an epoch under N processes draws the "
                                     "largest multiple of N batches up to iters_per_epoch")
    counts["schedule"] = schedule
    return counts


def dataset_entries(domains, cfg: dict) -> dict:
    """The card's data: as the command that started the run typed it (a folder recipe's two folders "A | B"), and
    the absolute folder(s) it names, so that a relative one can be resolved (the card does not say where the run
    started). The typed text had been made relative to that folder when it lay below it, though typed absolute."""
    folders = domains.recipe == "folders"
    typed = (f"{as_typed(cfg, 'domain_a')} | {as_typed(cfg, 'domain_b')}" if folders else as_typed(cfg, "dataset"))
    roots = (domains.a.root, domains.b.root) if folders else (domains.a.root,)
    return {"dataset": typed, "dataset_root": " | ".join(os.path.abspath(r) for r in roots)}


def domain_entry(domain: Domain, images: DomainImages) -> dict:
    """The card's record of a domain: its images trained on, those of the mix that could be read, counted and
    composed (the card had counted unreadable ones too), and how many could not be."""
    read = images.samples
    composition = domain.composition.to_dict() if read is None else trained_composition(domain, read)
    return {"name": domain.name, "n_train": len(images.train), "composition": composition, **domain.notes}


def finish(task: CycleGANTask, domains, out: Path, name: str, progress: dict, args, exported_by: str | None = None,
           *, classifier: CardClassifier | None) -> Path:
    """Export and measure the trained filter; ``progress``: ``trained_progress`` of the checkpoint it comes from;
    ``exported_by``: the command that exports it without training (--export-only, or a resume of a finished run);
    ``classifier``: the --classifier read as the run started, which the card's ΔP(female) is measured with."""
    cfg, size = task.config, task.net_cfg.size
    for m in task.modules().values():
        m.cpu().eval()
    training = {
        **dataset_entries(domains, cfg), "recipe": domains.recipe, "split": split_text(domains),
        "domain_a": domain_entry(domains.a, task.a), "domain_b": domain_entry(domains.b, task.b),
        **training_counts(progress, cfg),
        "preset": task.net_cfg.preset, "architecture": cfg["net"], "seed": cfg["seed"],
        "augmentation": "horizontal flip only", "command": cfg["command"], "resumes": cfg.get("resumes", []),
        # where a resume found the faces moved to, as the resume's note promised the card would say
        **({"dataset_moves": cfg["dataset_moves"]} if cfg.get("dataset_moves") else {}),
        # the photographs found in both domains (left out of folders' training; counted in the engineer recipe's)
        **({"domain_overlap": domains.overlap} if domains.overlap else {}),
        # --export-only writes a new card for old weights: its commit and date are the export's, so it says so
        **({"exported_by": exported_by} if exported_by else {}),
        **provenance(),
    }
    method = method_text(cfg["lr"])
    if task.ema_decay:
        training["ema"] = ema_entry(task)
        warmup = ", with a warm-up min(decay, (1+n)/(10+n)) at the n-th update" if task.ema_warmup else ""
        method += (f"; the exported generator is the exponential moving average of its weights (decay "
                   f"{task.ema_decay:g}{warmup})")
    direction = f"A->B ({domains.a.name} -> {domains.b.name})"
    path_ab, path_ba, record = out / "filter_A2B.onnx", out / "filter_B2A.onnx", out / "metrics.json"
    G_A, G_B = task.generators()
    # Written beside their places, measured, given their cards with the metrics, and only then put in place with
    # metrics.json: a stop after the export had left a filter whose card had no metrics, beside the metrics.json
    # of the filter before.
    # The --export-to copy goes with them where it can be written; where it cannot, they go in place without it,
    # and the failed copy is said after.
    copy_failed = None
    left = export_left(path_ab, args.export_to, also=(path_ba,) if args.export_both else ())
    again = ("run the same command again to export it" if getattr(args, "export_only", False) else
             f"`{program()} train cyclegan --out {out} --resume` exports it (training is done: it trains nothing more)")
    space = f"{left}; once there is room, {again}"
    with staged_export(left, again) as staged:
        part_ab = staged.path(path_ab)
        card = filter_card(name, size, direction, method, training, {})
        with writing(path_ab, "the exported filter", space):
            worst = export_generator(G_A, size, part_ab, card, place=path_ab)[OUTPUT_NAMES["filter"]]
        print(f"exported {path_ab.name} ({part_ab.stat().st_size / 2**20:.1f} MB; parity max|Δ| {worst:.0f} grey "
              f"level); measuring it before it is put in place as {path_ab}")

        faces, people = held_out_people(domains, args.eval_faces, cfg["seed"], size,
                                        Path(args.cache) if args.cache else None)
        if len(faces):
            filt = load_model(part_ab, "filter", RuntimeConfig(provider="cpu"))
            metrics = held_out_metrics(task, filt, faces, people, classifier)
        else:
            log.warning("%s", no_test_note(domains))
            metrics = not_measured(no_test_note(domains))
        metrics["evaluated_on"] = "test split of domain A's population (held out from training)"
        metrics["evaluated_faces"] = evaluated_faces(domains, args.eval_faces, cfg["seed"])
        metrics["sample_grid"] = grid_stats(task)
        metrics["parity_max_abs_grey_levels"] = worst
        card = filter_card(name, size, direction, method, training, metrics)
        with writing(path_ab, "the exported filter", space):
            write_card(part_ab, card)  # same weights; the card now carries the metrics
        if args.export_both:
            back = filter_card(name + "-B2A", size, f"B->A ({domains.b.name} -> {domains.a.name})", method, training,
                               {"note": "held-out metrics are measured for the A->B filter only"})
            with writing(path_ba, "the exported B->A filter", space):
                export_generator(G_B, size, staged.path(path_ba), back, place=path_ba)
        if args.export_to:
            placed = f"{path_ab}" + (f", {path_ba}" if args.export_both else "") + f" and {record} were put in place"
            copy_failed = stage_copy(staged, part_ab, args.export_to, "the copy of the exported filter (--export-to)",
                                     copy_not_made("cyclegan", out, path_ab, placed, args.export_to,
                                                   export_only=bool(getattr(args, "export_only", False))))
        place_with_record(staged, record, metrics, "the held-out metrics", space)
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("by_race", "by_gender_race")}, indent=1))
    print(f"written {path_ab} (its card holds the held-out metrics)" + (f", {path_ba}" if args.export_both else "")
          + f" and {record}")
    if copy_failed is not None:
        raise copy_failed
    if args.export_to:
        print(f"copied to {args.export_to}")
    return path_ab
