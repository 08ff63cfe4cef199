"""Decode a list of images once into a uint8 array at the training size.

CPU training spends more time decoding JPEGs than it should; a cached
N×S×S×3 array (memory-mapped .npy) makes every epoch after the first cheap.
Unreadable images are counted and marked, never fatal; callers name them
(``unreadable_note``), whether the array was decoded now or read from the cache.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from inference.images import read_rgb


@dataclass
class ImageArray:
    images: np.ndarray  # N×S×S×3 uint8 RGB
    ok: np.ndarray  # N bool: False where the file could not be decoded

    @property
    def n_bad(self) -> int:
        return int((~self.ok).sum())


def _stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def load_images(paths: list[str], size: int, cache_dir: str | Path | None) -> ImageArray:
    # Keyed by each file's size and modification time as well as its path: a photo replaced or repaired under the
    # same name was served from the cache as it had been decoded before (a fixed corrupt file stayed "unreadable").
    key = hashlib.sha1(("\n".join(f"{p}|{_stamp(p)}" for p in paths) + f"|{size}").encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"faces_{size}_{key}" if cache_dir else None
    if cache is not None and (cache / "done").exists():
        return _open(cache)
    if cache is not None:
        # Written under a private name and renamed when complete: processes started
        # together by torchrun may all decode, and none may truncate a file another reads.
        if cache.exists() and not (cache / "done").exists():
            shutil.rmtree(cache, ignore_errors=True)  # an unfinished cache from before caches were renamed in whole
        work = cache.with_name(f"{cache.name}.part{os.getpid()}")
        work.mkdir(parents=True, exist_ok=True)
        images = np.lib.format.open_memmap(work / "images.npy", "w+", np.uint8, (len(paths), size, size, 3))
    else:
        images = np.zeros((len(paths), size, size, 3), np.uint8)
    ok = np.zeros(len(paths), bool)
    for i, p in enumerate(tqdm(paths, desc=f"decoding {size}px", unit="img", mininterval=2)):
        img = read_rgb(p, size)
        if img is not None:
            images[i], ok[i] = img, True
    if cache is not None:
        images.flush()
        del images
        np.save(work / "ok.npy", ok)
        (work / "done").write_text(str(len(paths)))
        try:
            os.rename(work, cache)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(work, ignore_errors=True)
        return _open(cache)
    return ImageArray(images, ok)


def unreadable_note(paths: list[str], ok: np.ndarray, what: str = "", shown: int = 3) -> str:
    """'N unreadable image(s) skipped: a, b, c and K more' for the paths ``ok`` marks False."""
    bad = [paths[i] for i in np.flatnonzero(~np.asarray(ok, bool))]
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    return f"{what}{': ' if what else ''}{len(bad)} unreadable image(s) skipped: {', '.join(bad[:shown])}{more}"


def _open(cache: Path) -> ImageArray:
    return ImageArray(np.load(cache / "images.npy", mmap_mode="r"), np.load(cache / "ok.npy"))
