"""Byte-identical copies inside a dataset: one image counted once, in one split, under labels that agree.

UTKFace holds 308 groups of files with exactly the same bytes under different names (627 files). Left alone they
do three kinds of harm. A copy whose name hashes to the test split while its twin trains is a test image the
model has already seen (54 test files, 44 of them adults). An image counted twice weighs twice in every
per-group figure. And 35 groups disagree on gender, 60 on race: whichever label a model gives, one copy scores it
wrong, and the same face sits in two groups.

So, wherever a dataset is opened: copies are found by content (files of equal size hashed; the digests kept in
the user's cache folder, keyed by size and modification time, so a second open costs a stat per file); a group
whose copies disagree on gender, race or the user's group is left out, every copy of it, as unusable labels;
otherwise the first copy by path is kept and the rest left out, and the kept one goes to the earliest split any
copy was in (train before val before test). Test only ever loses images this way, never gains one a model
trained on the old split could have seen. Then, in a dataset of aligned face crops (UTKFace, CelebA, FairFace), the
same for one photograph saved again, re-encoded or re-cropped (``near_identical``): such images all stay, since
their pixels differ, but in one split, or none where their labels disagree. A dataset's own partition (CelebA's,
FairFace's, a labels CSV's ``split``) gives way to the same rule: a photograph in its train and its test partition
is a test image already trained on.

A folder's near-identical images are only named in a warning, each kept under its own labels and in its own split:
there a thumbnail cannot tell one photograph saved again from two photos against the same background
(``near_identical.thumbnail_tells_photographs``), and acted on, a match had left different people out as one
photograph under other labels, given one person's gender and race to another, and would chain hundreds of photos
of one room into a single split.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from ..file_identity import file_hash, file_stats
from ..user_dirs import cache_keys, folder_cache_file
from ..writing import written_whole
from .near_identical import MAX_RMS, SIDE, first_look_shown, near_groups, thumbnail_tells_photographs
from .sample import DatasetRead, Sample
from .splits import SPLITS, split_of

log = logging.getLogger(__name__)

_CACHE_VERSION = 3  # 3: files named within the folder; 2: by the path as given; 1: BLAKE2b digests
CONFLICT = "the same image under other labels"  # how a file left out for its copies' labels is described


def _load(path: Path) -> dict[str, list]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["files"] if data.get("version") == _CACHE_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # none yet, or damaged: computed again


def _keep(cache_path: Path, key: dict[str, str], stats: dict[str, tuple[int, int]], digests: dict[str, str]) -> None:
    """``digests`` (path → digest) written to ``cache_path`` under each file's key, size and modification time."""
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        with written_whole(cache_path) as part:  # two commands opening one dataset each write it whole
            part.write_text(json.dumps({"version": _CACHE_VERSION,
                                        "files": {key[p]: [*stats[p], d] for p, d in digests.items()}}),
                            encoding="utf-8")
    except OSError as e:  # a read-only cache folder costs time on the next open, nothing else
        log.debug("could not keep file digests in %s: %s", cache_path, e)


def content_groups(stats: dict[str, tuple[int, int]], root: str, cache_dir: Path | None,
                   progress: bool = True) -> list[list[str]]:
    """The paths (``file_stats``' keys) whose files hold the same bytes, a sorted list per group of two or more."""
    sizes: dict[int, list[str]] = defaultdict(list)
    for p, (size, _) in stats.items():
        if size:  # an empty file is damaged, not a copy: each is named when it fails to read
            sizes[size].append(p)
    cache_path = folder_cache_file(cache_dir, "digests", root, ".json") if cache_dir is not None else None
    cached = _load(cache_path) if cache_path is not None else {}
    key = cache_keys(stats, root)
    digests, to_read = {}, []
    for same_size in sizes.values():
        if len(same_size) < 2:
            continue
        for p in same_size:
            entry = cached.get(key[p])
            if entry and tuple(entry[:2]) == stats[p]:
                digests[p] = entry[2]
            else:
                to_read.append(p)
    fresh = 0
    try:
        for p in tqdm(to_read, desc="looking for copies", unit="file",
                      disable=not first_look_shown(to_read, progress), mininterval=1):
            try:
                digests[p] = file_hash(p)
            except OSError:
                continue
            fresh += 1
    finally:
        # after a Ctrl-C or SIGTERM (inference.stopping) too: the digests read so far are kept, in a file like any
        # other, which lists only the files it holds, so the next run reads the rest (it had read every one again)
        if cache_path is not None and fresh:
            _keep(cache_path, key, stats, digests)
    by_digest: dict[str, list[str]] = defaultdict(list)
    for p, d in digests.items():
        by_digest[d].append(p)
    return sorted(sorted(g) for g in by_digest.values() if len(g) > 1)


