"""The run's checkpoint (last.pt in its folder): written whole by rank 0 with every process's own state, read
back by a resume, and read for export and evaluation with a checkpoint of another trainer or none refused by name."""
from __future__ import annotations

import copy
import io
import os
import pickle
import random
import re
import warnings
from collections import OrderedDict
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from inference.errors import BiasMirrorError
from inference.writing import private_path, write_failure
from training.csv_log import CsvLog, count_epochs_from_one, logs_count_epochs_from_one
from training.same_data import check_same_data, data_counts, data_faces

if TYPE_CHECKING:
    from training.loop import StepContext, Task


CHECKPOINT = "last.pt"
EXISTING_CHECKPOINT = "a checkpoint already exists here: pass --resume to continue it, or choose another --out"


def process_state(task: Task, device: torch.device) -> dict:
    """What is this process's own, not shared through DistributedDataParallel: its random streams (dropout, and a
    step's draws with NumPy or ``random``) and the task's per-process modules."""
    # on the host: gathered as pickles, a GPU tensor of process 1 would be unpickled onto process 1's GPU by rank 0
    own = {"torch_rng": torch.get_rng_state(),
           "numpy_rng": _numpy_rng_state(),
           "python_rng": _python_rng_state(),
           "modules": {k: {n: t.cpu() for n, t in _unwrap(task.modules()[k]).state_dict().items()}
                       for k in getattr(task, "per_process_modules", ())}}
    if device.type == "cuda":
        own["cuda_rng"] = torch.cuda.get_rng_state(device)
    return own


