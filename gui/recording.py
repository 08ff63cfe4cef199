"""Recording (per-face rows via RowWriter), snapshots (only on user action) and the session summary.

Frames are never written to disk except by an explicit Snapshot. The
recorder and the session statistics are fed from the inference thread and
read from the GUI thread, so both hold a lock.
"""
from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import math
import os
import threading
import time
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QBuffer, QByteArray
from PySide6.QtGui import QImage, QPixmap

from inference import strict_json
from inference.errors import BiasMirrorError
from inference.audit.stats import ITA_RANGE, UNIT_RANGE, difference_range
from inference.metrics import series_mean_ci
from inference.provenance import software
from inference.results import FaceResult, FrameResult
from inference.rows import RowWriter, face_row
from inference.writing import made_new, placed_new, private_files, writing

log = logging.getLogger(__name__)


def stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


def _bases(folder: Path, name: str) -> Iterator[Path]:
    yield folder / name
    for n in itertools.count(2):
        yield folder / f"{name}-{n}"


def _taken(base: Path, suffixes: tuple[str, ...]) -> bool:
    # lexists: a link to nothing holds its name too, and taking it would fail on every try
    return any(os.path.lexists(base.with_name(base.name + s)) for s in suffixes)


def claimed_base(folder: Path, name: str, suffixes: tuple[str, ...], claim: Callable[[Path], None]) -> Path:
    """``folder/name``, or ``name-2``, ``-3``… where a file of that name with one of ``suffixes`` exists (names are
    stamped to the second, and a recording restarted, or a second snapshot, within it had emptied the first), taken
    by ``claim(base)``. That raises FileExistsError where another process took one of its files after it was seen
    free, and the next name is tried: two app windows on one account, saving in the same second, had both found
    one name free and written over each other."""
    return next(base for base in _bases(folder, name) if not _taken(base, suffixes) and _claimed(base, claim))


def _claimed(base: Path, claim: Callable[[Path], None]) -> bool:
    try:
        claim(base)
    except FileExistsError:  # another writer took it after it was seen free
        return False
    return True


def new_file(folder: Path, name: str, suffix: str) -> Path:
    """``folder/name{suffix}`` (or ``name-2{suffix}``…, as ``claimed_base`` numbers them), made empty here and so no
    other process's: a recording's CSV, opened for writing after, had emptied another window's of the same second."""
    base = claimed_base(folder, name, (suffix,), lambda b: made_new(b.with_name(b.name + suffix)))
    return base.with_name(base.name + suffix)


def make_folder(folder: Path) -> None:
    """``folder`` and its parents, as needed. A file in its place is said to be one: mkdir said only "File exists"."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, "this is a file, not a folder: choose another output folder "
                                 "(File > Output folder…)", str(folder)) from None


SOURCE_COLUMNS = ("video_s",)  # columns a source brings (a video's position), not the models


def _listed(columns: list[str]) -> str:
    return ", ".join(columns[:3]) + (f" and {len(columns) - 3} more" if len(columns) > 3 else "")


def why_columns_added(added: list[str]) -> str:
    """What added ``added`` to a recording: a switch to a video adds video_s, and was put down to "the models
    changed"."""
    by_source = [c for c in added if c in SOURCE_COLUMNS]
    by_models = [c for c in added if c not in SOURCE_COLUMNS]
    causes = []
    if by_source:
        causes.append(f"the new source adds {_listed(by_source)}")
    if by_models:
        causes.append(f"the models changed and added column(s) {_listed(by_models)}")
    return " and ".join(causes)


# Frames whose place in the recording is kept for snapshots: the frame on show trails the newest recorded by a
# frame or two (the display takes the newest result), never by this many.
RECORDED_KEPT = 64


