"""`python main.py doctor`: what this machine can run, and why not when it cannot."""
from __future__ import annotations

import argparse
import importlib.util
import logging
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import onnxruntime as ort

from . import defaults, program_name
from .datasets.utkface import SOURCE as UTKFACE_SOURCE
from .datasets.utkface import image_names, nested_copy, nesting_note
from .defaults import DEFAULT_DATASET_DIR, MODELS_DIR, load_folder
from .errors import BiasMirrorError
from .arg_checks import non_negative_int
from .card_fields import CardNotes
from .card_markdown import card_markdown
from .gpu import cuda_builds_exist, driver_report, ort_build, report_lines
from .models import find_models, read_card
from .runtime import RuntimeConfig, cuda_device_count
from .sources import list_cameras
from .untrusted_text import terminal_safe


EXIT_STATUSES = """exit status: 0 every default model can be used (no GPU or camera is no failure: the app runs
  on the CPU and on files); 1 a default model cannot be used (named above, UNUSABLE, with why), or there is no
  default classifier, which the app, run, audit and bench need unless given one; 2 an error"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EXIT_STATUSES
    p.add_argument("--cameras", type=non_negative_int, default=3, help="probe camera indices 0..N-1 (0 to skip)")
    p.add_argument("--cards", action="store_true",
                   help="print every default model's card as Markdown and exit (status 1 if a file is unusable)")
    p.add_argument("--no-gpu-probe", action="store_true",
                   help="do not try to create CUDA/TensorRT sessions on a tiny model (only list the libraries)")


def card_section(path: Path) -> str:
    """A model's card as Markdown. A field nested in training or metrics of another type than ours (written by
    hand or by another tool) is a warning under it (``card_markdown``), not a reason to call the model UNUSABLE:
    every command runs it, as plain doctor says. Where a record of another shape still cannot be shown, its
    summary is, with the warning (it had stopped the listing with a traceback). One section is one reading of
    the card (``CardNotes``): its warnings, and no other card's, are listed under it."""
    card = read_card(path)
    size_mb = path.stat().st_size / 1e6
    notes = CardNotes(path)
    try:
        return card_markdown(card, path.name, size_mb, notes)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError) as exc:
        return "\n".join([f"## {card.name} (`{path.name}`, {size_mb:.1f} MB)", "", card.summary(notes), "",
                          f"- WARNING: its card's training or metrics record could not be shown ({type(exc).__name__}: "
                          f"{exc}); the model runs all the same: re-export it or fix the card to see it here", ""])


@dataclass
class FolderVerdict:
    """The default models as the app, run, audit and bench load them (``load_folder``): doctor had read their cards
    alone and passed a folder of a generator and a smile classifier, which every command then refused with "no
    classifier found"."""

    problems: dict[str, str]  # path → why the commands do not use it (a generator: a note, not a failure)
    classifiers: int  # the gender classifiers they load

    def unusable(self, path: Path) -> str | None:
        """Why the commands cannot use the model at ``path``; None where they use it, or leave it aside by design
        (a generator, which they do not run)."""
        why = self.problems.get(str(path))
        return None if why is None or _is_generator(path) else why


def folder_verdict(folder: Path) -> FolderVerdict:
    """``folder`` loaded as the commands load it, on the CPU (where a model runs on a GPU is the GPU path's
    question, above), its warnings kept for doctor to say under each file rather than logged again."""
    with _unlogged(defaults.log):
        seen = load_folder(folder, RuntimeConfig(provider="cpu"))
    loaded = {str(model.path) for model in [*seen.classifiers, *seen.filters]}
    problems: dict[str, str] = {}
    for path in find_models(folder):
        if str(path) not in loaded:  # each error names its file first (BiasMirrorError's "path: message")
            problems[str(path)] = next((e for e in seen.errors if e.startswith(f"{path}: ")),
                                       f"{path}: not loaded by the app, run, audit or bench")
    return FolderVerdict(problems, len(seen.classifiers))


def model_line(path: Path, verdict: FolderVerdict) -> tuple[str, bool]:
    """Plain doctor's lines for one default model, and whether the commands can use it."""
    try:
        card = read_card(path)
    except BiasMirrorError as exc:
        return f"  {path.name}: UNUSABLE — {exc}", False
    why = verdict.unusable(path)
    if why:
        return f"  {path.name}: UNUSABLE — {why}", False
    line = f"  {path.name}: {card.summary(CardNotes(path))} [{path.stat().st_size / 1e6:.1f} MB]"
    note = verdict.problems.get(str(path))  # a generator: listed, and said to be left aside
    return (f"{line}\n    note: {note}" if note else line), True


def _is_generator(path: Path) -> bool:
    try:
        return read_card(path).kind == "generator"
    except BiasMirrorError:
        return False


@contextmanager
def _unlogged(logger: logging.Logger) -> Iterator[None]:
    was, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = was


def cpu_only_advice(gpu_build: bool, platform: str | None = None) -> str:
    """What the GPU path still needs where no GPU is visible: onnxruntime-gpu was advised where it was installed, and
    on macOS, where it cannot be (``cuda_builds_exist``)."""
    if not cuda_builds_exist(platform):
        return "inference runs on the CPU, as on every Mac: there is nothing to install for a GPU path."
    needs = "an NVIDIA GPU and its driver" + ("" if gpu_build else ", onnxruntime-gpu")
    return (f"inference runs on the CPU. For the GPU path: {needs}, and the libraries listed above as missing (Bias "
            "Mirror loads them from the nvidia-* pip packages on sys.path, like onnxruntime.preload_dlls())"
            + (f"; onnxruntime-gpu {ort.__version__} is installed." if gpu_build else "."))