LABELS = ("gender", "race", "group")
# taken from a copy by one that lacks it, where the copies that give it agree, but no conflict where they do not:
# one photograph's files may be named a year apart in age (UTKFace's are), yet they are one face. A copy listed
# without its age had fallen into age band "unknown", and out of every --min-age audit
FILLED_ONLY = ("age", "age_bin")


def _labels(s: Sample) -> tuple:
    return tuple(getattr(s, f) for f in LABELS)


def _describe(s: Sample) -> str:
    return "/".join(str(v) for v in _labels(s) if v is not None) or "unlabelled"


def merge_copies(read: DatasetRead, cache_dir: Path | None, progress: bool = True) -> DatasetRead:
    """``read`` with each group of byte-identical files reduced to one sample, each group of near-identical images
    (``near_identical``) of aligned face crops put in one split, and either left out where its labels disagree (see
    the module's docstring); what was left out is in ``skipped`` (conflicts) and ``copies``. ``progress``: False
    where the command was asked for no progress bars (``audit --no-progress``, as CI runs it)."""
    by_path = {s.path: s for s in read.samples}
    original = dict(by_path)
    stats = file_stats(list(by_path))
    groups = content_groups(stats, read.root, cache_dir, progress)
    dropped: set[str] = set()
    kept_as: dict[str, Sample] = {}
    skipped, copies, conflicts = list(read.skipped), list(read.copies), list(read.conflicts)
    for group in groups:
        members = [by_path[p] for p in group]
        first = members[0]
        dropped.update(group)
        if _disagree(members):
            skipped += _left_out(members, read.root, CONFLICT)
            conflicts.append([relative_name(p, read.root) for p in group])
            continue
        kept_as[first.path] = dataclasses.replace(_filled(first, members), partition=_earliest_split(members))
        dropped.discard(first.path)
        copies += [(relative_name(s.path, read.root), relative_name(first.path, read.root)) for s in members[1:]]
    if groups:
        log.warning("%s: %d file(s) hold the same bytes as another, %d image(s) in all: %d kept once each (in the "
                    "earliest split any copy was in), %d left out because their copies disagree on gender, race or "
                    "group", read.root, sum(map(len, groups)), len(groups), len(kept_as), len(groups) - len(kept_as))
    samples = [kept_as.get(s.path, s) for s in read.samples if s.path not in dropped]

    # the same photograph re-encoded or re-cropped: every image stays (they are not the same pixels), in one split
    by_path = {s.path: s for s in samples}
    near = near_groups({p: stats[p] for p in by_path if p in stats}, read.root, cache_dir, progress)
    if not thumbnail_tells_photographs(read.name):
        _say_look_alike(read.root, near)
        near = []  # said, not acted on: they may be two photos against one background
    moved: dict[str, Sample] = {}
    out: set[str] = set()
    near_identical = list(read.near_identical)
    for group in near:
        members = [by_path[p] for p in group]
        if _disagree(members):
            out.update(group)
            skipped += _left_out(members, read.root, f"{CONFLICT}, near-identical")
            conflicts.append([relative_name(p, read.root) for p in group])
            continue
        split = _earliest_split(members)
        moved.update({s.path: dataclasses.replace(_filled(s, members), partition=split) for s in members})
        near_identical.append([relative_name(p, read.root) for p in group])
    if near:
        log.warning("%s: %d image(s) are near-identical to another (one photograph re-encoded or re-cropped), in "
                    "%d group(s): each group kept in the earliest split any of it was in, %d group(s) left out "
                    "because they disagree on gender, race or group", read.root, sum(map(len, near)), len(near),
                    len(near) - len(near_identical) + len(read.near_identical))
    samples = [moved.get(s.path, s) for s in samples if s.path not in out]
    filled = [relative_name(s.path, read.root) for s in samples if _labels(s) != _labels(original.get(s.path, s))]
    if filled:  # said, not done silently: the reader had just warned these were "kept without labels"
        log.warning("%s: %d image(s) without a label take it from a copy of the same photograph that has it, e.g. %s",
                    read.root, len(filled), filled[:3])
    return DatasetRead(read.name, read.root, samples, skipped, copies, near_identical, conflicts)


