# One-off probe (2026-11-25): after byte-identical copies are counted once (inference/datasets/copies.py), how many
# UTKFace images are still the same photograph, re-encoded or re-cropped? Run from the repo root:
#   PYTHONPATH=. .venv/bin/python docs/probes/near_identical.py ../shared/datasets/utkface /tmp/near.png
# Every image as a 16×16 grey thumbnail; every pair compared (chunked matrix products: fine for UTKFace's 21k, not
# for CelebA's 202k); a pair is near-identical when its thumbnails differ by less than T grey levels RMS. Writes a
# contact sheet of the pairs closest to the largest T, where a false match would show first.
# Result and decision: docs/architecture.md, "Each photograph once, in one split".
import sys

import cv2
import numpy as np

from inference.datasets import open_dataset, split_of

read = open_dataset(f"utkface:{sys.argv[1]}")
samples = read.samples
thumbs = np.zeros((len(samples), 256), np.float32)
for i, s in enumerate(samples):
    g = cv2.imread(s.path, cv2.IMREAD_REDUCED_GRAYSCALE_4)
    if g is not None:
        thumbs[i] = cv2.resize(g, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
sq = (thumbs ** 2).sum(1)
pairs = []  # (rms, i, j)
for start in range(0, len(thumbs), 1024):
    block = thumbs[start:start + 1024]
    d2 = np.maximum(sq[start:start + 1024, None] + sq[None, :] - 2 * block @ thumbs.T, 0) / 256
    rows, cols = np.nonzero(d2 < 8.0 ** 2)
    for r, c in zip(rows, cols):
        if c > start + r:
            pairs.append((float(np.sqrt(d2[r, c])), start + r, int(c)))
labels = lambda k: (samples[k].gender, samples[k].race)  # noqa: E731
for t in (2.0, 4.0, 6.0, 8.0):
    near = [(d, i, j) for d, i, j in pairs if d < t]
    cross = [p for p in near if split_of(samples[p[1]]) != split_of(samples[p[2]])]
    conflict = [p for p in near if labels(p[1]) != labels(p[2])]
    tested = {k for _, i, j in cross for k, o in ((i, j), (j, i))
              if split_of(samples[k]) == "test" and split_of(samples[o]) != "test" and (samples[k].age or 0) >= 18}
    print(f"RMS < {t:.0f}: {len(near)} pairs, {len(cross)} across splits, {len(conflict)} under other labels, "
          f"{len(tested)} test adults with a near-identical image in train or val")
edge = sorted(pairs, key=lambda p: -p[0])[:16]
tiles = []
for d, i, j in edge:
    a, b = (cv2.resize(cv2.imread(samples[k].path), (96, 96)) for k in (i, j))
    tile = np.hstack([a, b])
    cv2.putText(tile, f"{d:.1f}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
    tiles.append(tile)
cv2.imwrite(sys.argv[2], np.vstack([np.hstack(tiles[k:k + 4]) for k in range(0, len(tiles), 4)]))
