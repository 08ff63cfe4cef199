"""Images that are the same photograph stored twice, re-encoded or re-cropped: found by their thumbnails.

After byte-identical copies are counted once, UTKFace still holds 471 pairs of images whose 16×16 grey thumbnails
differ by less than 8 grey levels RMS; looked at side by side (``docs/probes/near_identical.py``), every pair up to
12 levels is one photograph, recropped, re-encoded or blurred. 56 test adults had such a twin in training.

Every pair under ``MAX_RMS`` is found, none missed: thumbnails are projected on their 16 main axes (an orthonormal
projection never lengthens a distance), a k-d tree lists every pair within the same distance there, and each is
checked on the whole thumbnail. Thumbnails with too little contrast to tell (``MIN_STD``) are never matched.
The search is selective enough for CelebA's 202k images: on UTKFace the tree lists 883 candidates for 845 true
pairs in 0.4 s, and a typical face's nearest neighbour on those axes lies 272 away against a radius of 128; ten
times the faces bring that in by only 10^(1/16) (16 axes), so chance candidates grow about a hundredfold, to
thousands, not millions. Reading the thumbnails (about 4,000 files a second) is what takes the time, once.
Thumbnails are kept in the user's cache folder, keyed by size and modification time, and by the reader's version.

That a match is one photograph holds for aligned face crops only, where the face fills the thumbnail
(``thumbnail_tells_photographs``). In a folder's photos a face may be small in its frame, and a shared background
fills the thumbnail instead: 5 of 20 different people photographed against one plain wall matched another, and of
300 such photos, chained pair by pair, 238 fell into one group.
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from tqdm import tqdm

from ..frame_depth import as_bgr_uint8
from ..images import FRAME_FLAGS, READER_VERSION, UNREADABLE, read_image_checked
from ..quieting import quiet_opencv
from ..user_dirs import cache_keys, folder_cache_file
from ..writing import written_whole

log = logging.getLogger(__name__)

SIDE = 16
MAX_RMS = 8.0  # grey levels over the thumbnail: every pair inspected up to 12 was one photograph
# A thumbnail with less contrast than this holds too little of the picture to tell two apart (a flat or noisy
# image, whose noise averages out at 16×16): never matched. UTKFace's faces all have 10.9 or more.
MIN_STD = 8.0
_AXES = 16
# The readers of aligned face crops (``DatasetRead.name``), where the face fills the thumbnail (on UTKFace every
# pair inspected was one photograph). Any other (a folder: photos of any framing) is not: see the function below.
ALIGNED_FACE_READERS = frozenset({"utkface", "celeba", "fairface"})


def thumbnail_tells_photographs(reader: str) -> bool:
    """Whether two images of the reader ``reader`` whose thumbnails match are one photograph, to be acted on as
    such (one split, labels shared, left out where they disagree). Only for aligned face crops: two photos of
    different people against the same background match as well, and in a folder had been left out as "the same
    image under other labels", or audited under another person's gender and race."""
    return reader in ALIGNED_FACE_READERS


# FRAME_FLAGS at a quarter of the size: IMREAD_REDUCED_GRAYSCALE_4 is the reduction alone, and grey only where
# IMREAD_ANYCOLOR does not keep a photo's colour
_QUARTER = FRAME_FLAGS | cv2.IMREAD_REDUCED_GRAYSCALE_4


def thumbnail(path: str) -> np.ndarray | None:
    """The image as SIDE×SIDE grey levels (uint8, flattened); None where it cannot be read. Read by the reader every
    command reads a photo with, as it reads one (FRAME_FLAGS: a TIFF OpenCV refuses read by tifffile, a float TIFF
    read, an AVIF turned upright, a grey photo's profile converted as a grey one's, a damaged JPEG unreadable), at a
    quarter of its size, which a JPEG decodes at. Read as colour (IMREAD_REDUCED_COLOR_4), a float32 TIFF had no
    thumbnail (and OpenCV printed a warning naming no file), and a grey JPEG's grey profile, which converts no colour
    photo, was left unconverted: 17 levels from its sRGB copy, whose copy was missed."""
    try:
        image, problem = read_image_checked(path, _QUARTER)
    except cv2.error:  # a PNG under 4 px on a side: OpenCV cannot decode it reduced
        image, problem = None, UNREADABLE
    if image is None and problem == UNREADABLE:  # or a TIFF under 4 px, which it decodes as none
        image = read_image_checked(path, FRAME_FLAGS)[0]
    if image is None:
        return None
    grey = cv2.cvtColor(as_bgr_uint8(image), cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA).ravel()


# a first look at a large dataset (CelebA: 1.4 GB) reads every file once: shown from this many files to read
FIRST_LOOK_SHOWN_FROM = 5000


def first_look_shown(to_read: list, progress: bool) -> bool:
    """Whether reading ``to_read`` files shows a progress bar: a long first look at a dataset, unless the command was
    asked for none (``audit --no-progress`` on a fresh CI runner had printed 14 frames of these bars)."""
    return progress and len(to_read) >= FIRST_LOOK_SHOWN_FROM