class Recorder:
    """Streams one CSV row per face per processed frame while recording (flushed about every second).

    A new part file (``-part2.csv``…) starts where the models add columns, and where another source is taken up: the
    tracker's ids start again at 1 and a folder's ``source`` column is a path within it, so two sources' faces in one
    file had been rows of the same ids and the same names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writer: RowWriter | None = None
        self.path: Path | None = None
        self.paths: list[Path] = []  # the recording's files: a new part starts for new columns or another source
        self._sources: list[tuple[int, str]] = []  # (index in paths of the part it begins in, source) per source
        self._next_source: tuple[str, float] | None = None  # a source taken up: its name and when (time.monotonic)
        self._taken_up = float("-inf")  # when the source playing was taken up (time.monotonic), recording or not
        self._since = float("-inf")  # frames captured before it are not this recording's (see ``start``)
        self._source_of_part: str | None = None  # the source whose part the writer begins at the next row
        self.paused_reason: str | None = None  # e.g. the camera is lost: nothing is written meanwhile
        self._notices: list[tuple[str, bool]] = []  # (text, recording stopped) for the window's next slow tick
        self.failure: str | None = None  # why the recording stopped by itself (a full disk), once it has
        self._frames = 0  # frames written in this recording: the rows' ``frame`` column
        self._recorded: dict[int, tuple[Path, int]] = {}  # the pipeline's frame index → (part, recording's frame)

    @property
    def active(self) -> bool:
        return self._writer is not None

    @property
    def rows(self) -> int:
        with self._lock:
            return self._writer.rows if self._writer else 0

    def start(self, path: Path, source: str = "") -> Path:
        """Records into ``path`` the frames of ``source`` (its name, as the window shows it), and of those taken up
        after it (``new_source``). A frame captured before ``source`` was taken up is not recorded: one of the source
        before, still in analysis when Record was pressed just after the switch, had opened the recording."""
        with self._lock:
            if self._writer is not None:
                self._close()
            self._since = self._taken_up
            self._writer = RowWriter(path, on_part=self._new_part)
            self.path, self.paths = Path(path), [Path(path)]
            self._sources, self._next_source, self._source_of_part = [(0, source)], None, None
            self._frames = 0
            self._recorded.clear()
            self._notices.clear()
            self.failure = None
            return self.path

    def new_source(self, name: str, since: float) -> None:
        """Source ``name`` was taken up at ``since`` (time.monotonic): its rows go on in a part of their own, begun
        at its first face; a frame of the old source still being analysed (captured before ``since``) stays in the
        old part. Told whether recording or not: a recording started later begins at ``since`` (``start``)."""
        with self._lock:
            self._taken_up = since
            if self._writer is not None:
                self._next_source = (name, since)

    def recorded_as(self, index: int) -> tuple[Path, int] | None:
        """The part file holding the rows of the pipeline's frame ``index`` and its number in the recording (the rows'
        ``frame``), while it records; None where that frame was not recorded (or is long past)."""
        with self._lock:
            return self._recorded.get(index) if self._writer is not None else None

    def _new_part(self, path: Path, added: list[str]) -> None:
        """Called by the writer, under the lock, in the inference thread: a part begun for new columns, or for the
        source taken up (``_part_for_source``)."""
        self.paths.append(path)
        columns = why_columns_added(added) if added else ""
        if self._source_of_part is None:
            self._notices.append((f"recording continues in {path.name}: {columns}; "
                                  f"the earlier rows stay in {self.paths[-2].name}", False))
            return
        self._sources.append((len(self.paths) - 1, self._source_of_part))
        self._source_of_part = None
        self._notices.append((f"recording continues in {path.name} for the new source, {self._sources[-1][1]}"
                              f"{f' ({columns})' if columns else ''}; the rows of "
                              f"{self._sources[-2][1] or 'the source before'} stay in {self.paths[-2].name}", False))

    def _part_for_source(self, result: FrameResult) -> None:
        """A part of its own from ``result`` on, where it is the first frame with faces of a source taken up since
        rows were written; a frame of the old source still on its way (captured before) stays in the old part."""
        pending = self._next_source
        if pending is None or result.timestamp < pending[1] or not result.faces:
            return
        self._next_source = None
        if self._writer.rows == 0:  # type: ignore[union-attr]
            self._sources[-1] = (self._sources[-1][0], pending[0])  # nothing written yet: the file is the new source's
            return
        self._source_of_part = pending[0]
        self._writer.begin_part()  # type: ignore[union-attr]

    def notices(self) -> list[tuple[str, bool]]:
        """What the user should be told about the recording since the last call: (text, recording stopped)."""
        with self._lock:
            out, self._notices = self._notices, []
            return out

    def stop(self) -> tuple[Path | None, int]:
        """Close the file; returns (path, rows saved). Never raises: a failure to save is in ``failure``."""
        with self._lock:
            if self._writer is None:
                return self.path, 0
            return self.path, self._close()

    def _close(self) -> int:
        writer, self._writer = self._writer, None
        try:
            writer.close()  # type: ignore[union-attr]
        except BiasMirrorError as exc:
            self._failed(exc, writer)  # type: ignore[arg-type]
        return writer.rows_saved  # type: ignore[union-attr]

    def _failed(self, exc: BiasMirrorError, writer: RowWriter) -> None:
        """The recording stopped by ``exc``; a file the disk refused from its first row is not kept: the writer cut
        it back to the rows saved, and a 0-byte CSV was left behind, saying "0 rows saved"."""
        self.failure = f"recording stopped: {exc}"
        if writer.rows_saved == 0 and remove_if_empty(writer.path):
            self.failure += f"; the empty {writer.path.name} was not kept"
        log.warning("%s", self.failure)

    def finish(self) -> str:
        """Stop, and say where the rows went (or why they could not all be saved): the line the window shows. The
        log keeps every file's whole path, whichever way the recording ended (the Record button's had gone
        unlogged, though the log is where a session's recordings are looked up)."""
        path, rows = self.stop()
        if self.failure:
            return self.failure  # logged as it happened
        if rows == 0 and path is not None and len(self.paths) == 1:
            # an empty file without even a header (its columns come from the first face) was left behind
            remove_if_empty(path)
            log.info("recording stopped: no face was analysed while it ran; %s was not kept", path)
            return f"recording stopped: no face was analysed while it ran, so {path.name} had no rows and was not kept"
        log.info("recording saved: %s (%d rows)%s", " + ".join(map(str, self.paths)), rows, self._parts_by_source())
        files = " + ".join([str(path), *(p.name for p in self.paths[1:])])
        return f"recording saved to {files} ({rows} rows){self._parts_by_source()}"

    def _parts_by_source(self) -> str:
        """Which parts hold which source, where the recording went through more than one ("" where not): the rows'
        ``source`` column does not tell two folders' files of the same name apart."""
        if len(self._sources) < 2:
            return ""
        ends = [start for start, _ in self._sources[1:]] + [len(self.paths)]
        return "".join(f"; {' + '.join(p.name for p in self.paths[start:end])}: {name or 'no source'}"
                       for (start, name), end in zip(self._sources, ends))

    def write(self, result: FrameResult) -> None:
        """Rows numbered by the frames this recording wrote (as ``run`` numbers its own): the pipeline's count
        also took a number at every settings change's re-run, and went on from one recording to the next."""
        with self._lock:
            if self._writer is None or self.paused_reason is not None or result.timestamp < self._since:
                return
            writer = self._writer
            try:
                self._part_for_source(result)
                writer.write_frame(replace(result, index=self._frames), time.monotonic())
                self._remember(result.index)
                self._frames += 1
            except BiasMirrorError as exc:  # the writer has closed the file; one message, then no more writes
                self._writer = None
                self._failed(exc, writer)
                self._notices.append((self.failure, True))  # type: ignore[arg-type]

    def _remember(self, index: int) -> None:
        """The pipeline's frame ``index`` is the recording's frame ``_frames``, in the part being written: a snapshot
        numbers its frame as the app counts them, across sources and recordings."""
        self._recorded[index] = (self._writer.path, self._frames)  # type: ignore[union-attr]
        if len(self._recorded) > RECORDED_KEPT:
            del self._recorded[next(iter(self._recorded))]


