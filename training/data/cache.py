"""Decode a list of images once into a uint8 array at the training size.

CPU training spends more time decoding JPEGs than it should; a cached
N×S×S×3 array (memory-mapped .npy) makes every epoch after the first cheap.
Unreadable images are counted and marked, never fatal; callers name them
(``unreadable_note``), whether the array was decoded now or read from the cache.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
from tqdm import tqdm

from inference.errors import BiasMirrorError
from inference.images import ALIGNED_FRAMING_VERSION, READER_VERSION, read_rgb
from inference.user_dirs import default_cache_dir
from inference.writing import NO_ROOM, _free_bytes, process_alive, writing

log = logging.getLogger(__name__)


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


def add_cache_argument(p) -> None:
    """--cache, in the user's cache folder (read when the parser is made, so XDG_CACHE_HOME is honoured): decoded
    faces had gone to ./cache wherever a command was run (1.5 GB in one checkout). Each cache is every face of a
    dataset at one size, so the help says where they are and that they may be deleted."""
    where = default_cache_dir() / "faces"
    p.add_argument("--cache", default=str(where),
                   # the size in pixels, not "--size 128": `train cyclegan` has no --size (its --preset sets it)
                   help=f"folder for decoded-face caches (default {where}; '' for none: every face is then held "
                        "in memory, N×S×S×3 bytes for N faces of S×S pixels, about 1 GB per 20,000 faces at 128×128): "
                        "each holds every face of a dataset at one size, made once and read by later runs; delete it "
                        "whenever you like")


# what the trainers' --no-dataset-cache adds to its help (inference.cli_common.add_dataset_cache_argument): the
# decoded faces are the other data of a dataset a run keeps, and a run meant to keep none keeps none when continued
TRAINING_DATASET_CACHE_HELP = ("; with --cache '' no decoded faces are kept either. A --resume keeps it, as the run "
                               "last ran (--with-dataset-cache: not)")


def load_images(paths: list[str], size: int, cache_dir: str | Path | None) -> ImageArray:
    # Keyed by each file's size and modification time as well as its path: a photo replaced or repaired under the
    # same name was served from the cache as it had been decoded before (a fixed corrupt file stayed "unreadable").
    # and by the reader's version: a fix to how files decode (an AVIF read sideways) had never reached a cache; and by
    # how faces are framed: CelebA's faces cached squashed would have been trained on again
    text = "\n".join(f"{p}|{_stamp(p)}" for p in paths) + f"|{size}|r{READER_VERSION}|f{ALIGNED_FRAMING_VERSION}"
    key = hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    shape = (len(paths), size, size, 3)
    cache = Path(cache_dir) / f"faces_{size}_{key}" if cache_dir else None
    if cache is not None and (cache / "done").exists():
        whole = _open_whole(cache, shape)
        if whole is not None:
            return whole
    if cache is not None:
        # Written under a private name and renamed when complete: processes started
        # together by torchrun may all decode, and none may truncate a file another reads.
        if cache.exists() and not (cache / "done").exists():
            shutil.rmtree(cache, ignore_errors=True)  # an unfinished cache from before caches were renamed in whole
        _remove_abandoned(cache)
        work = cache.with_name(f"{cache.name}.part{os.getpid()}")
        images = _create_cache(work, shape)
    else:
        images = _in_memory(shape)
    ok = np.zeros(len(paths), bool)
    try:
        for i, p in enumerate(tqdm(paths, desc=f"decoding {size}px", unit="img", mininterval=2)):
            img = read_rgb(p, size)
            if img is not None:
                images[i], ok[i] = img, True
        if cache is not None:
            with writing(cache, "the decoded-face cache", "nothing of it was kept; " + _room_choices(shape)):
                images.flush()
                images = None  # the memory map let go of before the cache is said whole
                np.save(work / "ok.npy", ok)
                (work / "done").write_text(str(len(paths)), encoding="utf-8")
    except BaseException:
        if cache is not None:  # a Ctrl-C or an error mid-decode left the faces decoded so far behind, for good
            images = None
            shutil.rmtree(work, ignore_errors=True)
        raise
    if cache is not None:
        try:
            os.rename(work, cache)
            log.info("decoded faces cached in %s (%.0f MB; delete it whenever you like)", cache,
                     (cache / "images.npy").stat().st_size / 1e6)
        except OSError:  # another process finished first: use its copy
            shutil.rmtree(work, ignore_errors=True)
        return _open(cache)
    return ImageArray(images, ok)


# posix_fallocate's answers where the file system cannot reserve space (ZFS, some network file systems)
CANNOT_RESERVE = frozenset({errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP), errno.EINVAL, errno.ENOSYS})


def _create_cache(work: Path, shape: tuple[int, ...]) -> np.memmap:
    """The cache's images.npy in ``work``, its whole size reserved on the disk. The memory map fills a sparse file:
    a disk that could not back a page had ended the command in a bare "Bus error" (SIGBUS), with the disk left full
    by the part-written cache; a file size limit (ulimit -f) had said "File too large" of no file. Either is now a
    BiasMirrorError naming the cache folder, with nothing of the cache left behind."""
    try:
        work.mkdir(parents=True, exist_ok=True)
        images = np.lib.format.open_memmap(work / "images.npy", "w+", np.uint8, shape)
        _reserve(work / "images.npy")
    except OSError as exc:
        images = None  # the memory map let go of before its folder is removed (Windows keeps a mapped file)
        shutil.rmtree(work, ignore_errors=True)
        if exc.errno in NO_ROOM:
            raise _no_room(exc, work.parent, shape) from exc
        raise
    return images


def _reserve(path: Path) -> None:
    """Every block of ``path`` allocated now, so that filling its memory map cannot find the disk full. Where the
    file system cannot reserve, a disk with less free space than the file is refused as full (ENOSPC)."""
    size = path.stat().st_size
    allocate = getattr(os, "posix_fallocate", None)  # not on Windows or macOS
    if allocate is not None:
        fd = os.open(path, os.O_RDWR)
        try:
            allocate(fd, 0, size)
            return
        except OSError as exc:
            if exc.errno not in CANNOT_RESERVE:
                raise
        finally:
            os.close(fd)
    free = shutil.disk_usage(path.parent).free
    if free < size:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _no_room(exc: OSError, folder: Path, shape: tuple[int, ...]) -> BiasMirrorError:
    """The cache of ``shape`` faces refused by the disk holding ``folder`` (full, a quota) or by a file size limit."""
    need = int(np.prod(shape))
    free = _free_bytes(folder)
    free_said = "" if free is None else f"; the disk holding it has {free / 2**20:,.0f} MB free"
    if exc.errno == errno.EFBIG:
        limit = _file_size_limit()
        over = f" ({limit / 2**20:,.0f} MB)" if limit is not None else ""
        return BiasMirrorError(f"the decoded-face cache takes {need / 2**20:,.0f} MB, over this process's file size "
                               f"limit{over}: raise the limit (ulimit -f unlimited), or give "
                               + _in_memory_choice(shape), folder)
    return BiasMirrorError(f"no room for the decoded-face cache ({exc.strerror or exc}): it takes "
                           f"{need / 2**20:,.0f} MB{free_said}: " + _room_choices(shape), folder)


def _room_choices(shape: tuple[int, ...]) -> str:
    """Where else the faces of ``shape`` can go than a cache on a disk without room for them."""
    need = int(np.prod(shape))
    return (f"free space there, give --cache ANOTHER_FOLDER on a disk with {need / 2**20:,.0f} MB free, or "
            + _in_memory_choice(shape))


def _in_memory_choice(shape: tuple[int, ...]) -> str:
    """--cache '' for the faces of ``shape``, with whether they fit in the RAM available now."""
    need = int(np.prod(shape))
    available = available_memory()
    fits = "" if _fits_in_memory(need, available) else ", too little"
    return (f"--cache '' to hold the faces in memory instead ({need / 2**20:,.0f} MB; {available / 2**20:,.0f} MB of "
            f"RAM is available now{fits})")


def _file_size_limit() -> int | None:
    """This process's file size limit in bytes (ulimit -f), None where there is none or it cannot be asked."""
    try:
        import resource
    except ImportError:  # Windows has none
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def _in_memory(shape: tuple[int, ...]) -> np.ndarray:
    """The array the faces of ``shape`` are decoded into with --cache '': one that does not fit had reached the
    user as "an unexpected MemoryError in Bias Mirror itself (please report it)", or, where np.zeros promised pages
    it never touched, as a process killed by the out-of-memory killer while decoding, with no word at all."""
    need = int(np.prod(shape))
    available = available_memory()
    if not _fits_in_memory(need, available):
        raise _no_memory_for(shape, available)
    try:
        return np.zeros(shape, np.uint8)
    except MemoryError:
        raise _no_memory_for(shape, available_memory()) from None


