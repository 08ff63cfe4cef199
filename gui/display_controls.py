"""The side panel's Display box: view mode, the filter on or off and its condition, the CAM's model, class and
opacity, face labels.

A change that only alters the drawing repaints the view; one the pipeline must run again (the filter, its condition,
the CAM class) goes to the inference thread, which re-runs the last frame. Each is saved for the next session.
"""
from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QSlider

from inference.models import Classifier
from inference.pipeline import PipelineConfig

from . import settings as st
from .frame_view import FrameView
from .model_choices import ModelChoices
from .model_panel import ModelPanel, narrow_combo
from .painter import VIEW_MODES, DisplaySettings
from .workers import InferenceThread


class DisplayControls(QGroupBox):
    """Applies its controls to ``display`` (the painter's settings, shared with the view) and to ``inference``."""

    def __init__(self, display: DisplaySettings, config: PipelineConfig, qs: QSettings, models: ModelPanel,
                 choices: ModelChoices, view: FrameView, inference: InferenceThread) -> None:
        super().__init__("Display")
        self.display, self.qs, self.models, self.choices = display, qs, models, choices
        self.view, self.inference = view, inference
        self.filter_condition = config.filter_condition  # what the pipeline runs the filter with
        self.cam_class: str | None = None  # the CAM class the pipeline runs with, once the choices are known
        form = self.form = QFormLayout(self)
        self.view_combo = narrow_combo(QComboBox())
        self.view_combo.addItems(VIEW_MODES)
        self.view_combo.setCurrentText(display.view)
        self.view_combo.currentTextChanged.connect(self.set_view_mode)
        form.addRow("View (V)", self.view_combo)
        self.filter_check = QCheckBox("apply the filter (F)")
        self.filter_check.setChecked(config.apply_filter)
        self.filter_check.toggled.connect(self.set_apply_filter)
        form.addRow(self.filter_check)
        # a conditional filter's conditions; the row shows only for one
        self.condition_combo = narrow_combo(QComboBox())
        self.condition_combo.setToolTip("what this conditional filter is asked for (its card's condition labels)")
        self.condition_combo.currentTextChanged.connect(self.set_filter_condition)
        form.addRow("Filter condition", self.condition_combo)
        self.refresh_conditions()
        self.cam_check = QCheckBox("show class activation map (C)")
        self.cam_check.setChecked(display.show_cam)
        self.cam_check.toggled.connect(self.set_show_cam)
        form.addRow(self.cam_check)
        self.cam_model_combo = narrow_combo(QComboBox())
        self.cam_model_combo.currentTextChanged.connect(self._cam_model_chosen)
        form.addRow("CAM of", self.cam_model_combo)
        self.cam_class_combo = narrow_combo(QComboBox())
        self.cam_class_combo.setToolTip(f"{PipelineConfig.PREDICTED}: each face's map is of the class the classifier "
                                        "predicted for it (where it looked for its answer; its \"CAM on face\" is "
                                        "measured on that map); a label: that class's map on every face")
        self.cam_class_combo.addItem(config.cam_class)
        self.cam_class_combo.currentTextChanged.connect(self.set_cam_class)
        form.addRow("CAM class", self.cam_class_combo)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(display.cam_opacity * 100))
        self.opacity.valueChanged.connect(self._opacity_changed)
        form.addRow("CAM opacity", self.opacity)
        self.labels_check = QCheckBox("face labels")
        self.labels_check.setChecked(display.show_labels)
        self.labels_check.toggled.connect(self._labels_toggled)
        form.addRow(self.labels_check)
        self.refresh_cam_choices()

    # --- drawn differently: the view repaints --------------------------------------------------
    def set_view_mode(self, mode: str) -> None:
        if mode not in VIEW_MODES:
            return
        self.display.view = mode
        if self.view_combo.currentText() != mode:
            self.view_combo.setCurrentText(mode)
        st.put(self.qs, "view", mode)
        self.view.update()

    def cycle_view(self) -> None:
        self.set_view_mode(VIEW_MODES[(VIEW_MODES.index(self.display.view) + 1) % len(VIEW_MODES)])

    def set_show_cam(self, on: bool) -> None:
        self.display.show_cam = on
        st.put(self.qs, "show_cam", on)
        self.view.update()

    def _cam_model_chosen(self, name: str) -> None:
        if name:
            self.display.cam_model = name
            self.choices.save_cam_model(self.models.classifiers, name)
            self.view.update()

    def set_cam_model(self, name: str) -> None:
        self.cam_model_combo.setCurrentText(name)

    def _opacity_changed(self, v: int) -> None:
        self.display.cam_opacity = v / 100
        st.put(self.qs, "cam_opacity", self.display.cam_opacity)
        self.view.update()

    def _labels_toggled(self, on: bool) -> None:
        self.display.show_labels = on
        st.put(self.qs, "show_labels", on)
        self.view.update()

    # --- run differently: the inference thread re-runs the last frame at once --------------------
    def set_cam_class(self, label: str) -> None:
        if label and label != self.cam_class:
            self.cam_class = label
            st.put(self.qs, "cam_class", label)
            self.inference.set_config(cam_class=label)

    def set_filter_condition(self, label: str) -> None:
        if label and label != self.filter_condition:
            self.filter_condition = label
            self.choices.save_condition(label)
            self.inference.set_config(filter_condition=label)

    def set_apply_filter(self, on: bool) -> None:
        st.put(self.qs, "apply_filter", on)
        self.inference.set_config(apply_filter=on)

    # --- the choices the models in use offer ----------------------------------------------------
    def refresh_conditions(self) -> None:
        f = self.models.active_filter()
        labels = list(f.condition_labels) if f is not None else []
        self.condition_combo.blockSignals(True)
        self.condition_combo.clear()
        self.condition_combo.addItems(labels)
        if labels:
            self.condition_combo.setCurrentText(self.filter_condition or labels[0])
        self.condition_combo.blockSignals(False)
        self.form.setRowVisible(self.condition_combo, bool(labels))

    def refresh_cam_choices(self) -> None:
        active = self.models.active_classifiers()
        names = [c.name for c in active]
        self.cam_model_combo.blockSignals(True)
        self.cam_model_combo.clear()
        self.cam_model_combo.addItems(names)
        if self.display.cam_model in names:
            self.cam_model_combo.setCurrentText(self.display.cam_model)
        elif names:
            self.display.cam_model = names[0]
        self.cam_model_combo.blockSignals(False)
        choices = cam_class_choices(active)
        current = self.cam_class or self.cam_class_combo.currentText()
        shown = current if current in choices or not choices else choices[0]
        self.cam_class = shown
        if shown != current:  # a class no classifier has (a saved "man"): the one shown is the one run and saved
            self.inference.set_config(cam_class=shown)  # in snapshots, or picking it would change nothing
        self.cam_class_combo.blockSignals(True)
        self.cam_class_combo.clear()
        self.cam_class_combo.addItems(choices or [current])
        self.cam_class_combo.setCurrentText(shown)
        self.cam_class_combo.blockSignals(False)


def cam_class_choices(classifiers: Sequence[Classifier]) -> list[str]:
    """The CAM classes offered for ``classifiers``: each face's predicted class first (the map its "CAM on face" is
    measured on), then every label once; none without a classifier."""
    labels = list(dict.fromkeys(label for c in classifiers for label in c.labels))
    return [PipelineConfig.PREDICTED, *labels] if labels else []
