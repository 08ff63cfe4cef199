"""The research's balanced-vs-unbalanced comparison in one command.

    python main.py train compare --dataset utkface:PATH --out runs/compare

trains the same classifier twice — on the data as it is, and undersampled so
each gender is equal — then evaluates both exported models on the same test
faces and prints them side by side (per gender × race and per age band).
A variant trained in --out is reused, a stopped one continues (running the same
command again, or with --resume); a command that stops a variant (--max-steps,
Ctrl-C) ends there, checkpointed, and compares nothing yet. A variant found in
--out is used only if the settings given are its checkpoint's, and one still to
train is trained like the other: --lr, --distill-from and --swa-epochs left out
are taken from the other's checkpoint (and said), and any other setting,
defaults included, must be the other's; comparison.json records how each
compared model was made (its card's training record). A finished variant is
reused only on the data it was trained on, checked as a resume checks it (the
record of its faces its checkpoint keeps): on a dataset changed since, compare refuses.
"""
from __future__ import annotations

import argparse
from pathlib import Path


from inference import strict_json
from inference.arg_checks import check_output_dir
from inference.card_fields import CardNotes
from inference.cli_common import dataset_cache_dir
from inference.errors import BiasMirrorError
from inference.metrics import format_table
from inference.models import load_model, read_card
from inference.provenance import software
from inference.runtime import RuntimeConfig
from inference.untrusted_text import say
from training.evaluate import (GROUPINGS, evaluate_models, evaluation_doc, evaluation_samples, needed_age_bar,
                               paired_lines, summary_line, write_evaluation)
from training import checkpoints
from training.checkpoints import CHECKPOINT, load_checkpoint
from training.distributed import Dist, process_group, rank0_says
from training.loop import pick_device
from training.out_of_memory import OutOfGpuMemory, OutOfHostMemory, fewer_workers, smaller_batch, smaller_host_batch
from training.run_arguments import check_run_arguments, run_folder_held
from training.same_data import OtherReading, check_data_recorded, check_same_data
from training.resume import cli_text, given_options, option_name, with_saved_defaults
from training.data.teachers import open_teachers
from training.nets.cam_classifier import ClassifierConfig
from training.tasks import classifier
# The command line, kept without torch so that main.py answers --help without loading it; add_arguments is imported
# from here too.
from training.tasks.compare_args import SET_PER_VARIANT, add_arguments  # noqa: F401


def check_no_variant_setting(args: argparse.Namespace) -> None:
    """Refuses the options of SET_PER_VARIANT given on the command line (main.py records those given), each named
    with the reason."""
    given = [dest for dest in SET_PER_VARIANT if dest in given_options(args)]
    if given:
        names = [option_name(d) for d in given]
        names = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        raise BiasMirrorError(f"train compare sets {names} itself, for each variant, so {'it' if len(given) == 1 else 'they'} "
                              "cannot be given: " + "; ".join(f"{option_name(d)}: {SET_PER_VARIANT[d]}" for d in given))


# comparison.json's format: bump it when a key changes meaning. 2: `schema_version` and the `software` block
# (inference.provenance) first; the files written before had neither (1). docs/outputs.md lists every output's version.
COMPARE_SCHEMA_VERSION = 2
VARIANTS = {"unbalanced": ("unbalanced", "none"), "gender-balanced": ("balanced", "balanced")}  # name: folder, compose
# Settings the two variants of one comparison share: all but the training mix.
SHARED_SETTINGS = set(classifier.RESUME_SETTINGS) - {"compose", "by", "target"}


def _variant_args(args: argparse.Namespace, out: Path, compose: str) -> argparse.Namespace:
    variant = argparse.Namespace(**vars(args))
    variant.compose, variant.by, variant.target = compose, "gender", None
    variant.out, variant.name, variant.export_to = str(out), f"{args.arch}-{compose if compose != 'none' else 'unbalanced'}", None
    variant.resume = (out / CHECKPOINT).exists()
    return variant


