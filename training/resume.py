"""Resuming a run: the settings it keeps, the ones a resume may change, and how each resume is recorded.

A resumed run is the run its checkpoint started: its data, network, schedule and seed are the checkpoint's.
What a resume may change is how it runs and what it reports — ``--max-steps``, ``--threads``, ``--workers``,
``--device``, ``--precision``, ``--channels-last``, ``--compile``, ``--cache``, ``--name``, the export options and
progress options such as the CycleGAN's ``--sample-every`` (each trainer lists its own in ``MAY_CHANGE_ON_RESUME``).
Of those, ``--threads``, ``--cache`` and the export options are kept in the checkpoint and carried on by a plain
``--resume`` unless given again (``carry_outputs``): the thread count changes how a CPU step's sums round, and a
``--threads 1`` run resumed on PyTorch's default count had not been the run an uninterrupted one makes.
Any other setting given on the command line of a resume must say what the checkpoint says; one that does not is
refused by name with the checkpoint's value, instead of being silently replaced by it. The data is checked too,
by the record of its faces the checkpoint keeps (``same_data.check_same_data``: each face's path, split and labels; the
counts for checkpoints from before the record): the same settings on a dataset changed since are refused. That record
keeps each face's path below the dataset's root, so a dataset moved is the same data: a --dataset of the checkpoint's
kind at another place is accepted where it holds those faces (``moved_dataset``), and the move is recorded
(``moved_to``); so are a CycleGAN's --domain-a and --domain-b folders (``DATA_PLACES``).
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from inference.errors import BiasMirrorError
from inference.program_name import program

# What every trainer lets a resume change (add_run_arguments' options but --seed): how the run is executed.
RUN_OPTIONS_THAT_MAY_CHANGE = frozenset({"resume", "out", "max_steps", "threads", "workers", "device", "precision",
                                         "channels_last", "compile", "cache", "name"})


@dataclass(frozen=True)
class Where:
    """A path, or a dataset's KIND:PATH, as written; equal to another that names the same place."""

    text: str | None

    def _parts(self) -> tuple[str, str] | None:
        """(KIND, PATH) as written; the kind "" for a bare path."""
        return None if self.text is None else kind_and_path(self.text)

    def _key(self) -> tuple[str, str] | None:
        parts = self._parts()
        return None if parts is None else (parts[0], str(Path(parts[1]).expanduser().resolve()))

    @property
    def kind(self) -> str | None:
        parts = self._parts()
        return None if parts is None else parts[0]

    @property
    def path(self) -> str | None:
        parts = self._parts()
        return None if parts is None else str(Path(parts[1]).expanduser())

    def absolute(self) -> str | None:
        """As written, its path made absolute against this folder (symbolic links kept as named): what a config
        keeps, since a resume anchors a relative one against the folder the run started in, not this one."""
        if self.text is None:
            return None
        kind, path = self.kind, os.path.abspath(self.path)
        return f"{kind}:{path}" if kind else path

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Where) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return "none" if self.text is None else self.text


def kind_and_path(text: str) -> tuple[str, str]:
    """``inference.datasets.kind_and_path``, imported when first asked: the readers bring OpenCV, which a resume
    refused sooner never needs. A Windows drive had been read as a kind and anchored on the run's drive (D:C:\\)."""
    from inference.datasets import kind_and_path as split

    return split(text)


# A setting as a run's config holds it: a config key, (key, value for checkpoints from before the key existed),
# or a function of the whole config giving the value as the option is written.
Reader = Union[str, tuple[str, Any], Callable[[Mapping[str, Any]], Any]]


