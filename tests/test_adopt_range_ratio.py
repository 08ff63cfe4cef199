"""`train adopt`'s range choice for a bare filter, where the nearest range is nearer by a ratio rather than by many
grey levels: a darkener on [0, 1] read as [-1, 1] scales the faces towards grey, not black, and lies about half as far
from them however strongly it darkens, so that a margin in grey levels alone took x·0.7 as [-1, 1] (the audit then
passed it as lightening skin) and refused its right range, given. And where a range reads the output wrongly: its raw
output past that range's bounds, or flat faces, not a filter's own clamp (a [0, 1] contrast filter had been taken
as [-1, 1] without a word)."""
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
from tests.conftest import require_utk, utk_images  # noqa: E402
from tests.test_adopt import SIZE, ColourShift, export, quiet  # noqa: E402
from training.adopt import adopt  # noqa: E402
from training.adopt_run import sample_faces  # noqa: E402
from training.adopt_filter_checks import AMBIGUOUS_RANGE_RATIO  # noqa: E402


class ClampedDarkener(nn.Module):
    """Trained on [0, 1]: clamps its input to [0, 1], as many pipelines do, then halves it. Read as [0, 255] it gives
    back black faces; read as [-1, 1] it is a contrast cut about as near the faces as its own reading."""

    def forward(self, x):
        return x.clamp(0, 1) * 0.5


class ClampedContrast(nn.Module):
    """Trained on [0, 1]: a strong contrast, ``(x − 0.5)·gain + 0.5`` clamped to [0, 1], so that much of a face lands
    on black or white by its own clamp."""

    def __init__(self, gain: float = 3.0, pivot: float = 0.5):
        super().__init__()
        self.gain, self.pivot = gain, pivot

    def forward(self, x):
        return ((x - self.pivot) * self.gain + 0.5).clamp(0, 1)


class ClampedExposure(nn.Module):
    """Trained on [0, 1]: ``x·2.5`` clamped, half a face's pixels blown to white by its own clamp."""

    def forward(self, x):
        return (x * 2.5).clamp(0, 1)


class StrongTanhDarkener(nn.Module):
    """Trained on [-1, 1], tanh out: ``tanh(atanh(x) − 0.6)``. Read as [0, 255] it gives back black faces, within the
    ratio of its own reading's distance from the faces (it moves them far): no rival for that."""

    def forward(self, x):
        x = x.clamp(-0.9999, 0.9999)
        return torch.tanh(0.5 * torch.log((1 + x) / (1 - x)) - 0.6)


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
                                              r"\[0, 1\] \([\d.]+[;)].*, within [\d.]+ grey levels or "
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


def test_a_strong_darkener_is_offered_one_of_two_ranges_that_give_back_the_same_faces(tmp_path, utk):
    """x·0.7 on [0, 1] gives back the same faces read as [0, 255]: it had been offered "--range unit [0, 1] (35.7) or
    --range byte [0, 255] (35.7)", a choice that changes nothing. The one is offered, the other said with it."""
    src = export(ColourShift(0.7, 0.0).eval(), tmp_path / "darkener.onnx")
    with pytest.raises(BiasMirrorError) as err:
        adopt(src, tmp_path / "a.onnx", "filter", **utk)
    message = str(err.value)
    assert re.search(r"as with --range unit \[0, 1\] \([\d.]+; --range byte \[0, 255\] \([\d.]+\) gives back the same "
                     r"faces\), within", message), message
    assert " or --range" not in message, message


@pytest.mark.parametrize("net", [ClampedContrast(), ClampedContrast(2.5, 0.4)], ids=["contrast", "contrast_lift"])
def test_a_clamped_contrast_filter_is_asked_for_its_range_and_takes_it_given(tmp_path, utk, net):
    """(x − 0.5)·3 + 0.5 on [0, 1], clamped, was taken as [-1, 1] without a word: its own clamp put over half the
    faces' pixels at black or white under [0, 1], counted as that range's misreading. The audit of it so wrapped
    moved ITA by +14° with 93 faces unmeasurable, against −1.5° read as trained."""
    src = export(net.eval(), tmp_path / "contrast.onnx")
    with pytest.raises(BiasMirrorError, match=r"its output lies about as near the faces with --range symmetric "
                                              r"\[-1, 1\] .* as with --range unit \[0, 1\] \([\d.]+\).* Give --range"):
        adopt(src, tmp_path / "a.onnx", "filter", **utk)
    given = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="unit", **utk))
    assert given.card.training["adopted"]["range_chosen"].startswith("given: [0, 1] (mean change in grey levels: ")
    faces = faces_of(utk)
    assert given.apply(faces).std() > faces.std()  # more contrast, as on [0, 1]