def _say_look_alike(root: str, near: list[list[str]]) -> None:
    """Warns of images whose thumbnails match, where that does not make them one photograph: named, so that the
    user can look, and nothing done (see ``near_identical.thumbnail_tells_photographs``)."""
    if not near:
        return
    examples = "; ".join(" ≈ ".join(relative_name(p, root) for p in group[:2]) + (" …" if len(group) > 2 else "")
                         for group in near[:3])
    log.warning("%s: %d image(s) look like another in %d×%d grey thumbnails (within %g grey levels RMS), in %d "
                "group(s), e.g. %s: each kept under its own labels and in its own split, since in a folder of photos "
                "a thumbnail cannot tell one photograph saved again from two photos against the same background. "
                "Where some are one photograph, keep one of them: another in the test split would be a test image "
                "already trained on", root, sum(map(len, near)), SIDE, SIDE, MAX_RMS, len(near), examples)


def _disagree(members: list[Sample]) -> bool:
    """Two copies give one label different values. A copy without a label does not disagree: a groups CSV that
    listed one copy of a photograph and not its twin left both out as a conflict."""
    return any(len({labels[i] for labels in map(_labels, members)} - {None}) > 1 for i in range(len(LABELS)))


def _filled(s: Sample, members: list[Sample]) -> Sample:
    """``s`` with each label it lacks taken from a copy that has it (they agree: see ``_disagree``)."""
    missing = {}
    for f in LABELS:
        if getattr(s, f) is None:
            given = [getattr(m, f) for m in members if getattr(m, f) is not None]
            if given:
                missing[f] = given[0]
    if s.age is None and s.age_bin is None:
        given_ages = {(m.age, m.age_bin) for m in members if m.age is not None or m.age_bin is not None}
        if len(given_ages) == 1:
            missing.update(zip(FILLED_ONLY, given_ages.pop()))
    return dataclasses.replace(s, **missing) if missing else s


def _earliest_split(members: list[Sample]) -> str:
    return min((split_of(s) for s in members), key=SPLITS.index)


def _left_out(members: list[Sample], root: str, why: str) -> list[tuple[str, str]]:
    labels = ", ".join(f"{Path(s.path).name}: {_describe(s)}" for s in members)
    return [(relative_name(s.path, root), f"{why} ({labels})") for s in members]


def relative_name(path: str, root: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def kept_with_copies(read: DatasetRead) -> frozenset[str]:
    """The paths of ``read``'s samples whose split is that of their copies (``merge_copies``), not a split label
    of the dataset's nor their name's hash: a card called UTKFace's "the dataset's own split labels"."""
    names = {kept for _, kept in read.copies} | {name for group in read.near_identical for name in group}
    return frozenset(s.path for s in read.samples if relative_name(s.path, read.root) in names)