def check_variants(args: argparse.Namespace, out: Path) -> dict[str, dict]:
    """Before anything is trained: each variant already in ``out`` (finished or stopped) was made with the settings
    this command gives, and one still to start would be trained like those (its settings, defaults included, are
    theirs). Returns the configs of the variants found."""
    found = {}
    for name, (folder, compose) in VARIANTS.items():
        run = out / folder
        if (run / CHECKPOINT).exists():
            found[name] = classifier.checked_settings(_variant_args(args, run, compose), run / CHECKPOINT,
                                                      keeps=f"the {name} variant trained here keeps its settings")
        elif (run / "model.onnx").exists():
            raise BiasMirrorError("no checkpoint next to it to tell the settings it was made with, so it cannot be "
                                  "reused; start a new --out", run / "model.onnx")
    for name, (folder, compose) in VARIANTS.items():
        if name in found or not found:
            continue
        other, _ = next(iter(found.items()))
        other_run = out / VARIANTS[other][0]
        classifier.checked_settings(_variant_args(args, out / folder, compose), other_run / CHECKPOINT,
                                    only=SHARED_SETTINGS,
                                    keeps=f"the {name} variant is trained as the {other} one was",
                                    advice=f"give the settings the {other} variant was started with (those named "
                                           "above), or start a new --out")
    return found


def carry_settings(args: argparse.Namespace, found: dict[str, dict]) -> tuple[argparse.Namespace, list[str]]:
    """``args`` with the shared settings not given taken from a variant found in --out (those check_variants fills
    from its checkpoint), and those that differ from what was given or defaulted, as written. check_variants passed
    the variant still to train as the other one's, and it was then trained from the defaults: --lr, --distill-from
    and --swa-epochs left out, compared as if only the balancing differed."""
    if not found:
        return args, []
    saved = next(iter(found.values()))
    shared = {k: v for k, v in classifier._saved_as_args(saved).items() if k in SHARED_SETTINGS}
    carried = with_saved_defaults(args, shared)
    taken = [f"{option_name(k)} {cli_text(getattr(carried, k))}" for k in shared
             if getattr(carried, k) != getattr(args, k)]
    return carried, taken


def dataset_cache_kept_off(args: argparse.Namespace, found: dict[str, dict]) -> bool:
    """--no-dataset-cache, given or as a variant found in --out last ran: a comparison begun keeping nothing of its
    dataset keeps nothing as it goes on, in its own checks as in each variant's resume (which carries it), unless
    --with-dataset-cache is given."""
    if "no_dataset_cache" in given_options(args):
        return args.no_dataset_cache
    return any((cfg.get("outputs") or {}).get("no_dataset_cache") for cfg in found.values())


def check_teachers_unchanged(args: argparse.Namespace, found: dict[str, dict], out: Path) -> None:
    """A variant still to train learns from the teachers the other did: the same paths, but one replaced since
    would have given the two variants different soft labels under one comparison."""
    if not found or len(found) == len(VARIANTS) or not args.distill_from:
        return
    name, cfg = next(iter(found.items()))
    kind, _, path = cfg["dataset"].partition(":")
    # cfg reads the dataset where it is now, a move recorded (checked_settings): its old place holds the faces too
    teachers = open_teachers(args.distill_from, kind, str(Path(path).expanduser()), RuntimeConfig(provider="cpu"),
                             cfg.get("dataset_moves") or [])
    classifier.check_same_teachers(cfg, [t for t, _ in teachers], out / VARIANTS[name][0] / CHECKPOINT)


def comparison_moves(found: dict[str, dict]) -> list[dict]:
    """The moves of the comparison's dataset that a variant found in --out recorded (checked there against its
    checkpoint's faces), for a variant still to start at the new place: its teachers, trained where the comparison
    began, are then its dataset's too, where they had been refused as trained on another folder."""
    return next((cfg["dataset_moves"] for cfg in found.values() if cfg.get("dataset_moves")), [])