def test_a_clamped_exposure_given_its_range_is_taken_and_without_it_asked(tmp_path, utk):
    """(x·2.5) clamped on [0, 1], given --range unit, was refused as "not faces" and told to leave --range out, which
    took [-1, 1]: its own clamp had counted against its own range."""
    src = export(ClampedExposure().eval(), tmp_path / "exposure.onnx")
    given = load_model(adopt(src, tmp_path / "a.onnx", "filter", value_range="unit", **utk))
    assert given.card.training["adopted"]["range_chosen"].startswith("given: [0, 1]")
    faces = faces_of(utk)
    assert given.apply(faces).mean() > faces.mean()  # it lightens, as on [0, 1]
    with pytest.raises(BiasMirrorError, match=r"as with --range unit \[0, 1\] .* Give --range"):
        adopt(src, tmp_path / "b.onnx", "filter", **utk)


def test_a_strong_tanh_filter_is_found_without_a_range_though_black_faces_lie_within_the_ratio(tmp_path, utk):
    """Read as [0, 255], a tanh output gives back black faces, within AMBIGUOUS_RANGE_RATIO of a strong filter's own
    reading: flat faces are no reading of a face filter, so it is not asked for --range."""
    src = export(StrongTanhDarkener().eval(), tmp_path / "tanh.onnx")
    out = adopt(src, tmp_path / "a.onnx", "filter", **utk)
    adopted = load_model(out).card.training["adopted"]
    assert adopted["range_chosen"].startswith("auto: [-1, 1], whose output lies nearest the input"), adopted
    byte = float(re.search(r"\[0, 255\] ([\d.]+)", adopted["range_chosen"]).group(1))
    assert byte < adopted["checks"]["mean_change_grey"] * AMBIGUOUS_RANGE_RATIO  # within the ratio: flat, not far


def low_contrast_faces(folder: Path, n: int, contrast: float = 0.6) -> Path:
    """UTKFace faces with their contrast about mid-grey cut: near grey, they put a [0, 1] darkener's [-1, 1] reading
    nearer them by a larger ratio than spread-out faces do."""
    import cv2
    folder.mkdir()
    for path in utk_images(n):
        face = cv2.imread(str(path)).astype(np.float64)
        cv2.imwrite(str(folder / path.name), np.clip(127.5 + (face - 127.5) * contrast, 0, 255).astype(np.uint8))
    return folder


def distances(message: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(r"--range (\w+) \[[-\d, ]+\] \(([\d.]+)", message)}


def test_a_darkener_on_low_contrast_faces_is_refused_without_a_range(tmp_path):
    """On faces of low contrast x·0.7 on [0, 1] read as [-1, 1] lies nearer them by more than the fixed ratio: it
    was taken for [-1, 1] without a word. The limit follows the faces."""
    faces = low_contrast_faces(tmp_path / "lc", 24)
    src = export(ColourShift(0.7, 0.0).eval(), tmp_path / "darkener.onnx")
    with pytest.raises(BiasMirrorError, match=r"about as near the faces with --range symmetric .* Give --range") as err:
        adopt(src, tmp_path / "a.onnx", "filter", dataset=f"folder:{faces}", n=24, echo=quiet)
    d = distances(str(err.value))
    assert d["unit"] > d["symmetric"] * AMBIGUOUS_RANGE_RATIO  # beyond the fixed ratio: asked by the faces' own


def test_one_face_is_too_few_to_tell_a_range_and_a_given_one_is_taken(tmp_path, utk):
    """On the one face --n 1 takes, a darkener's [-1, 1] reading lay nearer it by more than the fixed ratio: taken
    without a word (and audited as lightening skin), while its right range, given, was refused as "not faces"."""
    src = export(ColourShift(0.7, 0.0).eval(), tmp_path / "darkener.onnx")
    one = {**utk, "n": 1}
    with pytest.raises(BiasMirrorError, match=r"1 face\(s\) are too few to tell its range .* Give --range.* a larger "
                                              r"--n") as err:
        adopt(src, tmp_path / "a.onnx", "filter", **one)
    assert str(err.value).startswith(str(src)) and not (tmp_path / "a.onnx").exists()
    given = load_model(adopt(src, tmp_path / "b.onnx", "filter", value_range="unit", **one))
    assert given.card.training["adopted"]["range_chosen"].startswith("given: [0, 1]")


def test_a_filter_that_changes_the_face_size_is_told_so_plainly(tmp_path, utk):
    """An upscaler was refused with the shapes of a trial copy's graph and card, not told that it gives back faces of
    another size."""
    src = export(nn.Upsample(scale_factor=2), tmp_path / "upscaler.onnx")
    with pytest.raises(BiasMirrorError, match=rf"its output is {2 * SIZE}×{2 * SIZE}, not a face like the "
                                              rf"{SIZE}×{SIZE} one it is given") as err:
        adopt(src, tmp_path / "a.onnx", "filter", **utk)
    assert str(err.value).startswith(str(src)) and "card" not in str(err.value)
