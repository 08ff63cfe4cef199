"""Whether an aligned dataset's images are the tight face crops they are read as.

An aligned dataset (UTKFace, CelebA, FairFace) is read without the detector: each image is taken whole as the face.
A copy whose faces sit small in wide margins (FairFace's padding-1.25 release, the face about a third of the image's
width) was read so without a word: the default model scored 58 % on it where it scores 99 % on the same faces
cropped tight (96 % with --detect), and the skin measured moved by a median 8° of ITA. A small fixed sample is put
to the project's face detector, and where the faces it finds are small in their images the user is told.

Measured with this check's detector and sample (the median face width over the image's, 24 images; over 200 in
brackets): UTKFace 0.99 (1.00), a FairFace padding-0.25 replica 1.02 (1.00), a CelebA replica 1.03 (1.03), a
FairFace padding-1.25 replica 0.47 (0.45). Tight crops come out near 1, the 1.25 framing near 1.5/3.5 of that: the
bar between them, ``SMALL_FACE_SHARE``, leaves both a wide margin.
"""
from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass

from ..program_name import program
from .sample import DatasetRead

log = logging.getLogger(__name__)

FRAMED_KINDS = ("utkface", "celeba", "fairface")  # as cli_common.ALIGNED_KINDS: read whole unless --detect is given
SAMPLED = 24  # images put to the detector: a few hundred ms, spread evenly over the dataset
FOUND_AT_LEAST = SAMPLED // 2  # faces found for the share to say anything: fewer, and the detector is what failed
SMALL_FACE_SHARE = 0.65  # a median face narrower than this share of its image is no tight crop
DETECT_WIDTH = 128  # the width the detector scans at: aligned images are 178-224 px, their faces most of that
DETECT_REMEDY = "pass --detect, so that the detector finds each face in its image"
def train_remedy() -> str:
    return (f"training takes each image whole: crop the faces first (`{program()} train evaluate --detect` shows how "
            "the detector frames them)")


@dataclass(frozen=True)
class Framing:
    """What the detector found in an aligned dataset's sample."""

    sampled: int  # images read
    found: int  # of them, images with a face found
    median_share: float | None  # the median of each image's largest face's width over the image's; None if none

    @property
    def small(self) -> bool:
        """The faces are small in their images: the images are no tight face crops."""
        return (self.found >= FOUND_AT_LEAST and self.median_share is not None
                and self.median_share < SMALL_FACE_SHARE)


def sample_paths(read: DatasetRead, n: int = SAMPLED) -> list[str]:
    """``n`` of the dataset's images, evenly spaced in the order of their paths: the same for the same dataset."""
    paths = sorted({s.path for s in read.samples})
    return [paths[i * len(paths) // n] for i in range(n)] if len(paths) > n else paths


def measure_framing(paths: list[str], detector=None) -> Framing:
    """The faces ``detector`` (the project's Haar cascade where None) finds in ``paths``: the largest of each
    image, as a share of its width."""
    from ..faces import HaarDetector  # here: the readers need no OpenCV cascade unless this check runs
    from ..images import read_bgr

    detector = detector or HaarDetector(detect_width=DETECT_WIDTH)
    shares, sampled = [], 0
    for path in paths:
        image = read_bgr(path)
        if image is None:  # said by the command that reads it
            continue
        sampled += 1
        found = detector.detect(image)
        if found:
            shares.append(max(d.box[2] for d in found) / image.shape[1])
    return Framing(sampled, len(shares), statistics.median(shares) if shares else None)


def framing_warning(read: DatasetRead, remedy: str = DETECT_REMEDY, detector=None) -> str | None:
    """The warning for an aligned dataset (``FRAMED_KINDS``) whose faces are small in their images, naming the
    dataset and what to do (``remedy``); None where they fill them, or the dataset is of another kind."""
    if read.name not in FRAMED_KINDS or not read.samples:
        return None
    framing = measure_framing(sample_paths(read), detector)
    log.debug("%s: faces found in %d of %d sampled images, median width %s of the image's", read.root,
              framing.found, framing.sampled, framing.median_share)
    if not framing.small:
        return None
    release = (" This looks like FairFace's padding-1.25 release (fairface-img-margin125-trainval), whose faces "
               "are about a third of the image: use the padding-0.25 release (fairface-img-margin025-trainval), or "
               "find the faces." if read.name == "fairface" else "")
    return (f"{read.root}: the faces of this {read.name} dataset are small in their images (the detector found faces "
            f"in {framing.found} of {framing.sampled} sampled, their median width {framing.median_share:.0%} of the "
            f"image's, where aligned crops are filled by the face), yet each image is read whole as the face: the "
            f"models would see a small face in its surroundings, and accuracy and skin tone would be measured on "
            f"that.{release} To read its faces: {remedy}.")


def warn_if_loosely_framed(read: DatasetRead, remedy: str = DETECT_REMEDY, detector=None) -> bool:
    """Warn (``framing_warning``) where an aligned dataset read whole has small faces in its images; whether it
    warned. For the commands that read one without the detector: evaluate, audit and training."""
    said = framing_warning(read, remedy, detector)
    if said:
        log.warning("%s", said)
    return said is not None
