"""Group and model names in scripts matplotlib's own font lacks (Chinese, Japanese, Arabic…): drawn in an installed
font that has them, and where none has them said once for the page, not in a warning per glyph and figure (a
group named 女性研究者 had been drawn as boxes with 48 warnings)."""
from __future__ import annotations

import logging
import warnings

from matplotlib import font_manager

from inference.audit import figures as F
from inference.audit import html as H

CJK = "女性研究者"


def _only_matplotlibs_own_font(monkeypatch) -> None:
    """As on a machine with no CJK font (matplotlib ships DejaVu Sans, which has none)."""
    monkeypatch.setattr(F, "_installed", lambda: {"DejaVu Sans": font_manager.findfont("DejaVu Sans")})


def test_the_characters_no_installed_font_draws_are_named(monkeypatch):
    _only_matplotlibs_own_font(monkeypatch)
    assert F.glyphs_missing(["female/White", "Métis ü", "n = 12"]) == ""
    assert F.glyphs_missing([f"{CJK} a", CJK[::-1]]) == CJK  # each once, in order of first use


def test_figures_of_such_names_warn_nothing_per_glyph(monkeypatch):
    _only_matplotlibs_own_font(monkeypatch)
    series = {"tiny": {CJK: {"value": 0.9, "lo": 0.8, "hi": 0.95, "n": 12}, "男性": {"value": 0.8, "n": 2}}}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert F.grouped_bars(series, f"accuracy by {CJK}", "accuracy")
    glyphs = [str(w.message) for w in seen if "Glyph" in str(w.message)]
    assert not glyphs, glyphs[:3]


def test_the_page_says_once_which_names_its_figures_cannot_draw(monkeypatch, tmp_path, caplog):
    _only_matplotlibs_own_font(monkeypatch)
    monkeypatch.setattr(H, "build_html", lambda report, render: "<html></html>")
    report = {"images": {"n_faces": 0}, "classifiers": {"tiny": {"by_group": {"group": {CJK: {}, "other": {}}}}}}
    with caplog.at_level(logging.WARNING, logger=H.__name__):
        H.write_html(tmp_path / "report.html", report, None, {})
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and CJK in said[0] and "report.html" in said[0], said


def test_the_font_file_checked_is_the_one_drawn_with():
    """The last file of a family had been checked: DejaVu Sans Oblique, without the Arabic the plain face draws, and a
    page of Arabic group names was said to show boxes it did not. DejaVu Sans (matplotlib's own) draws these."""
    F._installed.cache_clear()
    assert F.glyphs_missing(["عربي", "ελληνικά", "Ärzte"]) == ""
