"""That a run trains on the data it began with: the record of its faces a checkpoint keeps, which a resume checks
(``check_same_data``), and, under torchrun, that every process holds the data rank 0 holds
(``check_ranks_hold_the_same_data``)."""
from __future__ import annotations

import hashlib
import socket
import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from inference.arg_checks import data_folders
from inference.colour_profiles import PILLOW_OPEN_ERRORS
from inference.datasets import LISTING_VERSION
from inference.errors import BiasMirrorError
from inference.images import ALIGNED_FRAMING_VERSION, READER_VERSION, read_image
from training.distributed import Dist
from training.resume import DATA_PLACES, Where, anchored, option_name

if TYPE_CHECKING:
    from training.loop import StepContext, Task


def data_counts(task: Task) -> dict[str, int] | None:
    counts = getattr(task, "data_counts", None)
    return None if counts is None else dict(counts())


def faces_record(entries: Iterable[Sequence[object]]) -> dict:
    """What a checkpoint keeps of the faces a run trains on: each entry (a face's path below its data's root, its
    split or role, the labels the run uses) as a line, sorted; their digest, their number and the lines themselves,
    compressed (a few hundred KB for all of UTKFace), to name what changed. And the versions of the rules that list
    them, decode their files and frame them (``reading_changed``): the same paths read otherwise are other faces."""
    lines = sorted("\t".join(str(part) for part in entry) for entry in entries)
    text = "\n".join(lines).encode("utf-8", "surrogateescape")  # a name not UTF-8 by its bytes
    return {"sha256": hashlib.sha256(text).hexdigest(), "n": len(lines), "faces": zlib.compress(text, 6),
            "listing": LISTING_VERSION, "reader": READER_VERSION, "framing": ALIGNED_FRAMING_VERSION}


def data_faces(task: Task) -> dict | None:
    """``faces_record`` of the task's data_faces(), or None for a task that lists none."""
    faces = getattr(task, "data_faces", None)
    listed = None if faces is None else faces()
    return None if listed is None else faces_record(listed)