def _numpy_rng_state() -> dict:
    # NumPy's legacy global stream, as types the weights-only reader makes: its key is a uint32 array, kept as int64
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {"kind": str(kind), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _python_rng_state() -> dict:
    version, key, gauss_next = random.getstate()
    return {"version": version, "key": list(key), "gauss_next": gauss_next}


def restore_process_rngs(own: dict) -> None:
    """Puts back the NumPy and ``random`` streams ``process_state`` saved; a checkpoint from before it kept them
    has neither, and those streams go on from the loop's seeding, as they did."""
    if "numpy_rng" in own:
        n = own["numpy_rng"]
        np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
    if "python_rng" in own:
        r = own["python_rng"]
        random.setstate((r["version"], tuple(r["key"]), r["gauss_next"]))


class Checkpoints:
    def __init__(self, out_dir: Path):
        self.path = out_dir / CHECKPOINT
        self._faces: dict | None = None  # the task's data_faces record, made once: the data does not change
        self.saved_step: int | None = None  # the step of the checkpoint on disk (saved or resumed) by this run

    def faces(self, task: Task) -> dict | None:
        if self._faces is None:
            self._faces = data_faces(task)
        return self._faces

    def save(self, task: Task, epoch: int, samples_in_epoch: int, ctx: StepContext, extra: dict | None = None) -> None:
        """Every process calls it at the same step: each one's own state is gathered, and rank 0 writes."""
        self.saved_step = ctx.step
        own = process_state(task, ctx.device)
        processes = [own]
        if ctx.world > 1:
            processes = [None] * ctx.world if ctx.is_main else None  # type: ignore[assignment]
            torch.distributed.gather_object(own, processes, dst=0)
        if not ctx.is_main:
            return
        state = plain_state(self._state(task, epoch, samples_in_epoch, ctx, extra, processes), self.path)
        tmp = private_path(self.path)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.path)  # atomic: a kill mid-save never leaves a broken checkpoint
        except (OSError, RuntimeError) as exc:  # a full disk, a file size limit: torch's writer said it in a traceback
            failure = self._write_failure(exc, tmp)
            if failure is None:
                raise
            raise failure from exc
        finally:
            tmp.unlink(missing_ok=True)  # a second Ctrl-C mid-write had left a partial temporary file beside it

    def check_savable(self, task: Task, ctx: StepContext) -> None:
        """Refuses, before the first step, a task whose checkpoint would hold what the resume's weights-only reader
        does not make (an array, an object of its own), naming where: found at the first save, hours of training
        would have gone on to a last.pt that no --resume reads. Each process checks its own."""
        plain_state(self._state(task, ctx.epoch, 0, ctx, None, [process_state(task, ctx.device)]), self.path)

    def _state(self, task: Task, epoch: int, samples_in_epoch: int, ctx: StepContext, extra: dict | None,
               processes: list) -> dict:
        return {
            "config": task.config,
            "epoch": epoch,
            "samples_in_epoch": samples_in_epoch,
            "batch_in_epoch": samples_in_epoch // (ctx.batch_size * ctx.world),  # in this run's world size
            "step": ctx.step,
            "samples": ctx.samples,
            "world": ctx.world,
            "batch_size": ctx.batch_size,
            "modules": {k: _unwrap(m).state_dict() for k, m in task.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in task.optimizers().items()},
            "schedulers": {k: s.state_dict() for k, s in task.schedulers().items()},
            # fp16's loss scale, which an fp16 run has grown and cut by its own steps: {} for the other precisions
            "scaler": ctx.scaler.state_dict(),
            "torch_rng": processes[0]["torch_rng"],  # rank 0's, as checkpoints from before "processes" held it
            "processes": processes,
            "data": data_counts(task),
            "data_faces": self.faces(task),
            "epoch_timing": list(ctx.epoch_timing) if samples_in_epoch else [0.0, 0.0],
            "extra": extra or {},
        }

    def _write_failure(self, exc: BaseException, tmp: Path) -> BiasMirrorError | None:
        """The one-line error for a checkpoint that could not be written; the one before it is whole (the new one
        goes to ``tmp`` and replaces it only once written)."""
        sizes = [p.stat().st_size for p in (self.path, tmp) if p.exists()]
        kept = (f"the previous checkpoint {self.path.name} is intact (the steps since it are not saved): continue "
                "with --resume once there is room for it" if self.path.exists() else
                "no checkpoint was saved yet: run the command again once there is room for it")
        return write_failure(exc, self.path, "the checkpoint", kept, max(sizes, default=0))

    def load(self, task: Task, ctx: StepContext, seed: int) -> dict:
        if not self.path.exists():
            raise BiasMirrorError("--resume was given but there is no checkpoint to resume from", self.path)
        state = read_checkpoint(self.path)
        self.saved_step = state["step"]
        self._refuse_another_layout(task, state)
        for k, m in task.modules().items():
            _unwrap(m).load_state_dict(state["modules"][k])
        for k, o in task.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        self._refuse_another_schedule(task, state)
        for k, s in task.schedulers().items():
            s.load_state_dict(state["schedulers"][k])
        load_scaler(ctx.scaler, state)
        processes = state.get("processes") or [{"torch_rng": state["torch_rng"], "modules": {}}]
        if ctx.rank < len(processes):  # its own state back: resumed with as many processes, the very same run
            own = processes[ctx.rank]
            torch.set_rng_state(own["torch_rng"])
            if "cuda_rng" in own and ctx.device.type == "cuda":
                torch.cuda.set_rng_state(own["cuda_rng"], ctx.device)
            restore_process_rngs(own)
            for k, sd in own["modules"].items():
                _unwrap(task.modules()[k]).load_state_dict(sd)
        else:  # a process the checkpoint's run did not have: streams of its own, not another's copy
            own_seed = int(np.random.SeedSequence([seed, ctx.rank, state["step"]]).generate_state(1)[0])
            torch.manual_seed(own_seed)
            np.random.seed(own_seed)
            random.seed(own_seed)
        return state

    def _refuse_another_layout(self, task: Task, state: dict) -> None:
        """Refuses a checkpoint whose modules, optimisers or schedulers are not the task's by name (a trainer that
        has since gained an EMA copy, or renamed an optimiser): restored as far as the names met, it had ended in a
        bare KeyError, or gone on without the weights the checkpoint held for a module the task no longer has."""
        differences = []
        for what, made in (("modules", task.modules()), ("optimizers", task.optimizers()),
                           ("schedulers", task.schedulers())):
            saved = set(state.get(what) or {})
            missing, extra = sorted(set(made) - saved), sorted(saved - set(made))
            if missing:
                differences.append(f"no {what[:-1]} state for {', '.join(map(repr, missing))}, which the trainer has")
            if extra:
                differences.append(f"{what[:-1]} state for {', '.join(map(repr, extra))}, which the trainer has not")
        if differences:
            raise BiasMirrorError(f"this checkpoint was written by a trainer built otherwise: it holds "
                                  f"{'; and '.join(differences)}; finish this run with the version that began it, "
                                  "or start a new --out", self.path)

    def _refuse_another_schedule(self, task: Task, state: dict) -> None:
        """Refuses a checkpoint whose schedule (a one-cycle's ``total_steps``) was sized for another number of steps
        than the task's settings and data make now: restored over it, the run followed the old schedule and stopped
        near its end with PyTorch's "Tried to step 31 times" (said as an error in Bias Mirror itself), at every
        --resume after. Data changed since would make it so, and is said first, as the resume's check would say it."""
        lengths = schedule_lengths(task, state)
        if not lengths:
            return
        check_same_data(state, task, self.path, self.faces(task))
        then, now = lengths[0]
        epochs, steps = getattr(task, "schedule_epochs", None), getattr(task, "steps_per_epoch", None)
        made = f" ({epochs} epoch{'s' if epochs != 1 else ''} × {steps} steps)" if epochs and steps else ""
        raise BiasMirrorError(f"the learning-rate schedule this run began with is {then} steps long, and this "
                              f"version makes it {now}{made}: the run would not train by the schedule it began "
                              "with, and would stop near its end; finish this run with the version that began it, "
                              "or start a new --out", self.path)


