"""Damaged models found by fuzzing, each refused in one line naming its file: a card or a name that is not UTF-8, a
card nested past the recursion limit, weights in an external data file that is missing or cut short, outputs of
another shape than the card's at run time, probs that are not probabilities; and what `run` and `bench` say when a
model fails partway. Tiny models changed in place, as tests/test_models.py does."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from inference.card import ModelCard
from inference.errors import BiasMirrorError
from inference.models import Classifier, load_model
from tests.conftest import make_diverged_classifier, run_main


def changed(src: Path, dst: Path, change) -> Path:
    """A copy of model ``src`` at ``dst``, ``change(model)`` made to its ONNX proto."""
    m = onnx.load(str(src))
    change(m)
    onnx.save(m, str(dst))
    return dst


def refused(path: Path) -> str:
    """The one line ``load_model`` refuses ``path`` with, without the file's name it opens with."""
    with pytest.raises(BiasMirrorError) as err:
        load_model(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text, text
    return text[len(f"{path}: "):]


def faces_for(model) -> np.ndarray:
    """Three grey faces at the model's size: a batch, so a model answering for its first face alone is seen."""
    return np.full((3, *model.size, 3), 128, np.uint8)


def producer(m: onnx.ModelProto, output: str) -> onnx.NodeProto:
    return next(n for n in m.graph.node if output in n.output)


# --- 1. a flipped bit in the card or in a name: not UTF-8 ------------------------------------------------------------

def one_bit_flipped(data: bytes, at: int) -> bytes:
    """``data`` with the top bit of byte ``at`` flipped: an ASCII letter becomes a byte UTF-8 cannot decode there."""
    damaged = bytearray(data)
    damaged[at] ^= 0x80
    return bytes(damaged)


@pytest.mark.parametrize("where", ["card", "node name"])
def test_a_card_or_a_name_that_is_not_utf8_is_refused_by_name_not_a_traceback(where, tmp_path, tiny_models):
    """ORT's Python layer raised UnicodeDecodeError decoding the card (or its own message, quoting a damaged node
    name): a traceback in every command, and an app that exited at each start where the model was a saved one."""
    data = tiny_models["classifier"].read_bytes()
    if where == "card":
        at = data.find(b'"kind"') + 1
    else:  # the last use of a name, as a node's input: ORT's message quotes it as the name no node makes
        m = onnx.load(str(tiny_models["classifier"]))
        at = data.rfind(producer(m, "probs").input[0].encode()) + 2
    path = tmp_path / "flipped.onnx"
    path.write_bytes(one_bit_flipped(data, at))
    assert refused(path) == "not a readable ONNX model: corrupt (its card or a name is not UTF-8 text)"


def test_a_card_nested_too_deeply_is_refused_not_a_recursion_error(tmp_path, tiny_models):
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(BiasMirrorError, match="the model card is not readable JSON: it is nested too deeply"):
        ModelCard.from_json(deep, "card.json")

    def nest(m):
        next(p for p in m.metadata_props if p.key == "model_card").value = deep

    path = changed(tiny_models["classifier"], tmp_path / "deep.onnx", nest)
    assert refused(path) == "the model card is not readable JSON: it is nested too deeply"


# --- 5. weights in an external data file that is missing or cut short ----------------------------------------------

def with_external_weights(src: Path, folder: Path) -> tuple[Path, Path]:
    """A copy of ``src`` in ``folder`` whose weights are kept in an external data file beside it: (model, data)."""
    m = onnx.load(str(src))
    model, data = folder / "ext.onnx", folder / "ext.data"
    onnx.save(m, str(model), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name,
              size_threshold=0)
    assert data.stat().st_size > 0
    return model, data


def test_a_missing_external_data_file_is_named_as_train_adopt_names_it(tmp_path, tiny_models):
    """It was "not a readable ONNX model (truncated, corrupt or another format): External data path validation
    failed … tensorprotoutils.cc:461 …"; `train adopt` named the missing file."""
    model, data = with_external_weights(tiny_models["classifier"], tmp_path)
    load_model(model)  # whole, it loads
    data.unlink()
    text = refused(model)
    assert text.startswith(f"not a readable ONNX model: its weights are kept in an external data file, {data}, "
                           "which does not exist"), text
    assert "put that file where the model says" in text and ".cc:" not in text and "corrupt" not in text


def test_an_external_data_file_cut_short_is_named_with_what_it_lacks(tmp_path, tiny_models):
    model, data = with_external_weights(tiny_models["classifier"], tmp_path)
    whole = data.read_bytes()
    data.write_bytes(whole[: len(whole) // 2])
    text = refused(model)
    assert text.startswith(f"not a readable ONNX model: its weights are kept in an external data file, {data}, which "
                           "is shorter than the model says"), text
    assert f"the file has {len(whole) // 2})" in text and ".cc:" not in text


# --- 2. outputs of another shape than the card's, at run time ------------------------------------------------------

def probs_of_the_first_face_only(m: onnx.ModelProto) -> None:
    """'probs' cut to the batch's first row; the graph still declares N×K, so the load check passes it."""
    producer(m, "probs").output[0] = "all_probs"
    m.graph.node.append(helper.make_node("Slice", ["all_probs", "zero", one_known_at_run_time(m), "zero"], ["probs"]))
    m.graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), "zero"))


