"""`train adopt`'s range choice for a bare filter, where the nearest range is nearer by a ratio rather than by many
grey levels: a darkener on [0, 1] read as [-1, 1] scales the faces towards grey, not black, and lies about half as far
from them however strongly it darkens, so that a margin in grey levels alone took x·0.7 as [-1, 1] (the audit then
passed it as lightening skin) and refused its right range, given."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import onnx.utils
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from inference.defaults import MODELS_DIR  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.models import load_model  # noqa: E402
from tests.conftest import require_utk  # noqa: E402
from tests.test_adopt import SIZE, ColourShift, export, quiet  # noqa: E402
from training.adopt import adopt  # noqa: E402
from training.adopt_run import sample_faces  # noqa: E402
from training.adopt_filter_checks import AMBIGUOUS_RANGE_RATIO  # noqa: E402


class ClampedDarkener(nn.Module):
    """Trained on [0, 1]: clamps its input to [0, 1], as many pipelines do, then halves it. Read as [0, 255] it gives
    back black faces; read as [-1, 1] it is a contrast cut about as near the faces as its own reading."""

    def forward(self, x):
        return x.clamp(0, 1) * 0.5


class ByteTint(nn.Module):
    """Trained on [0, 255]: a yellow tint (blue down), clamped to its range."""

    def forward(self, x):
        return (x * torch.tensor([1.02, 1.02, 0.85]).view(1, 3, 1, 1)).clamp(0, 255)


@pytest.fixture
def utk():
    """Real faces, on which the darkener was found taken for [-1, 1] (noise faces, half of them bright, put its two
    readings nearly as far apart as the ratio that tells them apart)."""
    return dict(dataset=f"utkface:{require_utk()}", n=24, echo=quiet)


def faces_of(kw: dict) -> np.ndarray:
    return sample_faces(kw["dataset"], kw["n"], SIZE)[0]


def bare_default_filter(path: Path) -> Path:
    """The shipped default filter without the wrapper it ships in: from its [-1, 1] input (the Sub that maps
    0..255 onto it) to its tanh output, as a filter made elsewhere would come."""
    model = onnx.load(str(MODELS_DIR / "engineer_filter.onnx"))
    start = next(n.output[0] for n in model.graph.node if n.op_type == "Sub")
    end = [n.output[0] for n in model.graph.node if n.op_type == "Tanh"][-1]
    onnx.utils.extract_model(str(MODELS_DIR / "engineer_filter.onnx"), str(path), [start], [end])
    return path


@pytest.mark.parametrize("gain", [0.7, 0.5])
def test_a_strong_darkener_is_refused_without_a_range(tmp_path, utk, gain):
    """x·0.7 on [0, 1] was taken as [-1, 1] without a word (16.8 grey levels from the faces against 35.7, past the
    margin of 15), and the audit passed it as lightening skin: it darkens it by 45° ITA."""
    src = export(ColourShift(gain, 0.0).eval(), tmp_path / "darkener.onnx")
    with pytest.raises(BiasMirrorError, match=r"its output lies about as near the faces with --range symmetric "
                                              r"\[-1, 1\] \([\d.]+ grey levels on average\) as with --range unit "
                                              r"\[0, 1\] \([\d.]+\).*, within [\d.]+ grey levels or "
                                              rf"{AMBIGUOUS_RANGE_RATIO:g} times as far.* Give --range") as err:
        adopt(src, tmp_path / "a.onnx", "filter", **utk)
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()


@pytest.mark.parametrize("gain", [0.7, 0.5])
def test_a_strong_darkener_given_its_range_is_taken_as_given(tmp_path, utk, gain):
    """x·0.5 given --range unit was refused as "not faces" ([-1, 1] lay 27.9 grey levels from the faces, [0, 1]
    59.4) and advised to leave --range out, which took the wrong one: a range as likely as the nearest is the answer
    to what the output cannot tell."""
    src = export(ColourShift(gain, 0.0).eval(), tmp_path / "darkener.onnx")
    given = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="unit", **utk))
    assert given.card.training["adopted"]["range_chosen"].startswith("given: [0, 1] (mean change in grey levels: ")
    faces = faces_of(utk)
    assert given.apply(faces).mean() < faces.mean()  # it darkens, as it does on [0, 1]


def test_a_plainly_wrong_range_is_refused_with_advice_that_leads_to_the_right_one(tmp_path, utk):
    """Refused, a given range was told to leave --range out and take the nearest: where another range lies about as
    near, that is refused in turn, or (before) took the wrong one. The advice names both, and the right one is taken."""
    src = export(ClampedDarkener().eval(), tmp_path / "darkener.onnx")
    with pytest.raises(BiasMirrorError, match=r"with --range byte its output lies [\d.]+ grey levels from the face on "
                                              r"average, with --range symmetric [\d.]+: the faces it gave back are not "
                                              r"faces\.") as err:
        adopt(src, tmp_path / "a.onnx", "filter", value_range="byte", **utk)
    message = str(err.value)
    assert "Leave --range out" not in message, message
    assert re.search(r"about as near the faces with --range symmetric \[-1, 1\] .* as with --range unit \[0, 1\] "
                     r"\([\d.]+\).*: give the one of the inputs it was trained on, or give --force", message), message
    assert not (tmp_path / "a.onnx").exists()
    given = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="unit", **utk))
    assert given.card.training["adopted"]["range_chosen"].startswith("given: [0, 1]")


def test_the_default_filter_made_bare_is_still_found_on_faces_without_a_range(tmp_path, utk):
    """Its [0, 1] reading lies several times as far from the faces and clips the darker half of its tanh output to
    black: the margin by ratio must not ask it for --range."""
    src = bare_default_filter(tmp_path / "bare.onnx")
    out = adopt(src, tmp_path / "a.onnx", "filter", **utk)
    assert load_model(out).card.training["adopted"]["range_chosen"].startswith("auto: [-1, 1], whose output lies "
                                                                               "nearest the input")


def test_a_tint_whose_other_readings_lie_many_times_as_far_is_still_found(tmp_path, utk):
    """A tint on [0, 255]: [0, 1] gives back the same faces, [-1, 1] lies more than the ratio as far."""
    src = export(ByteTint().eval(), tmp_path / "tint.onnx")
    out = adopt(src, tmp_path / "a.onnx", "filter", **utk)
    chosen = load_model(out).card.training["adopted"]["range_chosen"]
    assert re.match(r"auto: \[0, (1|255)\]", chosen), chosen
    faces = faces_of(utk)
    got = load_model(out).apply(faces).astype(int)
    assert got[..., 2].mean() < faces[..., 2].mean()  # blue down: read as it was trained