def _read(reader: Reader, cfg: Mapping[str, Any]) -> Any:
    if callable(reader):
        return reader(cfg)
    if isinstance(reader, tuple):
        return cfg.get(reader[0], reader[1])
    return cfg.get(reader)


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def cli_text(value: Any) -> str:
    """A setting's value as it would be written on the command line."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(cli_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return ",".join(f"{k}:{cli_text(v)}" for k, v in value.items()) or "none"
    return str(value)


def started_here() -> dict[str, str]:
    """The folder a run starts in, kept in its config: the paths it was given may be relative to it."""
    return {"started_in": str(Path.cwd())}


def anchored(saved: dict, keys: tuple[str, ...]) -> dict:
    """``saved`` with the paths under ``keys`` (a PATH, KIND:PATH, or a list of them) made absolute against the
    folder the run started in, so that it resumes from any folder, and each as it was typed kept under "typed"
    (``as_typed`` reads it: a card names the data as its command gave it). Checkpoints from before the folder was
    kept, as is."""
    base = saved.get("started_in")
    if base is None:
        return saved

    def fix(text):
        if isinstance(text, list):
            return [fix(t) for t in text]
        if not isinstance(text, str):
            return text
        kind, path = kind_and_path(text)
        path = str(Path(base, Path(path).expanduser()))  # an absolute path stays as it is
        return f"{kind}:{path}" if kind else path

    typed = {k: as_typed(saved, k) for k in keys if saved.get(k)}
    return {**saved, **{k: fix(saved[k]) for k in keys if saved.get(k)}, "typed": {**(saved.get("typed") or {}), **typed}}


def as_typed(saved: Mapping[str, Any], key: str) -> Any:
    """The path option ``key`` of a run's config as the command that started the run gave it (relative to the
    folder it started in, or absolute, as it was typed), where ``anchored`` has made it absolute to read it: a card
    written on a resume or --export-only had recorded this machine's absolute path. Configs from before "typed"
    was kept that a resume has anchored since: the option as the recorded command gives it, else the value."""
    kept = (saved.get("typed") or {}).get(key)
    if kept is not None:
        return kept
    value = saved.get(key)
    if saved.get("resumes") and isinstance(value, str):  # anchored by a resume that kept no "typed"
        return option_in_command(saved.get("command"), key) or value
    return value


def option_in_command(command: object, key: str) -> str | None:
    """The value the recorded command line ``command`` gives option ``key`` (its last, as argparse takes), or
    None where it gives none or cannot be read."""
    if not isinstance(command, str):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    name, found = option_name(key), None
    for i, word in enumerate(words):
        if word == name and i + 1 < len(words):
            found = words[i + 1]
        elif word.startswith(name + "="):
            found = word[len(name) + 1:]
    return found


def with_saved_defaults(args: argparse.Namespace, saved_as_args: Mapping[str, Any]) -> argparse.Namespace:
    """``args`` with every option not given on the command line set to the checkpoint's value: what a setting
    typed again means can depend on others left out (--distill-weight on --distill-from, --compose target on
    --target), and those are the checkpoint's on a resume, not the defaults."""
    given = given_options(args)
    return argparse.Namespace(**{**vars(args), **{k: v for k, v in saved_as_args.items() if k not in given}})


def given_options(args: argparse.Namespace) -> set[str]:
    """The options (argparse dests) the command line gave explicitly; main.py records them. Empty for a
    namespace made in code, which then changes nothing on resume without being checked."""
    return set(getattr(args, "_given", ()) or ())