def check_data_unchanged(found: dict[str, dict], out: Path, cache: Path | None, dataset_cache: Path | None) -> None:
    """Each finished variant found in --out was trained on the faces the dataset holds now, by the record of them
    its checkpoint keeps (``same_data.check_same_data``, the check a resume makes; a stopped variant makes it as it
    resumes): one finished on faces added, removed or relabelled since had been reused as it was, and compared
    with a variant trained (or finished) on other data. Listed as the variant's resume would list them: its own
    task over its own mix of the faces listed now. A checkpoint from before the record is checked by its counts
    (so a change that keeps every count, such as two faces relabelled each the other way, passes there); one from
    before the counts (2026-11-25) is refused, as its resume is: it had been reused as trained on the faces listed now.
    ``dataset_cache``: where the copy detection keeps what it computes (None: nowhere)."""
    for name, cfg in found.items():
        run = out / VARIANTS[name][0]
        if not finished(run):
            continue
        state = load_checkpoint(run / CHECKPOINT, "classifier")
        try:
            check_data_recorded(state, run / CHECKPOINT)  # before its faces are listed and decoded
        except BiasMirrorError as e:
            raise not_reused(name, e) from None
        listed = classifier.run_faces(cfg, say=False, cache_dir=dataset_cache)  # said as each variant starts
        data = classifier.decode_data(listed, cfg["net"]["size"], *classifier.run_mix(cfg), cache)
        task = classifier.ClassifierTask(data, ClassifierConfig.from_dict(cfg["net"]), cfg)
        try:
            check_same_data(state, task, run / CHECKPOINT, exports=False)  # reused as it is: its card is not written
        except BiasMirrorError as e:
            raise not_reused(name, e) from None


def not_reused(name: str, refused: BiasMirrorError) -> BiasMirrorError:
    """A finished variant's data check's refusal, said of the variant: "on other data" where its files changed, not
    where this version would read its faces otherwise, or cannot tell (``OtherReading``)."""
    on = "" if isinstance(refused, OtherReading) else " on other data"
    return BiasMirrorError(f"the {name} variant finished here is not reused{on}: {refused.message}", refused.path)


def finished(run: Path) -> bool:
    """A variant's run folder once training ended whole: model.onnx is exported before its test metrics are
    measured and written last, so a stop in between leaves a model that must not be reused as finished."""
    return (run / "model.onnx").exists() and (run / "metrics.json").exists()


def _train_variant(args: argparse.Namespace, out: Path, compose: str, reuse: bool) -> int:
    """Trains (or continues, or finishes exporting) one variant in ``out`` unless ``reuse``; its exit status (0 also
    when --max-steps stopped it). Under torchrun every process trains, and rank 0 alone exports and says it."""
    if reuse:
        if Dist.from_env().is_main:
            renumber_old_logs(out)
            print(f"reusing {out / 'model.onnx'}: its checkpoint's settings are the ones given, and its faces are "
                  "the dataset's now")
        return 0
    try:
        return classifier.main(_variant_args(args, out, compose))
    except BiasMirrorError as e:
        if isinstance(e, (OutOfGpuMemory, OutOfHostMemory)):  # the loop's advice, for a run alone in its --out
            host = (e.workers or 0) if isinstance(e, OutOfHostMemory) else None
            advice = comparison_out_of_memory_advice(args.batch_size, out, e.ending_epoch, host)
            if advice:
                raise BiasMirrorError(advice, e.path) from e.__cause__
        raise


def renumber_old_logs(run: Path) -> None:
    """The logs of a finished variant trained when they counted epochs from 0, renumbered from 1 as the loop
    renumbers a resumed run's: reused as it is, it had been compared beside a variant whose logs count from 1."""
    checkpoints.renumber_old_logs(run, load_checkpoint(run / CHECKPOINT))


