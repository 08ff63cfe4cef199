"""Arguments shared by every command that runs the pipeline (run, bench, audit, app)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from .arg_checks import refuse_empty, thread_count
from .defaults import load_selection
from .errors import BiasMirrorError
from .faces import DEFAULT_CASCADE, HAAR_CASCADES, HAAR_RUNTIMES, FaceDetector, make_detector
from .models import Classifier, Filter
from .pipeline import FramePipeline, PipelineConfig
from .program_name import program
from .runtime import RuntimeConfig
from .user_dirs import default_cache_dir


# one help for the app, audit and bench (run says its own), whose defaults differ: the app draws the map, and on a
# fixed class it had drawn next to none on faces called the other
CAM_CLASS_HELP = (f"class whose CAM is kept: a label, or {PipelineConfig.PREDICTED} (each face's predicted class, by "
                  "classifier: where it looked for its answer, the map its CAM focus is measured on); default in the "
                  f"app: the one last chosen there, else {PipelineConfig.PREDICTED}; in audit and bench: "
                  f"{PipelineConfig.cam_class}")


def add_model_arguments(p: argparse.ArgumentParser, haar_both: bool = False) -> None:
    p.add_argument("--classifier", action="append", help="ONNX classifier (repeat; default: all in resources/models)")
    p.add_argument("--filter", help="ONNX filter (default: the first in resources/models)")
    p.add_argument("--no-filter", action="store_true", help="run without a filter")
    p.add_argument("--provider", default="auto", choices=["auto", "tensorrt", "cuda", "cpu"],
                   help="ONNX Runtime provider preference (auto: TensorRT → CUDA → CPU)")
    p.add_argument("--threads", type=thread_count, help="CPU threads per model (default: all cores)")
    add_detector_arguments(p, haar_both)
    p.add_argument("--cam-class", help=CAM_CLASS_HELP)
    p.add_argument("--condition", help="for a conditional filter (one with a condition input, e.g. a target gender): "
                                       "which of its conditions to apply (default: its first)")


def add_detector_arguments(p: argparse.ArgumentParser, haar_both: bool = False) -> None:
    """How the detector finds faces (``DETECTOR_OPTIONS``)."""
    p.add_argument("--yunet", help="path to an OpenCV YuNet face detector .onnx (default: Haar cascade)")
    p.add_argument("--haar-cascade", default=DEFAULT_CASCADE, choices=list(HAAR_CASCADES),
                   help=f"which of OpenCV's frontal-face Haar cascades finds faces (default {DEFAULT_CASCADE}: it missed "
                        "fewer faces in every UTKFace race group than 'default', in less time; "
                        f"`{program()} bench detect`)")
    p.add_argument("--haar-runtime", default="opencv", choices=[*HAAR_RUNTIMES, *(["both"] if haar_both else [])],
                   help="what runs the Haar cascade: opencv (default; fastest on a CPU) or onnxruntime, the same "
                        "cascade with the same faces as an ONNX graph on the models' provider, meant for a GPU"
                        + ("; both: a row each, in the same run" if haar_both else ""))


DETECTOR_OPTIONS = ("yunet", "haar_cascade", "haar_runtime")  # add_detector_arguments' dests
# the dataset kinds whose images are aligned face crops: the whole image is the face unless --detect is given
ALIGNED_KINDS = ("utkface", "celeba", "fairface")


def add_face_choice_arguments(p: argparse.ArgumentParser, detect_help: str = "") -> None:
    """--detect / --aligned: whether a dataset's images are searched for faces or each taken whole as one."""
    det = p.add_mutually_exclusive_group()
    det.add_argument("--detect", dest="detect", action="store_true", default=None,
                     help=f"find faces with the detector (default for folder datasets){detect_help}")
    det.add_argument("--aligned", dest="detect", action="store_false",
                     help=f"the whole image is the face (default for {'/'.join(ALIGNED_KINDS)}: aligned crops)")


def detects_faces(args: argparse.Namespace, kind: str) -> bool:
    """Whether the detector finds a ``kind`` dataset's faces: --detect or --aligned, else by its kind (a folder holds
    photos). A detector option given with aligned faces is refused: it would change nothing, without a word."""
    detect = args.detect if args.detect is not None else kind not in ALIGNED_KINDS
    finding = sorted(set(getattr(args, "_given", ()) or ()) & set(DETECTOR_OPTIONS))
    if finding and not detect:
        raise BiasMirrorError(f"{', '.join('--' + o.replace('_', '-') for o in finding)} choose(s) how faces are found, "
                              f"and {aligned_why(args, kind)} take the whole image as the face: add --detect, or "
                              "leave it out")
    return detect


