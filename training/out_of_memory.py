"""A GPU, or the machine's own memory, out of memory during training, said with what to do: a smaller batch, in a
new run or after a resume (and, for the machine's memory, fewer DataLoader workers)."""
from __future__ import annotations

import re
from pathlib import Path

from inference.errors import BiasMirrorError


class OutOfGpuMemory(BiasMirrorError):
    """The GPU ran out of memory at the run's batch size: in a training step, or with ``ending_epoch`` (1-based) in
    the evaluation that ends that epoch, whose steps were checkpointed before it (a caller that words its own advice,
    as `train compare` does, says so)."""

    def __init__(self, message: str, path: object | None = None, ending_epoch: int | None = None):
        super().__init__(message, path)
        self.ending_epoch = ending_epoch


def out_of_memory_advice(batch_size: int, checkpoint_kept: bool, ending_epoch: int | None = None) -> str:
    """What to do after the GPU ran out of memory at ``batch_size`` per process: in a training step, or (with
    ``ending_epoch``, 1-based) in the evaluation that ends that epoch, whose steps the loop checkpointed before it.
    A resume keeps the checkpoint's batch size (another is refused), so it had been no way to the smaller batch this
    advised; and before the first checkpoint there is nothing to resume."""
    said = f"out of GPU memory at --batch-size {batch_size} per process"
    smaller = smaller_batch(batch_size)
    if ending_epoch is not None:  # the evaluation runs in chunks of at most a batch: a smaller one needs less too
        said += (f", in the evaluation that ends epoch {ending_epoch} (the epoch's training steps are all in the "
                 "checkpoint)")
        again = f"it evaluates epoch {ending_epoch} again and loses no step"
    elif not checkpoint_kept:
        return f"{said}, before the run's first checkpoint, so nothing was saved: run the command again {smaller}"
    else:
        again = "from its last checkpoint; the steps since are lost"
    return (f"{said}. To train {smaller}, start a new --out: a resume keeps the checkpoint's --batch-size "
            f"{batch_size}, so --resume continues this run ({again}) only once more GPU memory is free (another "
            "program using it)")


def smaller_batch(batch_size: int) -> str:
    """How to train in less GPU memory than at ``batch_size`` per process, as "To train …" goes on."""
    return (f"with --batch-size {batch_size // 2}" if batch_size > 1 else
            "with a smaller model or image size (there is no batch smaller than 1)")


# What PyTorch's CPU allocator says when malloc fails (a plain RuntimeError, unlike the GPU's OutOfMemoryError):
# "[enforce fail at alloc_cpu.cpp:…] . DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes. …"
HOST_ALLOCATOR_FAILED = "DefaultCPUAllocator: can't allocate memory"
_TRIED = re.compile(r"you tried to allocate (\d+) bytes")
# What PyTorch's DataLoader says, from wherever the main process is (its SIGCHLD handler raises), of a worker the
# kernel's out-of-memory killer ended: "DataLoader worker (pid 26767) is killed by signal: Killed.", or, where
# the loader noticed it gone first, "DataLoader worker (pid(s) 26767, 26768) exited unexpectedly"
_WORKER_KILLED = re.compile(
    r"DataLoader worker \(pid(?:\(s\))?[^)]*\) (is killed by signal: Killed\b|exited unexpectedly)")
WORKER_KILLED = "a DataLoader worker was killed (SIGKILL), most often by the out-of-memory killer (see dmesg)"
# "exited unexpectedly" names no signal: it is also a worker that ran out of shared memory in a container (torch's
# "Unexpected bus error … insufficient shared memory", Docker's /dev/shm being 64 MB) and any worker's death on
# Windows, which a SIGKILL and dmesg would send the user looking in the wrong place for
WORKER_DIED = ("a DataLoader worker died (out of memory, or too little shared memory (/dev/shm) in a container)")
WORKER_DIED_ADVICE = ("; --workers 0 loads the batches without worker processes (in Docker, a larger --shm-size "
                      "also gives the workers room)")


class OutOfHostMemory(BiasMirrorError):
    """The machine's memory (RAM) ran out during training: as ``OutOfGpuMemory``, but not the GPU's (a caller that
    words GPU advice of its own, as `train compare` does, must not catch it as that)."""

    def __init__(self, message: str, path: object | None = None, ending_epoch: int | None = None):
        super().__init__(message, path)
        self.ending_epoch = ending_epoch
        self.workers: int | None = None  # the DataLoader workers in use, for a caller that words its own advice