# What torch's weights-only reader makes as they are: a checkpoint holding anything else is refused by every reader.
PLAIN_LEAVES = (type(None), bool, int, float, complex, str, bytes, torch.Tensor, nn.Parameter, torch.Size,
                torch.dtype, torch.device)
# The globals a checkpoint of the loop from before plain_state named where a trainer held NumPy numbers or paths
OLD_LOOP_SAVED = ("numpy.", "pathlib.")


def plain_state(value: Any, where: str | Path) -> Any:
    """``value`` (a checkpoint's state) as the weights-only reader makes it back: NumPy scalars as Python numbers
    and paths as strings, which say the same (an ``np.float64`` learning rate from a grid, a ``Path`` in a config);
    tensors and containers of nothing to change are kept as they are (a module's state_dict keeps its metadata).
    Anything else (an array, an object of the trainer's own) is refused naming where it is: saved, it had made a
    last.pt that its own --resume refused. ``where``: the checkpoint, named by the refusal."""
    return {k: _plain(v, _root(k), where) for k, v in value.items()}


def _root(key: str) -> str:
    """How a refusal names a part of the state: as the task gives it."""
    named = {"config": "task.config", "data": "task.data_counts()", "data_faces": "task.data_faces()",
             "modules": "task.modules()", "optimizers": "task.optimizers()", "schedulers": "task.schedulers()",
             "processes": "the processes' own state (process_state)"}
    return named.get(key, f"the checkpoint's {key!r}")


