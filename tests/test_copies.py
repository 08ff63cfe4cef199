"""Byte-identical copies in a dataset: counted once, in one split, and left out where their labels disagree."""
import csv
import os
import shutil

import cv2
import numpy as np
import pytest

from inference.datasets import Sample, open_dataset, select, split_of
from inference.datasets import copies as copies_module
from inference.datasets.copies import content_groups
from inference.file_identity import file_stats
from tests.conftest import require_utk, utk_images


def _folder(tmp_path, rows):
    """Images a.png … with labels.csv; images named alike in ``same`` share bytes."""
    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(0)
    made = {}
    for name, *_ in rows:
        key = name.split("-")[0]  # a-1.png and a-2.png are the same picture
        if key not in made:
            made[key] = rng.integers(0, 255, (24 + len(made), 24, 3), dtype=np.uint8)  # a size of its own
            cv2.imwrite(str(root / f"{name}.png"), made[key])
        else:
            shutil.copyfile(next(root.glob(f"{key}-*.png")), root / f"{name}.png")
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "gender", "race", "split"])
        for name, gender, race, split in rows:
            w.writerow([f"{name}.png", gender, race, split])
    return root


def test_copies_count_once_in_the_earliest_split_and_disagreeing_labels_leave_them_out(tmp_path):
    root = _folder(tmp_path, [("a-1", "female", "Black", "test"), ("a-2", "female", "Black", "train"),
                              ("a-3", "female", "Black", "val"),
                              ("b-1", "female", "Asian", "test"), ("b-2", "male", "Asian", "test"),
                              ("c-1", "male", "White", "test")])
    read = open_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    kept = {os.path.basename(s.path): s for s in read.samples}
    assert set(kept) == {"a-1.png", "c-1.png"}
    assert split_of(kept["a-1.png"]) == "train"  # a copy trained, so no copy may be tested
    assert split_of(kept["c-1.png"]) == "test"
    assert sorted(read.copies) == [("a-2.png", "a-1.png"), ("a-3.png", "a-1.png")]
    why = dict(read.skipped)
    assert set(why) == {"b-1.png", "b-2.png"}
    assert "b-1.png: female/Asian" in why["b-2.png"] and "b-2.png: male/Asian" in why["b-2.png"]
    assert read.conflicts == [["b-1.png", "b-2.png"]]


def test_digests_are_kept_and_a_changed_file_is_read_again(tmp_path, monkeypatch):
    root = _folder(tmp_path, [("a-1", "female", "Black", ""), ("a-2", "female", "Black", ""),
                              ("b-1", "male", "White", "")])
    paths = sorted(str(p) for p in root.glob("*.png"))
    read_files = []
    digest = copies_module.file_hash
    monkeypatch.setattr(copies_module, "file_hash", lambda p: read_files.append(p) or digest(p))
    cache = tmp_path / "cache"
    assert content_groups(file_stats(paths), str(root), cache) == [[str(root / "a-1.png"), str(root / "a-2.png")]]
    assert len(read_files) == 2  # b-1 has a size of its own: never read
    read_files.clear()
    assert content_groups(file_stats(paths), str(root), cache) == [[str(root / "a-1.png"), str(root / "a-2.png")]]
    assert read_files == []
    # a-2 rewritten with other bytes of the same size: read again, and no longer a copy
    data = bytearray((root / "a-2.png").read_bytes())
    data[-20] ^= 0xFF
    (root / "a-2.png").write_bytes(bytes(data))
    os.utime(root / "a-2.png", ns=(1, 1))
    assert content_groups(file_stats(paths), str(root), cache) == []
    assert read_files == [str(root / "a-2.png")]
    # a damaged cache is read as none
    (cache_file,) = (cache / "digests").glob("*.json")
    cache_file.write_text("{not json")
    read_files.clear()
    assert content_groups(file_stats(paths), str(root), cache) == []
    assert len(read_files) == 2


def test_an_unwritable_cache_costs_time_not_the_read(tmp_path):
    root = _folder(tmp_path, [("a-1", "female", "Black", ""), ("a-2", "female", "Black", "")])
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would be")
    read = open_dataset(f"folder:{root}", cache_dir=blocked)
    assert [os.path.basename(s.path) for s in read.samples] == ["a-1.png"]