def remove_if_empty(path: Path) -> bool:
    """Removes ``path`` where it is an empty file (a link to a device, such as /dev/full, is left as it is); True
    when it was removed."""
    with contextlib.suppress(OSError):
        if path.is_file() and path.stat().st_size == 0:
            path.unlink()
            return True
    return False


def _doubles() -> array:
    return array("d")


# The session Δ histograms' bins, as plots has drawn them: ΔITA° in bins 1° wide and ΔP(female) in bins 0.02 wide,
# from the multiple of the width at or below the smallest value to the one past the largest; where that is more than
# MOST_BINS edges, MOST_BINS equal bins from the first of those multiples to the last.
ITA_BIN_WIDTH = 1.0
P_BIN_WIDTH = 0.02
MOST_BINS = 200
# Counts are kept in bins this many times finer: every edge either kind of histogram can have falls on one of theirs
# (the equal bins of a span of n widths are n/MOST_BINS widths apart, from a multiple of the width), so a bin's count
# is the sum of whole fine bins'.
FINE_BINS = MOST_BINS
# A value within this much of a fine bin's edge (in fine bins: an exact 0, a whole ΔITA) is kept as itself and counted
# against the histogram's edges at each draw, as np.histogram counted it: the edges are computed with rounding (tens
# of billionths of a fine bin at most), and such a value lands on either side of one as they fall.
ON_AN_EDGE = 1e-6
# Fine bins are kept this far each way from 0 (in fine bins: 1,000 widths, ±1,000° and ±20 of ΔP, past what either can
# be); a value past them is kept as itself, as one on an edge is.
FINE_REACH = 1_000 * FINE_BINS