def _no_memory_for(shape: tuple[int, ...], available: int) -> BiasMirrorError:
    need = int(np.prod(shape))
    return BiasMirrorError(
        f"the decoded faces do not fit in memory: --cache '' holds every one at once, a "
        f"{'×'.join(map(str, shape))} array of {need / 2**30:,.1f} GB ({available / 2**30:,.1f} GB of RAM is available now); leave out "
        f"--cache '' to decode them into the memory-mapped cache on disk (default "
        f"{default_cache_dir() / 'faces'}), or train at a smaller --size")


# what the faces may take of the memory available: the process, the model and the batches need some of it too
MEMORY_MARGIN = 0.9


def _fits_in_memory(need: int, available: int) -> bool:
    return need <= available * MEMORY_MARGIN


def available_memory(cgroup_root: Path = Path("/sys/fs/cgroup"), own_cgroups: Path = Path("/proc/self/cgroup")) -> int:
    """The bytes of RAM this process may still take: the machine's available memory, or less where a cgroup (a
    container's, a batch job's) limits it. psutil says the host's figure, so a container of 700 MB on a machine
    with 23 GB free was told the faces fit, and its process was killed by the out-of-memory killer without a word."""
    available = psutil.virtual_memory().available
    headroom = _cgroup_headroom(cgroup_root, own_cgroups)
    return available if headroom is None else max(0, min(available, headroom))