def _by_path(record: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in zlib.decompress(record["faces"]).decode("utf-8", "surrogateescape").split("\n") if record["n"] else []:
        out.setdefault(line.split("\t", 1)[0], set()).add(line)
    return out


def recorded_paths(record: dict) -> set[str]:
    """The paths (each below its data's root) of the faces a ``faces_record`` lists."""
    return set(_by_path(record))


def faces_changed(saved: dict, now: dict) -> str:
    """What differs between two ``faces_record``s, e.g. "2 files gone (e.g. a.jpg), 1 new (e.g. b.jpg)"."""
    then, here = _by_path(saved), _by_path(now)
    said = []
    for what, paths in (("gone", sorted(then.keys() - here.keys())), ("new", sorted(here.keys() - then.keys())),
                        ("with other labels or in another split",
                         sorted(p for p in then.keys() & here.keys() if then[p] != here[p]))):
        if paths:
            examples = ", ".join(paths[:3]) + (", …" if len(paths) > 3 else "")
            files = "" if said else " files" if len(paths) > 1 else " file"
            said.append(f"{len(paths)}{files} {what} (e.g. {examples})")
    return ", ".join(said) or "the faces listed otherwise"


def check_same_data(state: dict, task: Task, checkpoint: Path, faces: dict | None = None, exports: bool = True) -> None:
    """Refuses to go on with a checkpoint (its ``state``) on other data than ``task`` holds now: by the faces' record
    (its digest: each face's path below the dataset's root, split and labels; ``faces``: the task's ``data_faces``
    where already made) where the checkpoint keeps one, else by the counts (checkpoints from before the record, which
    a change keeping every count passes). Data the task reads at another place than the checkpoint's (a dataset, a
    CycleGAN's domain folders: ``dataset_moves``) goes on where it holds the same faces, said; where it does not, the
    refusal names both places. ``exports``: whether the run exports its model (and card) after this check; compare's
    finished variant, reused as it is, does not (``moved_in_words``)."""
    said = data_changed(state, task, checkpoint, faces)
    moves = dataset_moves(state, task)
    if said is None:
        if moves and Dist.from_env().is_main:
            print(f"note: {moved_in_words(moves, state, exports)}")
        return
    if moves:
        given = " and ".join(f"{option_name(key)} {now}" for key, _, now in moves)
        began = " and ".join(then for _, then, _ in moves)
        options = " and ".join(option_name(key) for key, _, _ in moves)
        one = len(moves) == 1
        raise BiasMirrorError(f"{given} {'does' if one else 'do'} not hold the faces this run began on at {began} "
                              f"({said}): a resume goes on only with the faces it began with, and a dataset moved "
                              "holds the same files below its root, in the same splits, with the same labels; give "
                              f"{options} the {'folder' if one else 'folders'} that {'holds' if one else 'hold'} them, "
                              "or start a new --out", checkpoint)
    raise BiasMirrorError(f"the training data is not what this run started on ({said}): a resume goes on with the "
                          "images it began with; restore them, or start a new --out", checkpoint)


def data_changed(state: dict, task: Task, checkpoint: Path, faces: dict | None = None) -> str | None:
    """What differs between the data the checkpoint ``state`` was trained on and the data ``task`` holds now, in
    words, or None where nothing does (or a task that keeps no record of its data). Refused here, as no restoring of
    files can mend them: a checkpoint from before its data was recorded (``UNRECORDED_DATA``), faces this version
    reads or frames otherwise (``check_same_reading``), and a listing that differs where this version lists datasets
    by other rules (``listing_changed``)."""
    saved, now, saved_faces = state.get("data"), data_counts(task), state.get("data_faces")
    if now is None and saved is None and saved_faces is None:
        return None
    check_data_recorded(state, checkpoint)
    check_same_reading(saved_faces, task, checkpoint)
    now_faces = None if saved_faces is None else data_faces(task) if faces is None else faces
    if saved_faces is not None and now_faces is not None:
        if saved_faces["sha256"] == now_faces["sha256"]:
            return None
        said = faces_changed(saved_faces, now_faces)
        if saved is not None and now is not None and saved != now:
            said = f"{_counts_changed(saved, now)}; {said}"
        if saved_faces.get("listing") != now_faces.get("listing"):
            raise OtherReading(listing_changed(saved_faces.get("listing"), now_faces.get("listing"), said),
                               checkpoint)
        return said
    if saved is None or now is None or saved == now:
        return None
    return _counts_changed(saved, now)


class OtherReading(BiasMirrorError):
    """A checkpoint refused because this version would read its run's faces otherwise (or cannot tell whether it
    would), not because the user's files changed: compare's reuse says it without "on other data"."""


# how each refusal of faces read otherwise ends: no file the user could restore makes them the run's again
KEEP_ITS_FACES = ("a resume goes on only with the faces it began with, so start a new --out, or finish this run with "
                  "the version that began it")
# Checkpoints from before 5283c4a (2026-11-25) keep neither the counts nor the faces: since then the listing changed
# (near-identical photographs in one split, groups whose labels disagree dropped), and one resumed trained on other
# faces without a word, its one-cycle schedule sized for the old count stopping it near its end for good.
UNRECORDED_DATA = ("this run began with a version of Bias Mirror from before 2026-11-25, which kept no record of the "
                   "faces it trained on, so whether this version lists the same ones cannot be told: " + KEEP_ITS_FACES)


def check_data_recorded(state: dict, checkpoint: Path) -> None:
    """Refuses a checkpoint that keeps no record of its data (``UNRECORDED_DATA``); the trainers ask it as they read
    the checkpoint, before minutes of listing and decoding faces that it would refuse."""
    if state.get("data") is None and state.get("data_faces") is None:
        raise OtherReading(UNRECORDED_DATA, checkpoint)


def check_same_reading(saved_faces: dict | None, task: Task, checkpoint: Path) -> None:
    """Refuses to go on where this version decodes or frames the run's faces otherwise than its checkpoint's did
    (``saved_faces``: its record, None where it kept counts alone): the record keeps paths, splits and labels, and
    the same files read by another reader or framed otherwise are other faces. A record from before the versions
    were kept is refused only where the run's data holds images that are not square, the only ones the framing
    changed for (``framing_unrecorded``); the reader's changes before then touched rare files alone."""
    then = (saved_faces or {}).get("reader"), (saved_faces or {}).get("framing")
    if then == (None, None):
        odd = images_not_square(task_images(task))
        if odd:
            raise OtherReading(framing_unrecorded(odd), checkpoint)
        return
    said = reading_changed(*then)
    if said:
        raise OtherReading(said, checkpoint)


def reading_changed(reader: int | None, framing: int | None) -> str | None:
    """Why a run whose faces were decoded by ``reader`` and framed by ``framing`` (the versions its checkpoint's
    record keeps) cannot go on here, or None where this version reads and frames them alike."""
    said = [f"{what} ({name} version {now}, where this run began with {then})"
            for what, name, then, now in (("reads images by other rules", "reader", reader, READER_VERSION),
                                          ("frames faces otherwise", "framing", framing, ALIGNED_FRAMING_VERSION))
            if then != now]
    if not said:
        return None
    return (f"this version of Bias Mirror {' and '.join(said)} than the one this run began with, so the faces it "
            f"would train on are not the ones it began with: {KEEP_ITS_FACES}")


def framing_unrecorded(odd: list[tuple[str, int, int]]) -> str:
    """Why a run whose checkpoint does not record its framing cannot go on with ``odd``, its images that are not
    square ((path, width, height) each)."""
    path, width, height = odd[0]
    return ("this run's checkpoint does not record how its version framed faces, and versions up to 2026-12-07 "
            "squashed a face image that is not square to a square, where this version takes its centred square; "
            f"this run's data holds {len(odd)} such images (e.g. {Path(path).name}, {width}×{height} px), which "
            f"it may have begun on framed otherwise: {KEEP_ITS_FACES}")


def task_images(task: Task) -> list[str]:
    """The files of every face ``task`` reads (its ``image_paths``; none for a task that lists none)."""
    paths = getattr(task, "image_paths", None)
    return [] if paths is None else list(paths())


def images_not_square(paths: Iterable[str]) -> list[tuple[str, int, int]]:
    """(path, width, height) of each image of ``paths`` that is not square, read from its header (about 0.1 ms a
    file: all of UTKFace in 2 s); one that cannot be read is left out, as training leaves it out."""
    odd = []
    for path in paths:
        sides = image_sides(path)
        if sides is not None and sides[0] != sides[1]:
            odd.append((path, *sides))
    return odd


def image_sides(path: str) -> tuple[int, int] | None:
    """(width, height) of the image at ``path``, from its header where Pillow reads it; else (a TIFF, whose first
    page may be a thumbnail where the reader takes its first photo page; a format Pillow lacks) as the reader
    decodes it. None where neither can read it. A turn by EXIF or an AVIF's boxes leaves it square or not alike."""
    if not path.lower().endswith((".tif", ".tiff")):
        try:
            with warnings.catch_warnings():  # a damaged header's warnings: the reader says what is wrong, if used
                warnings.simplefilter("ignore")
                with Image.open(path) as image:
                    return image.size
        except PILLOW_OPEN_ERRORS:  # too many pixels for Pillow too: the reader, as training read it
            pass
    image = read_image(path)
    return None if image is None else (image.shape[1], image.shape[0])


def dataset_moves(state: dict, task: Task) -> list[tuple[str, str, str]]:
    """(option, the checkpoint's place, the one ``task`` reads) for each of the run's data options (``DATA_PLACES``: a
    dataset of one kind, or a CycleGAN's domain folders) read at another place: a resume given the new place
    (``resume.moved_dataset``). Empty where the run reads its data where it began."""
    then_cfg = anchored(state.get("config") or {}, tuple(DATA_PLACES))
    now_cfg = getattr(task, "config", None) or {}
    moves = []
    for key in DATA_PLACES:
        then, now = then_cfg.get(key), now_cfg.get(key)
        if isinstance(then, str) and isinstance(now, str) and Where(then) != Where(now):
            moves.append((key, then, now))
    return moves


def moved_in_words(moves: list[tuple[str, str, str]], state: dict, exports: bool = True) -> str:
    """What a resume says where its data moved (``dataset_moves``) and holds the faces the run began with: the
    places, what was compared (the images' contents are not: the record keeps their paths, splits and labels), and
    whether its card records the move: only a run that ``exports`` its model again writes a new card (compare's
    finished variant, reused, keeps the card that names the old place, and had been said to record the move)."""
    record = state.get("data_faces")
    root = "the dataset's root" if [key for key, _, _ in moves] == ["dataset"] else "its folder"
    compared = (f"the same {record['n']} faces by the record its checkpoint keeps: each file's path below {root}, "
                "its split and its labels" if record is not None else
                "by their counts alone: this checkpoint is from before the record of its faces" if state.get("data")
                else "not compared: this checkpoint is from before its data was recorded")
    went = "began on {} and goes on with {}" if exports else "was trained on {} and is reused with {}"
    places = "; ".join(f"{DATA_PLACES[key]} moved: this run {went.format(then, now)}" for key, then, now in moves)
    one = len(moves) == 1
    if exports:
        return f"{places} ({compared}); the card it exports records the {'move' if one else 'moves'}"
    return (f"{places} ({compared}); its card still names the old {'place' if one else 'places'}: "
            f"{', '.join(then for _, then, _ in moves)} (it is reused as it was exported, not exported again)")


def listing_changed(then: int | None, now: int | None, said: str) -> str:
    """Why a resume is refused whose faces differ where this version lists a dataset by other rules than the run's
    start did (``LISTING_VERSION``s; None: before it was kept): the reading changed, which restoring files cannot
    undo, and the files may well be as they were."""
    began = f"listing version {then}" if then is not None else "a version from before 2026-12-07"
    return (f"this version of Bias Mirror lists a dataset's faces by other rules (listing version {now}) than the one "
            f"this run began with ({began}), and lists this run's data otherwise ({said}): {KEEP_ITS_FACES}")


def data_identity(task: Task, faces: dict | None) -> dict:
    """What one process says of the data it holds, for ``check_ranks_hold_the_same_data``: the digest of its faces
    (``faces``: its ``data_faces`` record, or None), its counts, and the indices its epochs are drawn from (all a task
    that lists no faces has to tell); where it runs, to name it."""
    indices = np.asarray(task.indices(), dtype=np.int64)
    folders = data_folders(getattr(task, "config", None) or {})
    return {"faces": None if faces is None else faces["sha256"], "counts": data_counts(task),
            "indices": hashlib.sha256(indices.tobytes()).hexdigest(), "n_indices": len(indices),
            "host": socket.gethostname(), "folders": [str(Path(f).expanduser().resolve()) for f in folders]}


SAME_DATA_KEYS = ("faces", "counts", "indices")


def check_ranks_hold_the_same_data(task: Task, faces: dict | None, ctx: "StepContext") -> None:
    """Under torchrun, refuses to train unless every process holds the data rank 0 holds. Each draws its share of
    one seeded permutation of its own indices, so two nodes with different copies of a dataset no longer split one
    mix (5 files missing on one: both exited 0 without a word), or ran different numbers of steps and hung at the
    end of the epoch (120 missing: one in the checkpoint's gather, the other in an all-reduce, for gloo's 30 min)."""
    if ctx.world == 1:
        return
    everyone: list[Any] = [None] * ctx.world
    torch.distributed.all_gather_object(everyone, data_identity(task, faces))
    if all(_same_data(said, everyone[0]) for said in everyone):
        return
    records: list[Any] = [None] * ctx.world  # the lists themselves, to name what differs: only when something does
    torch.distributed.all_gather_object(records, faces)
    raise BiasMirrorError(ranks_data_differ(everyone, records))


def _same_data(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in SAME_DATA_KEYS)


def ranks_data_differ(everyone: list[dict], records: list[dict | None]) -> str:
    """The message for processes (``everyone``: each rank's ``data_identity``; ``records``: its faces record) that
    do not all hold rank 0's data: each rank that differs, where it runs, and what its data has that rank 0's has
    not, or lacks."""
    several_hosts = len({said["host"] for said in everyone}) > 1

    def whose(rank: int) -> str:
        where = ([everyone[rank]["host"]] if several_hosts else []) + everyone[rank]["folders"]
        return f"rank {rank}'s" + (f" ({', '.join(where)})" if where else "")

    said = []
    for rank in (r for r, data in enumerate(everyone) if not _same_data(data, everyone[0])):
        ours, theirs = everyone[0], everyone[rank]
        if records[0] is not None and records[rank] is not None and records[0]["sha256"] != records[rank]["sha256"]:
            what = faces_changed(records[0], records[rank])
        elif ours["counts"] and theirs["counts"] and ours["counts"] != theirs["counts"]:
            what = ", ".join(f"{theirs['counts'].get(k, 'no')} {k} against {ours['counts'].get(k, 'none')}"
                             for k in sorted({*ours["counts"], *theirs["counts"]})
                             if ours["counts"].get(k) != theirs["counts"].get(k))
        else:
            what = f"{theirs['n_indices']} training indices against {ours['n_indices']}, or other ones"
        said.append(f"{whose(rank)} against {whose(0)}: {what}")
    return ("the processes do not hold the same training data: " + "; ".join(said) + ". They would not train on one "
            "mix, and could wait for one another for ever: every node must read the same copy of the dataset. Check "
            "that each node's copy holds the same files (copied whole, e.g. with rsync, and not still being copied) "
            "with the same labels, and that --dataset names it on each")


def _counts_changed(saved: dict[str, int], now: dict[str, int]) -> str:
    return ", ".join(f"{k} {saved.get(k, 'none')} then, {now.get(k, 'none')} now" for k in sorted({*saved, *now})
                     if saved.get(k) != now.get(k))