def histogram_edges(low: float, high: float, width: float) -> np.ndarray:
    """The edges of a session Δ histogram of values from ``low`` to ``high`` in bins ``width`` wide."""
    lo, hi = math.floor(low / width) * width, math.ceil(high / width) * width
    if hi <= lo:
        hi = lo + width
    edges = np.arange(lo, hi + width * 1.001, width)
    if len(edges) > MOST_BINS:
        edges = np.linspace(lo, hi, MOST_BINS + 1)
    return edges


@dataclass(frozen=True, eq=False)
class Histogram:
    """A series' counts as they were at one moment (``SessionStats.histograms_data``), for the GUI thread to draw. The
    same object comes back while no value is added (equal means the same: eq=False), so that the plots can tell
    there is nothing new to draw."""

    width: float
    first: int  # the fine bin counts[0] counts: floor(value / (width / FINE_BINS))
    counts: np.ndarray  # the values in each fine bin, but those kept as themselves
    kept: np.ndarray  # values kept as themselves (on a fine bin's edge, or past FINE_REACH)
    kept_counts: np.ndarray  # how many times each
    low: float
    high: float
    n: int  # finite values in all

    def bins(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(edges, counts): what np.histogram(values, histogram_edges(...)) gave of the series' finite values, at a
        cost of the fine bins it spans, not of the values; None where it has none."""
        if not self.n:
            return None
        edges = histogram_edges(self.low, self.high, self.width)
        counts = np.zeros(len(edges) - 1, np.int64)
        occupied = np.flatnonzero(self.counts)
        middles = (self.first + occupied + 0.5) * (self.width / FINE_BINS)
        # no edge lies within a fine bin: its middle is in the bin its values are in (clipped for safety alone)
        in_bin = np.clip(np.searchsorted(edges, middles, "right") - 1, 0, len(counts) - 1)
        np.add.at(counts, in_bin, self.counts[occupied])
        if self.kept.size:
            counts += np.histogram(self.kept, edges, weights=self.kept_counts)[0].astype(np.int64)
        return edges, counts


def _zeros(n: int) -> array:
    return array("q", bytes(8 * n))


class SeriesBins:
    """One series of the session's values (its ΔITA, or a classifier's ΔP(female)), counted as they come in fine bins
    (``FINE_BINS``): the histogram's counts are sums of theirs, at a cost that does not grow with the session. Every
    value had been kept and copied twice a second, and np.histogram run over them all: 209 ms a tick after 8 hours
    at 10 frames/s, the window paused or not. Not thread-safe: SessionStats holds its lock."""

    def __init__(self, width: float) -> None:
        self.width = width
        self._fine = width / FINE_BINS
        self._counts = array("q")  # packed: an item's += is half numpy's, in the inference thread under the lock
        self._first = 0
        self._kept: dict[float, int] = {}
        self._low, self._high, self._n = math.inf, -math.inf, 0
        self._taken: Histogram | None = None  # the last one handed out, while no value came since

    @classmethod
    def of(cls, values, width: float) -> SeriesBins:
        """``values`` counted at once (values handed to the plots as they were, by a test)."""
        bins = cls(width)
        for v in np.asarray(values, float).ravel():
            bins.add(float(v))
        return bins

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            return  # the histograms are of the finite values (an infinite one had been kept, and left out when drawn)
        if value < self._low:
            self._low = value
        if value > self._high:
            self._high = value
        self._n += 1
        self._taken = None
        x = value / self._fine
        k = math.floor(x) if -FINE_REACH <= x <= FINE_REACH else None
        if k is None or x - k < ON_AN_EDGE or k + 1 - x < ON_AN_EDGE:
            self._kept[value] = self._kept.get(value, 0) + 1
        else:
            self._count(k)

    def _count(self, k: int) -> None:
        if not self._first <= k < self._first + len(self._counts):
            self._cover(k)
        self._counts[k - self._first] += 1

    def _cover(self, k: int) -> None:
        """Widens the fine bins to take ``k``, with room to spare: a new bin at each value would copy them all."""
        spare = max(FINE_BINS, len(self._counts) // 2)
        if not self._counts:
            self._first = k
        end = self._first + len(self._counts)
        first, new_end = min(self._first, k - spare), max(end, k + 1 + spare)
        self._counts = _zeros(self._first - first) + self._counts + _zeros(new_end - end)
        self._first = first

    def histogram(self) -> Histogram:
        """The counts as they are now: a copy of the fine bins, made again only where a value came since."""
        if self._taken is None:
            self._taken = Histogram(self.width, self._first, np.array(self._counts, np.int64),
                                    np.fromiter(self._kept, float),
                                    np.fromiter(self._kept.values(), np.int64), self._low, self._high, self._n)
        return self._taken


# the ranges a face's shifts cannot leave, which its intervals are cut to (a ΔP(female) had read [−5.68, 4.48])
DELTA_ITA_RANGE, DELTA_P_RANGE = difference_range(ITA_RANGE), difference_range(UNIT_RANGE)
# The values one summary() call reads through series_mean_ci before it leaves the faces still waiting to the next
# calls (it computes one face more at most): four faces of an hour at 30 frames/s with four classifiers. Its ∛n runs
# move with every value added, so a face's interval reads all of its values again: in a crowd every face changes
# between two ticks, and without a bound a tick's work grew with the session (20 faces, four classifiers, an hour:
# 10.8 million values a tick). What stays per face changed is each interval's fixed cost (its t quantile).
SUMMARY_VALUES_PER_CALL = 2_000_000


def _tail(values: array | None, start: int) -> array:
    """A copy of ``values`` from ``start`` on: what summary() takes under the lock."""
    return _doubles() if values is None else values[start:]


@dataclass
class _TrackSummary:
    """summary()'s own copy of one track's values, and the rows it last computed from them. The copy is extended by
    the values added since (``SessionStats._catch_up``): copying every value of every face seen since the last
    tick, under the lock, had taken 50-100 ms a tick with 20 faces after 15-60 minutes, the inference thread
    waiting. A copy rather than running sums: series_mean_ci's runs are cut anew as values come, so only the values
    give its numbers to the last bit. It holds as much again as the track's values (4.3 MB a face an hour with four
    classifiers), what each tick's whole copy had allocated anew."""

    ita: array = field(default_factory=_doubles)
    p: dict[str, array] = field(default_factory=dict)
    frames: int = 0
    rows: list[dict] = field(default_factory=list)

    def values(self) -> int:
        return len(self.ita) + sum(map(len, self.p.values()))

    def computed(self, tid: int) -> list[dict]:
        ita = series_mean_ci(self.ita, bounds=DELTA_ITA_RANGE)
        return [{"track_id": tid, "frames": self.frames, "delta_ita": ita, "classifier": name,
                 "delta_p_female": series_mean_ci(self.p[name], bounds=DELTA_P_RANGE) if name else series_mean_ci([])}
                for name in sorted(self.p) or [""]]


