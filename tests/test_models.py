"""Loading models: every bad file gives one clear error naming the file."""
import json

import numpy as np
import onnx
import pytest

from inference.errors import BiasMirrorError
from inference.models import Classifier, Filter, load_model, read_card
from inference.runtime import CPU, CUDA, TRT, RuntimeConfig, choose_providers, create_session


def test_load_good_models(tiny_models):
    c = load_model(tiny_models["classifier"])
    f = load_model(tiny_models["darken"])
    assert isinstance(c, Classifier) and isinstance(f, Filter)
    assert c.provider == "CPU" and c.size == (32, 32) and c.labels == ("male", "female")


@pytest.mark.parametrize("case,match", [
    ("missing", "not found"),
    ("empty", "empty"),
    ("truncated", "not a readable ONNX model"),
    ("text", "not a readable ONNX model"),
    ("no_card", "no Bias Mirror model card"),
    ("bad_card", "not valid JSON"),
])
def test_bad_files(tmp_path, tiny_models, case, match):
    path = tmp_path / f"{case}.onnx"
    good = tiny_models["classifier"].read_bytes()
    if case == "empty":
        path.write_bytes(b"")
    elif case == "truncated":
        path.write_bytes(good[: len(good) // 3])
    elif case == "text":
        path.write_text("hello, I am not a model")
    elif case in ("no_card", "bad_card"):
        m = onnx.load(str(tiny_models["classifier"]))
        del m.metadata_props[:]
        if case == "bad_card":
            m.metadata_props.add(key="model_card", value="{not json")
        onnx.save(m, str(path))
    with pytest.raises(BiasMirrorError, match=match) as err:
        load_model(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("change, says", [
    ("ir", "made for a newer ONNX Runtime (IR version 14; this one reads up to "),
    ("opset", "made for a newer ONNX Runtime (opset 99 of ai.onnx; this one supports up to opset "),
])
def test_a_model_too_new_for_this_onnxruntime_is_named_so_not_called_corrupt(tmp_path, tiny_models, change, says):
    m = onnx.load(str(tiny_models["classifier"]))
    if change == "ir":
        m.ir_version = 14
    else:
        next(o for o in m.opset_import if o.domain in ("", "ai.onnx")).version = 99
    path = tmp_path / "new.onnx"
    onnx.save(m, str(path))
    with pytest.raises(BiasMirrorError) as err:
        load_model(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and says in text and "upgrade onnxruntime or re-export" in text, text
    assert "corrupt" not in text and "onnxruntime::" not in text and "\n" not in text


def test_a_corrupt_model_keeps_onnxruntimes_reason(tmp_path, tiny_models):
    path = tmp_path / "cut.onnx"
    path.write_bytes(tiny_models["classifier"].read_bytes()[:200])
    with pytest.raises(BiasMirrorError, match=r"corrupt or another format\): Protobuf parsing failed\.$"):
        load_model(path)


def test_wrong_kind_and_card_graph_mismatch(tmp_path, tiny_models):
    with pytest.raises(BiasMirrorError, match="filter model, but a classifier was expected"):
        load_model(tiny_models["darken"], "classifier")
    m = onnx.load(str(tiny_models["classifier"]))
    card = read_card(tiny_models["classifier"])
    text = card.to_json().replace('"cam"', '"heatmap"')
    for p in m.metadata_props:
        if p.key == "model_card":
            p.value = text
    onnx.save(m, str(tmp_path / "x.onnx"))
    with pytest.raises(BiasMirrorError, match="heatmap"):
        load_model(tmp_path / "x.onnx")


def test_provider_choice_with_stubbed_lists():
    gpu_build = [TRT, CUDA, CPU]
    assert choose_providers("auto", gpu_build, gpus=1) == ([TRT, CUDA, CPU], None)
    assert choose_providers("cuda", gpu_build, gpus=1) == ([CUDA, CPU], None)
    assert choose_providers("cpu", gpu_build, gpus=1) == ([CPU], None)
    chosen, note = choose_providers("auto", gpu_build, gpus=0)
    assert chosen == [CPU] and "no CUDA GPU" in note
    chosen, note = choose_providers("cuda", [CPU], gpus=2)
    assert chosen == [CPU] and "onnxruntime-gpu is not installed" in note
    assert choose_providers("tensorrt", [CUDA, CPU], gpus=1) == ([CUDA, CPU], None)
    with pytest.raises(ValueError):
        choose_providers("tpu", gpu_build, 1)


def test_fallback_is_reported_not_hidden(tiny_models):
    info = create_session(tiny_models["classifier"], RuntimeConfig(provider="cuda"), gpus=0)
    assert info.provider == "CPUExecutionProvider" and "running on the CPU" in info.warning
    info = create_session(tiny_models["classifier"], RuntimeConfig(provider="cpu"))
    assert info.warning is None and info.short_provider == "CPU"


def test_a_failed_run_names_the_model_and_the_batch(tiny_models):
    c = load_model(tiny_models["classifier"])
    h, w = c.size
    with pytest.raises(BiasMirrorError, match=rf"\.onnx: classifier '{c.name}' failed on CPU with a batch of 2: ") as err:
        c.predict(np.zeros((2, h + 3, w, 3), np.uint8))  # ORT itself refuses the shape
    assert "Out of GPU memory" not in str(err.value)


def test_out_of_gpu_memory_says_what_to_try(tiny_models):
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    f = load_model(tiny_models["darken"])

    class Exhausted:
        def run(self, *_):
            raise ort_state.RuntimeException(
                "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running Conv node. "
                "Status Message: Failed to allocate memory for requested buffer of size 268435456")

    f.session = Exhausted()  # what CUDA's arena raises when the GPU is full, on the session the batch goes to
    f.info.provider = CUDA  # as if it ran there (its batch padded to 4): the GPU's memory, not the machine's
    with pytest.raises(BiasMirrorError, match=r"darken.*failed on CUDA with a batch of 3: .*Out of GPU memory.*--provider cpu"):
        f.apply(np.zeros((3, *f.size, 3), np.uint8))


# --- CUDA graphs: fixed buffers (run here on the CPU provider) and ORT's refusal (stubbed) ---------------------
@pytest.mark.parametrize("buckets", [False, True], ids=["per-size", "padded-buckets"])
def test_runs_through_fixed_buffers_give_what_plain_runs_give(tiny_models, monkeypatch, buckets):
    """The CUDA-graph path copies faces into buffers bound once per batch size and results out of them. Here it
    runs on the CPU provider, where ORT replays nothing, but the binding, padding, slicing and reuse are the same."""
    rng = np.random.default_rng(0)
    plain = load_model(tiny_models["classifier"])
    fixed = load_model(tiny_models["classifier"])
    fixed.info.cuda_graph = True  # as create_session sets it where ORT accepted CUDA graphs
    if buckets:  # as on a GPU: batches padded to 1, 2, 4, 8 … with a session each
        monkeypatch.setattr(Classifier, "pads_batches", property(lambda self: True))
    kept = []
    for n in (1, 3, 2, 3, 1, 4):
        faces = rng.integers(0, 256, (n, *fixed.size, 3), dtype=np.uint8)
        got, want = fixed.predict(faces), plain.predict(faces)
        assert [a.shape for a in got] == [a.shape for a in want]
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-5)
        kept.append((got, want))
    for got, want in kept:  # a later run into the same buffers changed none of the results handed out before
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    assert sorted(fixed._fixed) == ([1, 2, 4] if buckets else [1, 2, 3, 4])
    assert all(f.device == "cpu" for f in fixed._fixed.values())


class _StubSession:
    """What ORT's InferenceSession does on a GPU machine with CUDA graphs refused (or accepted)."""

    made: list = []
    refuse = True

    def __init__(self, model, sess_options=None, providers=None, **kwargs):  # as ORT's: enable_fallback=0
        type(self).made.append(providers)
        options = [p[1] for p in providers if isinstance(p, tuple)]
        if self.refuse and any(o.get("enable_cuda_graph") == "1" for o in options):
            raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : This session cannot use the CUDA Graph feature as "
                               "requested by the user  as all compute graph nodes have not been partitioned to the CUDA EP.")

    def get_providers(self):
        return [CUDA, CPU]


@pytest.mark.parametrize("refuse", [True, False])
def test_cuda_graphs_refused_by_ort_run_without_them_and_say_why(tiny_models, monkeypatch, refuse):
    from inference import runtime

    monkeypatch.setattr(_StubSession, "made", [])
    monkeypatch.setattr(_StubSession, "refuse", refuse)
    monkeypatch.setattr(runtime.ort, "InferenceSession", _StubSession)
    monkeypatch.setattr(runtime.ort, "get_available_providers", lambda: [CUDA, CPU])
    monkeypatch.setattr(runtime, "preload_gpu_libraries", lambda tensorrt=False: [])
    info = create_session(tiny_models["classifier"], RuntimeConfig(provider="cuda", cuda_graph=True), gpus=1)
    assert info.provider == CUDA
    asked = [dict(p[1]).get("enable_cuda_graph") for p in _StubSession.made[0] if isinstance(p, tuple)]
    assert asked == ["1"]
    if refuse:
        assert info.cuda_graph is False and len(_StubSession.made) == 2
        assert info.warning.startswith("CUDA graphs refused ([ONNXRuntimeError] : 1 : FAIL : This session cannot")
        assert "running without them" in info.warning
        assert all("enable_cuda_graph" not in p[1] for p in _StubSession.made[1] if isinstance(p, tuple))
    else:
        assert info.cuda_graph is True and info.warning is None and len(_StubSession.made) == 1
    plain = create_session(tiny_models["classifier"], RuntimeConfig(provider="cuda"), gpus=1)
    assert plain.cuda_graph is False  # never unless asked


def test_cuda_graphs_without_a_gpu_are_refused_by_name(tiny_models):
    info = create_session(tiny_models["classifier"], RuntimeConfig(provider="cuda", cuda_graph=True), gpus=0)
    assert info.provider == CPU and info.cuda_graph is False and info.warning


def test_onnx_runtime_keeps_no_telemetry_of_our_sessions(tmp_path):
    """onnxruntime 1.31 keeps a device id and an event store (model file names included) under the user's
    cache folder from the moment it is imported; ORT's own disable_telemetry_events() comes too late for that."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    code = ("import sys\nsys.path.insert(0, sys.argv[1])\nimport numpy as np\n"
            "from inference.runtime import RuntimeConfig, create_session\n"
            "s = create_session(sys.argv[2], RuntimeConfig(provider='cpu', threads=1)).session\n"
            "i = s.get_inputs()[0]\n"
            "s.run(None, {i.name: np.zeros([1 if not isinstance(d, int) else d for d in i.shape], np.uint8)})\n")
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORT_", "XDG_"))}
    env["HOME"] = str(home)
    model = REPO / "resources" / "models" / "resnet10_balanced.onnx"
    done = subprocess.run([sys.executable, "-c", code, str(REPO), str(model)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [p.relative_to(home) for p in home.rglob("*")] == []


# --- cards and graphs that disagree, or a card field of the wrong type -------------------------------------

def rewritten(src, dst, card_change=None, graph_change=None):
    """A copy of model ``src`` at ``dst`` with its card JSON (a dict) and/or its ONNX graph changed in place."""
    m = onnx.load(str(src))
    if graph_change is not None:
        graph_change(m.graph)
    if card_change is not None:
        prop = next(p for p in m.metadata_props if p.key == "model_card")
        card = json.loads(prop.value)
        card_change(card)
        prop.value = json.dumps(card)
    onnx.save(m, str(dst))
    return dst


def _symbolic_size(graph):
    """The image input's height and width left open in the graph, as a model exported with dynamic sizes has."""
    dims = graph.input[0].type.tensor_type.shape.dim
    for d in (dims[1], dims[2]):
        d.dim_param = "S"


def _set(path, value):
    def change(card):
        target = card
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize("field, change, graph_change", [
    ("'cam'", _set(["cam"], "cam"), None),
    ("'training'", _set(["training"], "oops"), None),
    ("'metrics'", _set(["metrics"], [1, 2]), None),
    ("'labels'", _set(["labels"], [1, 2]), None),
    ("'labels'", _set(["labels"], "mf"), None),
    ("'labels'", _set(["labels"], ["male", "male"]), None),
    ("'name'", _set(["name"], 123), None),
    ("'image'", _set(["inputs", 0, "shape"], ["N", -5, -5, 3]), _symbolic_size),
    ("'image'", _set(["inputs", 0, "shape"], ["N", "big", "big", 3]), _symbolic_size),
    ("cam 'grid'", _set(["cam", "grid"], [7, 7]), None),
])
def test_a_malformed_card_field_is_refused_by_name_not_a_traceback(tmp_path, tiny_models, field, change, graph_change):
    """Each loaded (or crashed with AttributeError) and then crashed summary(), the resize or the CAM's reshape."""
    path = rewritten(tiny_models["classifier"], tmp_path / "bad.onnx", change, graph_change)
    with pytest.raises(BiasMirrorError) as err:
        load_model(path)
    text = str(err.value)
    assert text.startswith(f"{path}: invalid model card") and field in text, text


def test_a_generator_latent_without_a_length_is_refused():
    from inference.card import ModelCard, generator_card

    card = json.loads(generator_card("g", 8, 16, "test", {}, {}).to_json())
    card["inputs"][0]["shape"] = ["N", "D"]
    with pytest.raises(BiasMirrorError, match=r"g\.onnx: invalid model card: 'z' has shape \['N', 'D'\]"):
        ModelCard.from_json(json.dumps(card), "g.onnx")


def test_a_generator_refuses_a_latent_that_is_not_a_batch(tiny_models):
    """A single latent of length 16 was run as "a batch of 16" and failed in ONNX Runtime's words."""
    gen = load_model(tiny_models["generator"], "generator")
    d = gen.latent_dim
    assert gen.generate(np.zeros((2, d), np.float32)).shape[0] == 2
    with pytest.raises(BiasMirrorError, match=rf"a batch of latents, an array of shape N × {d}; got shape \({d},\)"
                                              r" \(one latent: pass z\[None\]") as err:
        gen.generate(np.zeros(d, np.float32))
    assert "a batch of" in str(err.value) and f"batch of {d}" not in str(err.value)
    with pytest.raises(BiasMirrorError, match=rf"N × {d}; got shape \(2, {d + 1}\)"):
        gen.generate(np.zeros((2, d + 1), np.float32))


def test_a_card_from_a_newer_bias_mirror_asks_for_an_upgrade(tmp_path, tiny_models):
    path = rewritten(tiny_models["classifier"], tmp_path / "newer.onnx", _set(["schema_version"], 2))
    with pytest.raises(BiasMirrorError, match="schema version 2 is not supported .*; upgrade Bias Mirror") as err:
        load_model(path)
    assert "re-export" not in str(err.value)


def _batch_fixed_at_one(graph):
    for v in [*graph.input, *graph.output]:
        v.type.tensor_type.shape.dim[0].dim_value = 1


@pytest.mark.parametrize("what, change, graph_change, says", [
    ("batch", None, _batch_fixed_at_one, "input 'image' has its batch axis fixed at 1 in the graph, but the card "
                                         "declares a batch ('N')"),
    ("labels", _set(["labels"], ["male", "other", "female"]), None,
     "output 'probs' has shape ['N', 2] but the card has 3 labels"),
    ("labels, K open", lambda c: (_set(["labels"], ["male", "other", "female"])(c),
                                  _set(["outputs", 0, "shape"], ["N", "K"])(c)), None,
     "'probs' has shape ['N', 'K']: its sizes (axes 1) must be positive whole numbers"),
])
def test_a_card_the_graph_cannot_run_is_refused_at_load(tmp_path, tiny_models, what, change, graph_change, says):
    """A batch fixed at 1 under "N" failed on ORT's "Got invalid dimensions" mid-audit; a third label over two
    columns of probabilities with an IndexError."""
    path = rewritten(tiny_models["classifier"], tmp_path / "bad.onnx", change, graph_change)
    with pytest.raises(BiasMirrorError) as err:
        load_model(path)
    assert str(err.value).startswith(f"{path}: ") and says in str(err.value), str(err.value)


def _extra_output_first(graph):
    """A second output, the unfiltered face, listed before 'filtered'."""
    graph.node.append(onnx.helper.make_node("Identity", [graph.input[0].name], ["mask"]))
    first = onnx.helper.make_tensor_value_info("mask", onnx.TensorProto.UINT8, ["N", 32, 32, 3])
    outputs = [first, *graph.output]
    del graph.output[:]
    graph.output.extend(outputs)


def _outputs_reversed(graph):
    outputs = list(graph.output)[::-1]
    del graph.output[:]
    graph.output.extend(outputs)


def _input_renamed(graph, new="pixels"):
    old = graph.input[0].name
    graph.input[0].name = new
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def test_outputs_are_read_by_the_names_the_card_gives(tmp_path, tiny_models, rng):
    """By position, a filter listing a mask first returned the mask, and a classifier listing cam first failed."""
    faces = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    darken = load_model(tiny_models["darken"])
    masked = load_model(rewritten(tiny_models["darken"], tmp_path / "f.onnx", graph_change=_extra_output_first))
    np.testing.assert_array_equal(masked.apply(faces), darken.apply(faces))
    plain = load_model(tiny_models["classifier"])
    swapped = load_model(rewritten(tiny_models["classifier"], tmp_path / "c.onnx", graph_change=_outputs_reversed))
    for got, want in zip(swapped.predict(faces), plain.predict(faces)):
        np.testing.assert_array_equal(got, want)


def test_the_image_is_fed_by_the_name_the_card_gives(tmp_path, tiny_models, rng):
    """Fed as "image", a model whose card names its input "pixels" failed: Required inputs (['pixels']) are missing."""
    path = rewritten(tiny_models["classifier"], tmp_path / "pixels.onnx",
                     _set(["inputs", 0, "name"], "pixels"), _input_renamed)
    faces = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    probs, cam = load_model(path).predict(faces)
    np.testing.assert_array_equal(probs, load_model(tiny_models["classifier"]).predict(faces)[0])


def test_a_card_without_test_metrics_says_not_measured(tiny_models):
    """A run with no test faces records its accuracy as null; formatting it crashed doctor, audit and the app."""
    from dataclasses import replace

    from inference.card_markdown import card_markdown

    unmeasured = {"value": None, "lo": None, "hi": None, "n": 0}
    card = replace(read_card(tiny_models["classifier"]),
                   metrics={"overall": {"n": 0, "accuracy": unmeasured}, "by": {"gender×race": {}},
                            "evaluated_on": {"split": "test", "n": 0}})
    assert card.summary().endswith("test accuracy not measured")
    md = card_markdown(card, "c.onnx", 0.1)
    assert "Test accuracy not measured" in md and "None" not in md


def test_training_without_test_faces_warns_and_its_card_reads_not_measured(tmp_path, caplog, capsys):
    """A labels.csv of train and val only: the run wrote accuracy null, which every command printing the card
    then crashed on, and nothing had said the card would carry no test metrics."""
    import logging

    import cv2

    import main
    from inference.card_markdown import card_markdown

    data = tmp_path / "faces"
    data.mkdir()
    rows = ["file,gender,age,split"]
    for i in range(24):
        cv2.imwrite(str(data / f"{i}.png"), np.full((32, 32, 3), 40 + 8 * i, np.uint8))
        rows.append(f"{i}.png,{('male', 'female')[i % 2]},30,{'val' if i >= 18 else 'train'}")
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        assert main.main(["train", "classifier", "--dataset", f"folder:{data}", "--size", "32", "--width", "8",
                          "--epochs", "1", "--batch-size", "8", "--cache", "", "--device", "cpu", "--threads", "1",
                          "--out", str(run)]) == 0
    capsys.readouterr()
    assert any("no test faces" in r.getMessage() and "not measured" in r.getMessage() for r in caplog.records)
    card = read_card(run / "model.onnx")
    assert card.summary().endswith("test accuracy not measured")
    assert "Test accuracy not measured" in card_markdown(card, "model.onnx", 0.1)


def test_a_cam_grid_left_as_names_is_refused_at_load(tmp_path, tiny_models):
    """The runtime sizes an empty batch's CAMs by the grid; named axes there crashed np.zeros."""
    def named_grid(card):
        card["cam"]["grid"] = ["h", "w"]
        card["outputs"][1]["shape"] = ["N", 2, "h", "w"]

    path = rewritten(tiny_models["classifier"], tmp_path / "named.onnx", named_grid)
    with pytest.raises(BiasMirrorError, match=r"named\.onnx: the card's cam grid \['h', 'w'\] is not two positive"):
        load_model(path)


def test_a_model_this_onnx_runtime_cannot_run_is_named_not_a_traceback(tmp_path, tiny_models):
    """ORT's NotImplemented (an Erf over doubles has no CPU kernel) derives from Exception, not RuntimeError: it
    went through load_model as a traceback in run and the app, and stopped the app starting with it saved."""
    from onnx import TensorProto, helper

    from inference.defaults import load_folder

    def erf_of_doubles(graph):
        graph.node.extend([helper.make_node("Cast", ["image"], ["as_double"], to=TensorProto.DOUBLE),
                           helper.make_node("Erf", ["as_double"], ["aux"])])
        graph.output.append(helper.make_tensor_value_info("aux", TensorProto.DOUBLE, None))

    folder = tmp_path / "models"
    folder.mkdir()
    path = rewritten(tiny_models["darken"], folder / "erf.onnx", graph_change=erf_of_doubles)
    with pytest.raises(BiasMirrorError, match="this ONNX Runtime cannot run it: .*Erf") as exc:
        load_model(path)
    assert str(path) in str(exc.value)
    loaded = load_folder(folder)
    assert any("erf.onnx" in str(e) for e in loaded.errors)


def test_a_generator_among_the_default_models_is_named_as_not_used(tmp_path, tiny_models):
    """A generator dropped into the models folder loaded and vanished: nothing ran it and nothing said so, in the
    app's models panel or in `run`'s log."""
    import shutil

    from inference.defaults import load_folder

    folder = tmp_path / "models"
    folder.mkdir()
    for key in ("classifier", "darken", "generator"):
        shutil.copy(tiny_models[key], folder / tiny_models[key].name)
    found = load_folder(folder)
    assert [m.name for m in found.classifiers] == ["tiny-a"] and [m.name for m in found.filters] == ["darken"]
    assert len(found.errors) == 1, found.errors
    assert str(folder / "generator.onnx") in found.errors[0] and "generator" in found.errors[0]
    assert "not used" in found.errors[0]


@pytest.mark.parametrize("kind", ["classifier", "filter"])
def test_a_model_trained_to_nan_is_refused_at_export_and_its_checkpoint_kept(tmp_path, kind):
    """A classifier trained with --lr 1e12 (loss NaN) was exported with exit status 0 as "parity: max|Δprobs| nan":
    nan > limit is False. A filter's uint8 output hid its NaN altogether (NaN casts to a grey level)."""
    import torch

    from inference.card import classifier_card, filter_card

    (tmp_path / "last.pt").write_bytes(b"checkpoint")
    path = tmp_path / "model.onnx"
    if kind == "classifier":
        from training.nets.cam_classifier import CamClassifier, ClassifierConfig
        from training.tasks.classifier_report import export_classifier

        net = CamClassifier(ClassifierConfig(arch="resnet", size=32, width=8)).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(float("nan"))
        card = classifier_card("diverged", 32, ["male", "female"], net.cam_grid(), "test model", {"dataset": "none"}, {})
        with pytest.raises(BiasMirrorError) as err:
            export_classifier(net, 32, path, card)
    else:
        from training.tasks.cyclegan_report import export_generator

        class Diverged(torch.nn.Module):
            def forward(self, x):
                return x * float("nan")

        card = filter_card("diverged", 32, "A->B", "test filter", {"dataset": "none"}, {})
        with pytest.raises(BiasMirrorError) as err:
            export_generator(Diverged(), 32, path, card)
    msg = str(err.value)
    assert str(path) in msg and "not finite" in msg and "diverged" in msg and "lower --lr" in msg
    assert str(tmp_path / "last.pt") in msg and "kept" in msg
    assert not path.exists() and (tmp_path / "last.pt").read_bytes() == b"checkpoint"


def test_a_card_whose_test_faces_got_no_finite_prediction_says_so_not_that_it_had_none(tiny_models):
    """A model trained to NaN was evaluated on 11 test faces, none with a finite P(female): its card said "no faces
    in the test split"."""
    from dataclasses import replace

    from inference.card_markdown import card_markdown

    unmeasured = {"value": None, "lo": None, "hi": None, "n": 0}
    card = read_card(tiny_models["classifier"])
    nan_model = replace(card, metrics={"overall": {"n": 0, "accuracy": unmeasured}, "by": {"gender×race": {}},
                                       "evaluated_on": {"split": "test", "n": 11}})
    md = card_markdown(nan_model, "c.onnx", 0.1)
    assert "Test accuracy not measured: the test split has 11 faces, but none got a finite prediction" in md
    assert "no faces in the test split" not in md and "|---|" not in md  # no table of headers alone
    empty = replace(card, metrics={**nan_model.metrics, "evaluated_on": {"split": "test", "n": 0}})
    assert "Test accuracy not measured: no faces in the test split." in card_markdown(empty, "c.onnx", 0.1)


def test_a_card_says_its_model_is_an_average_of_weights(tiny_models):
    """--swa-epochs: the card's weight_averaging was in no line of docs/models.md or the app's card dialog."""
    from dataclasses import replace

    from inference.card_markdown import card_markdown

    card = read_card(tiny_models["classifier"])
    averaged = replace(card, training={**card.training, "epochs": 3, "weight_averaging": {
        "method": "stochastic weight averaging", "epochs": 2, "lr": 0.0005, "snapshots": 6,
        "val_accuracy_last": 0.4167, "val_accuracy_averaged": None}})
    md = card_markdown(averaged, "c.onnx", 0.1)
    assert ("the exported model is the average of 6 snapshots of its weights over the last 2 epoch(s) "
            "(after the 3 one-cycle epoch(s), at a constant learning rate 0.0005)") in md
    assert "validation accuracy not measured averaged, 0.4167 for the last weights" in md
    assert "weight averaging" not in card_markdown(card, "c.onnx", 0.1)


def test_a_filter_card_gives_its_two_training_domains_and_its_shifts_per_gender_and_race():
    """A filter's domain_a/domain_b (name, n_train, composition) were missing from its Markdown, and a re-exported
    filter's by_gender_race shifts were only part of a JSON dump cut at 4000 characters."""
    from dataclasses import replace
    from pathlib import Path

    from inference.card_markdown import card_markdown

    card = read_card(Path(__file__).resolve().parent.parent / "resources" / "models" / "engineer_filter.onnx")
    md = card_markdown(card, "f.onnx", 3.2)
    a, b = card.training["domain_a"], card.training["domain_b"]
    assert (f"- domain A: {a['name']}, {a['n_train']} training faces; composition (balanced over gender × race): "
            "female|Asian 185, female|Black 185") in md
    assert f"- domain B: {b['name']}, {b['n_train']} training faces; composition (target over gender × race): " in md
    assert "male|White 846" in md and ("Held-out shifts" in md) == bool(card.metrics.get("by_gender_race"))
    cells = {"female|Black": {"n": 37, "n_skin_measured": 35, "mean_delta_ita": -0.6875, "mean_delta_p_female": -0.03},
             "male|White": {"n": 94, "mean_delta_ita": -3.1229}}  # no ΔP(female) without --classifier; an older card
    md = card_markdown(replace(card, metrics={**card.metrics, "by_gender_race": cells}), "f.onnx", 3.2)
    # the faces ΔITA was measured on apart from the group's: a mean over 9 faces had stood under n = 10
    assert "| gender × race | faces | skin measured | mean ΔITA° | mean ΔP(female) |" in md
    assert "| female\\|Black | 37 | 35 | -0.688 | -0.030 |" in md and "| male\\|White | 94 | ? | -3.123 | – |" in md
    assert '"by_gender_race"' not in md and '"by_race"' in md


@pytest.mark.parametrize("change, says", [
    (_set(["inputs", 0, "layout"], "NHWC"), r"input 'z' is said to be NHWC \(an image batch\) but has shape"),
    (_set(["outputs", 0, "shape"], ["N", 16, 16, 4]), r"needs a uint8 N×H×W×3 RGB \(NHWC\) output named 'image'"),
    (_set(["outputs", 0, "shape"], ["N", 16, 16, 1]), r"needs a uint8 N×H×W×3 RGB \(NHWC\) output named 'image'"),
    (_set(["outputs", 0, "color"], "BGR"), r"needs a uint8 N×H×W×3 RGB \(NHWC\) output named 'image'"),
])
def test_a_generator_card_must_say_a_latent_gives_an_rgb_face(change, says):
    """A latent said to be NHWC passed, then crashed `doctor`'s summary (IndexError); a generator of 4 or 1 channels,
    or of BGR faces, loaded where every consumer reads an RGB face."""
    from inference.card import ModelCard, generator_card

    card = json.loads(generator_card("g", 8, 16, "test", {}, {}).to_json())
    change(card)
    with pytest.raises(BiasMirrorError, match=r"g\.onnx: invalid model card: .*" + says):
        ModelCard.from_json(json.dumps(card), "g.onnx")


def test_a_filter_card_of_bgr_faces_is_refused(tiny_models):
    from inference.card import ModelCard

    card = json.loads(read_card(tiny_models["darken"]).to_json())
    card["inputs"][0]["color"] = "BGR"
    with pytest.raises(BiasMirrorError, match=r"needs a uint8 N×H×W×3 RGB image input"):
        ModelCard.from_json(json.dumps(card), "f.onnx")


@pytest.mark.parametrize("name, legacy", [("last.pt", False), ("weights.pth", True), ("model", False)])
def test_a_pytorch_checkpoint_given_as_a_model_is_named_so_not_called_corrupt(tmp_path, name, legacy):
    """A run folder holds last.pt beside model.onnx, and the checkpoint given as the model read "not a readable ONNX
    model (truncated, corrupt or another format)", as if the training had gone wrong."""
    torch = pytest.importorskip("torch")
    path = tmp_path / name
    torch.save({"weights": torch.ones(3)}, path, _use_new_zipfile_serialization=not legacy)
    with pytest.raises(BiasMirrorError, match=r"is a PyTorch checkpoint or saved model, not an ONNX model: give the "
                                              r"\.onnx file its training exported") as caught:
        load_model(path)
    assert caught.value.path == str(path)


def test_a_pickle_not_named_as_a_checkpoint_is_not_called_one(tmp_path):
    import pickle

    path = tmp_path / "model.onnx"
    path.write_bytes(pickle.dumps({"not": "onnx"}))
    with pytest.raises(BiasMirrorError, match="not a readable ONNX model") as caught:
        load_model(path)
    assert "PyTorch" not in str(caught.value)


@pytest.mark.parametrize("key", ["classifier", "darken"])
def test_faces_other_than_a_uint8_batch_are_refused_saying_how_to_pass_them(tiny_models, key):
    """Floats 0…1 had been cast to uint8 (all 0 or 1): every face the same P(female), filtered faces near black,
    without an error; one face's rows had been taken for the batch."""
    model = load_model(tiny_models[key])
    h, w = model.size
    faces = np.random.default_rng(0).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    run = model.predict if key == "classifier" else model.apply
    run(faces)  # a uint8 batch runs
    with pytest.raises(BiasMirrorError, match=r"uint8 RGB \(0…255\); got float64 \(floats 0…1\? pass"):
        run(faces / 255.0)
    with pytest.raises(BiasMirrorError, match=r"N × H × W × 3; got shape \(\d+, \d+, 3\) \(one face: pass faces\[None\]"):
        run(faces[0])