def thumbnails(stats: dict[str, tuple[int, int]], root: str, cache_dir: Path | None,
               progress: bool = True) -> tuple[list[str], np.ndarray]:
    """The readable paths (of ``file_stats``' keys) and their thumbnails (N×SIDE² uint8), read once and kept under
    ``cache_dir``."""
    cache_path = folder_cache_file(cache_dir, "thumbnails", root, ".npz") if cache_dir is not None else None
    cached: dict[str, np.ndarray] = {}
    key = cache_keys(stats, root)
    path_of = {k: p for p, k in key.items()}
    if cache_path is not None and cache_path.exists():
        cached = _cached_thumbnails(cache_path, stats, path_of)
    to_read = [p for p in stats if p not in cached]
    try:
        with quiet_opencv():  # a file it cannot read is named by the command, not in OpenCV's words naming none
            for p in tqdm(to_read, desc="looking for near-identical images", unit="file",
                          disable=not first_look_shown(to_read, progress), mininterval=1):
                t = thumbnail(p)
                if t is not None:
                    cached[p] = t
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM (inference.stopping): what was read is kept, a file like any other that lists only the
        # files it holds, so the next run reads the rest. Stopped at 184,370 of CelebA's 200,000, the rerun had
        # read all 200,000 again.
        if cache_path is not None:
            _keep(cache_path, key, stats, cached)
        raise
    return _keep(cache_path, key, stats, cached) if cache_path is not None and to_read else _stacked(stats, cached)


def _stacked(stats: dict[str, tuple[int, int]], cached: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The paths of ``stats`` that have a thumbnail, in its order, and their thumbnails."""
    kept = [p for p in stats if p in cached]
    return kept, np.stack([cached[p] for p in kept]) if kept else np.zeros((0, SIDE * SIDE), np.uint8)


def _keep(cache_path: Path, key: dict[str, str], stats: dict[str, tuple[int, int]], cached: dict[str, np.ndarray]
          ) -> tuple[list[str], np.ndarray]:
    """``_stacked``, written to ``cache_path`` (where it can be: a read-only cache folder costs time, nothing else)."""
    kept, thumbs = _stacked(stats, cached)
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        # its own file (np.savez adds .npz to any other name): two commands had saved into one, half and half
        with written_whole(cache_path, ".tmp.npz") as part:
            np.savez(part, paths=np.array([key[p] for p in kept], dtype=str),
                     sizes=np.array([stats[p][0] for p in kept], np.int64),
                     mtimes=np.array([stats[p][1] for p in kept], np.int64), thumbs=thumbs,
                     reader=np.int64(READER_VERSION))
    except OSError as e:
        log.debug("could not keep thumbnails in %s: %s", cache_path, e)
    return kept, thumbs


def _cached_thumbnails(cache_path: Path, stats: dict[str, tuple[int, int]], path_of: dict[str, str]
                       ) -> dict[str, np.ndarray]:
    """The thumbnails kept in ``cache_path`` of files as they are now; none where it is damaged (truncated or
    corrupt: said, and all read again). A damaged file had given zipfile's traceback on every later command. None
    either where they were read by another version of the reader (``READER_VERSION``; a cache kept before it had
    none): a damaged JPEG's, kept garbled before the strict check, had still been matched."""
    cached: dict[str, np.ndarray] = {}
    try:
        with np.load(cache_path, allow_pickle=False) as z:
            if "reader" not in z.files or int(z["reader"]) != READER_VERSION:
                return {}
            thumbs = z["thumbs"]
            if thumbs.ndim != 2 or thumbs.shape[1] != SIDE * SIDE:
                raise ValueError(f"thumbnails of shape {thumbs.shape}")
            for k, size, mtime, t in zip(z["paths"].tolist(), z["sizes"], z["mtimes"], thumbs):
                p = path_of.get(k)
                if p is not None and stats[p] == (int(size), int(mtime)):
                    cached[p] = t
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        said = str(exc).strip().splitlines()
        log.warning("%s: damaged cache of thumbnails (%s): read again", cache_path,
                    said[0][:120] if said else type(exc).__name__)
        return {}
    return cached


def near_pairs(thumbs: np.ndarray, max_rms: float = MAX_RMS) -> np.ndarray:
    """Every pair (i < j) of thumbnails within ``max_rms`` grey levels RMS, as a k×2 array."""
    if len(thumbs) < 2:
        return np.zeros((0, 2), np.int64)
    x = thumbs.astype(np.float32)
    centred = x - x.mean(0)
    radius = max_rms * np.sqrt(x.shape[1])  # RMS over the thumbnail → Euclidean distance
    sample = centred[:: max(1, len(centred) // 5000)]
    axes = np.linalg.svd(sample, full_matrices=False)[2][:_AXES]
    candidates = cKDTree(centred @ axes.T).query_pairs(radius, output_type="ndarray")
    if not len(candidates):
        return np.zeros((0, 2), np.int64)
    d = np.sqrt(((x[candidates[:, 0]] - x[candidates[:, 1]]) ** 2).sum(1))
    return candidates[d < radius]


def near_groups(stats: dict[str, tuple[int, int]], root: str, cache_dir: Path | None,
                progress: bool = True) -> list[list[str]]:
    """Groups (two or more, each sorted) of the images (``file_stats``' keys) that are one photograph: pairs
    within MAX_RMS, joined."""
    kept, thumbs = thumbnails(stats, root, cache_dir, progress)
    telling = thumbs.astype(np.float32).std(1) >= MIN_STD
    kept, thumbs = [p for p, t in zip(kept, telling) if t], thumbs[telling]
    pairs = near_pairs(thumbs)
    if not len(pairs):
        return []
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(kept), len(kept)))
    _, label = connected_components(graph, directed=False)
    members: dict[int, list[str]] = {}
    for i in np.unique(pairs):
        members.setdefault(int(label[i]), []).append(kept[i])
    return sorted(sorted(g) for g in members.values() if len(g) > 1)