def test_utkface_test_split_holds_no_image_a_model_trained_on():
    """The shared copy: 308 images stored more than once, 104 of them across splits, 89 under other labels; and
    over 300 photographs saved again, re-encoded or re-cropped."""
    root = require_utk()
    read = open_dataset(f"utkface:{root}")
    assert len(read.samples) + len(read.skipped) + len(read.copies) == 21336
    names = {os.path.basename(s.path) for s in read.samples}
    # the same picture as a 15-year-old Indian girl and a 23-year-old Asian man: neither label can be trusted
    conflict = ("15_1_4_20170103234910356.jpg.chip.jpg", "23_0_1_20170117194105675.jpg.chip.jpg")
    assert not names & set(conflict) and set(conflict) <= set(dict(read.skipped))
    assert sorted(conflict) in read.conflicts
    assert sum(map(len, read.conflicts)) == sum(1 for _, why in read.skipped if "other labels" in why)
    groups = content_groups(file_stats([str(root / n) for n in sorted(os.listdir(root))]), str(root), None)
    assert len(groups) == 308
    kept = {s.path for s in read.samples}
    assert all(len(kept & set(g)) <= 1 for g in groups)
    test = {s.path for s in select(read.samples, "test")}
    tested_copies = [g for g in groups if test & set(g)]
    # a test image stored more than once is one whose every copy's name hashed to test: none trained
    assert all(split_of(Sample(path=p)) == "test" for g in tested_copies for p in g)
    leaked = [g for g in groups if {split_of(Sample(path=p)) for p in g} >= {"train", "test"}]
    assert len(leaked) > 40 and not any(test & set(g) for g in leaked)
    # nor a photograph saved again: every near-identical group left lies in one split
    from inference.datasets.near_identical import near_groups

    split = {s.path: split_of(s) for s in read.samples}
    near = near_groups(file_stats(list(split)), str(root), None)
    assert len(near) > 300 and all(len({split[p] for p in g}) == 1 for g in near)
    assert len(read.near_identical) == len(near)


def test_empty_files_are_damaged_not_copies(tmp_path):
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"")
    assert content_groups(file_stats([str(tmp_path / "a.png"), str(tmp_path / "b.png")]), str(tmp_path), None) == []


def test_every_near_identical_pair_is_found_as_a_full_comparison_finds_it():
    """The k-d tree on 16 axes may only add candidates, never lose a pair: checked against comparing every pair."""
    from inference.datasets.near_identical import MAX_RMS, near_pairs

    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (400, 256)).astype(np.float32)
    twins = []
    for k, rms in enumerate(np.linspace(1.0, 9.0, 40)):  # planted twins from well inside to just past the limit
        noise = rng.normal(size=256)
        twins.append(np.clip(base[k] + noise / np.sqrt((noise ** 2).mean()) * rms, 0, 255))
    thumbs = np.rint(np.vstack([base, twins])).astype(np.uint8)
    x = thumbs.astype(np.float64)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).mean(-1))
    want = {(i, j) for i, j in zip(*np.nonzero(d < MAX_RMS)) if i < j}
    got = {tuple(p) for p in near_pairs(thumbs).tolist()}
    assert got == want and 25 <= len(want) <= 40