def aligned_why(args: argparse.Namespace, kind: str) -> str:
    """Why the whole image is the face, in words for a refusal."""
    return "--aligned" if args.detect is False else f"a {kind} dataset's aligned faces (the default)"


def add_dataset_cache_argument(p: argparse.ArgumentParser, more: str = "", resumable: bool = False) -> None:
    """--no-dataset-cache: the copy detection (``inference.datasets.copies``) keeps nothing of the dataset in the
    user's cache folder, for users who must leave no derived data of a dataset on disk. The folder is found when
    the parser is made, as --cache's is, so that the help names the one used. A ``resumable`` command carries it
    into a --resume, so it also takes --with-dataset-cache: without it, a run begun keeping nothing could never
    keep them again. (Not --dataset-cache: "--data", an abbreviation of --dataset, would become ambiguous.)"""
    where = default_cache_dir()
    choice = p.add_mutually_exclusive_group() if resumable else p
    choice.add_argument("--no-dataset-cache", action="store_true",
                        help=f"keep no file digests or 16×16 grey thumbnails of the dataset's images in "
                             f"{where / 'digests'} and {where / 'thumbnails'} (kept by default, so that copies inside "
                             f"a dataset are found again at a stat per file): they are computed again on every "
                             f"run{more}")
    if resumable:
        choice.add_argument("--with-dataset-cache", dest="no_dataset_cache", action="store_false", default=False,
                            help="keep the digests and thumbnails again, on --resume of a run begun with "
                                 "--no-dataset-cache")


def dataset_cache_dir(args: argparse.Namespace) -> Path | None:
    """Where the copy detection keeps what it computes of a dataset's images: the user's cache folder, or nowhere
    (None) with --no-dataset-cache."""
    return None if args.no_dataset_cache else default_cache_dir()


def checked_cam_class(args: argparse.Namespace, classifiers: Sequence[Classifier]) -> str:
    """``--cam-class`` once the classifiers are loaded (the default when not given). A label a classifier lacks is
    refused: the pipeline would quietly show that classifier's first class instead. ``PipelineConfig.PREDICTED`` is
    taken whatever the labels: every classifier predicts a class."""
    if args.cam_class is None:
        return PipelineConfig.cam_class
    if args.cam_class == PipelineConfig.PREDICTED:
        return args.cam_class
    lacking: dict[tuple[str, ...], list[str]] = {}  # labels → the files that have them, to list each set once
    for c in classifiers:
        if args.cam_class not in c.labels:
            lacking.setdefault(tuple(c.labels), []).append(Path(c.path).name)
    if lacking:
        named = "; ".join(f"{', '.join(files)} (labels: {', '.join(labels)})" for labels, files in lacking.items())
        raise BiasMirrorError(f"--cam-class {args.cam_class!r} is not a label of {named} (or give "
                              f"{PipelineConfig.PREDICTED}: each face's predicted class)")
    return args.cam_class


def checked_condition(args: argparse.Namespace, filt: Filter | None) -> str | None:
    """``--condition`` once the filter is loaded: one of its conditions, or None (its first)."""
    condition = getattr(args, "condition", None)
    if condition is not None and filt is None:
        raise BiasMirrorError(f"--condition {condition!r} chooses a filter's condition, and this run has no filter")
    return None if filt is None else filt.check_condition(condition)


def runtime_from_args(args: argparse.Namespace) -> RuntimeConfig:
    return RuntimeConfig(provider=args.provider, threads=args.threads)


YUNET_WANTED = "a YuNet model file (face_detection_yunet_*.onnx), or leave --yunet out"


def detector_from_args(args: argparse.Namespace, runtime: RuntimeConfig | None = None) -> FaceDetector:
    refuse_empty(args.yunet, "--yunet", YUNET_WANTED)
    return make_detector(args.yunet, args.haar_cascade, args.haar_runtime, runtime or runtime_from_args(args))


def pipeline_from_args(args: argparse.Namespace, detect: bool = True) -> FramePipeline:
    runtime = runtime_from_args(args)
    classifiers, filt = load_selection(args.classifier, args.filter, args.no_filter, runtime)
    return FramePipeline(classifiers, filt, detector_from_args(args) if detect else None,
                         PipelineConfig(cam_class=checked_cam_class(args, classifiers),
                                        filter_condition=checked_condition(args, filt),
                                        **({"max_faces": args.max_faces} if getattr(args, "max_faces", None) else {})))