def host_out_of_memory(error: BaseException, batch_size: int, workers: int, checkpoint: Path, out_dir: Path,
                       ending_epoch: int | None = None, size_option: str = "--size") -> OutOfHostMemory | None:
    """``error`` said as the machine's memory running out during training, or None where it is something else: a
    MemoryError, or PyTorch's CPU allocator failing, which had reached the user as a traceback, or as "an unexpected
    MemoryError in Bias Mirror itself (please report it)". ``checkpoint``: the run's checkpoint, named where it
    exists (else ``out_dir``); ``size_option``: what sets the image size (the CycleGAN's is its --preset); the rest
    as ``out_of_memory_advice`` takes them."""
    if not is_host_out_of_memory(error):
        return None
    kept = checkpoint.exists()
    failure = OutOfHostMemory(host_out_of_memory_advice(error, batch_size, workers, kept, ending_epoch, size_option),
                              checkpoint if kept else out_dir, ending_epoch)
    failure.workers = workers
    return failure


def is_host_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation in the machine's memory that failed (a DataLoader worker's included: its
    error reaches the loop as the same type, its message quoted), or a DataLoader worker the out-of-memory killer
    ended, which had reached the user as "an unexpected RuntimeError in Bias Mirror itself (please report it)"."""
    return isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and (
        HOST_ALLOCATOR_FAILED in str(error) or worker_killed(error)))


def worker_killed(error: BaseException) -> bool:
    return isinstance(error, RuntimeError) and _WORKER_KILLED.search(str(error)) is not None


def host_out_of_memory_advice(error: BaseException, batch_size: int, workers: int, checkpoint_kept: bool,
                              ending_epoch: int | None = None, size_option: str = "--size") -> str:
    """What to do after the machine's memory ran out at ``batch_size`` per process with ``workers`` DataLoader
    processes: less held at once (a smaller batch or image size, fewer workers, each holding batches of its own), or
    the same run continued once more memory is free. A resume keeps the checkpoint's --batch-size and image size
    (``size_option``), but may change --workers."""
    tried = _TRIED.search(str(error))
    said = "out of memory (RAM) on this machine" + (f" allocating {int(tried[1]) / 2**20:,.0f} MB" if tried else "")
    died = ""
    if worker_killed(error):
        signalled = "is killed by signal: Killed" in str(error)
        said = (WORKER_KILLED if signalled else WORKER_DIED) + ","
        died = "" if signalled else WORKER_DIED_ADVICE
    said += f" at --batch-size {batch_size} per process with --workers {workers}"
    fewer = fewer_workers(workers)
    smaller = smaller_host_batch(batch_size, size_option)
    less = (f"with {smaller}" + (f", or {fewer} (each worker holds batches of its own)" if fewer else "")
            + ", or with other programs closed")
    if ending_epoch is not None:
        said += (f", in the evaluation that ends epoch {ending_epoch} (the epoch's training steps are all in the "
                 "checkpoint)")
        again = f"it evaluates epoch {ending_epoch} again and loses no step"
    elif not checkpoint_kept:
        return f"{said}, before the run's first checkpoint, so nothing was saved: run the command again {less}{died}"
    else:
        again = "from its last checkpoint; the steps since are lost"
    resume = (f"--resume continues this run ({again}) with {fewer}, or once more memory is free" if fewer else
              f"--resume continues this run ({again}) once more memory is free (other programs closed)")
    return (f"{said}. {resume}; to train with {smaller}, start a new --out: a resume keeps the checkpoint's "
            f"--batch-size and image size ({size_option}){died}")


def fewer_workers(workers: int) -> str | None:
    """Fewer DataLoader workers than ``workers``, as an option; None where none run (a task that does not prefetch
    starts none, whatever --workers says)."""
    return f"--workers {workers // 2}" if workers > 1 else "--workers 0" if workers == 1 else None


def smaller_host_batch(batch_size: int, size_option: str = "--size") -> str:
    """What holds less in the machine's memory than ``batch_size`` per process does, as "with …" goes on."""
    return (f"a smaller --batch-size or {size_option}" if batch_size > 1 else
            f"a smaller {size_option} (there is no batch smaller than 1)")