def comparison_out_of_memory_advice(batch_size: int, run: Path, ending_epoch: int | None = None,
                                    host_workers: int | None = None) -> str | None:
    """What to do after the variant training in ``run`` ran out of GPU memory (or RAM) at ``batch_size`` per process,
    where the other variant is in --out (finished or stopped): None where it is not, and the loop's advice for a run of
    its own stands. The loop's had said "run the command again with --batch-size 4" before the first checkpoint,
    and that was then refused as not the other variant's batch size: the variants of one comparison share their
    settings, so a smaller batch is a new --out's. ``ending_epoch``: as OutOfGpuMemory's (no step is lost then).
    ``host_workers``: the DataLoader workers in use where the machine's memory (RAM) ran out, not the GPU's: fewer
    of them may be given to the same command, which a smaller batch or image size may not."""
    name = next(n for n, (folder, _) in VARIANTS.items() if folder == run.name)
    others = [n for n, (folder, _) in VARIANTS.items() if n != name and (run.parent / folder / CHECKPOINT).exists()]
    if not others:
        return None
    kept = (run / CHECKPOINT).exists()
    keeps = (f"the {others[0]} variant in this one" + (" and this variant's checkpoint keep" if kept else " keeps") +
             f" --batch-size {batch_size}{' and --size' if host_workers is not None else ''}, and the variants of a "
             "comparison share their settings")
    if ending_epoch is not None:
        again = f"continues the {name} variant from its checkpoint (it evaluates epoch {ending_epoch} again, no step lost)"
    elif kept:
        again = f"continues the {name} variant from its last checkpoint (the steps since are lost)"
    else:
        again = f"trains the {name} variant at --batch-size {batch_size} again"
    unsaved = "" if kept else ", before its first checkpoint, so nothing of it was saved"
    if host_workers is not None:
        fewer = fewer_workers(host_workers)
        when = (f"with {fewer} (each worker holds batches of its own), or once more memory is free" if fewer else
                "once more memory is free (other programs closed)")
        return (f"the {name} variant ran out of memory (RAM) on this machine at --batch-size {batch_size} per process "
                f"with --workers {host_workers}{unsaved}. To train with {smaller_host_batch(batch_size)}, start a new "
                f"--out: {keeps}; the same command here {again} {when}")
    said = f"the {name} variant ran out of GPU memory at --batch-size {batch_size} per process{unsaved}"
    return (f"{said}. To train {smaller_batch(batch_size)}, start a new --out: {keeps}; the same command here {again} "
            "only once more GPU memory is free (another program using it)")


def check_batches_fit(args: argparse.Namespace, out: Path, dataset_cache: Path | None) -> None:
    """Each variant yet to start has a full batch of training faces in its mix, checked on the faces listed before
    either trains: the balanced mix of a dataset short of women failed only after the unbalanced variant had
    trained, and the batch size it advised was then refused as not the first variant's. ``dataset_cache``: as
    ``check_data_unchanged``'s."""
    listed = None
    for folder, compose in VARIANTS.values():
        if (out / folder / CHECKPOINT).exists():
            continue  # begun: checked when it began, and its settings are its own
        _, cfg = classifier.config_from_args(_variant_args(args, out / folder, compose))
        # not said here (say=False): each variant says it as it starts
        listed = listed or classifier.list_faces(cfg["dataset"], cfg["min_age"], unknown_age_passes="age_rule" not in cfg,
                                                 say=False, cache_dir=dataset_cache)
        n = listed.training_count(cfg["compose"], cfg["by"], cfg["target"], cfg["seed"])
        classifier.check_batch_fits(n, cfg["batch_size"], cfg["compose"], listed.read.root, Dist.from_env().world,
                                    listed=True)


def _train_variants(args: argparse.Namespace, out: Path) -> tuple[dict[str, Path], dict[str, bool]] | int:
    """Each variant trained (or continued, or reused): their models and whether each was reused, or the exit
    status to end with where one stopped before it finished (interrupted, or --max-steps)."""
    paths, reused = {}, {}
    for name, (folder, compose) in VARIANTS.items():
        reused[name] = rank0_says(finished(out / folder))
        code = _train_variant(args, out / folder, compose, reused[name])
        if code != 0:
            return code  # interrupted: checkpointed, and said so
        if not rank0_says(finished(out / folder)):  # --max-steps stopped it, checkpointed
            if Dist.from_env().is_main:
                print(f"the {name} variant has not finished training, so nothing is compared yet; run the same "
                      "command again (with or without --max-steps, or with --resume) to continue it, and the "
                      "comparison follows once both variants are trained")
            return 0
        paths[name] = out / folder / "model.onnx"
    return paths, reused


def variant_record(path: Path, reused: bool) -> dict:
    """How a compared model was made (its card's training record), for comparison.json."""
    return {"model": str(path), "reused": reused, "training": read_card(path).training}


