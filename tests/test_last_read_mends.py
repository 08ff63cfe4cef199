"""Mends from the last read of the day's change: distillation's memory, a cgroup's page cache, a worker's death,
terminal escaping of printed foreign text, and one elided."""
from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

GB = 2**30


class _CountingFaces:
    """Faces that record how many rows each indexing reads at once."""

    def __init__(self, n: int):
        self.faces = np.zeros((n, 8, 8, 3), np.uint8)
        self.most = 0
        self.shape, self.dtype, self.ndim = self.faces.shape, self.faces.dtype, self.faces.ndim

    def __len__(self):
        return len(self.faces)

    def __getitem__(self, idx):
        got = self.faces[idx]
        self.most = max(self.most, len(got) if got.ndim == 4 else 1)
        return got


def test_distillation_reads_the_training_faces_a_batch_at_a_time(tmp_path, monkeypatch):
    """data.images[train] copied the whole training split out of the memory-mapped cache (8 GB for CelebA)."""
    from training.data import teachers as teachers_module
    from training.data.teachers import Teacher
    from training.tasks import classifier

    class Model:
        labels, size = ("male", "female"), 8

        def predict(self, x):
            return np.full((len(x), 2), 0.5, np.float32), None

    teacher = Teacher(path="t.onnx", name="t", sha256="0" * 64, test_accuracy=None)
    monkeypatch.setattr(classifier, "open_teachers", lambda *a, **k: [(teacher, Model())])
    monkeypatch.setattr(teachers_module, "resize_batch", lambda x, size: np.asarray(x, np.float32))
    faces = _CountingFaces(1000)
    data = SimpleNamespace(read=SimpleNamespace(name="utkface", root=str(tmp_path)), train_idx=np.arange(0, 1000, 2),
                           images=faces, labels=np.zeros(1000, np.int64),
                           samples=[SimpleNamespace(path=str(tmp_path / f"{i}.jpg")) for i in range(1000)])
    assert classifier.distillation_targets(data, {"distill_from": ["t.onnx"], "distill_weight": 0.5},
                                           tmp_path / "run") is not None
    assert 0 < faces.most <= 256  # a batch, never the 500 training faces at once


def _files(folder: Path, **contents: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        (folder / name.replace("_", ".", 1)).write_text(text + "\n")


@pytest.fixture
def host_has_plenty(monkeypatch):
    import psutil
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=23 * GB))


def test_a_cgroups_reclaimable_page_cache_counts_as_available(tmp_path, host_has_plenty):
    """memory.current counts cached files: an 8 GB container holding 7 GB of them was told 512 MB was left."""
    from training.data.cache import available_memory

    root, own = tmp_path / "cgroup", tmp_path / "self_cgroup"
    own.write_text("0::/\n")
    _files(root, memory_max=str(8 * GB), memory_current=str(7 * GB + GB // 2),
           memory_stat=f"anon {GB // 2}\nfile {7 * GB}\ninactive_file {7 * GB}\nactive_file 0")
    assert available_memory(root, own) == 7 * GB + GB // 2
    v1_root, v1_own = tmp_path / "v1", tmp_path / "v1_self"
    v1_own.write_text("4:memory:/\n")
    _files(v1_root / "memory", memory_limit_in_bytes=str(8 * GB), memory_usage_in_bytes=str(7 * GB),
           memory_stat=f"inactive_file 1\ntotal_inactive_file {6 * GB}")
    assert available_memory(v1_root, v1_own) == 7 * GB


def test_a_worker_that_exited_unexpectedly_is_not_said_as_sigkill(tmp_path):
    """"exited unexpectedly" is also too little /dev/shm in Docker, and any worker's death on Windows."""
    from training.out_of_memory import host_out_of_memory

    gone = str(host_out_of_memory(RuntimeError("DataLoader worker (pid(s) 26767, 26768) exited unexpectedly"), 64, 4,
                                  tmp_path / "last.pt", tmp_path))
    assert "SIGKILL" not in gone and "dmesg" not in gone
    assert "a DataLoader worker died (out of memory, or too little shared memory (/dev/shm)" in gone
    assert "--workers 0" in gone and "--shm-size" in gone
    killed = str(host_out_of_memory(RuntimeError("DataLoader worker (pid 26767) is killed by signal: Killed. "), 64, 4,
                                    tmp_path / "last.pt", tmp_path))
    assert "killed (SIGKILL), most often by the out-of-memory killer (see dmesg)" in killed
    assert "--shm-size" not in killed


def test_say_prints_text_escaped_to_the_stream_of_the_moment(capsys):
    from inference.untrusted_text import say

    say("card \x1b]0;owned\x07 name")
    assert capsys.readouterr().out == "card \\x1b]0;owned\\x07 name\n"
    other = io.StringIO()
    say("\u202egpj.exe", file=other, end="")
    assert other.getvalue() == "\\u202egpj.exe"


def test_a_foreign_graphs_output_names_are_shown_escaped(tmp_path):
    """An output's name is the foreign graph's: an escape sequence in it was printed raw, and obeyed."""
    from onnx import TensorProto, helper

    from training.adopt_read import filter_output

    face = helper.make_tensor_value_info("y\x1b[2J", TensorProto.FLOAT, [1, 3, 8, 8])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y\x1b[2J"]),
                               helper.make_node("Identity", ["x"], ["mask"])], "g", [x], [face, mask])
    said: list[str] = []
    assert filter_output(helper.make_model(graph), None, "NCHW", 8, tmp_path / "f.onnx", said.append) == "y\x1b[2J"
    assert said and "\x1b" not in said[0] and "y\\x1b[2J" in said[0]


def test_compare_and_bench_print_through_say():
    """compare's tables quote the dataset's group labels; bench's lines a card's name and errors quoting paths."""
    import inspect

    from inference import bench
    from training.tasks import compare

    assert "print(format_table" not in inspect.getsource(compare) and "say(format_table" in inspect.getsource(compare)
    source = inspect.getsource(bench)
    for line in ("print(f\"{label}: failed", "print(f\"{label}: unavailable", "print(f\"filter '"):
        assert line not in source


def test_one_elided_for_the_figures_and_the_gui():
    from inference.audit.figures import elided as figure_elided
    from inference.untrusted_text import elided

    assert figure_elided("a" * 50 + "Z", 20) == elided("a" * 50 + "Z", 20)
    assert elided("x" * 40, 28) == "x" * 13 + "…" + "x" * 14 and len(elided("x" * 40, 28)) == 28
