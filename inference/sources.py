"""Frame sources behind one interface: webcam index, video file, image folder (slideshow), single image, and a single
image file of several frames (an animated GIF or WebP, a multi-page TIFF), played frame by frame.

A source yields ``Frame``s. Reading never raises for a bad frame: an
unreadable image in a folder, or a video frame that cannot be decoded (or that
a damaged file lost, told by the decoder's times), is reported through
``Frame.warning`` and skipped; a video that ends short of the
frames it declares says so in ``end_warning``; a camera that stops delivering
reports ``lost`` so the caller can retry with ``reopen()``. What a source says of
itself rather than of a frame skipped (a folder's photos of a type not read, an
HDR video's colour, a pause in a video's times) is logged once and kept in
``warnings``, for the app's window.
"""
from __future__ import annotations

import logging
import os
import re
import stat
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image

from . import tiff_pages
from .avif_read import AVIF_BRANDS, ftyp_brands
from .colour_profiles import PILLOW_OPEN_ERRORS, embedded_profile, in_srgb
from .datasets.folder import FolderListing, list_folder
from .datasets.sample import IMAGE_EXTENSIONS, PASSED_OVER_PHOTOS
from .errors import PERMISSION_DENIED, BiasMirrorError, in_words
from .faces import Detected
from .quieting import quiet_opencv
from .frame_depth import frame_problem
from .images import FRAME_FLAGS, UNREADABLE, opencv_can_name, opencv_path, opening_problem, read_image_checked
from .tiff_read import tiff_page
from .video_colour import MatroskaWalk, unconverted_colour_warning

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".mts", ".m2ts", ".ts",
                    ".3gp", ".flv", ".ogv", ".vob")


@dataclass(frozen=True)
class Frame:
    image: np.ndarray | None  # BGR (any depth/channels; the pipeline normalises), None with a warning
    index: int
    timestamp: float
    name: str
    warning: str | None = None
    detected: Detected | None = None  # its faces, when found ahead of its analysis (gui.workers.DetectThread)
    still: bool = False  # a photo of a folder (or a TIFF's page): its faces are nobody seen in the frame before
    video_s: float | None = None  # a video file's frame: its position in it, in seconds, as the decoder times it
    problem: str | None = None  # an image that could not be read: why, in the reader's words ("permission denied"),
    # without the file's name that ``warning`` adds (an audit's report lists it under its own name)


