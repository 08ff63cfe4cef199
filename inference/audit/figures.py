"""Matplotlib (Agg) figures for report.html, drawn from report.json; face grids re-render their few faces.

Every function returns PNG bytes (or None when there is nothing to draw).
"""
from __future__ import annotations

import functools
import io
import warnings
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ..faces import face_region_mask  # noqa: E402
from ..metrics import group_order  # noqa: E402
from ..strict_json import measured  # noqa: E402
from ..untrusted_text import elided as _elided  # noqa: E402

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
NO_CI_HATCH = "///"
NO_CI_LABEL = "no CI (too few values)"
HEAT_LABEL = "share of the group's faces"  # what a heat strip's colour is
# The most characters of one line of text a figure draws (a title, or a caption, legend entry or tick): a text sets
# the width of a figure saved with bbox_inches="tight", and a model's name of 20,000 characters had made one
# 120,442 px wide (34 s of the audit; of a million, not done in 10 minutes). The card now refuses such a name, and
# a name it takes (up to 256), a group's from a dataset or a title holding both is cut here all the same.
TITLE_CHARS = 160
LABEL_CHARS = 80


# Fonts tried in turn for each character (matplotlib falls back along font.family): DejaVu Sans, matplotlib's own,
# has no Chinese, Japanese, Korean or Arabic, and a group named 女性研究者 had been drawn as boxes; these are the
# fonts that have them on Linux, Windows and macOS, where installed.
FALLBACK_FAMILIES = ("DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Source Han Sans", "Microsoft YaHei",
                     "Yu Gothic", "Malgun Gothic", "PingFang SC", "Hiragino Sans", "Apple SD Gothic Neo",
                     "Noto Sans Arabic", "Noto Sans Hebrew", "Noto Sans Devanagari", "Arial Unicode MS", "Noto Sans")


@functools.cache
def _installed() -> dict[str, str]:
    """Of ``FALLBACK_FAMILIES``, those installed here: family → the font file matplotlib draws its plain text with
    (found once per process). Not any file of the family: the last one listed, DejaVu Sans Oblique, lacks the
    Arabic the plain face draws, and a page of Arabic group names was said to show boxes it did not."""
    from matplotlib import font_manager

    listed = {f.name for f in font_manager.fontManager.ttflist}
    return {family: font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            for family in FALLBACK_FAMILIES if family in listed}


@functools.cache
def _characters_of(font_file: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_file).get_charmap())


def glyphs_missing(texts) -> str:
    """The characters of ``texts`` that no installed font of ``FALLBACK_FAMILIES`` draws (spaces and controls
    aside), in order of first use: the figures show them as boxes."""
    fonts = [_characters_of(f) for f in _installed().values()]
    missing: dict[str, None] = {}
    for text in texts:
        for char in str(text):
            if char.isprintable() and not char.isspace() and not any(ord(char) in font for font in fonts):
                missing[char] = None
    return "".join(missing)


def _user_text_as_written(draw):
    """Draws with no text read as maths: group, model and file names are the user's, and matplotlib reads the text
    between two '$' as mathtext. "income $10k-$20k" had stopped the audit with a mathtext error, and "price $5-$10"
    was drawn as "price 5 − 10". Held while the figure is saved too, since tick labels are made as it is drawn. Each
    character is drawn in the first installed font that has it (``FALLBACK_FAMILIES``); one that none has is said
    once for the page (``glyphs_missing``), not in a warning of matplotlib's per glyph and figure (48 for one audit)."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with plt.rc_context({"text.parse_math": False, "font.family": list(_installed()) or ["DejaVu Sans"]}), \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
            return draw(*args, **kwargs)
    return drawn


def elided(text: object, limit: int = LABEL_CHARS) -> str:
    """``untrusted_text.elided`` at a figure's label width unless told."""
    return _elided(text, limit)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _err(d: dict, scale: float = 1.0) -> tuple[float, float, float, bool]:
    """(value, lower and upper whisker, whether it has an interval). A value without one (a group of one or two)
    gets no whisker: drawn with a zero-width one it looked like the most precise estimate of the chart."""
    v = d.get("value")
    if not measured(v):
        return np.nan, 0.0, 0.0, False
    lo, hi = d.get("lo"), d.get("hi")
    if not (measured(lo) and measured(hi)):
        return v * scale, 0.0, 0.0, False
    return v * scale, max(0.0, (v - lo) * scale), max(0.0, (hi - v) * scale), True