def _plain(value: Any, at: str, where: str | Path) -> Any:
    kind = type(value)
    if kind in PLAIN_LEAVES:
        return value
    if isinstance(value, np.generic):
        item = value.item()  # a number or string of NumPy's as Python's: the same value (not a long double)
        if not isinstance(item, np.generic):
            return _plain(item, at, where)
    if isinstance(value, PurePath):
        return str(value)
    if kind in (dict, OrderedDict, list, tuple, set):
        items = list(value.items() if isinstance(value, dict) else enumerate(value))
        made = [(_plain_key(k, at, where) if isinstance(value, dict) else k, _plain(v, f"{at}{_index(at, k)}", where))
                for k, v in items]
        if all(k is pk and v is pv for (k, v), (pk, pv) in zip(items, made)):
            return value
        if isinstance(value, dict):
            out = copy.copy(value)  # its own type and attributes (an OrderedDict state_dict's _metadata)
            out.clear()
            out.update(made)
            return out
        return kind(v for _, v in made)
    if _reader_makes(value):
        return value
    raise BiasMirrorError(f"cannot save the checkpoint: {at} is {_a(kind)}, which the checkpoint reader does not "
                          "make, so --resume would refuse it; keep only tensors, numbers, strings, lists, tuples and "
                          "dicts in it (e.g. .tolist() of an array, str() of an object)", where)


def _plain_key(key: Any, at: str, where: str | Path) -> Any:
    return key if type(key) in PLAIN_LEAVES else _plain(key, f"a key in {at}", where)


def _index(at: str, key: Any) -> str:
    # a module's, optimiser's or scheduler's state is its state_dict()
    state = ".state_dict()" if at in ("task.modules()", "task.optimizers()", "task.schedulers()") else ""
    return f"[{key!r}]{state}"


def _a(kind: type) -> str:
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _reader_makes(value: Any) -> bool:
    """Whether the weights-only reader makes ``value`` back: asked of the rare leaf of another type (a tensor of
    another class), so that no type it reads is refused here."""
    buffer = io.BytesIO()
    try:
        torch.save(value, buffer)
        buffer.seek(0)
        unpickle_bytes(buffer)
    except Exception:  # pickle's, torch's and the type's own errors: all mean "not as a checkpoint"
        return False
    return True


def schedule_lengths(task: Task, state: dict) -> list[tuple[int, int]]:
    """(the checkpoint's, the task's) total steps of each of the task's schedulers sized in steps (OneCycleLR) whose
    two differ."""
    saved = state.get("schedulers") or {}
    lengths = [((saved.get(k) or {}).get("total_steps"), getattr(s, "total_steps", None))
               for k, s in task.schedulers().items()]
    return [(then, now) for then, now in lengths if then is not None and now is not None and then != now]


def renumber_old_logs(run: Path, state: dict) -> None:
    """The logs of a run (``state``: its checkpoint) begun when they counted epochs from 0, renumbered from 1 by a
    command that goes on with it without training (a resume's loop renumbers its own): exported, or reused by
    compare, its logs had said epoch 0 where the console and its card say 1. The checkpoint keeps no mark of it, and
    renumbering again gives the same numbers."""
    if not logs_count_epochs_from_one(state):
        count_epochs_from_one(CsvLog(run / "epochs.csv"), CsvLog(run / "log.csv"), state["epoch"])


def load_scaler(scaler: torch.amp.GradScaler, state: dict) -> None:
    """The checkpoint's fp16 loss scale (and its count of steps towards growing it) back into ``scaler``: a resume
    that began again at 65536 skipped other steps than the uninterrupted run, and trained another model. Only from
    fp16 to fp16: a checkpoint of another precision, or from before the scale was kept, holds none, and the scaler
    starts afresh as it did."""
    saved = state.get("scaler")
    if saved and scaler.is_enabled():
        scaler.load_state_dict(saved)


def _unwrap(m: nn.Module) -> nn.Module:
    # Only DDP: other wrappers with a .module (AveragedModel) keep state of their own.
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


# The trainers whose checkpoints a command may be given: the command, and how a message names the run.
TRAINERS = {"classifier": "a classifier", "cyclegan": "a CycleGAN"}


def checkpoint_trainer(state: Any) -> str | None:
    """Which trainer wrote ``state`` (a TRAINERS key), or None when it is none of ours."""
    cfg = state.get("config") if isinstance(state, dict) else None
    if not isinstance(cfg, dict):
        return None
    net = cfg.get("net") if isinstance(cfg.get("net"), dict) else {}
    if "n_epochs" in cfg or "preset" in net:
        return "cyclegan"
    if "labels" in cfg or "arch" in net:
        return "classifier"
    return None


