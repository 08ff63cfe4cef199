# Probe (2026-11-25; reading the raw listing since 2026-12-07): how many UTKFace images are one photograph stored
# twice, as the same bytes or saved again (re-encoded, re-cropped), and how many test adults that moves out of the
# test split? Run from the repo root:
#   PYTHONPATH=. .venv/bin/python docs/probes/near_identical.py ../shared/datasets/utkface /tmp/near.png
# It reads the listing as the reader gives it (read_utkface: every file, copies and all) with each file in the split
# its name hashes to (splits.split_of), and finds copies with the project's own functions (copies.content_groups,
# near_identical.near_groups), in the order merge_copies does: byte-identical files first, then near-identical
# images among what is left. open_dataset cannot be read here: it has merged the copies, moved each photograph to
# one split and left out the conflicting ones, so it shows none across splits (this probe printed 0 when it read it).
# Writes a contact sheet of the near-identical pairs closest to the limit (MAX_RMS), where a false match would
# show first. Result and decision: docs/architecture.md, "Each photograph once, in one split".
from __future__ import annotations

import sys
from collections import Counter

import cv2
import numpy as np

from inference.datasets import cache_folder, read_utkface, select, split_of, USER_CACHE
from inference.datasets.copies import _disagree, content_groups
from inference.datasets.near_identical import MAX_RMS, MIN_STD, near_groups, near_pairs, thumbnails
from inference.file_identity import file_stats

ADULT = 18  # the test adults every figure of docs/models.md and README is measured on


def _each_photograph_once(read, stats: dict, byte: list[list[str]]) -> dict:
    """``stats`` without the files merge_copies drops before it looks for near-identical images: each byte group's
    copies after its first, and every file of a group whose copies disagree on their labels."""
    by_path = {s.path: s for s in read.samples}
    gone = set()
    for group in byte:
        gone.update(group[0 if _disagree([by_path[p] for p in group]) else 1:])
    return {p: st for p, st in stats.items() if p not in gone}


def copy_groups(read, cache_dir) -> tuple[list[list[str]], list[list[str]]]:
    """(byte-identical groups, near-identical groups) of ``read``'s paths, found as merge_copies finds them."""
    stats = file_stats([s.path for s in read.samples])
    byte = content_groups(stats, read.root, cache_dir, progress=False)
    return byte, near_groups(_each_photograph_once(read, stats, byte), read.root, cache_dir, progress=False)


def counts(root: str, cache_dir=USER_CACHE) -> dict:
    """The copies of UTKFace at ``root`` and what they do to the test adults, each test adult counted once, under
    the first of: a copy or near twin under other labels (left out), one in train or val (moved there), a second
    copy of a test image (counted once); the rest stay."""
    read = read_utkface(root)
    by_path = {s.path: s for s in read.samples}
    byte, near = copy_groups(read, cache_folder(cache_dir))
    photograph: dict[str, set[str]] = {}  # path → every file of its photograph (its byte group, its near group)
    for group in (*byte, *near):
        members = set(group).union(*(photograph.get(p, {p}) for p in group))
        for p in members:
            photograph[p] = members
    conflicting = {p for group in (*byte, *near) if _disagree([by_path[q] for q in group]) for p in group}
    conflicting |= {q for p in conflicting for q in photograph[p]}
    second_copies = {p for group in byte for p in group[1:]}
    fate: Counter = Counter()
    tested = select(read.samples, "test", min_age=ADULT)
    for s in tested:
        others = photograph.get(s.path, {s.path}) - {s.path}
        if s.path in conflicting:
            fate["under_other_labels"] += 1
        elif any(split_of(by_path[p]) != "test" for p in others):
            fate["twin_in_train_or_val"] += 1
        elif s.path in second_copies:
            fate["second_copy_in_test"] += 1
    across = lambda groups: sum(len({split_of(by_path[p]) for p in g}) > 1 for g in groups)  # noqa: E731
    return {
        "files": len(read.samples),
        "byte_identical": {"groups": len(byte), "files": sum(map(len, byte)), "across_splits": across(byte)},
        "near_identical": {"groups": len(near), "images": sum(map(len, near)), "across_splits": across(near)},
        "groups_under_other_labels": sum(_disagree([by_path[p] for p in g]) for g in (*byte, *near)),
        "test_adults": {"listed": len(tested), **{k: fate[k] for k in ("twin_in_train_or_val", "under_other_labels",
                                                                       "second_copy_in_test")},
                        "left": len(tested) - sum(fate.values())},
    }


def closest_to_limit(root: str, sheet: str, cache_dir=USER_CACHE, n: int = 16) -> list[float]:
    """Draws the ``n`` near-identical pairs whose thumbnails are furthest apart (closest to MAX_RMS) side by side in
    ``sheet``, each with its RMS; returns those RMS values."""
    read = read_utkface(root)
    stats = file_stats([s.path for s in read.samples])
    byte = content_groups(stats, read.root, cache_folder(cache_dir), progress=False)
    kept, thumbs = thumbnails(_each_photograph_once(read, stats, byte), read.root, cache_folder(cache_dir),
                              progress=False)
    telling = thumbs.astype(np.float32).std(1) >= MIN_STD
    kept, thumbs = [p for p, t in zip(kept, telling) if t], thumbs[telling].astype(np.float32)
    pairs = near_pairs(thumbs)
    rms = np.sqrt(((thumbs[pairs[:, 0]] - thumbs[pairs[:, 1]]) ** 2).mean(1))
    edge = np.argsort(-rms)[:n]
    tiles = []
    for k in edge:
        a, b = (cv2.resize(cv2.imread(kept[i]), (96, 96)) for i in pairs[k])
        tile = np.hstack([a, b])
        cv2.putText(tile, f"{rms[k]:.1f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
        tiles.append(tile)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    cv2.imwrite(sheet, np.vstack([np.hstack(tiles[k:k + 4]) for k in range(0, len(tiles), 4)]))
    return [float(rms[k]) for k in edge]


if __name__ == "__main__":
    c = counts(sys.argv[1])
    b, near, t = c["byte_identical"], c["near_identical"], c["test_adults"]
    print(f"{c['files']} files: {b['files']} in {b['groups']} byte-identical groups ({b['across_splits']} across "
          f"splits); {near['images']} images in {near['groups']} near-identical groups (RMS < {MAX_RMS:g}; "
          f"{near['across_splits']} across splits); {c['groups_under_other_labels']} groups under other labels")
    print(f"{t['listed']} test adults: {t['twin_in_train_or_val']} with a copy or near twin in train or val, "
          f"{t['under_other_labels']} with one under other labels, {t['second_copy_in_test']} a second copy of a "
          f"test image; {t['left']} left")
    if len(sys.argv) > 2:
        edge = closest_to_limit(sys.argv[1], sys.argv[2])
        print(f"{sys.argv[2]}: the {len(edge)} pairs closest to the limit, RMS {min(edge):.1f}-{max(edge):.1f}")