def _n_label(series: dict[str, dict[str, dict]], group: str) -> str:
    """The n behind a group's bars, in legend order where they differ: the group's face count had been given,
    though an FPR counts its annotated males only and a ΔITA its measurable faces only."""
    ns = [str(s[group].get("n", "?")) for s in series.values() if group in s]
    return ns[0] if len(set(ns)) == 1 else " / ".join(ns)


@_user_text_as_written
def grouped_bars(series: dict[str, dict[str, dict]], title: str, ylabel: str, scale: float = 1.0,
                 hline: float | None = None, order: Callable[[str], tuple] = group_order) -> bytes | None:
    """series: label (e.g. classifier) → group → interval object {value, lo, hi, n}; bars with their 95% CI whiskers,
    hatched and whiskerless where there is no interval, each group labelled with the n behind its bars. ``order``:
    the groups' sort key (``report.group_key`` of their grouping)."""
    groups = sorted({g for s in series.values() for g in s}, key=order)
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(groups) * max(1, len(series)) + 2), 3.6))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    handles, any_without = [], False
    for k, (label, s) in enumerate(series.items()):
        vals = [_err(s[g], scale) if g in s else (np.nan, 0.0, 0.0, False) for g in groups]
        xs = x + k * width - 0.4 + width / 2
        color = COLORS[k % len(COLORS)]
        bars = ax.bar(xs, [v[0] for v in vals], width, color=color)
        handles.append(Patch(facecolor=color, label=elided(label)))  # not the bars: the first one's hatch would show
        for bar, (v, _, _, has_ci) in zip(bars, vals):
            if np.isfinite(v) and not has_ci:
                bar.set_hatch(NO_CI_HATCH)
                bar.set_edgecolor("#333")
                any_without = True
        with_ci = [i for i, v in enumerate(vals) if v[3]]
        if with_ci:
            ax.errorbar(xs[with_ci], [vals[i][0] for i in with_ci], fmt="none", capsize=3, ecolor="#333",
                        yerr=np.array([[vals[i][1] for i in with_ci], [vals[i][2] for i in with_ci]]))
    ticks = [elided(f"{g}\n(n={_n_label(series, g)})") for g in groups]
    ax.set_xticks(x, ticks, rotation=45 if len(groups) > 5 else 0, ha="right" if len(groups) > 5 else "center", fontsize=8)
    if hline is not None:
        ax.axhline(hline, color="#888", lw=0.8)
    ax.set_ylabel(elided(ylabel))
    ax.set_title(elided(title, TITLE_CHARS), fontsize=10)
    if any_without:
        handles.append(Patch(facecolor="white", edgecolor="#333", hatch=NO_CI_HATCH, label=NO_CI_LABEL))
    if len(handles) > 1:
        ax.legend(handles=handles, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


@_user_text_as_written
def histograms(hists: dict[str, dict], title: str, xlabel: str) -> bytes | None:
    """Distributions per group from report.json ({bins, counts}) as one heat strip per group.

    Each row is a group; the colour is the share of that group's faces in the
    bin, so groups of different sizes compare directly (n is in the label).
    """
    hists = {g: h for g, h in hists.items() if sum(h["counts"])}
    if not hists:
        return None
    b = np.array(next(iter(hists.values()))["bins"], float)
    shares = np.array([np.array(h["counts"], float) / sum(h["counts"]) for h in hists.values()])
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.32 * len(hists)))
    im = ax.imshow(shares, aspect="auto", cmap="viridis", extent=(b[0], b[-1], len(hists) - 0.5, -0.5),
                   interpolation="nearest")
    ax.set_yticks(range(len(hists)), [elided(f"{g} (n={sum(h['counts'])})") for g, h in hists.items()], fontsize=7)
    ax.axvline(0 if b[0] < 0 else 0.5, color="w", lw=0.8, ls="--")
    ax.set_xlabel(elided(xlabel), fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(elided(title, TITLE_CHARS), fontsize=9)
    bar = fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    bar.set_label(HEAT_LABEL, fontsize=6)
    bar.ax.tick_params(labelsize=6)
    return _png(fig)


def overlay(crop: np.ndarray, cam: np.ndarray | None) -> np.ndarray:
    """The crop with the positive CAM (normalised per face, for display only) over it and the face ellipse outlined."""
    img = crop.astype(np.float32) / 255
    if cam is not None:
        pos = np.clip(cam, 0, None)
        m = pos.max()
        heat = plt.get_cmap("jet")(pos / m if m > 0 else pos)[..., :3]
        img = 0.55 * img + 0.45 * heat
    region = face_region_mask(crop.shape[0])
    edge = region ^ np.roll(region, 1, 0) | region ^ np.roll(region, 1, 1)
    img[edge] = (1, 1, 1)
    return np.clip(img, 0, 1)


CAPTION_LINE_IN = 7 * 1.25 / 72  # a caption line's height in inches (7 pt type, matplotlib's line spacing)
TITLE_IN = 0.45  # the grid's title and the gap under it, in inches
PANEL_IN = 1.9  # a face panel's width in inches, where its caption is no wider
CAPTION_GAP_IN = 0.15  # between two captions side by side


def _widen_for_captions(fig, captions: list, cols: int) -> None:
    """The figure made wide enough that its widest caption fits its column: a classifier's name in a caption had
    run into its neighbour's. Measured as drawn, since a caption's width depends on its letters."""
    renderer = fig.canvas.get_renderer()
    widest = max((t.get_window_extent(renderer).width for t in captions if t.get_text()), default=0) / fig.dpi
    share = fig.subplotpars.right - fig.subplotpars.left  # of the figure's width, the panels'
    fig.set_figwidth(max(fig.get_figwidth(), cols * (widest + CAPTION_GAP_IN) / share))


@_user_text_as_written
def face_grid(rows: Sequence[tuple[str, list[tuple[str, np.ndarray]]]], title: str) -> bytes | None:
    """rows: (row label, [(panel caption, RGB image uint8 or float)])."""
    rows = [r for r in rows if r[1]]
    if not rows:
        return None
    cols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(PANEL_IN * cols, 2.1 * len(rows)), squeeze=False)
    for i, (label, panels) in enumerate(rows):
        for j in range(cols):
            ax = axes[i, j]
            ax.axis("off")
            if j < len(panels):
                cap, img = panels[j]
                ax.imshow(img)
                ax.set_title(elided(cap), fontsize=7)
        axes[i, 0].text(-0.08, 0.5, elided(label), transform=axes[i, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=8)
    _widen_for_captions(fig, [ax.title for ax in axes.flat], cols)
    # room for the longest caption: a third line (an example's P(female) resized and not) had run into the face above
    lines = max(cap.count("\n") + 1 for _, panels in rows for cap, _ in panels)
    # and above the first row's captions for the title, which had been drawn over two-line ones
    first = max(cap.count("\n") + 1 for cap, _ in rows[0][1])
    height = fig.get_figheight()
    fig.subplots_adjust(wspace=0.05, hspace=0.05 + 0.15 * max(lines, 2),
                        top=max(0.5, 1 - (TITLE_IN + first * CAPTION_LINE_IN) / height))
    fig.suptitle(elided(title, TITLE_CHARS), fontsize=10, y=1 - 0.1 / height, va="top")
    return _png(fig)


Render = Callable[[str, int], "object | None"]  # (file, face index) → FaceResult or None