def unpickle_checkpoint(path: Path, mmap: bool = False) -> Any:
    """``torch.load`` as every reader of a checkpoint calls it: weights only. A pickle may name any function to
    call as it is read, and a run folder sent by someone else (to continue, export or compare) had run whatever its
    last.pt named. Every trainer's checkpoint, from the first version on, holds tensors and dicts, lists, strings,
    numbers and bytes only, which torch's weights-only reader makes without being told of any other type."""
    with warnings.catch_warnings():
        # said of a crafted file's pickle protocol ahead of the refusal, which names the file: one line, not three
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def unpickle_bytes(buffer: io.BytesIO) -> Any:
    """``unpickle_checkpoint`` of a checkpoint held in memory."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        return torch.load(buffer, map_location="cpu", weights_only=True)


def read_checkpoint(path: Path) -> dict:
    """``unpickle_checkpoint`` of a checkpoint file, with a truncated or corrupt file, or one holding what none of
    ours does, said in one line naming it."""
    try:
        state = unpickle_checkpoint(path)
    except Exception as exc:  # zip, pickle, EOF and OS errors, each worded differently by torch
        if isinstance(exc, OSError) and exc.filename is not None:  # the system refused the file itself
            raise  # (permissions, a folder): main.py says so, naming it
        if isinstance(exc, pickle.UnpicklingError):  # the weights-only reader's refusal, before making the object
            refused = _refused(exc)
            if refused.startswith(OLD_LOOP_SAVED):  # the loop saved these as they were, before plain_state
                raise BiasMirrorError(f"holds a NumPy value or a path ({refused}), which the checkpoint reader does "
                                      "not make; it was not loaded and nothing in it was run. The training loop "
                                      "before this version saved them so when a trainer's config, optimiser or data "
                                      "counts held one, and saves them as plain numbers and strings now: train the "
                                      "run again in a new --out", path) from None
            raise BiasMirrorError(f"holds objects that no checkpoint of this project holds ({refused}); it "
                                  "was not loaded and nothing in it was run: only a last.pt that this project's "
                                  "training wrote is read", path) from None
        raise BiasMirrorError(f"truncated or corrupt checkpoint ({type(exc).__name__}: {_words(exc)}); "
                              "restore it, or start again in a new --out", path) from exc
    if not isinstance(state, dict) or "modules" not in state or "config" not in state:
        raise BiasMirrorError("not a training checkpoint of this project (no config and weights in it)", path)
    return state


def _refused(exc: pickle.UnpicklingError) -> str:
    """What torch's weights-only reader refused, as it names it: the callable (e.g. posix.system), else its words
    (e.g. "Unsupported operand 149", of a pickle protocol it does not read)."""
    named = re.search(r"GLOBAL ([\w.]+\w)", str(exc))
    return named.group(1) if named else _words(exc)


def _words(exc: BaseException) -> str:
    # past torch's first line: it advises reading the file with weights_only=False, which runs what it names
    said = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    if said:
        return said.group(1)[:160]
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "no details")[:160]


def load_checkpoint(path: str | Path, trainer: str | None = None) -> dict:
    """A checkpoint's contents (config + weights), for export and evaluation; with ``trainer`` (a TRAINERS key),
    one that another trainer wrote is refused by name."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.exists():
        raise BiasMirrorError("no checkpoint found: a run keeps its checkpoint in its folder as last.pt, and this has "
                              "none (yet)", p)
    state = read_checkpoint(p)
    if trainer is not None:
        found = checkpoint_trainer(state)
        if found != trainer:
            what = f"{TRAINERS[found]} checkpoint" if found else "a checkpoint of no trainer of this project"
            fix = (f"; continue it with `train {found} --resume --out {p.parent}`" if found else "")
            raise BiasMirrorError(f"{what}, not {TRAINERS[trainer]}'s{fix}", p)
    return state