def option_name(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def changed_settings(args: argparse.Namespace, settings: Mapping[str, Reader], requested: Mapping[str, Any],
                     saved: Mapping[str, Any], only: set[str] | None = None) -> list[str]:
    """'--size 64 differs from the checkpoint's 32' for each setting given on the command line (or each of
    ``only``, given or not) whose value, read from the ``requested`` config the command line makes, is not the
    ``saved`` config's."""
    given = given_options(args)
    out = []
    for dest, reader in settings.items():
        if dest not in (given if only is None else only):
            continue
        want, have = _read(reader, requested), _read(reader, saved)
        if _norm(want) != _norm(have):
            default = "" if dest in given else " (the default)"
            out.append(f"{option_name(dest)} {cli_text(want)}{default} differs from the checkpoint's {cli_text(have)}")
    return out


NEW_OUT = "start a new --out to change them"  # a refusal's advice, unless its caller gives its own


def refuse_changed_settings(args: argparse.Namespace, settings: Mapping[str, Reader], requested: Mapping[str, Any],
                            saved: Mapping[str, Any], checkpoint: Path, more: list[str] | None = None,
                            only: set[str] | None = None, keeps: str = "a resumed run keeps its settings",
                            advice: str = NEW_OUT) -> None:
    """The one check both trainers (and compare, before it reuses a variant) make before continuing or using a
    checkpoint: every setting given on the command line is the checkpoint's, or the command is refused naming
    each that is not."""
    problems = changed_settings(args, settings, requested, saved, only) + list(more or [])
    if problems:
        raise BiasMirrorError("; ".join(problems) + f": {keeps}; {advice}", checkpoint)


# The options that name where a run's faces are, as a message calls each: a resume may give any of them another place.
DATA_PLACES = {"dataset": "the dataset", "domain_a": "domain A's folder", "domain_b": "domain B's folder"}


def moved_note(keys: Sequence[str]) -> str:
    """Added to a refusal that names data at another place (the options ``keys``) among other settings: the places
    alone may change."""
    options = " and ".join(option_name(k) for k in keys)
    places = "another place" if len(keys) == 1 else "other places"
    return f"; {options} alone may name {places}, where the run goes on if the faces there are the ones it began with"


def moved_dataset(args: argparse.Namespace, requested: Mapping[str, Any], saved: Mapping[str, Any],
                  key: str = "dataset") -> str | None:
    """The dataset the command line gives (``requested``'s ``key``), made absolute, where it is the checkpoint's
    (``saved``'s) kind at another place; else None. A resume goes there once the faces it reads are found to be the
    checkpoint's (``same_data.check_same_data``, by the record of them the checkpoint keeps, each below the
    dataset's root): compared as places, a dataset folder moved had been refused as a changed setting, and the run
    could not be resumed at all."""
    if key not in given_options(args):
        return None
    now, then = Where(requested.get(key)), Where(saved.get(key))
    if now.text is None or then.text is None or now == then or now.kind != then.kind:
        return None
    return now.absolute()


def moved_to(saved: Mapping[str, Any], key: str, place: str, step: int) -> dict:
    """``saved`` reading its ``key`` at ``place`` from now on, and the move kept in "dataset_moves" (from, to, and
    the ``step`` the run had reached) for the card: its command names the first place."""
    move = {"option": option_name(key), "from": saved.get(key), "to": place, "at_step": step}
    return {**saved, key: place, "typed": {**(saved.get("typed") or {}), key: place},
            "dataset_moves": [*saved.get("dataset_moves", []), move]}


def checked_places(args: argparse.Namespace, settings: Mapping[str, Reader], requested: Mapping[str, Any],
                   saved: dict, checkpoint: Path, step: int, more: list[str] | None = None, **how) -> dict:
    """``saved``, after refusing any setting given on the command line that differs from it, or ``more`` problems
    (``refuse_changed_settings``; ``how``: its only=, keeps= and advice=). Data given at another place of the
    checkpoint's kind (``DATA_PLACES``: a dataset, a CycleGAN's domain folders), with every other setting the
    checkpoint's, is no changed setting: the config returned reads it there, each move recorded (``moved_to``, at
    ``step``), and the faces there must be the checkpoint's (``same_data.check_same_data``, by its record of them)."""
    places = {key: place for key in DATA_PLACES if (place := moved_dataset(args, requested, saved, key)) is not None}
    others = {k: v for k, v in settings.items() if k not in places}
    if places and not more and not changed_settings(args, others, requested, saved, how.get("only")):
        for key, place in places.items():
            saved = moved_to(saved, key, place, step)
        return saved
    if places:  # the places alone may change: said beside the settings refused
        how["advice"] = how.get("advice", NEW_OUT) + moved_note(tuple(places))
    refuse_changed_settings(args, settings, requested, saved, checkpoint, more, **how)
    return saved


def refuse_a_dataset_gone(args: argparse.Namespace, run_cfg: Mapping[str, Any], keys: Sequence[str] = ("dataset",),
                          resume: str = "--resume") -> None:
    """A plain ``resume`` (--resume, or a CycleGAN's --export-only) of a run whose data (``run_cfg``'s ``keys``, the
    checkpoint's: its dataset, or a CycleGAN's domain folders) is no longer where the run began: refused naming the
    folder(s) not given again, with the way on: the new place(s) given with the option(s). The reader's "folder does
    not exist" had been all it said, and giving the new place was refused as a changed setting. A folder still
    there that no longer holds the data (``no_longer_held``: its contents moved into a subfolder, a mount point with
    nothing mounted) is refused alike: the reader's "no image has a gender label" had been said without the way on."""
    given = given_options(args)
    recorded = RecordedPaths(getattr(args, "out", None))
    gone = []
    for key, where in ((k, Where(run_cfg.get(k))) for k in keys):
        if key in given or where.text is None:
            continue
        why = "" if not Path(where.path).exists() else no_longer_held(where, recorded)
        if why is not None:
            gone.append((key, where, why))
    if not gone:
        return
    way = " ".join(f"{option_name(key)} {where.kind + ':' if where.kind else ''}NEW_PLACE" for key, where, _ in gone)
    if len(gone) == 1:
        why = f" ({gone[0][2]})" if gone[0][2] else ""
        said = f"{DATA_PLACES.get(gone[0][0], 'the data')} this run began on is no longer there{why}: if it was " \
               "moved, give its new place"
    else:
        what = " and ".join(f"{DATA_PLACES.get(key, 'the data')} ({where.path}{f': {why}' if why else ''})"
                            for key, where, why in gone)
        said = f"{what} this run began on are no longer there: if they were moved, give their new places"
    raise BiasMirrorError(f"{said}, as in {resume} {way}; the run goes on there if the faces are the ones it began "
                          "with (a symbolic link at the old place works too)", gone[0][1].path)


class RecordedPaths:
    """The paths (each below its data's root) of the faces the checkpoint in the run folder ``out`` records, read
    once when first asked for; empty where it keeps no record or cannot be read (the resume names such a problem)."""

    def __init__(self, out: str | None):
        self.out = out
        self._paths: set[str] | None = None

    def __call__(self) -> set[str]:
        if self._paths is None:
            self._paths = self._read()
        return self._paths

    def _read(self) -> set[str]:
        # here: checkpoints and same_data import this module
        from training.checkpoints import CHECKPOINT, unpickle_checkpoint
        from training.same_data import recorded_paths

        if self.out is None:
            return set()
        try:  # mapped, not read: only the record is wanted, and the weights may be hundreds of MB
            state = unpickle_checkpoint(Path(self.out).expanduser() / CHECKPOINT, mmap=True)
        except Exception:  # noqa: BLE001 - torch words a bad file many ways, and the resume's own read names it
            return set()
        record = state.get("data_faces") if isinstance(state, dict) else None
        return recorded_paths(record) if isinstance(record, dict) else set()


def no_longer_held(where: Where, recorded: Callable[[], set[str]]) -> str | None:
    """Why the data at ``where``, a place that exists, is not the run's any more, or None where it may be: its
    reader reads nothing there (its words), or none of the faces the checkpoint records (``recorded``) is among
    those it lists. Listed quietly: the run's own reading says what it passes over."""
    from inference.datasets import read_spec  # here: a resume that is refused sooner needs none of the readers

    quiet = logging.getLogger("inference.datasets")
    was = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        read = read_spec(f"{where.kind or 'folder'}:{where.path}")
    except BiasMirrorError as e:  # said of a file in it (a labels file, a subfolder): that file named
        return f"{where.path} is there, but " + (e.message if e.path in (None, where.path) else str(e))
    finally:
        quiet.setLevel(was)
    paths = recorded()
    if not paths:
        return None  # a checkpoint from before the record: the resume's own checks say what differs
    listed = {os.path.relpath(s.path, read.root) for s in read.samples} | {s.path for s in read.samples}
    if listed & paths:
        return None
    return f"{where.path} is there, but holds none of the {len(paths)} faces its checkpoint records"


def unclassified_options(parser: argparse.ArgumentParser, settings: Mapping[str, Reader],
                         may_change: frozenset[str]) -> set[str]:
    """Options of ``parser`` that are neither checked on resume nor allowed to change (for the tests: a new
    option must be put in one or the other)."""
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    return dests - set(settings) - set(may_change)



def command_line(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str:
    """The command as typed, for a card (main.py records its argv on the namespace; sys.argv otherwise), under
    torchrun with its process count: the same command with one process takes other steps (a global batch of
    one process's), and a card that left it out named a command that trains another model."""
    argv = getattr(args, "_argv", None)
    env = os.environ if env is None else env
    world, local = int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_WORLD_SIZE", env.get("WORLD_SIZE", 1)))
    # one process: as it was started (`bias-mirror` where pip installed it, with no main.py to give `python`); torchrun
    # runs a script by its path, which is main.py's in a checkout
    launch = program() if world == 1 else f"torchrun --nproc_per_node {local}" + (
        f" --nnodes {world // local}" if world != local else "") + " main.py"
    return f"{launch} " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))


