"""FP16 variants: converted, measured against the fp32 parent on real faces, written only when they keep parity."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import main
from inference.file_identity import file_hash
from inference.card import ModelCard
from inference.card_markdown import card_markdown
from inference.errors import BiasMirrorError
from inference.images import read_rgb
from inference.models import Classifier, Filter, load_model, read_card
from tests.conftest import require_utk, utk_images
from training import fp16

N = 24  # faces per parity run: enough to exercise batching, fast on two cores


def convert_cli(model, out, capsys, *extra):
    code = main.main(["train", "fp16", str(model), "--out", str(out), "--images", str(require_utk()),
                      "--n", str(N), "--provider", "cpu", *extra])
    captured = capsys.readouterr()
    if code != 0 and "cannot run fp16" in captured.err:
        pytest.skip(f"this machine's CPU provider cannot run the fp16 variant: {captured.err.strip()}")
    assert code == 0, captured.err
    return captured.out


def fp16_initializers(path) -> int:
    model = onnx.load(str(path))
    kinds = {t.data_type for t in model.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)}
    assert onnx.TensorProto.FLOAT not in kinds, "float32 weights left in the fp16 variant"
    return sum(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def test_classifier_variant_keeps_parity_and_its_card_says_so(tiny_models, tmp_path, capsys):
    parent_path = tiny_models["classifier"]
    out = tmp_path / "c_fp16.onnx"
    printed = convert_cli(parent_path, out, capsys)
    assert "fp16 parity" in printed and "PASS" in printed and "fp32/fp16" in printed

    assert fp16_initializers(out) > 0
    variant, parent = load_model(out), load_model(parent_path)  # loads unchanged: uint8 in, float32 out
    assert isinstance(variant, Classifier) and variant.labels == parent.labels
    # Independent re-check on other faces than the command used.
    faces = np.stack([read_rgb(str(p), 32) for p in utk_images(16, race="1")])
    (p16, cam16), (p32, cam32) = variant.predict(faces), parent.predict(faces)
    assert p16.dtype == np.float32 and cam16.shape == cam32.shape
    assert 0 < np.abs(p16 - p32).max() <= fp16.MAX_DPROB  # > 0: the weights really changed

    card = variant.card
    assert card.precision == "fp16" and parent.card.precision == "fp32"
    assert card.name == parent.card.name + "-fp16" and card.labels == parent.card.labels
    assert card.training["fp16"]["parent"] == parent_path.name
    assert card.training["fp16"]["parent_sha256"] == file_hash(parent_path)
    parity = card.metrics["fp16_parity"]
    assert parity["measured"] and parity["passed"] and parity["n"] == N and parity["provider"] == "CPU"
    assert 0 < parity["max_abs_dprob"] <= fp16.MAX_DPROB
    assert isinstance(parity.get("cpu_fp32_ops"), list)
    md = card_markdown(card, out.name, 0.1)
    assert "precision: fp16" in md and parent_path.name in md and "max_abs_dprob" in md
    assert "precision: fp32" in card_markdown(parent.card, parent_path.name, 0.1)


def test_filter_variant_within_two_grey_levels(tiny_models, tmp_path, capsys):
    parent_path = tiny_models["darken"]
    out = tmp_path / "darken_fp16.onnx"
    convert_cli(parent_path, out, capsys)
    variant, parent = load_model(out, "filter"), load_model(parent_path, "filter")
    assert isinstance(variant, Filter)
    faces = np.stack([read_rgb(str(p), 32) for p in utk_images(16, race="2")])
    got, want = variant.apply(faces), parent.apply(faces)
    assert got.dtype == np.uint8 and got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= fp16.MAX_GREY
    parity = variant.card.metrics["fp16_parity"]
    assert parity["passed"] and parity["max_abs_grey"] <= fp16.MAX_GREY
    assert parity["p99_9_abs_grey"] <= parity["max_abs_grey"] and 0 <= parity["share_changed"] <= 1
    assert variant.card.direction == parent.card.direction and "fp16" in variant.card.summary()


def test_generator_variant(tmp_path, capsys, tiny_models):
    path = tiny_models["generator"]
    out = tmp_path / "gen_fp16.onnx"
    convert_cli(path, out, capsys)
    gen = load_model(out, "generator")
    assert gen.generate(np.zeros((2, 8), np.float32)).shape == (2, 16, 16, 3)
    assert gen.card.metrics["fp16_parity"]["max_abs_grey"] <= fp16.MAX_GREY


def test_parity_failure_writes_nothing_unless_forced(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setattr(fp16, "MAX_DPROB", 0.0)  # any real fp16 rounding now fails the gate
    out = tmp_path / "strict.onnx"
    with pytest.raises(BiasMirrorError, match="fails parity: max_abs_dprob") as err:
        fp16.make_variant(tiny_models["classifier"], out, require_utk(), N, "cpu", echo=lambda s: None)
    assert str(tiny_models["classifier"]) in str(err.value)
    assert not out.exists() and not list(tmp_path.iterdir())  # no variant, no leftovers
    fp16.make_variant(tiny_models["classifier"], out, require_utk(), N, "cpu", force=True, echo=lambda s: None)
    parity = read_card(out).metrics["fp16_parity"]
    assert parity["measured"] and not parity["passed"] and parity["limit"] == {"max_abs_dprob": 0.0}


def test_provider_without_fp16_kernels_is_reported_not_crashed(tiny_models, tmp_path, monkeypatch):
    """A provider that answers NOT_IMPLEMENTED for an fp16 op (simulated: this CPU upcasts instead)."""
    import inference.models as models

    real = models.create_session

    def refuse_fp16(path, cfg, *a, **kw):
        if "fp16" in str(path):
            raise ort.capi.onnxruntime_pybind11_state.NotImplemented(
                "[ONNXRuntimeError] : 9 : NOT_IMPLEMENTED : Could not find an implementation for Conv(11) node with name 'c'")
        return real(path, cfg, *a, **kw)

    monkeypatch.setattr(models, "create_session", refuse_fp16)
    out = tmp_path / "m_fp16.onnx"
    with pytest.raises(BiasMirrorError, match="the CPU provider cannot run fp16 Conv; parity must be measured on a GPU"):
        fp16.make_variant(tiny_models["classifier"], out, require_utk(), N, "cpu", echo=lambda s: None)
    assert not out.exists()
    fp16.make_variant(tiny_models["classifier"], out, require_utk(), N, "cpu", unchecked=True, echo=lambda s: None)
    monkeypatch.setattr(models, "create_session", real)
    parity = read_card(out).metrics["fp16_parity"]
    assert parity["measured"] is False and "cannot run fp16 Conv" in parity["reason"]
    assert "UNMEASURED" in card_markdown(read_card(out), out.name, 0.1)


def _no_card_model(source, path):
    model = onnx.load(str(source))
    del model.metadata_props[:]
    onnx.save(model, str(path))


@pytest.mark.parametrize("case,match", [
    ("garbage", "not a readable ONNX model"),
    ("truncated", "not a readable ONNX model"),
    ("no_card", "no Bias Mirror model card"),
    ("already_fp16", "already fp16"),
    ("no_images", "no image folder to measure fp16 parity on"),
])
def test_wrong_input_is_one_clear_line(tiny_models, tmp_path, capsys, case, match):
    path = tmp_path / f"{case}.onnx"
    images = str(require_utk())
    if case == "garbage":
        path.write_bytes(b"\x00garbage, not a model")
    elif case == "truncated":
        data = tiny_models["classifier"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "no_card":
        _no_card_model(tiny_models["classifier"], path)
    elif case == "already_fp16":
        fp16.make_variant(tiny_models["darken"], path, images, 8, "cpu", echo=lambda s: None)
    else:
        path.write_bytes(tiny_models["darken"].read_bytes())
        images = str(tmp_path / "no_such_folder")
    out = tmp_path / "out_fp16.onnx"
    code = main.main(["train", "fp16", str(path), "--out", str(out), "--images", images, "--n", "8"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and match in err
    assert (images if case == "no_images" else str(path)) in err


def test_card_precision_is_optional_and_checked(tiny_models):
    raw = json.loads(read_card(tiny_models["classifier"]).to_json())
    raw.pop("precision")  # a card written before the field existed
    assert ModelCard.from_json(json.dumps(raw)).precision == "fp32"
    raw["precision"] = "int4"
    with pytest.raises(BiasMirrorError, match="precision 'int4'"):
        ModelCard.from_json(json.dumps(raw))


def _conditional_trap(path):
    """A conditional filter that is the identity under 'female' and adds 0.1 (about 13 grey levels) under 'male' as
    the difference of two offsets near 1000, which fp16 (spacing 0.5 there) cannot hold: parity holds under the
    first condition only."""
    import torch

    from inference.card import filter_card
    from training.export import ImageToImageGraph, export

    class Trap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(2, 1, bias=False), torch.nn.Linear(2, 1, bias=False)
            with torch.no_grad():
                self.a.weight[:] = torch.tensor([[0.0, 1000.1]])
                self.b.weight[:] = torch.tensor([[0.0, 1000.0]])

        def forward(self, x, c):
            return torch.clamp(x + (self.a(c) - self.b(c))[:, :, None, None], -1, 1)

    card = filter_card("trap", 32, "A->B", "test", {"dataset": "none"}, {}, ["female", "male"])
    export(ImageToImageGraph(Trap(), conditional=True), [torch.zeros(1, 32, 32, 3, dtype=torch.uint8), torch.zeros(1, 2)],
           ["image", "condition"], ["filtered"], path, card)
    return path


def test_a_conditional_filter_keeps_parity_under_every_condition_or_fails(tmp_path):
    """Measured under its first condition only, a variant 13 grey levels off under 'male' was written as passing."""
    parent = _conditional_trap(tmp_path / "trap.onnx")
    out = tmp_path / "trap_fp16.onnx"
    with pytest.raises(BiasMirrorError, match="fails parity: max_abs_grey .* under its worst condition, male,"):
        fp16.make_variant(parent, out, require_utk(), 8, "cpu", echo=lambda s: None)
    assert not out.exists()
    fp16.make_variant(parent, out, require_utk(), 8, "cpu", force=True, echo=lambda s: None)
    parity = read_card(out).metrics["fp16_parity"]
    assert not parity["passed"] and parity["worst_condition"] == "male" and parity["max_abs_grey"] > fp16.MAX_GREY
    assert parity["max_abs_grey_by_condition"]["female"] <= fp16.MAX_GREY
    assert "its worst condition, male" in card_markdown(read_card(out), out.name, 0.1)


def _unsqueeze_classifier(path):
    """A classifier whose CAM is its probabilities unsqueezed and expanded: the converter leaves the Unsqueeze's
    output typed fp16 after a kept-fp32 Softmax, a graph ONNX Runtime refuses."""
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    from inference.card import classifier_card

    nodes = [h.make_node("Cast", ["image"], ["xf"], to=T.FLOAT),
             h.make_node("ReduceMean", ["xf"], ["m"], axes=[1, 2], keepdims=0),
             h.make_node("MatMul", ["m", "W"], ["lg"]),
             h.make_node("Softmax", ["lg"], ["probs"], axis=1),
             h.make_node("Unsqueeze", ["probs", "ax"], ["p4"]),
             h.make_node("Expand", ["p4", "cs"], ["cam"])]
    inits = [nh.from_array(np.array([[0.05, -0.05], [0, 0], [-0.05, 0.05]], np.float32), "W"),
             nh.from_array(np.array([2, 3], np.int64), "ax"), nh.from_array(np.array([1, 1, 4, 4], np.int64), "cs")]
    graph = h.make_graph(nodes, "c", [h.make_tensor_value_info("image", T.UINT8, ["N", 32, 32, 3])],
                         [h.make_tensor_value_info("probs", T.FLOAT, ["N", 2]),
                          h.make_tensor_value_info("cam", T.FLOAT, ["N", 2, 4, 4])], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    card = classifier_card("unsq", 32, ["female", "male"], (4, 4), "test", {"dataset": "none"}, {})
    model.metadata_props.add(key="model_card", value=card.to_json())
    onnx.save(model, str(path))
    return path


def test_a_conversion_onnx_runtime_refuses_names_the_source_and_the_ops_to_keep(tmp_path, capsys):
    """It read "…/.fp16-xxxx/…: not a readable ONNX model (truncated, corrupt…)", a temporary file since removed."""
    src = _unsqueeze_classifier(tmp_path / "unsq.onnx")
    out = tmp_path / "unsq_fp16.onnx"
    code = main.main(["train", "fp16", str(src), "--out", str(out), "--images", str(require_utk()), "--n", "4",
                      "--provider", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and not out.exists()
    assert f"{src}: cannot convert to fp16: the converted graph is invalid (" in err, err
    assert "Unsqueeze" in err and err.endswith("; try --keep-fp32 Unsqueeze")
    assert ".fp16-" not in err and "corrupt" not in err and "Traceback" not in err


def test_a_variant_written_among_the_default_models_is_said_to_be_one(tiny_models, tmp_path, monkeypatch):
    """`train fp16 resources/models/x.onnx` writes beside it, where it silently became a fourth default classifier."""
    import shutil

    defaults = tmp_path / "models"
    defaults.mkdir()
    src = defaults / "c.onnx"
    shutil.copy(tiny_models["classifier"], src)
    monkeypatch.setattr(fp16, "MODELS_DIR", defaults)
    said = []
    out = fp16.make_variant(src, None, require_utk(), N, "cpu", force=True, echo=said.append)
    assert out.parent == defaults and any("is now one of the default models" in s for s in said)
    said.clear()
    fp16.make_variant(src, tmp_path / "elsewhere.onnx", require_utk(), N, "cpu", force=True, echo=said.append)
    assert not any("default models" in s for s in said)


def test_an_out_of_the_parents_own_path_written_with_a_tilde_is_refused(tiny_models, tmp_path, monkeypatch, capsys):
    """`--out '~/m.onnx'` for ~/m.onnx was compared unexpanded, then written expanded: the fp32 parent was replaced
    by its fp16 variant, exit 0."""
    home = tmp_path / "home"
    home.mkdir()
    parent = home / "m.onnx"
    parent.write_bytes(tiny_models["darken"].read_bytes())
    before = parent.read_bytes()
    monkeypatch.setenv("HOME", str(home))
    code = main.main(["train", "fp16", str(parent), "--out", "~/m.onnx", "--images", str(require_utk()), "--n", "8",
                      "--provider", "cpu"])
    assert code == 2 and "would overwrite its parent" in capsys.readouterr().err
    assert parent.read_bytes() == before
