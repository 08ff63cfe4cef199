"""Flat rows (one per face per frame) for CSV: shared by `run` and the app's recorder."""
from __future__ import annotations

import contextlib
import csv
import errno
import math
import os
import sys
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Sequence

from .errors import BiasMirrorError, in_words
from .results import FaceResult, FrameResult
from .untrusted_text import spreadsheet_text


def printable(text: str) -> str:
    """``text`` as it can be written to a UTF-8 file: a file name's bytes that are not UTF-8 (Python keeps them as
    lone surrogates, "caf\\udce9.jpg" for caf + byte E9) shown escaped, "caf\\xe9.jpg". Written as they were, such a
    name had stopped `run` and `audit` at its row with a UnicodeEncodeError, `run`'s CSV left with its header alone."""
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the file name's own bytes back
    except UnicodeEncodeError:  # a surrogate no byte of a file name becomes: as its code, "\\ud800"
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _num(v: float | None, digits: int = 4) -> Any:
    # float(v): a NumPy float32 NaN (a CAM focus) is no Python float, and had been written as "nan"
    return "" if v is None or not math.isfinite(float(v)) else round(float(v), digits)


COLUMNS = """one row per face per frame, these columns in this order whatever the source and with or without a
filter (a cell that does not apply is empty); a run that found no face writes the header alone:
  frame, time         the frame's number among those analysed in this run or recording (from 0), and its capture
                      time in seconds on this machine's steady clock (differences are meaningful, not the value)
  video_s             for a video or an animation: the frame's position in it, in seconds, as its decoder times it
                      (a phone's variable-rate video is not number ÷ rate); source's name#N is its number in the file.
                      Empty for a camera, a photo or a folder's photos
  source, track_id    the frame's file (a folder's: its path within the folder, a video's: name#N) or camera; one id per face
                      followed from frame to frame of a video or camera, by the overlap of its boxes and by its look
                      (a grey thumbnail compared with the frame before): a face unseen for over 10 frames, or hidden
                      while it moved, comes back with a new id, and someone else at the same place after a cut gets
                      an id of their own (people who look much alike may rarely keep one). A folder's images are
                      photos of their own, not one video's frames: each face gets its id (a photo's faces keep
                      theirs when it is shown again); to follow faces, give the video, not frames extracted from it
  x, y, w, h          the face's box in the frame, in pixels, as the detector found it: it may reach past the frame's
                      edges (x or y below 0, x + w or y + h beyond its size). The Haar detector scans the frame with
                      its edges repeated around it, to find a face at its border whole, so by up to 8 % of the
                      frame's longer side (25 % where that side is at most 320 px) and a pixel or so of rounding;
                      YuNet's boxes are as it gives them. The crop is taken from this box, the frame's edge repeated
  filter              the filter run (with its condition, if any); empty with none
  measurable          1 where enough skin was found to measure tone
  ita, L, mst         skin tone of the face: ITA°, CIELAB L*, Monk Skin Tone 1–10. With a filter, these and measurable
                      are measured on the face through the filter's resampling alone (the reference, so that delta_*
                      are the filter's own), while p_female[C] is measured on the face as found
  *_filtered, delta_* the same through the filter (over the skin pixels the original had not clipped to black or
                      white: what the filter clips counts), and filtered − original (delta_mst: original − filtered,
                      so that > 0 is lighter, as for delta_l: the Monk scale counts up to darker; delta_ita > 0 is a higher ITA)
  moved_px            how far the filter moved the face (a whole-pixel translation found by phase correlation, in
                      pixels of the crop skin is measured on: the face crop, at most 128 px a side), 0 where it did
                      not: the filtered skin is measured where the face moved to, so that the same skin is compared.
                      Empty without a filter, as the other columns of the filter are
  p_female[C], cam_focus[C]      per classifier C: P(female), and the share on the face of the positive CAM of
                      the class that C predicted for the face, whatever --cam-class says (no CAM is written)
  p_female_reference[C], p_female_filtered[C], delta_p_female[C]
                      the face through the filter's resampling alone, through the filter, and the difference
A text cell (source, filter) that begins with =, +, -, @, a tab, a carriage return or ' is written with a ' before
it, so that a spreadsheet reads it as text, not as a formula ("=HYPERLINK(…).jpg" would be a live link there): a
script reading the CSV strips that first '. The numbers are written as they are, negative ones too."""

