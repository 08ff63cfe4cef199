"""The models a session starts with, as the last one left them, and this session's choices saved as they change.

Filters and classifiers the last session added from a file are opened again; each model's on/off state and the CAM
model are kept by file (``settings.file_key``), not by name. What the command line chose (--filter, --no-filter,
--condition, --classifier) is this session's alone and never saved, whichever control changed.

A change saves what it changed, not every model setting as this window sees them: two windows on one account share
the settings, and a classifier unticked in one had put back the filter the other had just switched off.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSettings

from inference.defaults import MODELS_DIR
from inference.errors import BiasMirrorError, in_words
from inference.models import Classifier, Filter, load_model, loaded_from, name_uniquely
from inference.runtime import RuntimeConfig

from . import settings as st
from .model_panel import ModelPanel, checked_at_start, filter_at_start

log = logging.getLogger(__name__)
# the settings that keep each classifier's on/off state and the CAM model by file (settings.file_key), not by name
CLASSIFIERS_ON, CLASSIFIERS_OFF = "checked_classifier_files", "unchecked_classifier_files"
CAM_MODEL_FILE = "cam_model_file"


def condition_for(filt: Filter | None, wanted: str | None) -> str | None:
    """``wanted`` where ``filt`` takes it as a condition, else None (its first, or no condition at all)."""
    return wanted if filt is not None and wanted in filt.condition_labels else None


@dataclass
class StartingModels:
    """What the models panel starts with: the models, why some could not be opened, and which are chosen."""
    classifiers: list[Classifier]
    filters: list[Filter]
    errors: list[str]
    enabled: list[str] | None  # the classifiers checked, by name; None: as the panel defaults
    disabled: list[str]
    filter_pref: str | None  # the filter chosen by name; "" the default one, None none
    apply_filter: bool
    cam_model: str | None


@dataclass
class Seen:
    """The model settings as this window last saved them, or as it started (None: not known, so saved whatever it
    is). A change saves only what differs from them."""
    filter: dict[str, object] | None = None  # filter, filter_path, no_filter: one choice, saved together
    classifiers: dict[str, bool] | None = None  # each classifier's file (settings.file_key): checked
    added: set[str] = field(default_factory=set)  # the classifier_files among them: added from a file, checked
    condition: str | None = None
    cam_model_file: str | None = None


def filter_settings(f: Filter | None) -> dict[str, object]:
    """The settings that say ``f`` is the filter chosen (None: no filter): its name, and its path where it came from a
    file, to be reopened from there. Not a model of the models folder's: loaded at every start, it is found by name,
    and its path had taken an install elsewhere back to the old install's filter."""
    from_file = f is not None and not in_models_folder(f.path)
    return {"filter": f.name if f else "", "filter_path": str(f.path) if from_file else "", "no_filter": f is None}


def in_models_folder(path: str | Path) -> bool:
    """Whether ``path`` is a model of this copy's models folder, which every start loads."""
    return Path(path).resolve().parent == MODELS_DIR.resolve()


def another_copys_model(path: str | Path) -> bool:
    """Whether ``path`` is a model of the models folder (resources/models) of another copy of Bias Mirror: an older
    install's default, left in settings it saved, which this copy's own defaults replace."""
    folder = Path(path).resolve().parent
    return folder.name == "models" and folder.parent.name == "resources" and not in_models_folder(path)


