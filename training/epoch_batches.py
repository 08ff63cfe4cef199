"""The batches an epoch trains on: each process's share of the epoch's seeded order (so that a resume, with any
number of processes, goes on where it stopped), and the stream that makes them, in DataLoader workers where the
task allows it: started once a run and serving all its epochs (EpochBatches)."""
from __future__ import annotations

import copy
import mmap
import os
import pickle
import signal
from contextlib import contextmanager
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch

if TYPE_CHECKING:
    from training.loop import LoopConfig, Task


MAX_DEFAULT_WORKERS = 8


def default_workers(gpu: bool, cpu_count: int | None = None, local_processes: int | None = None) -> int:
    """DataLoader workers per training process: none without a GPU (the step itself needs the cores), else
    the cores this process's share of the machine has, less one for the step, at most 8. On an H100 with
    4 workers the classifier waited on data 72 % of the time, with 12 of 16 cores idle."""
    if not gpu:
        return 0
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    share = local_processes if local_processes is not None else int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(0, min(MAX_DEFAULT_WORKERS, cores // max(1, share) - 1))


def epoch_order(indices: np.ndarray, seed: int, epoch: int, rank: int = 0, world: int = 1,
                batch_size: int = 1, consumed: int = 0) -> np.ndarray:
    """This rank's share of the epoch's seeded permutation, after the ``consumed`` samples already trained on.

    Ranks take every world-th item, so after b batches the samples used by all
    ranks together are exactly the permutation's first b·batch_size·world: a
    checkpoint's position is one number, and a resume can use any world size.
    """
    rest = np.random.default_rng([seed, epoch]).permutation(indices)[consumed:]
    usable = len(rest) - len(rest) % (world * batch_size)  # every rank gets the same number of full batches
    return rest[rank:usable:world]


def batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Full batches in order; a short tail is left for the next epoch's permutation."""
    for i in range(0, len(order) - batch_size + 1, batch_size):
        yield order[i : i + batch_size]


class _Batches(torch.utils.data.Dataset):
    """A batch for each key, the batch's own indices, so DataLoader workers run the task's own batch() ahead of the
    step. The keys come from _EpochChunks in the main process: the workers never hold an epoch's order, and the same
    workers serve every epoch.

    A worker started by 'spawn' (macOS's and Windows' default) or 'forkserver' gets it pickled, once a run: the task
    as its batch() needs it (_for_workers), its read-only memory-mapped files mapped again (_WorkerPickler). A forked
    worker shares the parent's memory as it was at the run's first batch: nothing is pickled."""

    def __init__(self, task: Task):
        self.task = task

    def __getitem__(self, idx: np.ndarray) -> Any:
        return self.task.batch(idx, torch.device("cpu"))

    def __getstate__(self) -> bytes:
        return bytes(_WorkerPickler.dumps(_for_workers(self.task), pickle.HIGHEST_PROTOCOL))

    def __setstate__(self, state: bytes) -> None:
        self.task = pickle.loads(state)


class _EpochChunks(torch.utils.data.Sampler):
    """The keys of the epoch in hand, in the main process: its order (from where a resumed run goes on) in batches.
    The DataLoader asks for them anew at each epoch's start, after ``order`` is set to that epoch's."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.order = np.empty(0, dtype=np.int64)

    def __iter__(self) -> Iterator[np.ndarray]:
        return batches(self.order, self.batch_size)

    def __len__(self) -> int:
        return len(self.order) // self.batch_size


def _for_workers(task: Task) -> Task:
    """A copy of ``task`` without what the step trains (its modules, optimizers, schedulers and the wrappers the step
    calls): a prefetching task's batch() only reads its data. Pickled, they were a copy of the model and the
    optimizer's state in every worker, and a DistributedDataParallel wrapper does not unpickle outside the process
    group it belongs to."""
    trained = [*task.modules().values(), *task.optimizers().values(), *task.schedulers().values()]
    params = {id(p) for m in task.modules().values() for p in m.parameters()}
    light = copy.copy(task)
    for name, value in vars(task).items():
        wraps_trained = isinstance(value, torch.nn.Module) and any(id(p) in params for p in value.parameters())
        if wraps_trained or any(value is t for t in trained):
            delattr(light, name)  # batch() using one fails naming it, not on a None
    return light


class _WorkerPickler(ForkingPickler):
    """multiprocessing's pickler, which sends a read-only memory-mapped file (the decoded faces) as its file's name,
    to be mapped again: numpy pickles an np.memmap as its contents, a private copy in every worker's memory (0.64 GB
    each at 112 px for 17k faces) where the mapped file's pages are shared by all."""

    def reducer_override(self, obj: Any) -> Any:
        if _whole_read_only_map(obj):
            order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
            return _map_again, (obj.filename, obj.dtype, obj.shape, obj.offset, order)
        return NotImplemented


class KeptRows:
    """The rows ``rows`` of ``faces`` (the decoded faces, less those that could not be read), read through it: a
    copy of them (``np.asarray(faces)[rows]``) is no memory-mapped file, and every spawned worker had been sent the
    whole of it (15 MB for 398 faces at 112 px, against 68 kB mapped) where one unreadable face was left out. Indexed
    as the array of the kept rows would be; pickled, ``faces`` goes as its file's name (_WorkerPickler)."""

    def __init__(self, faces: np.ndarray, rows: np.ndarray):
        self.faces, self.rows = faces, np.asarray(rows, np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.faces.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.faces.dtype

    @property
    def ndim(self) -> int:
        return self.faces.ndim

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, tuple):  # (rows, then within each face)
            return self.faces[(self.rows[idx[0]], *idx[1:])]
        return self.faces[self.rows[idx]]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        kept = self.faces[self.rows]
        return kept if dtype is None else kept.astype(dtype, copy=False)


def _whole_read_only_map(obj: Any) -> bool:
    """``obj`` maps a whole file region read-only (not a view of one, whose offset is its parent's), and the file is
    still there: a cache deleted during the run ("whenever you like") is sent as its contents instead."""
    if not (isinstance(obj, np.memmap) and isinstance(obj.base, mmap.mmap) and obj.mode == "r" and obj.filename):
        return False
    try:
        return os.path.getsize(obj.filename) >= obj.offset + obj.nbytes
    except OSError:
        return False


def _map_again(filename: str, dtype: np.dtype, shape: tuple[int, ...], offset: int, order: str) -> np.memmap:
    return np.memmap(filename, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # many workers × many threads would fight over the cores
    # A kill sent to the whole process group (`timeout`, a batch scheduler, `docker stop`) reaches the workers
    # too, as a Ctrl-C in a terminal does. Were they to die of it, the main process would fail on their deaths
    # mid-step instead of finishing the step and checkpointing, which is what both mean to it (StopFlag); it
    # shuts them down itself. A second SIGTERM (the loader's own terminate() for a worker stuck past its
    # shutdown) still ends one; SIGINT is the main process's alone.
    # The worker was forked with both blocked (_forking_workers), so one sent before now waits for this.
    signal.signal(signal.SIGTERM, _ignore_first_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _can_mask():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _ignore_first_term(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _can_mask() -> bool:
    """Windows has no signal masks (Python's signal has no pthread_sigmask there), nor a SIGTERM sent to a process
    group to hold back: a kill there (TerminateProcess) cannot be caught at all. Masking had crashed every training
    with workers at its first batch ("module 'signal' has no attribute 'pthread_sigmask'")."""
    return hasattr(signal, "pthread_sigmask")


@contextmanager
def _forking_workers() -> Iterator[None]:
    """SIGTERM and SIGINT held back while the DataLoader forks its workers: a child inherits the mask, so a kill
    or Ctrl-C that lands before its _worker_init stays pending until the worker is ready to ignore it; here it is
    delivered on leaving. Nothing where signals cannot be masked (Windows)."""
    if not _can_mask():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


class EpochBatches:
    """Each epoch's batches for one run (``of(order)``), prepared by worker processes where the task allows it.

    The workers are started at the first epoch's first batch and serve every epoch after: started per epoch, spawned
    ones (macOS, Windows) imported torch again each time, 9–12 s before every epoch's first batch. The run that owns
    them ends them with ``close()``, however it ends (a finished run, Ctrl-C, a kill, out of memory). What the task's
    batch() reads must not change between epochs in the main process: the workers keep the task as it was when they
    started, and learn of each epoch only the keys, its batches' indices."""

    def __init__(self, task: Task, cfg: LoopConfig, device: torch.device):
        self.task, self.batch_size, self.device = task, cfg.batch_size, device
        self.loader: torch.utils.data.DataLoader | None = None
        if cfg.workers > 0 and getattr(task, "prefetch", False):
            self.chunks = _EpochChunks(cfg.batch_size)
            self.loader = torch.utils.data.DataLoader(
                _Batches(task), batch_size=None, sampler=self.chunks, num_workers=cfg.workers,
                persistent_workers=True, pin_memory=device.type == "cuda", prefetch_factor=4,
                worker_init_fn=_worker_init,
                # its own generator: the workers' seeds are otherwise drawn from the global one, which would shift
                # the step's own draws (dropout) by one for every loader started, and a resume starts one mid-epoch
                generator=torch.Generator().manual_seed(cfg.seed))

    def of(self, order: np.ndarray) -> Iterator[Any]:
        """The batches of ``order``, this epoch's, in order."""
        if self.loader is None:
            for idx in batches(order, self.batch_size):
                yield self.task.batch(idx, self.device)
            return
        self.chunks.order = order
        for b in self._epoch_iterator():
            yield _to(b, self.device)

    def _epoch_iterator(self) -> Iterator[Any]:
        if self.loader._iterator is not None:  # the workers are up: they go on with this epoch's keys
            return iter(self.loader)
        with _forking_workers():
            return iter(self.loader)  # the workers start here

    def close(self) -> None:
        """The workers shut down now, not whenever the loader is collected: the exception that stopped a run, held by
        its caller, kept them alive with it, up to the interpreter's exit, whose terminate() is the SIGTERM they
        ignore (_worker_init), and the exit then waited on them for ever. torch has no public call for it; this is
        the one its iterator runs itself at the end of an epoch without persistent workers."""
        if self.loader is not None and self.loader._iterator is not None:
            self.loader._iterator._shutdown_workers()
            self.loader._iterator = None


def batch_stream(task: Task, order: np.ndarray, cfg: LoopConfig, device: torch.device) -> Iterator[Any]:
    """The batches of ``order`` alone, in order (``bench train`` times one stream); its workers end with it."""
    stream = EpochBatches(task, cfg, device)
    try:
        yield from stream.of(order)
    finally:
        stream.close()
