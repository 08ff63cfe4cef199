"""A GPU out of memory during training, said with what to do: a smaller batch, in a new run or after a resume."""
from __future__ import annotations

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