class SessionStats:
    """Per tracked face: every ΔITA and ΔP(female) (per classifier) seen this session; and the session's histograms
    of them, counted as they come (``SeriesBins``).

    Values are packed doubles, not Python lists: an hours-long session keeps
    hundreds of thousands of them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.filter_label: str | None = None  # the filter (with its condition) whose shifts these are
        self._notices: list[str] = []
        # summary(): one track's rows, kept until the track gets a value. Recomputing every track's intervals at each
        # call, under the lock, took 2 s a call after an hour of video (1,350 faces): the window froze and the
        # inference thread waited for the lock. Only summary() touches these, under their own lock.
        self._summary_lock = threading.Lock()
        self._tracks: dict[int, _TrackSummary] = {}
        # the tracks whose rows are out of date, in the order they fell behind: a call that stops at its budget
        # leaves the rest first in line for the next
        self._waiting: dict[int, None] = {}
        self._tracks_generation = -1
        self._generation = 0  # counts _clear(): the rows kept from before are another session's
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self.delta_ita: dict[int, array] = defaultdict(_doubles)
        self.delta_p: dict[int, dict[str, array]] = defaultdict(lambda: defaultdict(_doubles))
        self.frames: dict[int, int] = defaultdict(int)
        self.ita_bins = SeriesBins(ITA_BIN_WIDTH)
        self.p_bins: dict[str, SeriesBins] = {}  # a classifier's, from its first value
        self._changed: set[int] = set()  # tracks given a frame since the last summary()
        self._generation = getattr(self, "_generation", 0) + 1

    def notices(self) -> list[str]:
        """What happened since the last call that the window should say (a restart for another filter)."""
        with self._lock:
            out, self._notices = self._notices, []
        return out

    def add(self, result: FrameResult) -> None:
        with self._lock:
            label = result.filter_name
            if label is not None and label != self.filter_label:
                # One session's figures describe one filter: another filter, or another condition of a
                # conditional one, starts them afresh rather than averaging two filters' shifts. Switching the
                # filter off and on again keeps them.
                if self.filter_label is not None and self.frames:
                    self._clear()
                    self._notices.append(f"session figures restarted for filter '{label}' (they were for "
                                         f"'{self.filter_label}')")
                self.filter_label = label
            for face in result.faces:
                self.frames[face.track_id] += 1
                self._changed.add(face.track_id)
                s = face.skin_shift
                if s is not None and s.delta_ita is not None and not math.isnan(s.delta_ita):
                    self.delta_ita[face.track_id].append(s.delta_ita)
                    self.ita_bins.add(s.delta_ita)
                for name, d in face.delta_p_female.items():
                    if d is not None and not math.isnan(d):
                        self.delta_p[face.track_id][name].append(d)
                        self._p_bins(name).add(d)

    def _p_bins(self, name: str) -> SeriesBins:
        if name not in self.p_bins:
            self.p_bins[name] = SeriesBins(P_BIN_WIDTH)
        return self.p_bins[name]

    def histograms_data(self) -> tuple[Histogram, dict[str, Histogram]]:
        """The session's histograms of ΔITA and of ΔP(female) per classifier (of their finite values), as they are
        now: the same objects as the last call's where no value came since. Their cost is their bins', not the
        session's values' (every value had been copied here at every tick, under the lock)."""
        with self._lock:
            return self.ita_bins.histogram(), {k: b.histogram() for k, b in self.p_bins.items()}

    def summary(self) -> list[dict]:
        """One row per (track, classifier): mean ΔITA and mean ΔP(female), each with a 95% CI over runs of the track's
        consecutive frames (inference.metrics.series_mean_ci: a t interval that took each frame for a new sample had
        narrowed with the seconds recorded, a face's frames being nearly alike).

        Only the tracks that got a frame since their rows were computed are computed again, from summary()'s own
        copy of their values, which takes under the lock only the values added since (``_TrackSummary``); the
        intervals are computed outside it. One call takes no more tracks once it has read
        ``SUMMARY_VALUES_PER_CALL`` values: the tracks left over keep their rows (each of them the numbers of its first ``n`` values) until the next calls,
        longest waiting first. A track not computed yet has no row. The numbers are series_mean_ci's of all of a
        track's values up to its row's frames. The rows of a track that was not computed again are the same dict
        objects as in the last call's list (the window skips redrawing them): read them, do not change them."""
        with self._summary_lock:
            with self._lock:
                generation = self._generation
                if self._tracks_generation != generation:  # reset, or restarted for another filter
                    self._tracks, self._waiting, self._tracks_generation = {}, {}, generation
                seen = set(self.frames)
                for tid in sorted(self._changed | (seen - self._tracks.keys())):
                    self._waiting.setdefault(tid, None)
                self._changed = set()
            spent = 0
            for tid in list(self._waiting):
                if spent >= SUMMARY_VALUES_PER_CALL:
                    break
                del self._waiting[tid]
                if tid not in seen:  # a track gone without a reset (add() never does that)
                    continue
                track = self._tracks.setdefault(tid, _TrackSummary())
                if not self._catch_up(tid, track, generation):
                    return []  # reset meanwhile: the next call starts the new session's rows
                track.rows = track.computed(tid)
                spent += track.values()
            return [row for tid in sorted(seen & self._tracks.keys()) for row in self._tracks[tid].rows]

    def _catch_up(self, tid: int, track: _TrackSummary, generation: int) -> bool:
        """Extends ``track``'s copy by the values the track was given since; False when the session was reset
        meanwhile (the values are then another session's). The lock is taken for one track at a time: a face
        summarised for the first time after a long while hidden copies all its values, and the inference thread
        waits for one face's, not for all of them."""
        with self._lock:
            if self._generation != generation:
                return False
            track.frames = self.frames.get(tid, 0)
            track.ita.extend(_tail(self.delta_ita.get(tid), len(track.ita)))
            for name, values in self.delta_p.get(tid, {}).items():
                mine = track.p.setdefault(name, _doubles())
                mine.extend(_tail(values, len(mine)))
        return True


KEPT = "nothing of it was kept"  # what a snapshot or screenshot the disk refused leaves


def encoded(picture: QImage | QPixmap, image_format: str, place: Path) -> bytes:
    """``picture`` encoded as ``image_format`` ("PNG", "jpg"…) in memory, so that the file is written whole or not at
    all (``place`` is named where it cannot be encoded)."""
    data = QByteArray()
    if not picture.save(QBuffer(data), image_format):  # the writer opens the buffer itself
        raise BiasMirrorError(f"the image could not be encoded as {image_format}", place)
    return data.data()


def write_image(picture: QImage | QPixmap, path: Path, what: str, image_format: str | None = None) -> None:
    """``picture`` saved to ``path`` (as ``image_format``, else as its name's suffix says), whole or not at all: Qt
    wrote onto the name itself, and a disk that refused part way left a cut-off image there (102,400 bytes of a PNG
    under `ulimit -f 100`). A refused write is a BiasMirrorError naming ``path`` and the reason."""
    data = encoded(picture, (image_format or path.suffix.lstrip(".")).lower(), path)
    from inference.writing import write_through

    with writing(path, what, KEPT, len(data)):
        write_through(path, data)  # a bare rename had replaced a link to the user's file with a file of its own


FRAME_NUMBERS = ("frame: the app's count of the frames it analysed, across sources and recordings; recording: the "
                 "recording's part file holding this frame's rows and its number there (their frame column), "
                 "null where no recording holds it")
# A snapshot's words for its signs. ITA = atan((L* − 50)/b*) moves with b* as well as L* (a yellow tint lowers a light
# face's ITA while L* rises), so a positive delta_ita had been called "lighter" where delta_l says what lightness did.
# No reader parses it: it is for the person who opens the file. Each delta is said as the columns it is the
# difference of: "Δ = filtered − original" had been said of them all, but delta_mst is original − filtered.
SIGN_CONVENTION = ("delta_ita = ita_filtered − ita, delta_l = L_filtered − L, delta_p_female[C] = "
                   "p_female_filtered[C] − p_female_reference[C] (filtered − original); delta_mst = mst − mst_filtered "
                   "(original − filtered: the Monk scale counts up to darker). positive delta_ita = higher ITA: L* "
                   "rose, or b* (yellowness) moved it; positive delta_l = lighter; positive delta_mst = lighter by "
                   "that many Monk tones; positive delta_p_female = more female")
# The snapshot JSON's format: bump it when a key changes meaning. The snapshots written before it had none (1):
# their faces held "" (the CSV's empty cell) for a figure not measured, and a spreadsheet's quote before a file name.
SNAPSHOT_SCHEMA_VERSION = 2


def snapshot_face(result: FrameResult, face: FaceResult) -> dict:
    """The face's row (``face_row``'s columns, in its order) as the snapshot's JSON holds it: null for a figure not
    measured, where the CSV has an empty cell (a "" among numbers had stopped pandas' mean of a column), and the
    frame's source and filter as the document's own top-level keys give them, not quoted for a spreadsheet."""
    row = {k: None if v == "" else v for k, v in face_row(result, face).items()}
    return {**row, "source": result.source, "filter": result.filter_name}


def save_snapshot(folder: Path, image: QImage, result: FrameResult, settings: dict,
                  recording: tuple[Path, int] | None = None) -> tuple[Path, Path]:
    """PNG of the view as shown (overlays included) + JSON of the measurements, both or neither: a disk that
    refused the JSON had left the PNG and a cut-off JSON. Called only on user action.

    The JSON's "frame", each face's and the number in the files' names, is the app's count of the frames it
    analysed, which no recording's rows use (they number a recording's own frames from 0): where this frame is in
    a recording, ``recording`` (its part file, its number there) is written as {"file", "frame"}, else null.
    ``settings``' cam_class and filter_condition are to be the saved frame's: those asked for since may not have
    re-run it yet."""
    make_folder(folder)
    name = f"snapshot-{stamp()}-{result.index:06d}"
    png, js = _pair(folder / name)  # the names tried first: a refused write is said of them
    doc = {
        "schema_version": SNAPSHOT_SCHEMA_VERSION, "software": software(),
        "source": result.source, "frame": result.index, "filter": result.filter_name,
        "providers": dict(result.providers), "timings_ms": dict(result.timings_ms), "warnings": list(result.warnings),
        "display": settings,
        "recording": None if recording is None else {"file": str(recording[0]), "frame": recording[1]},
        "faces": [snapshot_face(result, f) for f in result.faces],
        "sign_convention": SIGN_CONVENTION,
        "frame_numbers": FRAME_NUMBERS,
    }
    image_data = encoded(image, "PNG", png)
    measurements = strict_json.dumps(doc, indent=1, default=str).encode("utf-8")
    # each written under a name of its own, and given its place only once both are whole; the pair takes the first
    # stem free of both, taken whole (placed_new): another window's snapshot of the same second takes the next
    with private_files(png, js) as (png_part, js_part):
        with writing(png, "the snapshot's image", KEPT, len(image_data)):
            png_part.write_bytes(image_data)
        with writing(js, "the snapshot's measurements", KEPT, len(measurements)):
            js_part.write_bytes(measurements)
        base = claimed_base(folder, name, (".png", ".json"),
                            lambda b: placed_new(list(zip((png_part, js_part), _pair(b)))))
    return _pair(base)


def _pair(base: Path) -> tuple[Path, Path]:
    """A snapshot's PNG and JSON, named ``base`` and its suffix."""
    return base.with_name(base.name + ".png"), base.with_name(base.name + ".json")