class Source:
    name: str = ""
    live: bool = False  # a camera: frames come at their own pace and can be lost
    end_warning: str | None = None  # set when the source ended short of what it claimed to hold
    expected: int | None = None  # the frames it means to give (a folder's images, a video's declared count), if known
    # what it says of itself, not of a frame skipped, each once: logged as it is found, and kept here for the app's
    # window (a tuple replaced whole: the capture thread adds, the window reads)
    warnings: tuple[str, ...] = ()
    passes: int = 0  # the times a looped file was started again: its frames' times go back, or stay (a 1-frame file)

    def read(self) -> Frame | None:
        """The next frame, or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _note(self, text: str) -> None:
        """Says ``text`` of the source, once however often it is found (a looped file's every pass)."""
        if text not in self.warnings:
            self.warnings = (*self.warnings, text)
            log.warning("%s", text)

    def __iter__(self) -> Iterator[Frame]:
        while (f := self.read()) is not None:
            yield f


class CameraSource(Source):
    live = True

    def __init__(self, index: int, width: int = 640, height: int = 480):
        self.index, self.size = index, (width, height)
        self.name = f"camera {index}"
        self._cap: cv2.VideoCapture | None = None
        self._n = 0
        self.lost = False
        if not self.reopen():
            raise BiasMirrorError(f"no camera could be opened at index {index}; check it is connected and not in use, "
                                  "or open a video file or image folder instead", self.name)

    def reopen(self) -> bool:
        if self._cap is not None:
            self._cap.release()
        try:
            with quiet_opencv():
                cap = cv2.VideoCapture(self.index)
            opened = cap.isOpened()
        except cv2.error:  # a backend that raises where others answer "not opened": still not there, retried
            opened = False
        if not opened:
            self._cap = None
            return False
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        self._cap, self.lost = cap, False
        return True

    def read(self) -> Frame | None:
        if self._cap is None:
            self.lost = True
            return Frame(None, self._n, time.monotonic(), self.name, "the camera is not available")
        try:
            ok, img = self._cap.read()
        except cv2.error:  # a backend that raises for an unplugged camera: lost and retried, as one that fails a read
            ok, img = False, None
        if not ok or img is None:
            self.lost = True
            return Frame(None, self._n, time.monotonic(), self.name, "the camera stopped delivering frames")
        self._n += 1
        return Frame(img, self._n - 1, time.monotonic(), self.name)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class _PlayedFile(Source):
    """A file whose frames are played in order, as a video's are, and looped when asked."""

    def __init__(self, path: Path, loop: bool):
        self.path, self.name, self.loop = path, path.name, loop
        self._read_this_pass = False  # a frame of this pass given: looping a file none of which decodes would spin
        self._over = False
        self.end_warning: str | None = None


@dataclass(frozen=True)
class _Decoded:
    """A frame the decoder gave."""
    image: np.ndarray
    s: float | None  # its time in the file, from the decoder; None where it gave none
    failed: int  # the reads that failed before it: frames that could not be decoded


class _FrameTimes:
    """Tells from the decoder's times the frames a damaged video's demuxer passed over without a failed read.

    Matroska's, WebM's, FLV's and WMV's demuxers resync past a damaged stretch to the next frame they can parse: no
    read fails, and every frame after it had been numbered as if the stretch were not there (a WebM's frame 32 as
    23, with nothing said). Its time is still its own, and in a file of one frame rate a jump in the times says how
    many frames went missing. A variable rate's times jump too, where its rate falls (a phone's, in low light): a
    jump is judged only in a file whose times have kept to one frame period, on its grid, and go on at it after
    the jump; a file whose times once stray is judged no more.

    A jump alone is no lost frame: a recording that paused (a browser's recorder while its tab stalled) jumps as a
    damaged stretch does, and its whole file had been called damaged and its later frames numbered 14 too high. The
    frames of a jump are counted lost only where the file says it is damaged there (``lost_there``, asked of the
    frames before and after the jump: a Matroska file's structure broken between them); any other jump is said
    (``on_gap``) and the decoder's numbering kept."""

    TOLERANCE = 0.25  # of a frame period: the jitter of a steady rate's times (a millisecond's rounding at 60 fps)
    STEADY_BEFORE = 5  # steady intervals before a jump is believed: a file's rate is not known from fewer

    def __init__(self, fps: float, judged: bool,
                 lost_there: Callable[[float, float], bool] = lambda before, after: False,
                 on_gap: Callable[[float, float], None] = lambda before, after: None):
        self.period = 1 / fps if fps > 0 else 0.0
        self._judging = judged and fps > 0
        self._last: float | None = None  # the time of the frame judged last
        self._steady = 0
        self._lost_there, self._on_gap = lost_there, on_gap

    def passed_over(self, frame: _Decoded, after: Callable[[], _Decoded | None]) -> int:
        """The frames missing between the frame judged last and ``frame``, beyond those that failed to decode;
        ``after`` reads the frame that follows ``frame``, asked only to judge a jump."""
        before, self._last = self._last, frame.s
        if frame.s is None:
            self._judging = False  # a frame the decoder gave no time: the file's times cannot be followed
        if not self._judging or before is None:
            return 0
        interval, counted = frame.s - before, 1 + frame.failed  # a period for it, and one per undecodable frame
        if self._periods(interval, counted):
            self._steady += 1
            return 0
        missing = round(interval / self.period) - counted
        if (missing > 0 and self._periods(interval) and self._steady >= self.STEADY_BEFORE
                and self._goes_on(frame, after())):
            if self._lost_there(before, frame.s):
                return missing
            self._on_gap(before, frame.s)  # a pause, or damage nothing shows: no frame invented for it
            return 0
        self._judging = False  # a change of rate, not a damaged stretch: this file's times tell no more
        return 0

    def _goes_on(self, frame: _Decoded, following: _Decoded | None) -> bool:
        """Whether the frame after a jump comes a frame period after it (and one per undecodable frame between):
        the file's rate goes on, where a variable rate's fall would have gone on at its longer interval."""
        return following is not None and following.s is not None and self._periods(following.s - frame.s,
                                                                                    1 + following.failed)

    def _periods(self, interval: float, n: int | None = None) -> bool:
        """Whether ``interval`` is ``n`` frame periods (a whole number of them, if None), within the jitter."""
        steps = interval / self.period
        return abs(steps - (round(steps) if n is None else n)) <= self.TOLERANCE


class VideoSource(_PlayedFile):
    # FFmpeg fails a read for each frame it cannot decode and goes on with the next; a run of failures this
    # long is the end of what can be read (a cut-off file fails every read from there on).
    MAX_BAD_RUN = 25

    def __init__(self, path: Path, loop: bool = False):
        super().__init__(path, loop)
        self._cap = cv2.VideoCapture(opencv_path(path, "this video"))
        if not self._cap.isOpened():
            try:
                path.open("rb").close()
            except PermissionError:
                raise BiasMirrorError(PERMISSION_DENIED, path) from None
            except OSError:
                pass  # OpenCV's own failure below says as much
            raise BiasMirrorError("OpenCV cannot open this video (missing, corrupt or an unsupported codec)", path)
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 0.0
        # from the container's header or its duration × fps: what the file claims, 0 where it does not say
        self.declared = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        self.expected = None if loop else self.declared or None
        self._n = 0
        self._bad = 0  # undecodable frames before the one held back
        self._missing = 0  # frames the demuxer passed over before it (see _FrameTimes), after the undecodable ones
        self._held: np.ndarray | None = None
        self._held_s: float | None = None  # its time in the file, from the decoder
        self._last_s: float | None = None  # the last frame given's
        # the frame after the one held back (None: the end), where it was read to judge a jump in the times
        self._ahead: list[_Decoded | None] = []
        self._structure = MatroskaWalk(path)  # walked only where the times jump
        self._times = self._frame_times()
        if (colour := unconverted_colour_warning(path)) is not None:
            self._note(colour)

    def read(self) -> Frame | None:
        if self._over:
            return None
        if self._bad == 0 and self._missing == 0 and self._held is None:
            self._read_on()
        if self._bad:
            self._bad -= 1
            return self._skipped(f"frame {self._n} could not be decoded")
        if self._missing:
            # the missing frames come last before the one held back: its time, less a frame period for each
            at = self._held_s - self._missing * self._times.period
            self._missing -= 1
            return self._skipped(f"frame {self._n} (at {at:.2f} s) is missing from the file (damaged there?)")
        if self._held is None:
            if self.loop and self._read_this_pass:
                if self._rewind():
                    return self.read()
                self._over = True  # asked to loop, and told why it did not: it had been a plain "end of v.mp4"
                self.end_warning = f"{self.name} could not be opened again to loop (moved or deleted?)"
                return None
            self._over = True
            if self._short():
                self.end_warning = (f"{self.name} ended after {self._n} of {self.declared} frames (truncated or "
                                    f"damaged?){self._numbering_note()}")
            return None
        img, self._held = self._held, None
        self._n += 1
        self._read_this_pass = True
        # the frame number counts the undecodable frames before it too: the position in the file; its time is the
        # decoder's (a phone's video has a variable frame rate: number ÷ rate had put a frame at 2.1 s that is at 0.9)
        self._last_s = self._held_s if self._held_s is not None else (self._n - 1) / self.fps if self.fps else None
        return Frame(img, self._n - 1, time.monotonic(), f"{self.name}#{self._n - 1}", video_s=self._last_s)

    def _numbering_note(self) -> str:
        """An AVI's demuxer passes over a damaged stretch without a failed read, and its times count the frames it
        found: where frames were lost mid-file rather than at its end, the later ones' numbers are early, and
        nothing here can tell which."""
        if self.path.suffix.lower() != ".avi":
            return ""
        return "; if frames were lost before its end, the frames after them are numbered early"

    def _skipped(self, why: str) -> Frame:
        """The next frame of the file, which cannot be given: said why, by its number, as a frame of its own."""
        self._n += 1
        return Frame(None, self._n - 1, time.monotonic(), f"{self.name}#{self._n - 1}", f"{self.name}: {why}; skipped")

    def _frame_times(self) -> _FrameTimes:
        # a container that indexes its frames is read by its index: a damaged frame is a read that fails, counted (an
        # MP4's or MOV's), or the AVI demuxer's times count the frames it found, and tell nothing. Judged there, a
        # phone's variable-rate video would have had frames called missing where its rate fell.
        return _FrameTimes(self.fps, judged=self.path.suffix.lower() not in EXACT_FRAME_COUNTS,
                           lost_there=self._lost_in_gap, on_gap=self._note_gap)

    def _lost_in_gap(self, before: float, after: float) -> bool:
        return self._structure.lost_between(*self._gap_frames(before, after))

    def _gap_frames(self, before: float, after: float) -> tuple[float, float]:
        """The times a jump's missing frames lie between: half a frame period inside the frames around it, as the
        container's times and the decoder's are rounded apart, and a damaged stretch that begins at the frame after
        the jump (later in the Cluster a pause ended at) takes none of the pause's frames."""
        half = 0.5 / self.fps
        return before + half, after - half

    def _note_gap(self, before: float, after: float) -> None:
        gap = f"{self.name}: no frames between {before:.2f} s and {after:.2f} s"
        if self._structure.whole_between(*self._gap_frames(before, after)):
            self._note(f"{gap}: the recording paused there (the file is whole there: no frame is missing)")
        else:  # FLV's, WMV's and MPEG-TS's structure is not walked here: a damaged stretch of theirs is said so
            self._note(f"{gap}: damaged, or the recording paused (if damaged, the frames after it are numbered early)")

    def _short(self) -> bool:
        """Ended well short of the frames the file declares. The count is an estimate in some containers (duration
        × fps), a frame or two off, and for a variable frame rate many: there the last frame's time, at the
        file's end, says the file was read whole (a complete Matroska file had been called truncated)."""
        missing = self.declared - self._n
        if missing <= 0:
            return False
        # a container that indexes its frames (AVI, MP4, MOV) declares them exactly: a frame short is a frame lost (the
        # last two of 40 undecodable had ended the video without a word, and up to 2 % of a long one's still did
        # through the time rule below); another's count is an estimate (duration × fps), a frame or two over a whole
        # file's, and a variable frame rate's further off, where the decoder's times tell
        if self.path.suffix.lower() in EXACT_FRAME_COUNTS:
            return True
        if missing <= max(2, self.declared // 50):
            return False
        duration = self.declared / self.fps if self.fps else None
        return not (duration and self._last_s is not None and self._last_s + 1.5 / self.fps >= duration * 0.98)

    def _rewind(self) -> bool:
        """To the first frame again (--loop); False where the file cannot be reopened."""
        self._cap.release()
        self._cap = cv2.VideoCapture(str(self.path))
        self._n, self._read_this_pass = 0, False
        self._ahead, self._times = [], self._frame_times()
        self.passes += 1
        if not self._cap.isOpened():
            return False
        self._read_on()
        return True

    def _read_on(self) -> None:
        """The next decodable frame into ``_held``, counting the undecodable ones before it in ``_bad`` and those the
        demuxer passed over in ``_missing``."""
        frame = self._ahead.pop() if self._ahead else self._decode(self._n)
        if frame is None:
            return
        self._held, self._held_s, self._bad = frame.image, frame.s, frame.failed
        self._missing = self._times.passed_over(frame, lambda: self._peek(frame))

    def _peek(self, frame: _Decoded) -> _Decoded | None:
        """The frame after ``frame``, read ahead and kept for the next read."""
        self._ahead = [self._decode(self._n + frame.failed + 1)]
        return self._ahead[0]

    def _decode(self, at: int) -> _Decoded | None:
        """The next decodable frame, its read starting at frame ``at`` of the file; None at the end."""
        failed = 0
        while True:
            ok, img = self._cap.read()
            if ok and img is not None:
                ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                # 0 is the first frame's time, not a later one's: a backend without timestamps gives 0 throughout
                s = ms / 1000 if np.isfinite(ms) and ms >= 0 and (ms > 0 or at + failed == 0) else None
                return _Decoded(img, s, failed)
            failed += 1
            # past the frames the file claims there is nothing to skip to: a normal end, retried no further
            if failed > self.MAX_BAD_RUN or (self.declared and at + failed >= self.declared):
                return None

    def close(self) -> None:
        self._cap.release()


class ImageListSource(Source):
    """A folder (or one image) shown as a slideshow; ``loop`` repeats it, a folder (``root``) listed again at each
    pass: photos added while it loops are shown, and those deleted are no longer skipped pass after pass."""

    def __init__(self, paths: list[Path], name: str, loop: bool = False, root: Path | None = None,
                 not_read: list[tuple[Path, str]] | tuple = (), say_first_frame_only: bool = True,
                 warnings: tuple[str, ...] = (), listing: FolderListing | None = None):
        """``warnings``: what listing the folder said (``FolderListing.warnings``), logged already; ``listing``: the
        folder's (``root``'s) listing these paths came from, whose folders' times tell a looped pass whether to
        list it again."""
        if not paths:
            only = (f"; only {len(not_read)} photo(s) of a type that cannot be read here "
                    f"({', '.join(dict.fromkeys(kind for _, kind in not_read))}): convert them (e.g. to JPEG) first"
                    if not_read else "")
            raise BiasMirrorError(f"no images found ({', '.join(IMAGE_EXTENSIONS)}){only}", name)
        self.name, self.loop, self.root = name, loop, root
        self.warnings = tuple(warnings)
        self.expected = None if loop else len(paths)
        self._take_paths(paths)
        self._i = 0
        self._read_this_pass = False  # any image of this pass decoded
        self._read_before = False  # any image of an earlier pass decoded: the end then speaks of the last pass
        # an image of several frames read as its first alone: its label → its frames, and why the rest were not read
        self._first_frame_only: dict[str, tuple[int, str]] = {}
        # False where the caller says it in words of its own (the audit's report: "open the file on its own" is
        # advice for `run` and the app)
        self._say_first_frame_only = say_first_frame_only
        self.end_warning: str | None = None
        # the folders' mtimes as the last listing found them; None: listed again at the next pass
        self._listed_times = _settled_times(listing)

    def _take_paths(self, paths: list[Path]) -> None:
        self.paths = paths
        # a frame's source names its file within ``root``: person1/photo.jpg and person2/photo.jpg are two photos
        # (the pipeline keeps face ids per photo, and `run`'s rows say which file), where the bare name made one
        root = self.root
        self._labels = [p.relative_to(root).as_posix() if root is not None and p.is_relative_to(root) else p.name
                        for p in paths]

    def read(self) -> Frame | None:
        if self._i >= len(self.paths):
            if not self._read_this_pass:  # looping over images none of which decodes spun without end
                self.end_warning = self._none_read_warning()
                return None
            if not self.loop:
                self.end_warning = self._first_frames_warning()
                return None
            self._i, self._read_this_pass, self._read_before = 0, False, True
            self.passes += 1
            if self.root is not None and not self._listed_again():
                return None
        p = self.paths[self._i]
        self._i += 1
        with quiet_opencv():  # a damaged PNG had OpenCV print 2 lines on every pass of a loop: said here, by name
            img, problem = read_image_checked(p, FRAME_FLAGS)
        label = self._labels[self._i - 1]
        if img is None:  # unreadable, or pixels no frame can be made of (signed integers): skipped, said why
            return Frame(None, self._i - 1, time.monotonic(), label, f"{p}: {problem}; skipped", problem=problem)
        self._read_this_pass = True
        self._note_if_first_frame_only(p, label)
        return Frame(img, self._i - 1, time.monotonic(), label, still=True)

    def _none_read_warning(self) -> str:
        """The end of a pass none of whose images could be read, in its words: a looped folder emptied had said
        "none of the 3 image(s) could be read" after 21 frames of them were analysed."""
        none = (f"none of the {len(self.paths)} image(s) in {self.name} could be read" if len(self.paths) > 1
                else f"{self.name} could not be read")
        if not self._read_before:
            return none
        return (f"{none} on pass {self.passes + 1} (earlier passes were read: deleted or changed meanwhile?): "
                "looping stopped")

    def _listed_again(self) -> bool:
        """The folder listed afresh for the next pass; False (``end_warning`` set) where nothing of it is left to
        show. What its listing says that had not been said is said now. Listed only where a folder of it has changed
        (a file added, removed or renamed changes its folder's mtime): 21,336 images took half a second to list, at
        every pass, on the capture thread."""
        if self._listed_times is not None and _unchanged(self._listed_times):
            return True
        try:
            listing = list_folder(self.root, say=False)
        except (OSError, BiasMirrorError) as exc:
            why = exc.message if isinstance(exc, BiasMirrorError) else in_words(exc)
            self.end_warning = f"{self.name} could not be listed again to loop ({why}): looping stopped"
            return False
        for text in listing.warnings:
            self._note(text)
        if not listing.images:
            self.end_warning = f"no images are left in {self.name} to loop over (deleted or moved?): looping stopped"
            return False
        self._take_paths(listing.images)
        self._listed_times = _settled_times(listing)
        return True

    def _note_if_first_frame_only(self, path: Path, label: str) -> None:
        """A folder is a slideshow of photos, one frame each: an animated GIF's or a multi-page TIFF's other frames
        are left out, and said to be, once per file (a GIF whose faces came after its first frame had given "no
        face found" without a word)."""
        if label in self._first_frame_only or not self._say_first_frame_only:
            return
        frames = frame_count(path)
        if frames > 1:
            why = _why_frames_unreadable(path) or _IN_A_FOLDER
            self._first_frame_only[label] = (frames, why)
            log.warning("%s: only the first of %d frames analysed (%s)", label, frames, why)

    def _first_frames_warning(self) -> str | None:
        """Said again at the end, where `run` and the app's warnings keep it: the log's line scrolls by."""
        noted = self._first_frame_only
        if not noted:
            return None
        files = ", ".join(f"{label} ({n} frames)" for label, (n, _) in list(noted.items())[:3])
        more = f" and {len(noted) - 3} more" if len(noted) > 3 else ""
        whys = "; ".join(dict.fromkeys(why for _, why in noted.values()))
        return f"only the first frame of {files}{more} was analysed: {whys}"


# a folder changed this recently may change again within the same tick of its mtime's clock, unseen (ext4's is a
# few ms, FAT's 2 s): listed again until its changes are older than that
_SETTLING_NS = 3 * 10**9


def _unchanged(times: dict[str, int]) -> bool:
    """Whether each folder of ``times`` is there with the mtime it had: a stat per folder, where walking them would
    read every file's name again."""
    try:
        return all(os.stat(folder).st_mtime_ns == mtime for folder, mtime in times.items())
    except OSError:
        return False


def _settled_times(listing: FolderListing | None) -> dict[str, int] | None:
    """The listing's folder times where none of its folders changed so recently that a change since could share its
    mtime (measured from when the listing began: a change while it listed shows as one not settled); else None."""
    times = None if listing is None else listing.folder_times
    if not times or max(times.values()) >= listing.listed_at_ns - _SETTLING_NS:
        return None
    return times


class ImageFramesSource(_PlayedFile):
    """One image file of several frames, played frame by frame as a video is: an animation (GIF, WebP, APNG) or a
    multi-page TIFF. Its first frame alone had been read, and faces in the others went unseen without a word."""

    def __init__(self, path: Path, frames: Sequence[int], loop: bool = False):
        """``frames``: the file's frames to play, by their number in it (``played_frames``)."""
        super().__init__(path, loop)
        # a TIFF's: the pages played, by their number in the file (its thumbnails and masks left out); None for an
        # animation, whose every frame is played
        self._pages = list(frames) if _tiff(path) else None
        self.frames = len(frames)
        self.expected = None if loop else self.frames
        self._unit = "page" if self._pages is not None else "frame"
        # a name OpenCV's file functions cannot be given (opencv_can_name): its frames are decoded from its bytes
        self._bytes = None if opencv_can_name(path) else _file_bytes(path)
        # an animation's ICC profile, read once for its every frame (a TIFF's pages each carry their own): its frames
        # put in sRGB as its first read as a photo is, or the same picture had read another ITA played than audited
        self._profile = None if self._pages is not None else _animation_profile(path)
        self._batch: list[np.ndarray] = []  # the frames decoded ahead, from ``_batch_start`` on
        self._problem: str | None = None  # where the batch is empty: why its page cannot be read, if that is known
        self._durations: list[int] = []  # an animation's: how long each of them shows, in milliseconds
        self._batch_start = 0
        self._batch_len = 1  # the first batch is one frame: its size says how many fit in FRAME_BATCH_BYTES
        self._n = 0  # the next frame's number
        self._ms = 0  # its time in the animation

    def read(self) -> Frame | None:
        if self._over:
            return None
        if self._n >= self.frames:
            if not (self.loop and self._read_this_pass):
                self._over = True
                return None
            self._n, self._ms, self._read_this_pass = 0, 0, False
            self.passes += 1
        i = self._n - self._batch_start
        if not 0 <= i < len(self._batch):
            self._load(self._n)
            i = 0
        if not self._batch:
            if self._problem is None:  # a file that counts more frames than it can decode: cut off, or damaged
                self._over = True
                self.end_warning = (f"{self.name} ended after {self._n} of {self.frames} {self._unit}s "
                                    "(truncated or damaged?)")
                return None
            self._n += 1  # a page that cannot be read for a reason of its own: skipped, and the next one read
            return self._skipped(self._problem)
        img, at = self._batch[i], self._ms / 1000
        self._n += 1
        self._ms += self._durations[i] if i < len(self._durations) else 0
        name = f"{self.name}#{self._n - 1}"
        problem = frame_problem(img)
        if problem:  # a page of pixels no frame can be made of (signed integers): skipped, as a folder's image is
            return self._skipped(problem)
        self._read_this_pass = True
        if self._pages is not None:
            # a TIFF's pages are separate pictures (a scanned album, a fax, a stack of photos), with no time between
            # them: each page's faces are nobody seen on the page before, as a folder's photos' are
            return Frame(img, self._n - 1, time.monotonic(), name, still=True)
        # an animation's frames are a moving picture, as a video's are: a face on frame after frame is one person,
        # tracked as such (`still` would make it someone new on each frame), and each frame has its time in it
        return Frame(img, self._n - 1, time.monotonic(), name, video_s=at)

    def _skipped(self, problem: str) -> Frame:
        """The frame just read (``_n - 1``) skipped, saying why, as a folder's unreadable image is."""
        number = self._n - 1
        return Frame(None, number, time.monotonic(), f"{self.name}#{number}",
                     f"{self.name}: {self._unit} {number}: {problem}; skipped", problem=problem)

    def _load(self, start: int) -> None:
        """The frames from ``start`` on into ``_batch``, as many as FRAME_BATCH_BYTES holds: never the whole file."""
        # a TIFF's pages one at a time: they differ in size (a 64×64 first page had set a batch of 30 pages of
        # 4000×3000, 1 GiB at once), and a page is read without decoding those before it
        count = 1 if self._pages is not None else min(self._batch_len, self.frames - start)
        frames, durations = self._decode(start, count)
        self._batch, self._durations, self._batch_start = frames, durations, start
        if frames and self._pages is None:  # an animation's frames are all of its canvas's size
            self._batch_len = max(1, FRAME_BATCH_BYTES // max(f.nbytes for f in frames))

    def _decode(self, start: int, count: int) -> tuple[list[np.ndarray], list[int]]:
        self._problem = None
        try:
            with quiet_opencv():
                if self._pages is not None:
                    return self._read_page(self._pages[start]), []
                animation = self._read_animation(start, count)
        except cv2.error:  # raised by some decoders for a damaged file: it ends there, said so by read()
            return [], []
        frames = [in_srgb(frame, self._profile) for frame in animation.frames or ()]
        return frames, [_shown_ms(int(ms)) for ms in animation.durations]

    def _read_page(self, page: int) -> list[np.ndarray]:
        """A TIFF's page (its number in the file), read as a file of that page alone is read as a photo (16 bits
        kept, EXIF orientation applied, put in sRGB by the page's ICC profile); none where it cannot be read, with
        ``_problem`` set where why is known."""
        read = tiff_page(self.path, page, FRAME_FLAGS, self._bytes)
        if read.image is None:
            self._problem = read.problem
            return []
        # pixels no frame can be made of (signed integers) are left as read, for read() to skip saying why
        return [read.image if frame_problem(read.image) else in_srgb(read.image, read.icc)]

    def _read_animation(self, start: int, count: int) -> cv2.Animation:
        # an animation's frame is drawn over the ones before it: imreadmulti gave later frames half drawn,
        # imreadanimation draws those before ``start`` again (hence batches as large as memory allows)
        if self._bytes is None:
            return cv2.imreadanimation(str(self.path), start, count)[1]
        return cv2.imdecodeanimation(self._bytes, start, count)[1]

    def close(self) -> None:
        self._batch = []


def camera_index(spec: str | int | Path) -> int | None:
    """The camera a source names, or None for a path: a name of digits is a camera unless a file or folder of that
    name is there (a folder "2024" of photos had been opened as camera 2024)."""
    if isinstance(spec, int):
        return spec
    text = str(spec)
    if text.isdecimal() and text.isascii() and not Path(text).exists():
        return int(text)
    return _video_device_index(text)


def _video_device_index(text: str) -> int | None:
    """N for Linux's camera device /dev/videoN (the camera OpenCV opens as index N), else None: a device given as a
    source is refused, and this one names a camera."""
    match = re.fullmatch(r"/dev/video(\d+)", text)
    if match is None:
        return None
    try:
        return int(match.group(1)) if stat.S_ISCHR(os.stat(text).st_mode) else None
    except OSError:
        return None


def open_source(spec: str | int, loop: bool = False) -> Source:
    """``0`` (camera index), a video file, an image folder or a single image."""
    index = camera_index(spec)
    if index is not None:
        return CameraSource(index)
    path = Path(spec).expanduser()
    if path.is_dir():
        listing = list_folder(path)
        return ImageListSource(listing.images, str(path), loop, root=path, not_read=listing.not_read,
                               warnings=listing.warnings, listing=listing)
    if not path.exists():
        raise BiasMirrorError("the source does not exist (give a camera index, a video file, an image folder or an image)", path)
    _refuse_if_special(path)
    # an image under a video's name is read as an image, by its header: FFmpeg's MJPEG decoder had measured a
    # JPEG cut at 70 % named .mp4 (its missing half filled in) and ignored a portrait JPEG's EXIF orientation
    if path.suffix.lower() in VIDEO_EXTENSIONS and not _image_header(path):
        return VideoSource(path, loop)
    if _heif_photo(path):
        raise BiasMirrorError(HEIF, path)
    if PASSED_OVER_PHOTOS.get(path.suffix.lower()) == "RAW":
        # by its name, as a folder passes it over: most RAW files are TIFFs whose first image is a small preview,
        # which OpenCV reads, and a face found in it is not the photo's
        raise BiasMirrorError(RAW, path)
    # a video under an extension we do not list, told by its header: read whole as an image first, a 640 MB
    # camcorder file had taken 1.3 GB of memory
    probed = path.suffix.lower() not in IMAGE_EXTENSIONS and not _image_header(path)
    if probed and _has_a_video_frame(path):
        return VideoSource(path, loop)
    # Refused here rather than skipped as a bad frame: a lone file that is neither (a model, a stray download) would
    # otherwise give a run with nothing in it that still succeeds, and `run` would have emptied its CSV for it.
    if probed:  # OpenCV's decoders know no image by its header: not read whole to be told so (800 MB took 1.8 GB)
        _refuse_if_unopenable(path)
        raise BiasMirrorError(NEITHER, path)
    frames = played_frames(path)
    if len(frames) > 1 and _why_frames_unreadable(path) is None:
        return ImageFramesSource(path, frames, loop)
    with quiet_opencv():  # why it cannot be read is said below, naming it (OpenCV's error on a damaged AVIF names none)
        image, problem = read_image_checked(path, FRAME_FLAGS)
    if image is None:
        if problem != UNREADABLE:  # permission denied, or decoded into pixels no frame is made of: its own reason
            raise BiasMirrorError(problem, path)
        # a video under an image's extension; not a file whose header is an image's: FFmpeg's MJPEG decoder gave a
        # truncated JPEG as a one-frame video, its cut-off rows filled with grey, and its face was measured
        if not _image_header(path) and _has_a_video_frame(path):
            return VideoSource(path, loop)
        raise BiasMirrorError(NEITHER, path)
    return ImageListSource([path], str(path), loop)


# Decoded frames an animation holds at once (ImageFramesSource; a TIFF's pages, one): a 2,000-frame GIF decoded whole
# is gigabytes. Each batch after the first decodes the animation's frames before it again (a frame is drawn over
# them), so batches are as large as this allows: 640×480 frames come 145 at a time.
FRAME_BATCH_BYTES = 128 * 2**20
_IN_A_FOLDER = "a folder's images are analysed as photos, one frame each; open the file on its own to analyse them all"
# An animation's frame delay this short or shorter is played as INSTANT_FRAME_SHOWN_MS, as browsers play one (Chrome
# and Firefox alike, for GIF, WebP and APNG): animations are made for them, where a delay of 0 shows the frame for
# 100 ms. Taken as 0, a GIF's 30 frames all had one time, the app played them at once, and its one-slot mailbox kept
# 2 of them for analysis.
INSTANT_FRAME_MS = 10
INSTANT_FRAME_SHOWN_MS = 100


def _shown_ms(delay_ms: int) -> int:
    """How long an animation's frame shows, given the delay its file sets (see INSTANT_FRAME_MS)."""
    return INSTANT_FRAME_SHOWN_MS if delay_ms <= INSTANT_FRAME_MS else delay_ms


# the image types that may hold several frames (APNG is a .png): only these are asked, not every JPEG of a folder
MULTI_FRAME_TYPES = frozenset({".gif", ".webp", ".tif", ".tiff", ".png", ".avif"})


def frame_count(path: Path) -> int:
    """The frames of an image file, or a TIFF's pages that are photos of their own: 1 for a photo, 0 where it
    cannot say (no decoder for it, an unreadable or damaged file: read as a photo, which says why). A name OpenCV
    cannot be given has them counted in the file's bytes."""
    return len(played_frames(path))


def played_frames(path: Path) -> Sequence[int]:
    """The frames of an image file that are analysed, by their number in it: every frame of an animation, a TIFF's
    pages that are photos of their own; none where it cannot say (see ``frame_count``). Its TIFF pages' tags are
    walked once, here, for the count and the source that plays them alike."""
    if path.suffix.lower() not in MULTI_FRAME_TYPES and path.suffix.lower() not in VIDEO_EXTENSIONS:
        return range(0)  # a video's name on an image (open_source reads it by its header): asked, an animated GIF
    if _tiff(path):
        return _tiff_photo_pages(path)
    if not opencv_can_name(path):
        return range(_animation_frames_in_bytes(path))
    return range(_opencv_count(path))


def _opencv_count(path: Path) -> int:
    """The frames (pages) of an image file as OpenCV's decoder counts them; 0 where it cannot say."""
    try:
        with quiet_opencv():
            return int(cv2.imcount(str(path), FRAME_FLAGS))
    except (cv2.error, AttributeError):  # AttributeError: an OpenCV without imcount, which reads the first alone
        return 0


def _why_frames_unreadable(path: Path) -> str | None:
    """Why ImageFramesSource cannot read this file's frames one by one, each as it should look; None where it can.
    Such a file given alone is read as a photo, its first frame, and the rest said to be left out."""
    if _tiff(path):
        return None
    if _avif_file(path):
        # imreadanimation takes no flags: a 10-bit AVIF's frames come in a range of their own (0–1023), near black
        # as 16 bits; its first frame read as a photo is scaled rightly
        return "the frames of an AVIF sequence cannot be read one by one here"
    if not hasattr(cv2, "imreadanimation"):
        return f"OpenCV {cv2.__version__} cannot read an animation's frames one by one (4.11 or later can)"
    if not opencv_can_name(path) and not hasattr(cv2, "imdecodeanimation"):
        return (f"OpenCV {cv2.__version__} cannot read an animation's frames from its bytes, as this name needs "
                "(not UTF-8, or beyond ASCII on Windows); rename it")
    return None


def _head(path: Path, n: int = 256) -> bytes:
    """The file's first ``n`` bytes, by which its type is told; none where it cannot be read (said by the readers
    that follow, as for any file)."""
    try:
        with path.open("rb") as f:
            return f.read(n)
    except OSError:
        return b""


def _tiff(path: Path) -> bool:
    return tiff_pages.is_tiff(_head(path, 4))


# the animations whose frames Pillow counts from a file's bytes (APNG is a PNG); an AVIF sequence's are counted to say
# how many were left out, as OpenCV's count of a file it can be given the name of does (it is read as a photo)
_ANIMATION_FORMATS = ["GIF", "WEBP", "PNG", "AVIF"]


@contextmanager
def _quiet_pillow() -> Iterator[None]:
    """Pillow's warnings of a damaged or huge file (corrupt EXIF, a decompression bomb) are not the user's: the count
    it gives, or none, is the answer, and the file is read by OpenCV, which says what is wrong with it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _tiff_photo_pages(path: Path) -> list[int]:
    """A TIFF's pages that are pictures of their own, by their number in the file (OpenCV numbers its pages in the
    order of their IFDs, thumbnails and masks among them): not a reduced-resolution copy of another page (a
    thumbnail or preview) nor a transparency mask, which had been analysed as another photo (a 600×600 page and its
    160×160 thumbnail had given two faces, two people). Empty where none of its pages is read."""
    kinds = tiff_pages.subfile_types(path)
    # Counted in its IFDs, by tifffile: OpenCV counts no page of a file that holds one it cannot read (a float16
    # page), and such a file had been read as its first page alone, or as none. A name OpenCV can be given has its
    # pages counted by OpenCV too, which goes on past an IFD whose tags tifffile cannot read (a damaged one, or past
    # tiff_pages.MOST_PAGES): those pages are taken as photos, as they had been.
    counted = _opencv_count(path) if opencv_can_name(path) else 0
    pages = max(len(kinds), counted)
    photos = [i for i in range(pages) if i >= len(kinds) or not kinds[i] & tiff_pages.NOT_A_PHOTO]
    # pages OpenCV does not count are asked whether they are read at all: a damaged file's, counted in its IFDs
    # alone, would have made a source that ended at once (read as a photo, it is refused saying why)
    if len(photos) > 1 and not counted and not _tiff_page_read(path, photos[0]):
        return []
    return photos


def _tiff_page_read(path: Path, page: int) -> bool:
    """Whether a TIFF's page is read (``tiff_read.tiff_page``), or cannot be for a reason it gives."""
    with quiet_opencv():
        read = tiff_page(path, page, FRAME_FLAGS, None if opencv_can_name(path) else _file_bytes(path))
    return read.image is not None or read.problem is not None


def _animation_profile(path: Path) -> bytes | None:
    """The ICC profile an animation carries (an animated WebP's, an APNG's), read from its header as a photo's is."""
    return embedded_profile(path, np.frombuffer(_head(path, 12), np.uint8))


def _animation_frames_in_bytes(path: Path) -> int:
    """An animation's frames, counted by Pillow (OpenCV's imcount takes a file's name alone): a GIF's, a WebP's, an
    APNG's, an AVIF sequence's; 0 where it cannot say. A non-UTF-8 name's AVIF sequence had been counted 0, and its
    other frames left out without a word."""
    with _quiet_pillow():
        try:
            with Image.open(path, formats=_ANIMATION_FORMATS) as animation:
                frames = getattr(animation, "n_frames", 1)
                played = animation.format != "AVIF"  # an AVIF sequence is read as its first frame whatever its count
        except PILLOW_OPEN_ERRORS:
            return 0
    return frames if frames < 2 or not played or _decodes_from_bytes(_file_bytes(path)) else 0


def _decodes_from_bytes(data: np.ndarray) -> bool:
    """Whether OpenCV decodes an animation's first frame from the file's bytes. imcount gives 0 for a file it cannot
    read (a cut-off GIF), read then as a photo and refused as unreadable: its frames counted in its bytes alone would
    have made it a source that ended at once."""
    try:
        with quiet_opencv():
            return bool(cv2.imdecodeanimation(data, 0, 1)[1].frames)
    except (cv2.error, AttributeError):  # AttributeError: an OpenCV without imdecodeanimation: its first frame alone
        return False


def _file_bytes(path: Path) -> np.ndarray:
    """The file's bytes, for OpenCV to decode from; none where it cannot be read now (ended, said so, by the
    reader)."""
    try:
        return _as_row(np.fromfile(str(path), np.uint8))
    except OSError:
        return _as_row(np.empty(0, np.uint8))


def _as_row(data: np.ndarray) -> np.ndarray:
    """Bytes as one row, as imdecodeanimation's WebP decoder takes them (it refused a column: no frame at all)."""
    return data.reshape(1, -1)


def _avif_file(path: Path) -> bool:
    return bool(ftyp_brands(_head(path)) & AVIF_BRANDS)


# containers whose frame count OpenCV reads from an index of the frames, not from duration × fps
EXACT_FRAME_COUNTS = frozenset({".avi", ".mp4", ".m4v", ".mov"})
NEITHER = "cannot be read as an image or a video (corrupt, truncated or another kind of file)"
RAW = "is a camera RAW photo, which cannot be read here (OpenCV has no decoder for it); convert it to JPEG or PNG first"
HEIF = "is a HEIC/HEIF photo, which cannot be read here (OpenCV has no decoder for it); convert it to JPEG or PNG first"
# HEIF's brands (ISO/IEC 23008-12, as libheif lists them) but for AVIF's: an AVIF names mif1 too, and OpenCV reads it
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})