def program_of(args: argparse.Namespace) -> str:
    """How the user started Bias Mirror (main.py sets it: `python main.py`, or `bias-mirror` once pip installed it),
    for the commands doctor suggests: `python main.py …` named a file an installed copy does not have."""
    return getattr(args, "_program", None) or program_name.program()


def training_hint(program: str, torch_installed: bool | None = None) -> str:
    """Where doctor points for training; a plain install has no PyTorch (pyproject's extra 'train'), where `doctor
    train` would stop on the missing module."""
    if torch_installed is None:
        try:  # found, not imported: torch takes seconds to import
            torch_installed = importlib.util.find_spec("torch") is not None
        except (ImportError, ValueError):  # a torch that cannot be found or loaded is as good as none for training
            torch_installed = False
    if torch_installed:
        return f"for training (PyTorch, GPUs, precision, --compile modes): {program} doctor train"
    return (f"for training: PyTorch is not installed here; it comes with the optional extra 'train' "
            f'({sys.executable} -m pip install "bias-mirror[train]"), then {program} doctor train')


def dataset_line(folder: Path) -> str:
    """Where the shared UTKFace copy is and how many images it holds, counted from the folder's listing (no image
    decoded). Its absence is no failure: the app, run and audit need no dataset; the tests, the README's training
    examples and `bench detect`/`bench train` without --data read it."""
    said = "UTKFace (the tests' faces; bench detect and bench train read it where --data is not given)"
    root = folder / "UTKFace" if (folder / "UTKFace").is_dir() else folder
    if not root.is_dir():
        return (f"{said}: not found at {folder}; the app, run and audit need no dataset (to get it: {UTKFACE_SOURCE}, "
                f"unpacked in {folder})")
    try:
        count = sum(1 for _ in image_names(root))
        inner = None if count else nested_copy(root)
    except OSError as exc:  # a folder this user cannot list: said, not a traceback
        return f"{said}: {root} cannot be listed ({exc.strerror or exc})"
    if inner is not None:
        return f"{said}: {root} holds no image, {nesting_note(root, inner)}"
    return f"{said}: {root}, {count} image(s)"


def main(args: argparse.Namespace) -> int:
    program = program_of(args)
    if args.cards:
        print(f"# Default models\n\nGenerated by `{program} doctor --cards` from the cards inside the ONNX files.\n")
        unusable = 0
        verdict = folder_verdict(MODELS_DIR)
        for path in find_models(MODELS_DIR):
            # a card is anyone's text: its escape sequences had reached the terminal (docs/models.md, written from
            # this, is unchanged: the shipped cards hold none)
            try:  # one broken file stopped the listing before any card, where plain doctor names it and goes on
                print(terminal_safe(card_section(path)))
                why = verdict.unusable(path)
                if why:
                    unusable += 1
                    print(terminal_safe(f"UNUSABLE — {why}\n"))
            except BiasMirrorError as exc:
                unusable += 1
                print(terminal_safe(f"## {path.name}\n\nUNUSABLE — {exc}\n"))
        return _status(unusable, verdict.classifiers, program)
    print(f"Python {platform.python_version()} on {platform.platform()}")
    print(f"ONNX Runtime {ort.__version__}; providers in this build: {', '.join(ort.get_available_providers())}")
    print(f"OpenCV {cv2.__version__}")
    gpus = cuda_device_count()
    print(f"CUDA devices visible to the driver: {gpus}")
    print("GPU path (what this onnxruntime's CUDA/TensorRT providers load, read from the provider libraries):")
    for line in report_lines(with_probe=not args.no_gpu_probe):
        print(line)
    build = ort_build()
    # a libcuda the loader finds may still be one that cannot run this build (too old, or a stub): said first, as
    # the libraries above all read "found" and the advice had listed nothing to do
    problem = driver_report(build)[1] if build.cuda_version else None
    if problem:
        print("  → " + problem)
    if gpus == 0:
        print("  → " + cpu_only_advice("CUDAExecutionProvider" in ort.get_available_providers()))
    print(f"\nmodels in {MODELS_DIR}:")
    paths = find_models(MODELS_DIR)
    if not paths:
        print("  (none)")
    unusable = 0  # a setup check built on doctor had passed with a default model it named unusable
    verdict = folder_verdict(MODELS_DIR)
    for path in paths:
        line, usable = model_line(path, verdict)
        unusable += not usable
        print(terminal_safe(line))  # a card's name and summary are anyone's text, as are a file's name and its errors
    if args.cameras:
        cams = list_cameras(args.cameras)
        print(f"\ncameras OpenCV can open: {', '.join(map(str, cams)) if cams else 'none'}")
    print(terminal_safe(f"\n{dataset_line(DEFAULT_DATASET_DIR)}"))  # a folder's name is anyone's text
    print(f"\n{training_hint(program)}")
    if unusable:
        print(f"\n{unusable} default model(s) cannot be used (UNUSABLE above)", file=sys.stderr)
    return _status(unusable, verdict.classifiers, program)


def _status(unusable: int, classifiers: int, program: str = "python main.py") -> int:
    """doctor's exit status (EXIT_STATUSES): a folder of no usable classifier had passed, and `bench` then stopped
    with "no classifier found"."""
    if not classifiers:
        print(f"\nno usable default classifier in {MODELS_DIR}: the app, run, audit and bench need one, and stop "
              f"with \"no classifier found\" (give --classifier PATH, or train one: {program} train classifier "
              "--help)", file=sys.stderr)
    return 1 if unusable or not classifiers else 0
