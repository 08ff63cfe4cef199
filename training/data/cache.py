"""Decode a list of images once into a uint8 array at the training size.

CPU training spends more time decoding JPEGs than it should; a cached
N×S×S×3 array (memory-mapped .npy) makes every epoch after the first cheap.
Unreadable images are counted and marked, never fatal.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from inference.images import read_rgb

log = logging.getLogger(__name__)


@dataclass
class ImageArray:
    images: np.ndarray  # N×S×S×3 uint8 RGB
    ok: np.ndarray  # N bool: False where the file could not be decoded

    @property
    def n_bad(self) -> int:
        return int((~self.ok).sum())


def load_images(paths: list[str], size: int, cache_dir: str | Path | None) -> ImageArray:
    key = hashlib.sha1(("\n".join(paths) + f"|{size}").encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"faces_{size}_{key}" if cache_dir else None
    if cache is not None and (cache / "done").exists():
        return ImageArray(np.load(cache / "images.npy", mmap_mode="r"), np.load(cache / "ok.npy"))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        images = np.lib.format.open_memmap(cache / "images.npy", "w+", np.uint8, (len(paths), size, size, 3))
    else:
        images = np.zeros((len(paths), size, size, 3), np.uint8)
    ok = np.zeros(len(paths), bool)
    for i, p in enumerate(tqdm(paths, desc=f"decoding {size}px", unit="img", mininterval=2)):
        img = read_rgb(p, size)
        if img is not None:
            images[i], ok[i] = img, True
    bad = len(paths) - int(ok.sum())
    if bad:
        log.warning("skipped %d unreadable image(s), e.g. %s", bad, [paths[i] for i in np.flatnonzero(~ok)[:3]])
    if cache is not None:
        images.flush()
        np.save(cache / "ok.npy", ok)
        (cache / "done").write_text(str(len(paths)))
    return ImageArray(images, ok)
