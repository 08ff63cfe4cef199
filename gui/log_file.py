"""The app's log file. Launched from a desktop there is no terminal, yet the window's messages end with "details in
the log": the log is kept in a file (names of files and errors only, never frames) and the messages name it."""
from __future__ import annotations

import contextlib
import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
IN_THE_LOG = "(details in the log)"


def default_log_path() -> Path:
    """The platform's folder for the app's own data (QApplication's names must be set first)."""
    from PySide6.QtCore import QStandardPaths

    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)) / "bias-mirror.log"


class SharedLog(RotatingFileHandler):
    """A RotatingFileHandler (``max_bytes`` a file, ``backups`` more) for a log other processes write too: two app
    windows of one account share the default log. Windows refuses to rename a file another process has open, so the
    rollover fails while the other window runs; the plain handler then dropped every later line, each with a
    traceback on stderr, and the "recording saved: PATH" lines the app points to were lost. Here the lines go on
    into the file as it is, and the rollover is tried again once it has grown by ``RETRY_BYTES`` more."""

    RETRY_BYTES = 64 * 1024  # not each line: each try closes and opens the file again

    def __init__(self, path: Path, max_bytes: int, backups: int):
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self._refused_at = 0  # the log's size when its rollover was last refused; 0: none since one went through

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        # the base's check leaves the stream open, at its end
        return bool(super().shouldRollover(record)) and (
            not self._refused_at or self.stream.tell() >= self._refused_at + self.RETRY_BYTES)

    def doRollover(self) -> None:
        try:
            super().doRollover()
        except OSError:
            # open in another window (Windows): appended to, as the base's reopening after a rollover does
            if self.stream is None:
                self.stream = self._open()
            self._refused_at = self.stream.seek(0, 2)
        else:
            self._refused_at = 0


@contextlib.contextmanager
def log_file(path: Path) -> Iterator[Path | None]:
    """Inside, every log record at INFO or above also goes to ``path`` (kept to three files of 1 MB); it yields
    None, with a warning, when the file cannot be written: the app runs without it. The handler is removed on
    leaving, so a second app in the same process (tests) does not write each line twice."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = SharedLog(path, max_bytes=1_000_000, backups=2)
    except OSError as exc:
        log.warning("%s: the log cannot be kept there (%s)", path, exc.strerror or exc)
        yield None
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def where_details_are(text: str, path: Path | None) -> str:
    """``text`` with "(details in the log)" naming the log file, where there is one."""
    return text.replace(IN_THE_LOG, f"(details in {path})") if path is not None else text


class SkipLines:
    """The log's lines for the skipped images or frames of one source opened: each warning in full the first time.

    A looped source skips the same files on every pass, and each pass had logged them all again: a folder with 4 bad
    files, looped at 20 images/s, wrote 484 such lines in 5 minutes, and over hours the log's rotation (3 × 1 MB) took
    the start-up lines and any real error with them. A later pass is summed up instead, in one line saying how many
    named before were skipped again; passes that skip as many are summed up together, up to each power of two
    (passes 2, 3–4, 5–8, …), so a session of any length writes a few lines, and a change in the count is said when
    it comes.

    Passes are told by the warnings themselves: a warning that comes again within the pass under way starts the
    next. A pass is summed up once it is over, or at ``finish`` (the source ended, another opened, the app quit)."""

    def __init__(self, source: str = ""):
        self.source = source
        self._named: set[str] = set()  # the warnings logged in full
        self._this_pass: set[str] = set()  # the warnings of the pass under way
        self._pass = 1
        self._again = 0  # the pass under way's warnings that were named on an earlier pass
        self._run: tuple[int, int, int] | None = None  # passes (first, last) that skipped as many again, not yet said

    def lines(self, text: str) -> list[str]:
        """What to log for ``text``, a skipped image's or frame's warning: ``text`` itself the first time; later,
        the line summing up the passes before, when one is due."""
        said = self._pass_over() if text in self._this_pass else []
        self._this_pass.add(text)
        if text in self._named:
            self._again += 1
            return said
        self._named.add(text)
        return [*said, text]

    def finish(self) -> list[str]:
        """The passes not summed up yet, the one under way among them (cut short, as far as it went)."""
        said = self._pass_over()
        if self._run is not None:
            said.append(self._line(*self._run))
            self._run = None
        return said

    def _pass_over(self) -> list[str]:
        said, again = [], self._again
        if self._run is not None and self._run[2] != again:  # a change in the count is said as it comes
            said.append(self._line(*self._run))
            self._run = None
        if again:
            self._run = (self._run[0] if self._run is not None else self._pass, self._pass, again)
            if self._pass & (self._pass - 1) == 0:  # a power of two: the log hears of passes ever more rarely
                said.append(self._line(*self._run))
                self._run = None
        self._pass, self._this_pass, self._again = self._pass + 1, set(), 0
        return said

    def _line(self, first: int, last: int, again: int) -> str:
        passes = f"pass {first}" if first == last else f"passes {first}–{last}"
        each = "" if first == last else " on each"
        return f"{self.source}: {passes}: {again} unreadable image(s) or frame(s) skipped again{each} (named before)"