def _cgroup_headroom(root: Path, own_cgroups: Path) -> int | None:
    """The least room left under the memory limit of this process's cgroup or of any above it (v2's memory.max
    less memory.current, v1's memory.limit_in_bytes less memory.usage_in_bytes, each less the page cache the
    kernel may drop: memory.stat's inactive_file, as docker and the kubelet count it); None where none is limited
    or none can be read."""
    try:
        lines = own_cgroups.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    headrooms = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2's unified hierarchy ("0::/path")
            base, limit_file, used_file, cached = root, "memory.max", "memory.current", "inactive_file"
        elif "memory" in controllers.split(","):
            base, limit_file, used_file, cached = (root / "memory", "memory.limit_in_bytes", "memory.usage_in_bytes",
                                                   "total_inactive_file")
        else:
            continue
        folder = base / path.strip().lstrip("/")
        if not folder.is_dir():  # in a container without its own cgroup namespace the path is the host's
            folder = base
        while True:
            limit, used = _read_bytes(folder / limit_file), _read_bytes(folder / used_file)
            if limit is not None and used is not None:
                # the used figure counts cached files too: a container of 8 GB holding 7 GB of them was told 512 MB
                # was left, and --cache '' refused, though the kernel frees that cache for whoever asks
                headrooms.append(limit - max(0, used - _stat_bytes(folder / "memory.stat", cached)))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return min(headrooms, default=None)


def _stat_bytes(path: Path, key: str) -> int:
    """The bytes ``key`` says in a cgroup's memory.stat; 0 where the file or the line is not there."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    for line in lines:
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdecimal():
            return int(value.strip())
    return 0


def _read_bytes(path: Path) -> int | None:
    """A cgroup file's number of bytes; None for "max" (no limit), or a file that is not there."""
    try:
        said = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(said) if said.isdecimal() else None


def _remove_abandoned(cache: Path) -> None:
    """Partial caches of ``cache`` whose process is gone (killed mid-decode): each as large as the whole cache."""
    for part in cache.parent.glob(f"{cache.name}.part*"):
        pid = part.name.rsplit(".part", 1)[1]
        if pid.isdecimal() and not process_alive(int(pid)):
            shutil.rmtree(part, ignore_errors=True)




def unreadable_note(paths: list[str], ok: np.ndarray, what: str = "", shown: int = 3) -> str:
    """'N unreadable image(s) skipped: a, b, c and K more' for the paths ``ok`` marks False."""
    bad = [paths[i] for i in np.flatnonzero(~np.asarray(ok, bool))]
    more = f" and {len(bad) - shown} more" if len(bad) > shown else ""
    return f"{what}{': ' if what else ''}{len(bad)} unreadable image(s) skipped: {', '.join(bad[:shown])}{more}"


def _open(cache: Path) -> ImageArray:
    return ImageArray(np.load(cache / "images.npy", mmap_mode="r"), np.load(cache / "ok.npy"))


def _open_whole(cache: Path, shape: tuple[int, ...]) -> ImageArray | None:
    """The finished cache ``cache`` of ``shape`` faces, or None where it is damaged (a file cut short or corrupt, or
    of another shape): said, and removed, to be decoded again. A truncated images.npy had given numpy's "mmap
    length is greater than file size" traceback on every later command on its dataset."""
    array: ImageArray | None = None
    try:
        array = _open(cache)
        problem = (None if array.images.shape == shape and array.ok.shape == shape[:1] else
                   f"{array.images.shape[0]} faces of {array.images.shape[1:]}, not {shape[0]} of {shape[1:]}")
    except (ValueError, EOFError, FileNotFoundError) as exc:  # cut short, damaged, or one of its files deleted
        said = str(exc).strip().splitlines()
        problem = said[0][:120] if said else type(exc).__name__
    if problem is None:
        return array
    array = None  # its memory map let go of before the files are removed
    log.warning("%s: damaged cache of decoded faces (%s): decoding the faces again", cache / "images.npy", problem)
    shutil.rmtree(cache, ignore_errors=True)
    return None
