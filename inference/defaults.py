"""Where the default models live, and loading a set of them for the pipeline."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from .arg_checks import refuse_empty
from .datasets import DatasetCache, DatasetRead, open_dataset
from .datasets.utkface import SOURCE as UTKFACE_SOURCE
from .errors import BiasMirrorError
from .models import Classifier, Filter, Generator, find_models, load_model, name_uniquely
from .runtime import RuntimeConfig

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO / "resources" / "models"
# The shared UTKFace copy beside the repository, found from the repository's path: "../shared/…" read from the
# current folder had failed `bench detect` and `bench train` run from anywhere else. They and `train adopt` take it.
DEFAULT_DATASET_DIR = REPO.parent / "shared" / "datasets" / "utkface"
DEFAULT_DATASET = f"utkface:{DEFAULT_DATASET_DIR}"
DEFAULT_DATASET_SAID = f"utkface:../shared/datasets/utkface relative to the repository, here {DEFAULT_DATASET}"


def open_data_or_default(spec: str | None, cache: DatasetCache, option: str = "--data") -> DatasetRead:
    """``open_dataset`` of ``spec``, or of the shared UTKFace copy where ``option`` was not given (None). That copy's
    path is built from where Bias Mirror is installed, not typed by the user, so a failure to read it says it was the
    default and how to give data (``default_data_refused``): `bench detect` had said "/x/shared/datasets/utkface: the
    UTKFace folder does not exist", and nothing of --data."""
    if spec is not None:
        return open_dataset(spec, cache)
    default = DEFAULT_DATASET_DIR
    try:
        return open_dataset(f"utkface:{default}", cache)
    except BiasMirrorError as exc:
        raise default_data_refused(exc, option, default) from exc


def default_data_refused(exc: BiasMirrorError, option: str = "--data", default: Path | None = None) -> BiasMirrorError:
    """The error to raise where the shared UTKFace copy at ``default`` (``DEFAULT_DATASET_DIR`` where None), read
    because ``option`` was not given, failed with ``exc``: one wording for every command that falls back on it.
    `train adopt` (--dataset), which reads its faces its own way, had worded it alone: "cannot be read" of a copy
    that is not there, and no word of where UTKFace comes from."""
    default = DEFAULT_DATASET_DIR if default is None else default
    state = f"cannot be read ({exc.message})" if default.exists() else "does not exist"
    return BiasMirrorError(f"{option} was not given, and its default, the shared UTKFace copy at "
                           f"{exc.path or default}, {state}; give {option} KIND:PATH (e.g. {option} utkface:DIR "
                           f"of UTKFace from {UTKFACE_SOURCE}, or {option} folder:DIR)")


@dataclass
class ModelSet:
    classifiers: list[Classifier] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files that could not be loaded, with why


def load_folder(folder: Path = MODELS_DIR, runtime: RuntimeConfig = RuntimeConfig()) -> ModelSet:
    """Every classifier and filter in ``folder``; a bad file is reported, not fatal, and so is a generator: it loads
    (its card is good) but nothing here runs one, and a user who dropped it in the folder would otherwise see no trace
    of it."""
    found = ModelSet()
    for path in find_models(folder):
        try:
            model = load_model(path, runtime=runtime)
        except BiasMirrorError as exc:
            found.errors.append(str(exc))
            log.warning("%s", exc)
            continue
        if isinstance(model, Classifier):
            try:  # the app and `run` show P(female): a classifier of other labels left empty columns and plots
                model.require_gender("a classifier among the defaults")
            except BiasMirrorError as exc:
                found.errors.append(str(exc))
                log.warning("%s", exc)
                continue
            found.classifiers.append(model)
        elif isinstance(model, Filter):
            found.filters.append(model)
        elif isinstance(model, Generator):
            note = (f"{path}: a generator (latent → face), not used: the app, run and audit run classifiers and "
                    "filters")
            found.errors.append(note)
            log.warning("%s", note)
    name_uniquely(found.classifiers)
    name_uniquely(found.filters)
    return found


def load_classifiers(paths: list[str], runtime: RuntimeConfig, role: str = "--classifier") -> list[Classifier]:
    """The classifiers given on a command line (with option ``role``), each under a name of its own. Every command
    measures P(female) with them, so a classifier of other labels is refused (`run` wrote empty columns for it)."""
    for path in paths:
        refuse_empty(path, role, "a classifier's .onnx file")
    loaded: list[Classifier] = [load_model(p, "classifier", runtime) for p in paths]  # type: ignore[misc]
    for model in loaded:
        model.require_gender(role)
    return list(name_uniquely(loaded))


def check_filter_choice(filter_path: str | None, no_filter: bool) -> None:
    """--filter and --no-filter; an empty --filter is refused, where a truth test had run the default filter
    (`audit --filter ''` passed the ship gate on the shipped filter's audit)."""
    refuse_empty(filter_path, "--filter", "a filter's .onnx file, or leave --filter out for the default")
    if filter_path is not None and no_filter:
        raise BiasMirrorError("--filter and --no-filter contradict each other; give one")


def load_selection(classifiers: list[str] | None, filter_path: str | None, no_filter: bool,
                   runtime: RuntimeConfig) -> tuple[list[Classifier], Filter | None]:
    """The models a command asked for, or the defaults from resources/models."""
    check_filter_choice(filter_path, no_filter)
    if classifiers:
        cls = load_classifiers(classifiers, runtime)
        defaults = None
    else:
        defaults = load_folder(MODELS_DIR, runtime)
        cls = defaults.classifiers
        if not cls:
            raise BiasMirrorError("no classifier found; give --classifier PATH", MODELS_DIR)
    filt = None
    if filter_path:
        filt = load_model(filter_path, "filter", runtime)
    elif not no_filter:
        defaults = defaults or load_folder(MODELS_DIR, runtime)
        filt = defaults.filters[0] if defaults.filters else None
    return cls, filt  # type: ignore[return-value]