# The columns of every row, in order (``COLUMNS``), then ``PER_CLASSIFIER``'s for each classifier. Fixed, not taken
# from a row: a video's rows had had video_s and a filtered run's moved_px, which a photo's and an unfiltered run's
# lacked, so two runs' CSVs did not line up, and a run without faces had no header to write.
FACE_COLUMNS = ("frame", "time", "video_s", "source", "track_id", "x", "y", "w", "h", "filter", "measurable",
                "ita", "L", "mst", "ita_filtered", "L_filtered", "mst_filtered", "delta_ita", "delta_l", "delta_mst",
                "moved_px")
PER_CLASSIFIER = ("p_female", "cam_focus", "p_female_reference", "p_female_filtered", "delta_p_female")


def row_columns(classifiers: Iterable[str]) -> list[str]:
    """The header of rows for the classifiers named ``classifiers`` (in the order the pipeline runs them), known from
    a run's settings before its first frame."""
    return [*FACE_COLUMNS, *(f"{column}[{name}]" for name in classifiers for column in PER_CLASSIFIER)]


def _difference(after: Any, before: Any, measured: float | None, digits: int) -> Any:
    """``measured`` (after − before) as the row writes it: the difference of the rounded terms written beside it, so
    that after − before is the delta to the digit (a separately rounded difference was off by one in the last digit
    in a quarter of the rows); empty where it was not measured."""
    if measured is None or not math.isfinite(float(measured)) or after == "" or before == "":
        return ""
    return round(after - before, digits)


def text_cell(text: str) -> str:
    """A text cell of the rows or of the audit's faces.csv: a file name or a card's name, which anyone may have
    written (``spreadsheet_text``: "=HYPERLINK(…).jpg" had been a live link in the spreadsheet that opened it)."""
    return spreadsheet_text(printable(text))


def face_row(frame: FrameResult, face: FaceResult) -> dict[str, Any]:
    """The face's CSV row: every column of ``row_columns`` for its classifiers, empty where it does not apply."""
    o, f, s = face.original, face.filtered, face.skin_shift
    row: dict[str, Any] = {
        "frame": frame.index, "time": round(frame.timestamp, 3),
        "video_s": "" if frame.video_s is None else round(frame.video_s, 3),
        "source": text_cell(frame.source), "track_id": face.track_id,
        "x": face.box[0], "y": face.box[1], "w": face.box[2], "h": face.box[3],
        "filter": text_cell(frame.filter_name or ""),
        "measurable": int(o.skin.measurable),
        "ita": (ita := _num(o.skin.ita, 2)), "L": (L := _num(o.skin.L, 2)), "mst": o.skin.mst or "",
        "ita_filtered": (ita_f := _num(f.skin.ita, 2) if f else ""),
        "L_filtered": (L_f := _num(f.skin.L, 2) if f else ""),
        "mst_filtered": (f.skin.mst or "") if f else "",
        "delta_ita": _difference(ita_f, ita, s.delta_ita, 2) if s else "",
        "delta_l": _difference(L_f, L, s.delta_l, 2) if s else "",
        "delta_mst": "" if s is None or s.delta_mst is None else s.delta_mst,
        "moved_px": _num(s.moved_px, 2) if s else "",
    }
    for name, out in o.classifiers.items():
        row[f"p_female[{name}]"] = _num(out.p_female)
        row[f"cam_focus[{name}]"] = _num(out.cam_focus, 3)
        if f:
            # the filter's deltas are measured against this: the crop through the filter's resampling alone
            row[f"p_female_reference[{name}]"] = _num(face.reference[name].p_female)
            row[f"p_female_filtered[{name}]"] = _num(f.classifiers[name].p_female)
            row[f"delta_p_female[{name}]"] = _difference(row[f"p_female_filtered[{name}]"],
                                                         row[f"p_female_reference[{name}]"],
                                                         face.delta_p_female.get(name), 4)
        else:
            row.update(dict.fromkeys((f"p_female_reference[{name}]", f"p_female_filtered[{name}]",
                                      f"delta_p_female[{name}]"), ""))
    return row