def one_known_at_run_time(m: onnx.ModelProto) -> str:
    """A tensor [1] computed from the image (0 × its minimum, + 1): where a slice ends at it, ORT's shape inference
    cannot tell the slice's size at load, as where a graph's sizes depend on its input."""
    m.graph.node.extend([helper.make_node("ReduceMin", ["image"], ["least"], keepdims=0),
                         helper.make_node("Cast", ["least"], ["least64"], to=onnx.TensorProto.INT64),
                         helper.make_node("Mul", ["least64", "nought"], ["zero_now"]),
                         helper.make_node("Reshape", ["zero_now", "one"], ["zero_1d"]),
                         helper.make_node("Add", ["zero_1d", "one"], ["one_now"])])
    m.graph.initializer.extend([numpy_helper.from_array(np.array(0, np.int64), "nought"),
                                numpy_helper.from_array(np.array([1], np.int64), "one")])
    return "one_now"


def four_channels(m: onnx.ModelProto) -> None:
    """'filtered' with its red channel repeated as a fourth; the graph's channel axis left open, as an exporter may."""
    producer(m, "filtered").output[0] = "rgb"
    m.graph.node.extend([helper.make_node("Slice", ["rgb", "zero", one_known_at_run_time(m), "three"], ["red"]),
                         helper.make_node("Concat", ["rgb", "red"], ["filtered"], axis=3)])
    m.graph.initializer.extend([numpy_helper.from_array(np.array([v], np.int64), name)
                                for v, name in ((0, "zero"), (3, "three"))])
    channels = m.graph.output[0].type.tensor_type.shape.dim[3]
    channels.ClearField("dim_value")
    channels.dim_param = "C"


def test_a_classifier_giving_probs_for_its_first_face_alone_is_refused_by_name(tmp_path, tiny_models):
    """`run`, the audit and evaluate had ended in an IndexError."""
    path = changed(tiny_models["classifier"], tmp_path / "first.onnx", probs_of_the_first_face_only)
    model = load_model(path)
    with pytest.raises(BiasMirrorError) as err:
        model.predict(faces_for(model))
    assert str(err.value) == (f"{path}: classifier '{model.name}' gave its 'probs' output as 1×2 float32 for a batch "
                              "of 3, where its card declares 3×2 float32: its graph does not give what its card says; "
                              "re-export it (or adopt it again)")


def test_a_filter_giving_four_channels_is_named_not_the_classifier_fed_them(tmp_path, tiny_models, faces_dir, capsys):
    """The error had blamed the good classifier ("… classifier … failed … Got invalid dimensions")."""
    path = changed(tiny_models["darken"], tmp_path / "rgba.onnx", four_channels)
    model = load_model(path)
    with pytest.raises(BiasMirrorError, match=r"gave its 'filtered' output as 3×32×32×4 uint8 for a batch of 3, "
                                              r"where its card declares 3×32×32×3 uint8"):
        model.apply(faces_for(model))
    code, _, err = run_main(["run", "--source", str(faces_dir), "--out", str(tmp_path / "rows.csv"), "--classifier",
                             str(tiny_models["classifier"]), "--filter", str(path), "--threads", "1"], capsys)
    assert code == 2 and f"error: {path}: filter " in err, err
    assert str(tiny_models["classifier"]) not in err


# --- 3. probs that are not probabilities ---------------------------------------------------------------------------

def softmax_left_out(m: onnx.ModelProto) -> None:
    softmax = producer(m, "probs")
    softmax.op_type = "Identity"
    del softmax.attribute[:]


def test_a_classifier_giving_logits_is_refused_by_name(tmp_path, tiny_models, faces_dir, capsys):
    """`run` had written P(female) -1.70 and exited 0, evaluate reported a mean beyond 0…1, the audit crashed."""
    path = changed(tiny_models["classifier"], tmp_path / "logits.onnx", softmax_left_out)
    model = load_model(path)
    with pytest.raises(BiasMirrorError, match=r"its probs are not probabilities: a face got \[.*\] \(each must lie in "
                                              r"0…1, and a face's sum to 1\); a softmax missing\?"):
        model.predict(faces_for(model))
    out = tmp_path / "rows.csv"
    code, _, err = run_main(["run", "--source", str(faces_dir), "--out", str(out), "--classifier", str(path),
                             "--no-filter", "--threads", "1"], capsys)
    assert code == 2 and f"error: {path}: classifier " in err and "not probabilities" in err, err
    assert not out.exists()