class ModelChoices:
    """The last session's choice of models read back, and this session's saved to ``qs``."""

    def __init__(self, qs: QSettings, given_classifiers: list[Classifier], filter_override: Filter | None | bool,
                 filter_condition: str | None, classifiers_chosen: bool) -> None:
        self.qs = qs
        self.filter_override = filter_override  # a filter or None (--no-filter); False: not on the command line
        self.filter_chosen = filter_override is not False  # like --classifier: this session's, never saved
        self.condition_chosen = filter_condition is not None  # --condition too
        self.classifiers_chosen = classifiers_chosen  # on the command line: this session's, not a preference to keep
        self._given_classifiers = tuple(given_classifiers)  # those not among them were added from a file
        self.seen = Seen()

    # --- read back at the start ---------------------------------------------------------------
    def starting(self, classifiers: list[Classifier], filters: list[Filter], errors: list[str],
                 runtime: RuntimeConfig) -> StartingModels:
        """What the command line chose wins over what the last session saved."""
        filter_pref = st.get(self.qs, "filter", "", str)
        apply_filter = st.get(self.qs, "apply_filter", True, bool)
        override = self.filter_override
        if override is not False:  # a filter or --no-filter
            filter_pref = override.name if override else None
            if override:
                apply_filter = True
                if override not in filters:
                    filters = [*filters, override]
        elif st.get(self.qs, "no_filter", False, bool):
            filter_pref = None
        elif filter_pref and all(f.name != filter_pref for f in filters):
            filters, filter_pref, errors = self._reopen_saved_filter(filter_pref, filters, errors, runtime)
        enabled: list[str] | None = None
        disabled: list[str] = []
        if not self.classifiers_chosen:
            classifiers, errors = self._reopen_saved_classifiers(classifiers, errors, runtime)
            enabled, disabled = self._saved_classifier_states(classifiers)
        start = StartingModels(classifiers, filters, errors, enabled, disabled, filter_pref, apply_filter,
                               self._saved_cam_model(classifiers))
        self._seen_at_start(start)
        return start

    def _seen_at_start(self, start: StartingModels) -> None:
        """The models the window starts with, as ``Seen``: what its first change is told apart from."""
        checked = checked_at_start(start.classifiers, start.enabled, start.disabled)
        self.seen.filter = filter_settings(filter_at_start(start.filters, start.filter_pref))
        self.seen.classifiers = {st.file_key(c.path): checked[c.name] for c in start.classifiers}
        self.seen.added = set(self._added_files(start.classifiers, {n for n, on in checked.items() if on}))
        # the CAM model shown: as DisplayControls falls back to the first checked classifier
        active = [c for c in start.classifiers if checked[c.name]]
        cam = next((c for c in active if c.name == start.cam_model), active[0] if active else None)
        self.seen.cam_model_file = st.file_key(cam.path) if cam is not None else None

    def starting_condition(self, active: Filter | None, asked: str | None) -> tuple[str | None, str | None]:
        """The condition ``active`` starts with, and a warning where it is not the one ``asked`` (--condition)."""
        # the saved condition was the saved filter's: a --filter session runs its filter's first, as run and audit
        # do (a condition saved for another filter of the same labels had been run without a word)
        saved = None if self.filter_chosen else st.get(self.qs, "filter_condition", "", str) or None
        condition = condition_for(active, asked or saved)
        self.seen.condition = condition or ""
        if asked is None or condition == asked:
            return condition, None
        why = ("no filter runs" if active is None else f"filter '{active.name}' takes no condition"
               if not active.condition_labels else
               f"filter '{active.name}' has no such condition; it runs with '{active.condition_labels[0]}'")
        return condition, f"--condition {asked!r}: {why}"

    def _reopen_saved_filter(self, name: str, filters: list[Filter], errors: list[str],
                             runtime: RuntimeConfig) -> tuple[list[Filter], str, list[str]]:
        """The last session's filter is not among those loaded: it came from a file, opened again here. If that
        file is gone or broken the default filter runs, and the models panel says why (filters, choice, errors)."""
        path = st.get(self.qs, "filter_path", "", str)
        if path and another_copys_model(path):
            default = filter_at_start(filters, "")
            runs = f"this copy's default filter '{default.name}' runs instead" if default else "no filter runs"
            note = (f"the last session's filter '{name}' is a model of another copy of Bias Mirror ({path}), not "
                    f"opened: {runs}")
            log.warning("%s", note)
            for key in ("filter", "filter_path"):  # said once: the old copy's choice means nothing to this one
                self.qs.remove(key)
            return filters, "", [*errors, note]
        if path and (same := loaded_from(filters, path)) is not None:  # saved under another name, already here
            return filters, same.name, errors
        try:
            if not path:
                raise BiasMirrorError(f"the last session's filter '{name}' is not in the models folder")
            model = load_model(path, "filter", runtime)
        except (BiasMirrorError, OSError) as exc:
            note = (f"{exc if isinstance(exc, BiasMirrorError) else f'{path}: {in_words(exc)}'}; the last session's "
                    "filter was not loaded, the default filter runs instead")
            log.warning("%s", note)
            return filters, "", [*errors, note]
        name_uniquely([model], [f.name for f in filters])
        return [*filters, model], model.name, errors  # type: ignore[list-item]

    def _reopen_saved_classifiers(self, classifiers: list[Classifier], errors: list[str],
                                  runtime: RuntimeConfig) -> tuple[list[Classifier], list[str]]:
        """The classifiers the last session added from a file, opened again (they were gone after a restart,
        while a filter from a file came back). One whose file is gone or broken is named in the models panel, and so
        is one of another copy's models folder, not opened (``another_copys_model``), and let go."""
        files = st.get(self.qs, "classifier_files", [], list)
        others = [p for p in files if another_copys_model(p)]
        for path in others:
            note = (f"the classifier the last session added from {path} is a model of another copy of Bias "
                    "Mirror, not opened: this copy's own models are loaded")
            log.warning("%s", note)
            errors = [*errors, note]
        for path in (p for p in files if p not in others):
            if loaded_from(classifiers, path) is not None:
                continue
            try:
                model = load_model(path, "classifier", runtime)
                model.require_gender("a classifier for the app")  # type: ignore[union-attr]
            except (BiasMirrorError, OSError) as exc:  # an unreadable folder or mount had stopped every start
                said = str(exc) if isinstance(exc, BiasMirrorError) else f"{path}: {in_words(exc)}"
                note = f"{said}; the classifier the last session added from this file was not loaded"
                log.warning("%s", note)
                errors = [*errors, note]
                continue
            name_uniquely([model], [c.name for c in classifiers])
            classifiers = [*classifiers, model]  # type: ignore[list-item]
        if others:  # said once, as the filter is
            st.put(self.qs, "classifier_files", [p for p in files if p not in others])
        return classifiers, errors

    def _saved_classifier_states(self, classifiers: list[Classifier]) -> tuple[list[str], list[str]]:
        """The names the classifiers the last session left checked, and unchecked, have now. Kept by file (see
        ``settings.file_key``); settings saved by name, before, are read by name until the next save."""
        if not (self.qs.contains(CLASSIFIERS_ON) or self.qs.contains(CLASSIFIERS_OFF)):
            return st.get(self.qs, "classifiers", [], list), st.get(self.qs, "classifiers_off", [], list)
        on, off = (set(st.get(self.qs, key, [], list)) for key in (CLASSIFIERS_ON, CLASSIFIERS_OFF))
        keys = [(c.name, st.file_key(c.path)) for c in classifiers]
        return [n for n, k in keys if k in on], [n for n, k in keys if k in off]

    def _saved_cam_model(self, classifiers: list[Classifier]) -> str | None:
        """The name the last session's CAM model has now: kept by file, as the on/off state is; by name in settings
        saved before. None where it is not loaded (the first classifier's CAM shows)."""
        path = st.get(self.qs, CAM_MODEL_FILE, "", str)
        if not path:
            return st.get(self.qs, "cam_model", "", str) or None
        return next((c.name for c in classifiers if st.file_key(c.path) == path), None)

    # --- saved as they change -----------------------------------------------------------------
    def save_cam_model(self, classifiers: list[Classifier], name: str | None) -> None:
        if self.classifiers_chosen:  # a --classifier session's CAM model names its own classifiers
            return
        model = next((c for c in classifiers if c.name == name), None)
        if model is not None:
            self.seen.cam_model_file = st.file_key(model.path)
            st.put(self.qs, CAM_MODEL_FILE, self.seen.cam_model_file)
            self.qs.remove("cam_model")  # by name it would go to another file of that name, should this one go

    def save_condition(self, condition: str | None) -> None:
        """The condition in effect, unless the command line chose the filter or the condition: this session's alone
        (--condition had been saved once an unrelated control changed)."""
        if not (self.filter_chosen or self.condition_chosen):
            self.seen.condition = condition or ""
            st.put(self.qs, "filter_condition", self.seen.condition)

    def save_models(self, models: ModelPanel, condition: str | None, cam_model: str | None) -> None:
        """Saves what the change of models changed, the condition and CAM model they fell back to included: a
        restart had run the condition or CAM model last picked, not the one showing at close. A command line's
        choice is kept out, whichever control changed (a --filter was saved once a classifier checkbox was
        toggled). What did not change is left as the settings have it: another window's choice, saved since."""
        if not self.filter_chosen and (chosen := filter_settings(models.active_filter())) != self.seen.filter:
            self.seen.filter = chosen
            for key, value in chosen.items():
                st.put(self.qs, key, value)
        if (condition or "") != self.seen.condition:
            self.save_condition(condition)
        if not self.classifiers_chosen:
            self._save_classifiers(models)
            model = next((c for c in models.classifiers if c.name == cam_model), None)
            if model is not None and st.file_key(model.path) != self.seen.cam_model_file:
                self.save_cam_model(models.classifiers, cam_model)

    def _save_classifiers(self, models: ModelPanel) -> None:
        """The classifiers whose state this window changed, saved by file over the lists as the settings have them
        now (read back first: another window may have saved its own since), along with those the lists do not
        name yet; the others keep the state saved. The classifiers added from a file, likewise."""
        on = set(models.enabled_names())
        mine = {st.file_key(c.path): c.name in on for c in models.classifiers}
        added = set(self._added_files(models.classifiers, on))
        seen = self.seen.classifiers
        changed = mine if seen is None else {k: v for k, v in mine.items() if seen.get(k) != v}
        if not changed and added == self.seen.added and seen is not None:
            return
        self.qs.sync()
        saved_on, saved_off = (st.get(self.qs, key, [], list) for key in (CLASSIFIERS_ON, CLASSIFIERS_OFF))
        if seen is not None:  # named nowhere yet (settings saved by name, or never): this window's state stands
            changed |= {k: v for k, v in mine.items() if k not in saved_on and k not in saved_off}
        st.put(self.qs, CLASSIFIERS_ON, merged(saved_on, [k for k, v in changed.items() if v], changed))
        st.put(self.qs, CLASSIFIERS_OFF, merged(saved_off, [k for k, v in changed.items() if not v], changed))
        for old in ("classifiers", "classifiers_off"):  # by name, as settings from before kept it: read once
            self.qs.remove(old)
        files = st.get(self.qs, "classifier_files", [], list)
        dropped = self.seen.added - added if seen is not None else set(files)
        st.put(self.qs, "classifier_files", merged(files, sorted(added), dropped | added))
        self.qs.sync()  # written at once: the next window to change its classifiers reads them back
        self.seen.classifiers, self.seen.added = mine, added

    def _added_files(self, classifiers: list[Classifier], on: set[str]) -> list[str]:
        """The checked ones only: one the user unchecked is let go at the next start (else nothing could drop it)."""
        return [str(c.path) for c in classifiers
                if c.name in on and not any(c is g for g in self._given_classifiers)]


def merged(saved: list[str], ours: list[str], replaced: set[str] | dict[str, bool]) -> list[str]:
    """``saved`` without the entries ``replaced`` names, then ``ours`` (among them): a saved list in which a change
    replaces its own entries alone."""
    return [k for k in saved if k not in replaced] + ours