class ReaderStopped(BiasMirrorError):
    """The reader of a pipe the rows went to closed it (``run --out - | head``): no failure, the end of the run, as
    for any tool a pipe's reader stops reading from. The message says after how many rows."""


class RowWriter:
    """Streams rows to CSV and flushes every ``flush_every`` seconds, so a crash loses at most that much.

    Given ``columns`` (``row_columns``: `run`), the header is in place as the writer is made, written whole to a
    file of its own and renamed over ``path``: a run that then finds no face leaves that header alone, not a file
    of an earlier run, nor half a header. Given a ``stream`` (standard output), rows go to it as they come and it is
    never closed nor cut back; ``path`` then only names it in messages.

    Without ``columns`` (the app's recorder), the header is the first row's columns. A row with columns the file's
    header lacks (a classifier added while recording) continues in a new file beside the first, ``NAME-part2.csv``,
    ``NAME-part3.csv`` and so on, whose header is that row's columns followed by the earlier ones. Every value is
    kept and each file stays an ordinary wide CSV that any reader opens as one table: one header, one row per face
    per frame. (A long format, one row per value, would never need a second file, but every analysis would first
    have to pivot it back to one row per face.) Columns a row lacks, such as a classifier switched off, are left
    empty. ``begin_part`` starts one for the rows that follow whatever their columns (another source's: its frame
    numbers, track ids and file names start again, and read in one table with the earlier rows they would be taken
    for theirs). ``paths`` lists the files written; ``on_part(path, new_columns)`` is told when one is started.

    A write the system refuses (a full disk, a drive removed) closes the file, cut back to the rows known to be
    saved (a full disk had left half a row at its end, after "61 rows saved"), and raises BiasMirrorError naming it,
    the reason and those rows; the writer is then done, and ``close`` does nothing. A pipe whose reader closed it
    raises ``ReaderStopped`` instead.
    """

    def __init__(self, path: str | Path, flush_every: float = 1.0,
                 on_part: Callable[[Path, list[str]], None] | None = None, columns: Sequence[str] | None = None,
                 stream: IO[str] | None = None):
        self.path = Path(path)  # the file being written: the latest part
        self.paths = [self.path]
        self._stream = stream is not None
        self._done = False  # closed, or failed
        self._writer: csv.DictWriter | None = None
        self._last_flush = 0.0
        self.flush_every = flush_every
        self.on_part = on_part
        self._part_due = False  # begin_part: the next row starts a part
        self.rows = 0  # in every part
        self.rows_saved = 0  # as of the last flush the system accepted: what a failure can still promise
        self._saved_bytes = 0  # the file's size then, which a failure cuts it back to
        if stream is not None:
            self._fh: IO[str] = stream
        elif columns is not None:
            self._fh = self._opened_with_header(list(columns))
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", newline="", encoding="utf-8")
        if columns is not None:
            self._writer = csv.DictWriter(self._fh, fieldnames=list(columns), restval="")
        if stream is not None and columns is not None:
            try:
                self._writer.writeheader()  # type: ignore[union-attr]
                self._fh.flush()  # a reader of the pipe has the columns before the first face
            except OSError as exc:
                self._done = True
                raise self._header_failed(exc) from exc

    def _opened_with_header(self, columns: list[str]) -> IO[str]:
        """``path`` holding the header alone and opened to append rows to, written as ``how_written`` decides for
        every user's output: in place (a FIFO, a device, /dev/stdout) appended to on one handle, which the rows keep
        (a FIFO closed after its header would end its reader's input); through a link, the file it leads to,
        rewritten where it is or put in place whole."""
        import io

        from .writing import IN_PLACE, REWRITTEN, how_written, write_through

        try:
            how, target = how_written(self.path)
            if how in (IN_PLACE, REWRITTEN):
                mode = "a" if how == IN_PLACE else "w"  # "w" on /dev/stdout would empty a shell's ``>>`` file
                return self._with_header(open(target, mode, newline="", encoding="utf-8"), columns)
            header = io.StringIO()
            csv.writer(header).writerow(columns)
            write_through(target, header.getvalue())
            fh = open(target, "a", newline="", encoding="utf-8")
            self._saved_bytes = os.fstat(fh.fileno()).st_size
            return fh
        except OSError as exc:
            raise self._header_failed(exc) from exc

    def _with_header(self, fh: IO[str], columns: list[str]) -> IO[str]:
        """``fh`` with the header written and flushed, and that much known saved: a failure cuts back to it, not to
        what was there before."""
        try:
            csv.writer(fh).writerow(columns)
            fh.flush()
            self._saved_bytes = os.fstat(fh.fileno()).st_size
        except OSError:
            with contextlib.suppress(OSError):  # its flush fails as the write did
                fh.close()
            raise
        return fh

    def _header_failed(self, exc: OSError) -> BiasMirrorError:
        if _reader_gone(exc, self._stream):
            return self._stopped()
        return BiasMirrorError(f"could not write its header ({in_words(exc)})", self.path)

    def write_frame(self, frame: FrameResult, now: float) -> None:
        try:
            for face in frame.faces:
                row = face_row(frame, face)
                if self._writer is None:
                    self._start_table(list(row))
                elif self._part_due or any(k not in self._writer.fieldnames for k in row):
                    self._part_due = False
                    self._next_part(row)
                self._writer.writerow(row)  # type: ignore[union-attr]
                self.rows += 1
            if now - self._last_flush >= self.flush_every:
                self._fh.flush()
                self._last_flush, self.rows_saved = now, self.rows
                if not self._stream:
                    self._saved_bytes = os.fstat(self._fh.fileno()).st_size
        except OSError as exc:
            raise self._failed(exc) from exc

    def begin_part(self) -> None:
        """The next row starts a new part; none where no row has been written: the file is still the rows' own."""
        self._part_due = self._writer is not None and self.rows > 0

    def _start_table(self, fields: list[str]) -> None:
        self._writer = csv.DictWriter(self._fh, fieldnames=fields, restval="")
        self._writer.writeheader()

    def _next_part(self, row: dict[str, Any]) -> None:
        old = list(self._writer.fieldnames)  # type: ignore[union-attr]
        added = [k for k in row if k not in old]
        if self._stream:  # one table on a stream: there is no file beside it to go on in
            raise BiasMirrorError(f"a row has columns its header lacks ({', '.join(added)})", self.path)
        first = self.paths[0]
        self._fh.close()
        self.rows_saved, self._saved_bytes = self.rows, 0
        self.path = first.with_name(f"{first.stem}-part{len(self.paths) + 1}{first.suffix}")
        self.paths.append(self.path)
        self._fh = open(self.path, "w", newline="", encoding="utf-8")
        self._start_table([*row, *(k for k in old if k not in row)])
        if self.on_part is not None:
            self.on_part(self.path, added)

    def close(self) -> None:
        if self._done:
            return
        try:
            self._fh.flush() if self._stream else self._fh.close()
        except OSError as exc:
            raise self._failed(exc) from exc
        self._done = True
        self.rows_saved = self.rows

    def _stopped(self) -> ReaderStopped:
        self._done = True
        return ReaderStopped(f"closed by its reader after {self.rows_saved} face row(s): the run stopped there",
                             self.path)

    def _failed(self, exc: OSError) -> BiasMirrorError:
        self._done = True
        if _reader_gone(exc, self._stream):
            if not self._stream:
                with contextlib.suppress(OSError):  # a pipe: nothing to cut back, and its flush fails again
                    self._fh.close()
            return self._stopped()
        if not self._stream:  # standard output is the process's, and no file of ours to cut back
            with contextlib.suppress(OSError):  # closing flushes what the system refused once already: it refuses again
                self._fh.close()
            with contextlib.suppress(OSError):  # a file that can no longer be reached (a drive removed) is as it is
                os.truncate(self.path, self._saved_bytes)
        reason = exc.strerror or str(exc)
        return BiasMirrorError(f"{reason[:1].lower()}{reason[1:]}; {self.rows_saved} rows saved", self.path)


def _reader_gone(exc: OSError, stream: bool) -> bool:
    """Whether ``exc`` is a write to a pipe whose reader has closed it (Python ignores SIGPIPE: EPIPE instead). On
    Windows such a write to a ``stream`` (standard output) fails with EINVAL (python/cpython#79935): `run --out - |
    head` had ended "error: standard output: invalid argument", status 2. A file written by name keeps EINVAL's
    own meaning."""
    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
        return True
    return stream and sys.platform == "win32" and exc.errno == errno.EINVAL