def comparison_json(results: dict, paired: list[dict], variants: dict[str, dict], made_by: dict) -> str:
    """comparison.json: each variant's metrics, their paired tests and how each was made (``evaluation_doc``'s),
    under its schema version and ``made_by``, the software block of the command that compared them."""
    doc = evaluation_doc(results, paired, {"variants": variants})
    return strict_json.dumps({"schema_version": COMPARE_SCHEMA_VERSION, "software": made_by, **doc}, indent=1)


def main(args: argparse.Namespace) -> int:
    check_no_variant_setting(args)  # before anything is read or written
    out = check_output_dir(args.out, "--out")
    # Taken as the command starts, as the app's --health takes it: the variants train for hours, and a checkout
    # changed meanwhile (a commit, an edit) did not run this comparison, whose modules were loaded by then.
    made_by = software()
    # what is in --out is judged with the folder held, as each variant's trainer holds its own run folder
    with run_folder_held(out, "train compare"):
        return _compare(args, out, made_by)


def _compare(args: argparse.Namespace, out: Path, made_by: dict) -> int:
    if args.resume and not any((out / folder / CHECKPOINT).exists() for folder, _ in VARIANTS.values()):
        raise BiasMirrorError("--resume was given but no variant has been trained here yet: leave it out to start "
                              "the comparison", out)
    for folder, compose in VARIANTS.values():  # paths and --device, before any data is read
        _, cache = check_run_arguments(_variant_args(args, out / folder, compose))
    found = check_variants(args, out)
    args, taken = carry_settings(args, found)
    if taken and len(found) < len(VARIANTS) and Dist.from_env().is_main:
        print(f"as the {next(iter(found))} variant was started: {', '.join(taken)} (the other is trained alike)")
    check_teachers_unchanged(args, found, out)
    args.comparison_moves = comparison_moves(found)
    args.no_dataset_cache = dataset_cache_kept_off(args, found)
    dataset_cache = dataset_cache_dir(args)
    # a variant begun before faces of no age were barred keeps the old rule, and so does the one to start after it
    args.legacy_age_rule = any("age_rule" not in cfg for cfg in found.values())
    check_data_unchanged(found, out, cache, dataset_cache)
    check_batches_fit(args, out, dataset_cache)
    # Under torchrun the processes train both variants in one process group: rank 0 exports each after the others
    # have finished training it, so what is finished is rank 0's to say (rank0_says), and the others wait for it.
    # Each process had judged it alone: rank 1 found the variant it had just trained not yet exported, said "not
    # finished" and left, and rank 0 then waited for it in vain at the second variant.
    with process_group(pick_device(args.device, Dist.from_env().local_rank)):
        trained = _train_variants(args, out)
    if isinstance(trained, int):
        return trained  # stopped: checkpointed, and said so
    if not Dist.from_env().is_main:
        return 0  # rank 0 compares
    paths, reused = trained
    variants = {name: variant_record(p, reused[name]) for name, p in paths.items()}
    # the faces both were tested on when trained (the variants share their age filter: check_variants)
    # read as a number ("18" is 18), and one it cannot read stops the comparison naming the file: read raw, a card
    # edited since had reached the age comparisons as text
    min_age = needed_age_bar(variants["unbalanced"]["training"], CardNotes(paths["unbalanced"]),
                             "train compare needs it to test both variants on faces of the ages they were trained on; "
                             "fix the card, or train the comparison again in a new --out")
    samples = evaluation_samples(args.dataset, "test", min_age, dataset_cache)
    results, paired = evaluate_models({name: load_model(p, "classifier", RuntimeConfig(provider="cpu"))
                                       for name, p in paths.items()}, samples)
    # the tables and lines quote the dataset's group labels and the cards' names, as evaluate's do: shown escaped
    for grouping in GROUPINGS:
        say(format_table(results, grouping), end="\n\n")
    for name, r in results.items():  # each variant's worst group, ties and small groups said, as evaluate says them
        say(summary_line(name, r))
    for line in paired_lines(paired):
        say(line)
    write_evaluation(out / "comparison.json", comparison_json(results, paired, variants, made_by),
                     "the comparison", "the comparison is printed above and both variants are kept in --out: free "
                     "space and run the same command again to compare them (it reuses them)")
    print(f"written {out / 'comparison.json'}")
    return 0