def test_a_folders_look_alike_photos_keep_their_own_labels_and_split(tmp_path):
    """A folder's photos may share a background that fills their thumbnails: its matches are only named (a
    utkface-kind read still acts on them: tests/test_near_identical_folders.py)."""
    root = tmp_path / "data"
    root.mkdir()
    faces = [cv2.imread(str(p)) for p in utk_images(3)]
    cv2.imwrite(str(root / "a.jpg"), faces[0], [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(root / "a_small.jpg"), cv2.resize(faces[0], (150, 150)), [cv2.IMWRITE_JPEG_QUALITY, 70])
    cv2.imwrite(str(root / "b.jpg"), faces[1])
    cv2.imwrite(str(root / "b_again.png"), faces[1])
    cv2.imwrite(str(root / "c.jpg"), faces[2])
    (root / "labels.csv").write_text("file,gender,race,split\na.jpg,female,Black,test\na_small.jpg,female,Black,train\n"
                                     "b.jpg,male,Asian,test\nb_again.png,female,Asian,test\nc.jpg,male,White,test\n")
    read = open_dataset(f"folder:{root}", cache_dir=tmp_path / "cache")
    split = {os.path.basename(s.path): split_of(s) for s in read.samples}
    assert split == {"a.jpg": "test", "a_small.jpg": "train", "b.jpg": "test", "b_again.png": "test", "c.jpg": "test"}
    assert read.near_identical == [] and read.copies == [] and read.conflicts == [] and read.skipped == []


def test_thumbnails_are_read_once(tmp_path, monkeypatch):
    from inference.datasets import near_identical

    root = _folder(tmp_path, [("a-1", "", "", ""), ("b-1", "", "", "")])
    paths = sorted(str(p) for p in root.glob("*.png"))
    seen = []
    real = near_identical.thumbnail
    monkeypatch.setattr(near_identical, "thumbnail", lambda p: seen.append(p) or real(p))
    first = near_identical.thumbnails(file_stats(paths), str(root), tmp_path / "cache")
    again = near_identical.thumbnails(file_stats(paths), str(root), tmp_path / "cache")
    assert len(seen) == 2 and first[0] == again[0] and np.array_equal(first[1], again[1])


def test_a_folder_spelled_another_way_finds_what_was_kept(tmp_path, monkeypatch):
    """Both caches name a file within its folder: opening the folder by its absolute path and then, from its
    parent, by a relative one reads no file twice."""
    from inference.datasets import near_identical

    root = _folder(tmp_path, [("a-1", "female", "Black", ""), ("a-2", "female", "Black", ""),
                              ("b-1", "male", "White", "")])
    hashed, thumbed = [], []
    digest, thumb = copies_module.file_hash, near_identical.thumbnail
    monkeypatch.setattr(copies_module, "file_hash", lambda p: hashed.append(p) or digest(p))
    monkeypatch.setattr(near_identical, "thumbnail", lambda p: thumbed.append(p) or thumb(p))
    first = open_dataset(f"folder:{root.resolve()}", cache_dir=tmp_path / "cache")
    assert len(hashed) == 2 and len(thumbed) == 2
    monkeypatch.chdir(tmp_path)
    again = open_dataset("folder:data", cache_dir=tmp_path / "cache")
    assert len(hashed) == 2 and len(thumbed) == 2
    assert [os.path.basename(s.path) for s in again.samples] == [os.path.basename(s.path) for s in first.samples]


def test_a_copy_without_a_label_does_not_disagree_and_lends_it_none_but_takes_it(tmp_path, caplog):
    """A groups CSV listing one copy of a photograph and not its twin left both out as 'stored under other labels'."""
    root = _folder(tmp_path, [("a-1", "female", "Asian", ""), ("a-2", "", "", ""), ("b-1", "male", "White", ""),
                              ("b-2", "female", "White", "")])
    read = open_dataset(f"folder:{root}", tmp_path / "cache")
    assert "take it from a copy" not in caplog.text  # the copy kept, a-1, has its own labels
    kept = {s.path.rsplit("/", 1)[-1]: (s.gender, s.race) for s in read.samples}
    assert kept == {"a-1.png": ("female", "Asian")}  # a's copies agree where both say; b's disagree on gender
    assert [sorted(g) for g in read.conflicts] == [["b-1.png", "b-2.png"]]
    # the copy kept is the one without labels: it takes them, and says so (the reader had warned it was "kept
    # without labels")
    (tmp_path / "again").mkdir()
    again = _folder(tmp_path / "again", [("c-1", "", "", ""), ("c-2", "male", "Black", "")])
    assert [(s.gender, s.race) for s in open_dataset(f"folder:{again}", tmp_path / "cache").samples] == [("male", "Black")]
    assert "1 image(s) without a label take it from a copy of the same photograph that has it" in caplog.text
    from inference.datasets.copies import _filled
    bare, labelled = Sample("x.png"), Sample("y.png", gender="male", group="team")
    assert _filled(bare, [bare, labelled]).gender == "male" and _filled(bare, [bare, labelled]).group == "team"


def test_a_copy_without_an_age_takes_its_twins_where_the_copies_agree_and_age_is_never_a_conflict():
    """A near-identical copy took its twin's gender, race and group but not its age: it fell into age band
    "unknown", and out of every --min-age audit. Ages a year apart (UTKFace names copies so) are one face still."""
    from inference.datasets.copies import _disagree, _filled

    bare, aged = Sample("x.png"), Sample("y.png", gender="male", age=10)
    filled = _filled(bare, [bare, aged])
    assert (filled.gender, filled.age, filled.age_band) == ("male", 10, "0-17")
    binned = _filled(bare, [bare, Sample("z.png", age=40, age_bin="40-49")])
    assert (binned.age, binned.age_band) == (40, "40-49")
    apart = [bare, Sample("y.png", age=26), Sample("z.png", age=27)]
    assert _filled(bare, apart).age is None and not _disagree(apart)  # which one is not guessed; no conflict either
    assert _filled(Sample("w.png", age=30), [aged]).age == 30  # its own age is kept


# --- --no-dataset-cache: nothing of a dataset left in the user's cache -------------------------------------------

def _files_under(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _user_cache(tmp_path, monkeypatch):
    """The user's cache folder, this test's own and empty: where the copy detection keeps digests and thumbnails."""
    home = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    from inference.user_dirs import default_cache_dir

    return default_cache_dir()


def test_a_dataset_opened_with_no_cache_folder_leaves_nothing_in_the_users_cache(tmp_path, monkeypatch):
    """None had meant the user's cache folder (``cache_dir or default_cache_dir()``): there was no way to keep
    nothing."""
    from inference.audit.cli import read_dataset

    cache = _user_cache(tmp_path, monkeypatch)
    root = _folder(tmp_path, [("a-1", "female", "Black", ""), ("a-2", "female", "Black", ""),
                              ("b-1", "male", "White", "")])
    kept_nothing = open_dataset(f"folder:{root}", cache_dir=None)
    assert _files_under(cache) == []
    audited, _ = read_dataset(f"folder:{root}", None, cache_dir=None)  # the audit joins its groups on first
    assert _files_under(cache) == []
    kept = open_dataset(f"folder:{root}")  # by default the user's cache folder keeps them
    assert list((cache / "digests").glob("*.json")) and list((cache / "thumbnails").glob("*.npz"))
    assert [s.path for s in kept_nothing.samples] == [s.path for s in kept.samples] == [s.path for s in audited.samples]
    assert kept_nothing.copies == kept.copies == audited.copies


def _with_a_copy(tiny_utk):
    """``tiny_utk`` with one face stored twice, under the same labels: a copy whose digest is kept."""
    first = sorted(p for p in tiny_utk.iterdir() if p.name[:2].isdigit())[0]
    age, gender, race, _ = first.name.split("_", 3)
    shutil.copyfile(first, tiny_utk / f"{age}_{gender}_{race}_20170101999999998.jpg.chip.jpg")
    return tiny_utk


def _two_domain_folders(tiny_utk, root):
    """Domain folders A and B of ``tiny_utk``'s faces, A holding one of them twice."""
    faces = sorted(p for p in tiny_utk.iterdir() if p.name[:2].isdigit())
    half = len(faces) // 2
    folders = []
    for name, some in (("A", faces[:half]), ("B", faces[half:])):
        folder = root / name
        folder.mkdir(parents=True)
        for p in some:
            shutil.copyfile(p, folder / p.name)
        folders.append(folder)
    shutil.copyfile(faces[0], folders[0] / f"again-{faces[0].name}")
    return folders


TRAIN_SMALL = ["--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "16", "--threads", "1"]


def _command(kind, tmp_path, data, tiny_models, out):
    """A quick run of each command that opens a dataset, writing into ``out`` (decoded faces outside the user's
    cache, which is checked)."""
    faces = ["--cache", str(tmp_path / "faces")]
    if kind == "audit":
        return ["audit", "--dataset", f"utkface:{data}", "--classifier", str(tiny_models["classifier"]), "--no-filter",
                "--no-html", "--no-progress", "--out", str(out)]
    if kind == "evaluate":
        return ["train", "evaluate", "--model", str(tiny_models["classifier"]), "--dataset", f"utkface:{data}",
                "--split", "all", "--min-age", "-1"]
    if kind == "bench detect":
        return ["bench", "detect", "--data", f"utkface:{data}", "--per-group", "2", "--min-age", "-1",
                "--detectors", "haar-alt2", "--face-px", "40", "--resolution", "96x64"]
    if kind == "bench train":
        return ["bench", "train", "--data", f"utkface:{data}", "--faces", "64", "--device", "cpu", "--trainers",
                "classifier", "--size", "32", "--warmup", "0", "--steps", "1", "--variants", "fp32", "--threads", "1",
                *faces]
    if kind == "classifier":
        return ["train", "classifier", "--dataset", f"utkface:{data}", *TRAIN_SMALL, *faces, "--out", str(out)]
    if kind == "compare":
        return ["train", "compare", "--dataset", f"utkface:{data}", *TRAIN_SMALL, *faces, "--out", str(out)]
    a, b = _two_domain_folders(data, tmp_path / out.name)
    return ["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset", "smoke",
            "--min-domain-size", "4", "--iters-per-epoch", "1", "--n-epochs", "1", "--n-epochs-decay", "0",
            "--sample-every", "0", "--eval-faces", "12", "--threads", "1", *faces, "--out", str(out)]


@pytest.mark.parametrize("kind", ["audit", "evaluate", "classifier", "compare", "cyclegan", "bench detect",
                                  "bench train"])
def test_no_dataset_cache_keeps_nothing_of_the_dataset_in_the_users_cache(kind, tmp_path, monkeypatch, tiny_utk,
                                                                          tiny_models, capsys):
    from tests.conftest import run_main

    cache = _user_cache(tmp_path, monkeypatch)
    data = _with_a_copy(tiny_utk)
    code, _, err = run_main([*_command(kind, tmp_path, data, tiny_models, tmp_path / "kept-none"),
                             "--no-dataset-cache"], capsys)
    assert code == 0, err
    assert _files_under(cache) == []
    # without it, the same command keeps them: the check above is of a command that did look for copies
    code, _, err = run_main(_command(kind, tmp_path, data, tiny_models, tmp_path / "kept"), capsys)
    assert code == 0, err
    assert list((cache / "digests").glob("*.json")) and list((cache / "thumbnails").glob("*.npz"))


def test_a_run_begun_keeping_nothing_of_its_dataset_keeps_nothing_when_resumed(tmp_path, monkeypatch, tiny_utk,
                                                                                tiny_models, capsys):
    """A plain --resume, as the stop message advises, goes on as the run last ran: with the dataset's digests and
    thumbnails kept nowhere."""
    from tests.conftest import run_main

    cache = _user_cache(tmp_path, monkeypatch)
    run = tmp_path / "run"
    started = _command("classifier", tmp_path, _with_a_copy(tiny_utk), tiny_models, run)
    code, _, err = run_main([*started, "--no-dataset-cache", "--max-steps", "1"], capsys)
    assert code == 0, err
    code, out, err = run_main(["train", "classifier", "--out", str(run), "--resume"], capsys)
    assert code == 0, err
    [said] = [line for line in out.splitlines() if line.startswith("as the run last ran:")]
    assert "--no-dataset-cache" in said and (run / "model.onnx").exists()
    assert _files_under(cache) == []


@pytest.mark.parametrize("kind", ["classifier", "compare", "cyclegan"])
def test_a_run_begun_keeping_nothing_can_keep_the_dataset_cache_again_when_resumed(kind, tmp_path, monkeypatch,
                                                                                  tiny_utk, tiny_models, capsys):
    """--no-dataset-cache is carried into every --resume; it had no opposite, so such a run could never keep the
    digests and thumbnails again. --with-dataset-cache does, and is carried in turn."""
    from tests.conftest import run_main

    cache = _user_cache(tmp_path, monkeypatch)
    run = tmp_path / "run"
    started = _command(kind, tmp_path, _with_a_copy(tiny_utk), tiny_models, run)
    code, _, err = run_main([*started, "--no-dataset-cache", "--max-steps", "1"], capsys)
    assert code == 0, err
    assert _files_under(cache) == []
    resumed = ["train", kind, "--out", str(run)] if kind != "compare" else started  # compare needs --dataset again
    code, out, err = run_main([*resumed, "--resume", "--with-dataset-cache", "--max-steps", "2"], capsys)
    assert code == 0, err
    assert "--no-dataset-cache" not in "".join(l for l in out.splitlines() if l.startswith("as the run last ran:"))
    assert list((cache / "digests").glob("*.json")) and list((cache / "thumbnails").glob("*.npz"))
    code, _, err = run_main([*started, "--no-dataset-cache", "--with-dataset-cache"], capsys)
    assert code == 2 and "not allowed with argument" in err