def record_resume(run_cfg: dict, args: argparse.Namespace, state: Mapping[str, Any], epochs: int) -> str | None:
    """Adds this resume's command line to ``run_cfg["resumes"]``: a card gives the first command as "command"
    and every resume after it, in order, as "resumes". A resume of a run whose checkpoint ``state`` has trained all
    its ``epochs`` trains nothing, only exports: it is no resume, and its command line is returned instead, for the
    card's "exported_by" (a card had listed a re-export among the resumes that trained it)."""
    if int(state.get("epoch", 0)) >= epochs:
        return command_line(args)
    run_cfg["resumes"] = [*run_cfg.get("resumes", []), command_line(args)]
    return None


def carry_outputs(args: argparse.Namespace, run_cfg: dict, keys: tuple[str, ...], paths: tuple[str, ...] = (),
                  unremarkable: Mapping[str, Any] | None = None) -> list[str]:
    """A run's output (and how-it-runs) options ``keys`` into ``args``: those given now, else those its checkpoint
    keeps (in ``run_cfg["outputs"]``) from the command that started or last resumed it (a checkpoint from before
    one was kept: as given, or its default); ``paths`` among them are kept resolved. A plain --resume, as the stop
    message advises, had dropped them (no copy, no B→A filter, a card without the ΔP(female) its command promised).
    Returns the options taken from the checkpoint as typed, but those at a value ``unremarkable`` names (a default
    is no news)."""
    given, kept, taken = given_options(args), dict(run_cfg.get("outputs") or {}), []
    for key in keys:
        if key in given or key not in kept:
            value = getattr(args, key)
            kept[key] = str(Path(value).resolve()) if key in paths and value else value
        else:
            setattr(args, key, kept[key])
            if kept[key] and (unremarkable or {}).get(key) != kept[key]:
                taken.append(option_name(key) + ("" if kept[key] is True else f" {kept[key]}"))
    run_cfg["outputs"] = kept
    return taken


def model_name(args: argparse.Namespace, run_cfg: dict, out: Path) -> str:
    """The name a run's card gets: ``--name`` where given (kept in ``run_cfg``, so later checkpoints hold it),
    else the name the run was given before, else its folder's. A resume without ``--name`` used to rename the
    model after its run folder."""
    if args.name:
        run_cfg["name"] = args.name
    return run_cfg.get("name") or out.name