def test_probabilities_pass_within_rounding_and_logits_or_infinities_do_not(tiny_models):
    """The check lets through what a classifier rightly gives: a softmax (its fp16 variant's rounded to fp16), an
    adopted one-output model's [1 - sigmoid, sigmoid], a saturated face; and a diverged model's NaN, which the audit
    and evaluate report as not measured."""
    from inference.models import PROBS_TOLERANCE, not_probabilities

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (64, 2))
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    sigmoid = 1 / (1 + np.exp(-logits[:, :1]))
    passing = {
        "softmax": softmax.astype(np.float32),
        "fp16 softmax": softmax.astype(np.float16).astype(np.float32),
        "sigmoid pair": np.hstack([1 - sigmoid, sigmoid]).astype(np.float32),
        "saturated": np.array([[0.0, 1.0], [1.0, 0.0]], np.float32),
        "NaN": np.full((2, 2), np.nan, np.float32),
    }
    for what, probs in passing.items():
        assert not_probabilities(probs) is None, what
    small = PROBS_TOLERANCE / 2
    assert not_probabilities(np.array([[0.5 + small, 0.5 - small]], np.float32)) is None
    failing = {
        "logits": logits.astype(np.float32),
        "below 0": np.array([[-4 * PROBS_TOLERANCE, 1 + 4 * PROBS_TOLERANCE]], np.float32),
        "sum off": np.array([[0.5, 0.5 + 4 * PROBS_TOLERANCE]], np.float32),
        "infinite": np.array([[np.inf, 0.0]], np.float32),
    }
    for what, probs in failing.items():
        assert not_probabilities(np.vstack([softmax[:2], probs]).astype(np.float32)) == 2, what
    c = load_model(tiny_models["classifier"])
    probs, _ = c.predict(np.random.default_rng(1).integers(0, 256, (8, *c.size, 3), dtype=np.uint8))
    assert not_probabilities(probs) is None


def test_run_warns_once_of_a_classifier_without_finite_p_female(tmp_path, faces_dir, capsys):
    """A diverged model's NaN was written as empty cells, with exit status 0 and no word (evaluate refuses it)."""
    model = make_diverged_classifier(tmp_path / "diverged.onnx")
    out = tmp_path / "rows.csv"
    code, stdout, err = run_main(["run", "--source", str(faces_dir), "--out", str(out), "--classifier", model,
                                  "--no-filter", "--threads", "1"], capsys)
    said = stdout + err
    assert code == 0
    assert said.count("classifier 'diverged' gave no finite P(female) (") == 1, said
    assert f"({model}): its p_female cells are left empty; its training diverged?" in said
    with open(out, newline="") as f:
        frames = {row["frame"] for row in csv.DictReader(f)}  # every frame with a face: each gave NaN
    assert f"warning: classifier 'diverged' gave no finite P(female) in {len(frames)} frame(s)" in said


# --- 4. bench: a model failing on the CPU is the model's error, whatever provider was asked for --------------------

def fails_unless_a_batch_of_three(m: onnx.ModelProto) -> None:
    """'probs' reshaped to 3 rows and back: a run on any batch not a multiple of 3 fails in ORT."""
    producer(m, "probs").output[0] = "p3"
    m.graph.node.extend([helper.make_node("Reshape", ["p3", "three_rows"], ["p3r"]),
                         helper.make_node("Reshape", ["p3r", "two_columns"], ["probs"])])
    m.graph.initializer.extend([numpy_helper.from_array(np.array([3, -1], np.int64), "three_rows"),
                                numpy_helper.from_array(np.array([-1, 2], np.int64), "two_columns")])


def test_bench_names_a_model_failing_on_the_cpu_under_auto_not_the_providers(tmp_path, tiny_models, faces_dir,
                                                                            capsys):
    """Under auto on a machine without a GPU it said "nothing was measured: every provider asked for (auto) was
    unavailable … doctor says which providers …"; with --providers cpu it named the model. On a GPU the row fails
    on CUDA, and the last line names that failure, not an unavailable provider."""
    path = changed(tiny_models["classifier"], tmp_path / "fails.onnx", fails_unless_a_batch_of_three)
    code, _, err = run_main(["bench", "--source", str(faces_dir), "--classifier", str(path), "--no-filter",
                             "--no-baseline", "--providers", "auto", "--faces", "1", "--frames", "2", "--warmup", "0",
                             "--threads", "1"], capsys)
    assert code == 2 and str(path) in err and "failed on " in err, err
    assert "was unavailable" not in err and "doctor" not in err