def _heif_photo(path: Path) -> bool:
    """Whether the file is a HEIF (HEIC) photo, by the brands of its ``ftyp`` box. OpenCV has no decoder for one, and
    its FFmpeg opened an iPhone's photo as a one-frame video of its first 512×512 tile: "no face found", exit 0."""
    brands = ftyp_brands(_head(path))
    return bool(brands & _HEIF_BRANDS) and not brands & AVIF_BRANDS


def _special_kind(path: Path) -> str | None:
    """What ``path`` is where it is neither a regular file nor a folder (in words), else None."""
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device (a camera is given by its index: 0, or its /dev/videoN)"
    return None


def _refuse_if_special(path: Path) -> None:
    """A FIFO, a socket or a device is refused before anything opens it: reading a FIFO's first bytes (to tell its
    type) waits for a writer, and `run --source x.jpg` on a FIFO hung until it was killed."""
    kind = _special_kind(path)
    if kind is not None:
        raise BiasMirrorError(f"is not a regular file but {kind}; give a camera index, a video file, an image folder "
                              "or an image", path)


def _refuse_if_unopenable(path: Path) -> None:
    """A file this process may not read is refused as such (OpenCV's probes only say they found nothing)."""
    try:
        path.open("rb").close()
    except OSError as exc:
        raise BiasMirrorError(opening_problem(exc), path) from None


def _image_header(path: Path) -> bool:
    """Whether OpenCV knows the file's header as an image's (it reads the first bytes only). A name OpenCV cannot be
    given goes by its type: read from its bytes as an image, or refused by the video probe that names it."""
    if not opencv_can_name(path):
        return path.suffix.lower() in IMAGE_EXTENSIONS
    try:
        with quiet_opencv():
            return bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        return False


def _has_a_video_frame(path: Path) -> bool:
    with quiet_opencv():
        cap = cv2.VideoCapture(opencv_path(path, "this video"))
        try:
            return cap.isOpened() and cap.read()[0]
        finally:
            cap.release()


def list_cameras(max_index: int = 5) -> list[int]:
    """Indices OpenCV can open (probing is slow on some systems; keep max_index small)."""
    found = []
    with quiet_opencv():
        for i in range(max_index):
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found.append(i)
            cap.release()
    return found
