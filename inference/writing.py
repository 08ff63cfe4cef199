"""Writing what a command produces (a run's checkpoint and model, an audit's report and cache): a write the disk
refused (full, or over a file size limit or quota) said in one line naming the file, a few files put in place
together, out of reach of a Ctrl-C or a kill between them, and one command at a time writing an output."""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import stat
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import psutil

from .errors import BiasMirrorError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from filelock import BaseFileLock

# A write the disk or a limit refused: no space, a file over `ulimit -f` (Python ignores SIGXFSZ, so the write
# fails with EFBIG), a quota.
NO_ROOM = frozenset({errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)})
# A lock the file system cannot give: no locking at all, an NFS mount without its lock daemon, a FUSE file system.
NO_LOCKS = frozenset({errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)})
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


# The longest file name, in bytes, where the file system cannot be asked (Windows has no pathconf): ext4's, APFS's,
# and NTFS's 255 UTF-16 units, which a name's UTF-8 bytes never number fewer than.
NAME_MAX = 255
DIGEST_CHARS = 16  # of a shortened hidden name's SHA-256: 64 bits, one name per output in any folder


def name_limit(folder: Path) -> int:
    """The longest file name, in bytes, the file system holding ``folder`` (or, not made yet, its nearest existing
    parent) takes; ``NAME_MAX`` where it cannot be asked."""
    for where in (folder, *folder.parents):
        try:
            return int(os.pathconf(where, "PC_NAME_MAX"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError):  # no pathconf (Windows), or no such limit told
            break
    return NAME_MAX


def hidden_name(place: str | Path, ending: str, room: int = 0) -> Path:
    """``.NAME{ending}`` beside ``place`` (NAME its file name): a hidden file of its own, a lock or one written whole
    and renamed over it. Where that is longer than the file system takes (``room`` bytes kept for what a caller
    appends: a pid and a token), NAME is cut, at a character, and a digest of the whole name added, which keeps the
    name ``place``'s own: a legal --out of 250 bytes had failed with "File name too long" on a lock file its user
    never named. The same ``place`` always gets the same name, so that two commands writing it find one lock."""
    place = Path(place)
    limit = name_limit(place.parent) - room
    whole = f".{place.name}{ending}"
    if len(os.fsencode(whole)) <= limit:
        return place.with_name(whole)
    digest = "~" + hashlib.sha256(os.fsencode(place.name)).hexdigest()[:DIGEST_CHARS]
    cut = _cut_to_bytes(place.name, limit - len(os.fsencode(f".{digest}{ending}")))
    return place.with_name(f".{cut}{digest}{ending}")


def _cut_to_bytes(name: str, most: int) -> str:
    """The longest start of ``name`` whose file-system bytes number at most ``most``, cut between characters."""
    cut, used = [], 0
    for char in name:
        used += len(os.fsencode(char))
        if used > most:
            break
        cut.append(char)
    return "".join(cut)


# what private_path appends to a hidden name at most: the largest pid (32 bits) and the token
_PID_AND_TOKEN = len(f"{2**32}-{'0' * 8}")


def private_path(place: str | Path, ending: str = ".tmp") -> Path:
    """A hidden name beside ``place`` that no other process uses (its pid and a random token), for a file written
    whole and then renamed over ``place``: two commands writing one output had shared ``last.tmp``, one renaming the
    other's half-written file in place and the other then failing on a file gone, said as if the disk were full.
    Such files of ``place`` that killed processes left are removed first (``clear_leftovers``). Shortened where
    ``place``'s name is near the file system's limit (``hidden_name``)."""
    place = Path(place)
    prefix = hidden_name(place, ".", room=_PID_AND_TOKEN + len(os.fsencode(ending))).name
    clear_leftovers(place.parent, prefix)
    return place.with_name(f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{ending}")


LOCK_WAIT_S = 0.2
LEFTOVER_AGE_S = 300.0  # a file being written is touched far more often than this
@contextlib.contextmanager
def written_whole(path: str | Path, ending: str = ".part") -> Iterator[Path]:
    """A file of this process's own (``private_path``) to write in place of ``path``, renamed over it when the block
    ends and removed if it fails: an interrupted write (Ctrl-C during export) left a model without its card, or
    would have cut a model the app loads short, and a shared temporary name let another process rename it in
    place half-written."""
    path = Path(path)
    part = private_path(path, ending)
    try:
        yield part
        os.replace(part, path)
    finally:
        with contextlib.suppress(OSError):  # a folder that refused the write may refuse this too
            part.unlink(missing_ok=True)


@contextlib.contextmanager
def private_files(*places: str | Path, ending: str = ".part") -> Iterator[list[Path]]:
    """A file of this process's own beside each of ``places`` (``private_path``), removed when the block ends: to
    write whole before ``placed_new`` gives them names of their own, which need not be ``places``."""
    parts = [private_path(place, ending) for place in places]
    try:
        yield parts
    finally:
        for part in parts:
            with contextlib.suppress(OSError):  # a folder that refused the write may refuse this too
                part.unlink(missing_ok=True)


def made_new(path: str | Path) -> None:
    """``path`` made, empty, where nothing has that name; FileExistsError where something has (a link to nothing
    too). Taking a name this way is one step, so two processes never both take it."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))


def placed_new(files: Sequence[tuple[Path, Path]]) -> None:
    """Each (written, place) of ``files``: the file ``written`` given the name ``place``, all of them or none, where
    none of the names is taken. FileExistsError where one is (another process took it after it was seen free): then
    nothing is overwritten, and nothing of these is left under any of the names. os.replace had overwritten the
    file that a second app window saved under the same name in the same second, and a pair (a snapshot's PNG and
    JSON) could end up one from each window.

    A hard link takes the name and fills it in one step; where the file system makes none (FAT on a USB stick, some
    network shares), an empty file made new (``made_new``) takes the name and ``written`` is renamed over it."""
    claimed: list[Path] = []  # ours, removed again should a later one be taken
    renames: list[tuple[Path, Path]] = []
    try:
        for written, place in files:
            if not _linked(written, place):
                renames.append((written, place))
            claimed.append(place)
        for written, place in renames:
            os.replace(written, place)
    except BaseException:
        for place in claimed:
            with contextlib.suppress(OSError):
                os.unlink(place)
        raise


def _linked(written: Path, place: Path) -> bool:
    """``place`` taken: as a hard link to ``written`` (True), or, where the file system makes none, as an empty file
    for ``written`` to be renamed over (False). FileExistsError where ``place`` is taken already."""
    try:
        os.link(written, place)
        return True
    except FileExistsError:
        raise
    except OSError:  # no hard links here; any other refusal (no permission, no room) made_new says for itself
        made_new(place)
        return False


# private_path's names and Staged's folders: the pid of the process that made them, then its random token
_LEFTOVER = re.compile(r"[.-](?P<pid>\d+)-[0-9a-f]{8}(?:\..*)?$")


def clear_leftovers(folder: Path, prefix: str) -> None:
    """Removes the files and staging folders in ``folder`` whose names start with ``prefix`` and that a process now
    gone left (killed mid-write: a SIGKILL, the OOM killer, a preempted batch job). Their names are their own, so
    no later command overwrote them: three killed checkpoint saves had left 520 MB of hidden files in a run folder.
    Only what nothing has touched for ``LEFTOVER_AGE_S`` goes: a pid names a process on its own machine only, and a
    job on another node sharing the folder (NFS) may be writing it now."""
    try:
        entries = [e for e in folder.iterdir() if e.name.startswith(prefix)]
    except OSError:  # not there yet, or not listable: nothing of ours to clear
        return
    now = time.time()
    for entry in entries:
        found = _LEFTOVER.match(entry.name[len(prefix) - 1:])  # from the prefix's last character: "." or "-"
        if found is None or int(found["pid"]) == os.getpid() or process_alive(int(found["pid"])):
            continue
        if now - _last_touched(entry) < LEFTOVER_AGE_S:
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def _last_touched(entry: Path) -> float:
    """The newest modification time of ``entry`` and, for a staging folder, of what it holds (inf where unknown)."""
    try:
        times = [entry.stat().st_mtime, *(f.stat().st_mtime for f in entry.iterdir())] if entry.is_dir() \
            else [entry.stat().st_mtime]
    except OSError:
        return float("inf")
    return max(times)


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (True where that cannot be told: nothing of it is then removed). Asked through
    psutil, which asks Windows without signalling (os.kill(pid, 0) there sends a Ctrl-C; leftovers had never been
    cleared on Windows for it) and counts another user's process as running."""
    try:
        return psutil.pid_exists(pid)
    except (OSError, psutil.Error):
        return True


class Staged:
    """Files written beside their places (``.NAME.new``, in a hidden folder of this Staged's own, named by its
    process and a random token) and put in place together once all are whole: a model replaced only by one
    complete with its card, with its metrics.json beside it. A stop before ``put_in_place`` leaves every place as it
    was; ``discard`` removes what was staged, and only that: with one name for every process, an audit had put the
    other audit's report in place, or deleted what it had staged."""

    def __init__(self) -> None:
        self.files: list[tuple[Path, Path]] = []  # (staged, place), in the order they are put in place
        self.placed = False  # all put in place (a Ctrl-C held back during it is raised after, as put_in_place ends)
        self.in_place: list[Path] = []  # the places they were put in
        self._token = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._folders: list[Path] = []  # this Staged's own folders, one beside each folder of places

    def path(self, place: str | Path) -> Path:
        """Where to write the file for ``place``; files are put in place in the order asked for."""
        place = Path(place)
        staged = self._folder(place) / hidden_name(place, ".new").name  # shortened as a long name needs
        self.files.append((staged, place))
        return staged

    def _folder(self, place: Path) -> Path:
        """This Staged's own folder beside ``place``, made when first asked for."""
        folder = place.parent / f".staged-{self._token}"
        if folder not in self._folders:
            clear_leftovers(place.parent, ".staged-")  # a killed command's, which no later one would overwrite
            folder.mkdir(exist_ok=True)
            self._folders.append(folder)
        return folder

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
        """Each staged file put in place and ``stale`` removed (a metrics.json of the model being replaced), all of
        them or none, with a Ctrl-C or a kill held back until done. First every earlier file there (``stale`` too)
        is renamed aside into this Staged's folder, then the staged ones are renamed in and the earlier ones
        removed. Windows refuses to rename a file another program has open (a faces.csv open in Excel): renamed
        over one by one, report.json had been replaced beside the earlier audit's faces.csv and report.html, and
        the error named the hidden staged file. Now the refusal comes before anything new is in place, what was
        set aside goes back, and the BiasMirrorError names the file. A SIGKILL, which nothing holds back, can leave
        places empty, their earlier files in the hidden folder, never one file beside another's."""
        with signals_held():
            aside = self._set_aside([Path(path) for path in stale] + [place for _, place in self.files])
            self._move_in(aside)
            for earlier in aside.values():
                with contextlib.suppress(OSError):  # one still open elsewhere goes with the killed commands' leftovers
                    earlier.unlink()
            self.in_place = [place for _, place in self.files]
            self.files, self.placed = [], True
            self._remove_folders()

    def _set_aside(self, places: list[Path]) -> dict[Path, Path]:
        """Each of ``places`` that is there renamed into this Staged's folder: {place: where it is now}. Renamed,
        not replaced: nothing is at the new name, and on Windows this is the step a file held open refuses. A folder
        at one of them is refused, and nothing set aside."""
        aside: dict[Path, Path] = {}
        for place in dict.fromkeys(places):  # a stale file may be staged anew too
            if not os.path.lexists(place):
                continue
            # A folder (an audit's faces.csv, a stale path) renamed aside could not be removed, and the staging folder
            # holding it was deleted whole by a later command's clear_leftovers: the user's files with it
            if self._a_folder(place):
                raise self._refused(place, IsADirectoryError(errno.EISDIR, "is a folder"), self._put_back(aside))
            earlier = self._folder(place) / hidden_name(place, ".old").name
            try:
                os.rename(place, earlier)
            except OSError as exc:
                raise self._refused(place, exc, self._put_back(aside)) from exc
            aside[place] = earlier
            if self._a_folder(earlier):  # made at the place since the look above
                raise self._refused(place, IsADirectoryError(errno.EISDIR, "is a folder"), self._put_back(aside))
        return aside

    @staticmethod
    def _a_folder(path: Path) -> bool:
        """Whether ``path`` is a folder itself, not a link to one (a link is replaced as a file is)."""
        with contextlib.suppress(OSError):
            return stat.S_ISDIR(os.lstat(path).st_mode)
        return False

    def _move_in(self, aside: dict[Path, Path]) -> None:
        """The staged files renamed to their places, emptied by ``_set_aside``; should one be refused, those moved
        go back to being staged and the earlier files (``aside``) back to their places."""
        moved: list[tuple[Path, Path]] = []
        for staged, place in self.files:
            try:
                os.replace(staged, place)
            except OSError as exc:
                for back, place_back in reversed(moved):
                    with contextlib.suppress(OSError):
                        os.replace(place_back, back)
                raise self._refused(place, exc, self._put_back(aside)) from exc
            moved.append((staged, place))

    @staticmethod
    def _put_back(aside: dict[Path, Path]) -> dict[Path, Path]:
        """The earlier files set aside renamed back to their places; those that could not be, returned with where
        they are kept: beside their place as NAME.earlier, out of the staging folder, which a later command's sweep
        of leftovers (``clear_leftovers``) deletes whole; only where that too is refused, in it."""
        stuck = {}
        for place, earlier in aside.items():
            try:
                os.rename(earlier, place)
            except OSError:
                kept = place.with_name(place.name + ".earlier")
                try:
                    if os.path.lexists(kept):
                        raise FileExistsError(kept)  # an earlier failure's: never written over
                    os.rename(earlier, kept)
                except OSError:
                    kept = earlier
                stuck[place] = kept
        return stuck

    @staticmethod
    def _refused(place: Path, exc: OSError, stuck: dict[Path, Path]) -> BiasMirrorError:
        """The error of a file not replaced: named itself (not by its staged name), with the likely cause."""
        kept = "nothing was put in place, and the earlier files here are as they were" if not stuck else \
            "the earlier " + ", ".join(f"{p.name} could not be put back: it is kept as {e}" for p, e in stuck.items())
        if isinstance(exc, IsADirectoryError):  # no program to close: the name is taken by a folder
            return BiasMirrorError(f"is a folder; give a file name, or move the folder: {kept}", place)
        return BiasMirrorError(f"could not be replaced ({_reason(exc)}); if another program has it open (a "
                               f"spreadsheet, a viewer), close it and run again: {kept}", place)

    def discard(self) -> None:
        for staged, _ in self.files:
            staged.unlink(missing_ok=True)
        self.files = []
        self._remove_folders()

    def _remove_folders(self) -> None:
        for folder in self._folders:
            with contextlib.suppress(OSError):  # one holding a file not staged through this Staged is kept
                folder.rmdir()
        self._folders = []


HOLDER = "{pid} {started} {what}"  # what a lock file says of the command holding it


@contextlib.contextmanager
def one_writer(place: str | Path, lock: str | Path, what: str) -> Iterator[None]:
    """``place`` written by this command alone while the block runs: ``lock`` (a hidden file of the output's) held
    by an OS lock, which the OS releases when the process ends, so a killed command leaves none standing. Where
    another command holds it, a BiasMirrorError at once, before anything is written (``what`` names this command,
    e.g. "audit"): two audits, trainers or runs on one output had interleaved their files, each saying it had
    written them. Folders made for the lock and still empty at the end are removed again."""
    from filelock import FileLock

    place, lock = Path(place), Path(lock)
    made = [f for f in (lock.parent, *lock.parent.parents) if not f.exists()]
    # no soft lock (a file whose presence is the lock): a killed command's would refuse every later one
    # a moment's wait, not none: a lock file its holder removed as it let go is then opened again and taken (with
    # none, a command started as the last one ended was told another was writing)
    held = FileLock(lock, timeout=LOCK_WAIT_S, fallback_to_soft=False)
    try:
        taken = _taken(held, place, what)
    except BaseException:
        _remove_made(made)  # the lock file stays: it may be the holder's
        raise
    if not taken:  # no locks here, so no holder: its lock file goes too (it had been left in a folder of its own)
        with contextlib.suppress(OSError):
            lock.unlink()
        _remove_made(made)
        yield  # a file system without OS locks: written as before locks were taken, staged under private names
        return
    try:
        with contextlib.suppress(OSError):  # what the lock says of its holder is for a message only
            lock.write_text(HOLDER.format(pid=os.getpid(), started=_dt.datetime.now().isoformat(timespec="seconds"),
                                          what=what), encoding="utf-8")
        yield
    finally:
        with contextlib.suppress(OSError):  # removed while held: a command that opens it after finds it gone
            lock.unlink()
        held.release()
        _remove_made(made)


def _remove_made(made: list[Path]) -> None:
    """The folders made for a lock, where still empty."""
    for folder in made:
        with contextlib.suppress(OSError):  # only where still empty
            folder.rmdir()


def _taken(held: BaseFileLock, place: Path, what: str) -> bool:
    """Whether the lock ``held`` was taken: False on a file system that has no OS locks;
    a BiasMirrorError naming ``place`` where another command holds it."""
    from filelock import Timeout

    lock = Path(held.lock_file)
    for attempt in range(3):
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            held.acquire()
            return True
        except Timeout:
            raise BiasMirrorError(f"another {_holder(lock, what)} is writing to it; wait for it to finish, or give "
                                  "another --out", place) from None
        except FileNotFoundError:  # its folder removed as another command let go of it: made again
            if attempt == 2:
                raise
        except OSError as exc:
            if exc.errno not in NO_LOCKS:
                raise
            log.warning("%s: this file system gives no locks (%s): written without one; run no other command on "
                        "this output meanwhile", place, exc.strerror or exc)
            return False
    return False


def _holder(lock: Path, what: str) -> str:
    """``what`` the holder of ``lock`` is, with its process and start time where its lock file says them."""
    try:
        pid, started, holder = lock.read_text(encoding="utf-8").split(" ", 2)
        when = _dt.datetime.fromisoformat(started)
    except (OSError, ValueError):
        return what
    day = "" if when.date() == _dt.date.today() else f"{when.date().isoformat()} "
    return f"{holder.strip() or what} (process {pid}, started {day}{when.time().isoformat()})"


# Names that stand for a descriptor a process has open, not for a file in a folder: opened, they open what the
# descriptor does (a pipe, a terminal, the file a shell's ``>>`` opened), which a file renamed over the name would
# not reach. By name, not by their folder: /dev/shm/rows.csv is an ordinary file, and had been appended to.
_DESCRIPTOR_NAME = re.compile(r"/dev/(?:stdout|stderr|fd/\d+)|/proc/(?:self|thread-self|\d+)/fd/\d+")
_MOST_LINKS = 40  # as Linux follows at most: a loop of links names no descriptor


def names_a_descriptor(path: str | Path) -> bool:
    """Whether ``path`` names an open descriptor (POSIX: /dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N,
    /proc/PID/fd/N), itself or through links: ~/rows.csv linked to /dev/stdout opens what standard output does."""
    return descriptor_named(path) is not None


def descriptor_named(path: str | Path) -> str | None:
    """The descriptor's name ``path`` leads to (``names_a_descriptor``), as the first one on its way says it
    ("/dev/stdout", "/proc/123/fd/1"); None where it leads to none."""
    here = os.path.abspath(path)
    for _ in range(_MOST_LINKS):
        folder, name = os.path.split(here)
        named = next((p for p in (here, os.path.join(os.path.realpath(folder), name))
                      if _DESCRIPTOR_NAME.fullmatch(p)), None)
        if named is not None:
            return named
        try:
            here = os.path.normpath(os.path.join(folder, os.readlink(here)))
        except (OSError, ValueError):  # no link: the name is a file's (or nothing's)
            return None
    return None


def written_in_place(path: str | Path) -> bool:
    """Whether what is written to ``path`` (`run`'s rows, a --json report) goes where it stands, rather than into a file of its own put in
    place whole: a descriptor's name (``names_a_descriptor``), or something there that is no plain file (a FIFO, a
    device such as /dev/null), which a rename would replace rather than write to. No folder is written in for
    them, so none need be writable (/dev is not, to a user)."""
    if names_a_descriptor(path):
        return True
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # nothing there yet (or no name a file can have): a file to be made
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)  # a folder is refused where --out is checked


def only_the_file_writable(target: Path) -> bool:
    """Whether ``target`` is a file this process can write in a folder where it can make none, as a link in the
    user's folder to a file of theirs in another's leads to: the file is then rewritten where it is, as it had been,
    since no file of its own can be put beside it."""
    return target.is_file() and os.access(target, os.W_OK) and not os.access(target.parent, os.W_OK | os.X_OK)


def refuse_in_place(path: str | Path, option: str, why: str) -> None:
    """A BiasMirrorError where ``path`` is written in place (``written_in_place``), for an output rewritten whole
    again and again (``why``): appended to a descriptor or FIFO, each rewrite would add one more document. The null
    device (``discards``) keeps none of them: `--json /dev/null`, given for the terminal's output alone, had been
    refused."""
    if written_in_place(path) and not discards(path):
        raise BiasMirrorError(f"{option} names standard output, a descriptor, a FIFO or a device, and {why}, which "
                              "there would add one document after another; give a file", path)


def discards(path: str | Path) -> bool:
    """Whether ``path`` leads to the null device: /dev/null, a link to it, or a descriptor's name open on it. By the
    file it is, not by its name; a FIFO is only looked at (stat opens nothing), so its reader is not waited for."""
    try:
        return os.path.samefile(path, os.devnull)
    except (OSError, ValueError):  # nothing there, or no null device by that name (Windows' "nul")
        return False


def write_through(path: str | Path, data: str | bytes) -> None:
    """``data`` (text as UTF-8) written to what ``path`` names as a user means it: through a link to the file it
    leads to (the link kept), appended in place to a descriptor's name or a FIFO (``written_in_place``), rewritten
    where it is for a file the user may write in a folder they may not (``only_the_file_writable``), and otherwise
    whole, renamed over the old file with its mode kept. A bare rename had put a file of mode 0644 in a link's place,
    or in that of a 0600 file, and as root had replaced the system's /dev/stdout link with a file."""
    how, target = how_written(path)
    if how == IN_PLACE:
        # "a", never "w": /dev/stdout opened on a shell's ``>>`` file with "w" empties it (`--json /dev/stdout >> log`)
        _put(target, data, "a")
        return
    if how == REWRITTEN:
        _put(target, data, "w")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with written_whole(target) as part:
        _put(part, data, "w")
        if target.exists():
            shutil.copymode(target, part)


IN_PLACE, REWRITTEN, WHOLE = "in place", "rewritten", "whole"


def how_written(path: str | Path) -> tuple[str, Path]:
    """How an output ``path`` is written, and what is written: IN_PLACE (``path`` itself, appended to),
    REWRITTEN (the file a link leads to, where it is) or WHOLE (that file, replaced by one written beside it). One
    decision for every writer of a user's output (a report, `run`'s rows), which had each made their own, and
    disagreed."""
    if written_in_place(path):
        return IN_PLACE, Path(path)
    target = Path(os.path.realpath(path))
    return (REWRITTEN if only_the_file_writable(target) else WHOLE), target


def _put(place: Path, data: str | bytes, mode: str) -> None:
    if mode == "w":  # through Path's own writers, which a test of a full disk stands in for
        place.write_bytes(data) if isinstance(data, bytes) else place.write_text(data, encoding="utf-8", newline="")
    elif isinstance(data, bytes):
        with open(place, mode="ab") as fh:  # the one other mode: in place, appended
            fh.write(data)
    else:
        with open(place, mode, encoding="utf-8", newline="") as fh:  # as given: a CSV header's "\r\n" kept
            fh.write(data)