def test_bench_names_a_provider_that_failed_while_measuring_not_an_unavailable_one(tmp_path, tiny_models, faces_dir,
                                                                                   capsys, monkeypatch):
    """Where every row that started failed while measuring (on a GPU: out of memory, a CUDA graph not recorded), the
    last line had said every provider was unavailable, and sent the user to doctor. ("auto" stands in for a GPU
    provider, as in test_gpu_path: the failure names no model of the row.)"""
    from inference import bench

    def measure(*args, **kwargs):
        raise BiasMirrorError("out of GPU memory running a batch of 1 (stub)", "elsewhere.onnx")

    monkeypatch.setattr(bench, "measure", measure)
    code, _, err = run_main(["bench", "--source", str(faces_dir), "--classifier", str(tiny_models["classifier"]),
                             "--no-filter", "--no-baseline", "--providers", "auto", "--frames", "2", "--warmup", "0",
                             "--threads", "1"], capsys)
    assert code == 2
    assert ("error: nothing was measured: auto failed while measuring (elsewhere.onnx: out of GPU memory running a "
            "batch of 1 (stub)); the eager baseline was skipped (--no-baseline)") in err, err
    assert "was unavailable" not in err


# --- 6. run: a model failing partway says what is left in the CSV it was writing -----------------------------------

def failing_after(monkeypatch, calls: int) -> None:
    """Every classifier's predict fails (naming its file, as a failed run does) once ``calls`` have run."""
    real, made = Classifier.predict, []

    def predict(self, faces):
        made.append(1)
        if len(made) > calls:
            raise BiasMirrorError(f"classifier '{self.name}' failed on CPU with a batch of {len(faces)} (stub)",
                                  self.path)
        return real(self, faces)

    monkeypatch.setattr(Classifier, "predict", predict)


def test_run_says_the_rows_left_in_a_csv_it_replaced_when_a_model_fails(tmp_path, tiny_models, faces_dir, capsys,
                                                                         monkeypatch):
    """The CSV, which held a user's earlier rows, had been left with the rows of the frames before the failure, the
    error saying nothing of it (Ctrl-C says "N rows saved")."""
    out = tmp_path / "mine.csv"
    out.write_text("earlier,rows\n1,2\n")
    failing_after(monkeypatch, 2)
    code, _, err = run_main(["run", "--source", str(faces_dir), "--out", str(out), "--classifier",
                             str(tiny_models["classifier"]), "--no-filter", "--threads", "1"], capsys)
    rows = len(out.read_text().splitlines()) - 1
    assert code == 2 and rows > 0
    assert f"error: {tiny_models['classifier']}: classifier " in err and "(stub); " in err, err
    assert f"; {rows} face row(s) of the frames before it are in {out} (what it held before was replaced)" in err


def test_run_says_a_csv_was_left_as_it_was_when_a_model_fails_before_any_row(tmp_path, tiny_models, faces_dir,
                                                                             capsys, monkeypatch):
    out = tmp_path / "mine.csv"
    out.write_text("earlier,rows\n1,2\n")
    failing_after(monkeypatch, 0)
    code, _, err = run_main(["run", "--source", str(faces_dir), "--out", str(out), "--classifier",
                             str(tiny_models["classifier"]), "--no-filter", "--threads", "1"], capsys)
    assert code == 2 and f"(stub); no row was written, so {out} was left as it was" in err, err
    assert out.read_text() == "earlier,rows\n1,2\n"


@pytest.mark.parametrize("damaged", ["classifier", "filter"])
def test_the_device_chain_checks_its_models_outputs_as_the_plain_path_does(damaged, tmp_path, tiny_models):
    """The GPU's device chain reads the filter's and the classifiers' outputs itself: a classifier giving logits or a
    filter giving four channels went through it unchecked."""
    from inference.device_chain import DeviceChain

    classifier, flt = load_model(tiny_models["classifier"]), load_model(tiny_models["darken"])
    if damaged == "classifier":
        classifier = load_model(changed(tiny_models["classifier"], tmp_path / "logits.onnx", softmax_left_out))
    else:
        flt = load_model(changed(tiny_models["darken"], tmp_path / "rgba.onnx", four_channels))
    named = classifier.path if damaged == "classifier" else flt.path
    with pytest.raises(BiasMirrorError) as err:
        DeviceChain(flt, [classifier]).run(faces_for(flt))
    assert str(err.value).startswith(f"{named}: "), err.value
