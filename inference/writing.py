"""Writing what a command produces (a run's checkpoint and model, an audit's report and cache): a write the disk
refused (full, or over a file size limit or quota) said in one line naming the file, and a few files put in place
together, out of reach of a Ctrl-C or a kill between them."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Iterator

from .errors import BiasMirrorError

# A write the disk or a limit refused: no space, a file over `ulimit -f` (Python ignores SIGXFSZ, so the write
# fails with EFBIG), a quota.
NO_ROOM = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
LOW_SPACE = 64 * 2**20  # below this much free (beyond twice what is being written) a disk counts as full


def refused_write(exc: BaseException) -> bool:
    """Whether ``exc`` is a write the disk or a limit refused. torch.save says so as a RuntimeError of its zip
    writer ("[enforce fail at inline_container.cc:672] . unexpected pos …", "… file write failed", or
    "basic_ios::clear: iostream error" as it writes a tensor)."""
    if isinstance(exc, OSError):
        return exc.errno in NO_ROOM
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        said in text for said in ("inline_container", "file write failed", "iostream error"))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", text)  # torch's source position says nothing here
    return ("torch's writer: " + text if isinstance(exc, RuntimeError) else text)[:200]


def _free_bytes(folder: Path) -> int | None:
    for where in (folder, *folder.parents):  # a folder not made yet lies on its parent's disk
        try:
            return shutil.disk_usage(where).free
        except OSError:
            continue
    return None


def write_failure(exc: BaseException, place: str | Path, what: str, kept: str, size: int = 0) -> BiasMirrorError | None:
    """The error for ``exc`` raised while writing ``what`` (e.g. "the checkpoint") to ``place``: the reason, the
    free space of the disk holding it where that is low (else that a file size limit or quota may be what refused
    it), and ``kept``: what is left as it was and how to go on. ``size``: about how many bytes the file takes.
    None where ``exc`` is no failed write (a RuntimeError of something else, which stays as it is)."""
    if not isinstance(exc, OSError) and not refused_write(exc):
        return None
    place = Path(place)
    said = f"could not write {what} ({_reason(exc)})"
    if refused_write(exc):
        free = _free_bytes(place.parent)
        if free is None:
            said += ": the disk may be full, or the file over a size limit (ulimit -f) or a quota"
        else:
            mb = f"the disk holding {place.parent} has {free / 2**20:,.0f} MB free"
            if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or free < 2 * size + LOW_SPACE:
                said += f": {mb}" + (f", and the file takes about {size / 2**20:,.1f} MB" if size else "")
            else:
                said += f": {mb}, so a file size limit (ulimit -f) or a disk quota may be what refused it"
    return BiasMirrorError(f"{said}; {kept}", place)


@contextlib.contextmanager
def writing(place: str | Path, what: str, kept: str, size: int = 0) -> Iterator[None]:
    """The block's failed write (see ``write_failure``) raised as one BiasMirrorError naming ``place``."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        failure = write_failure(exc, place, what, kept, size)
        if failure is None:
            raise
        raise failure from exc


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ctrl-C (SIGINT) and a kill (SIGTERM) noted while the block runs and acted on as it ends, as they would have
    been: for a few renames that must all happen or none (a model put in place without its metrics.json). In a
    thread other than the main one the block runs as is (signal handlers cannot be set there)."""
    got: list[int] = []
    try:
        old = {sig: signal.signal(sig, lambda signum, _frame: got.append(signum))
               for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: one set outside Python
        for sig in dict.fromkeys(got):
            signal.raise_signal(sig)  # a Ctrl-C raises KeyboardInterrupt here; a SIGTERM ends the process


class Staged:
    """Files written beside their places (``.NAME.new``) and put in place together once all are whole: a model
    replaced only by one complete with its card, with its metrics.json beside it. A stop before ``put_in_place``
    leaves every place as it was; ``discard`` removes what was staged."""

    def __init__(self) -> None:
        self.files: list[tuple[Path, Path]] = []  # (staged, place), in the order they are put in place
        self.placed = False  # all put in place (a Ctrl-C held back during it is raised after, as put_in_place ends)
        self.in_place: list[Path] = []  # the places they were put in

    def path(self, place: str | Path) -> Path:
        """Where to write the file for ``place``; files are put in place in the order asked for."""
        place = Path(place)
        staged = place.with_name(f".{place.name}.new")
        self.files.append((staged, place))
        return staged

    def copy(self, src: str | Path, place: str | Path) -> Path:
        """``src`` staged as a copy for ``place`` (an --export-to), its folder made where it is missing; a copy that
        cannot be written leaves nothing of it staged."""
        Path(place).parent.mkdir(parents=True, exist_ok=True)
        staged = self.path(place)
        try:
            shutil.copyfile(src, staged)
        except OSError:
            self.files.pop()
            with contextlib.suppress(OSError):
                staged.unlink(missing_ok=True)
            raise
        return staged

    def put_in_place(self, stale: tuple[str | Path, ...] = ()) -> None:
        """``stale`` removed first (a metrics.json of the model being replaced), then each staged file renamed over
        its place, with a Ctrl-C or a kill held back until all are: a SIGKILL, which nothing holds back, can leave
        the old model without its metrics.json, or the new one without its own, never one beside another's."""
        with signals_held():
            for path in stale:
                Path(path).unlink(missing_ok=True)
            for staged, place in self.files:
                os.replace(staged, place)
            self.in_place = [place for _, place in self.files]
            self.files, self.placed = [], True

    def discard(self) -> None:
        for staged, _ in self.files:
            staged.unlink(missing_ok=True)
        self.files = []
