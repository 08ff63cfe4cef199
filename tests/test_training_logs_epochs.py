"""The epoch column of a run's logs, as a review found it (2026-12-09): epochs.csv and log.csv counted epochs from 0
while the console ("epoch 6: …", the bar's "epoch 5/6"), --epochs and the card count from 1, so a plot of epochs.csv
beside the console was one off. A run begun before they counted from 1, resumed after, is renumbered, not mixed."""
from __future__ import annotations

import csv
import logging
import re
import shutil
from pathlib import Path

import pytest
import torch

from training.checkpoints import CHECKPOINT, load_checkpoint
from training.csv_log import CsvLog, count_epochs_from_one, logs_count_epochs_from_one
from training.loop import LoopConfig, run

from tests.test_loop import ToyTask  # 64 samples: 64 / batch_size steps an epoch, a log.csv row every 20 steps

EPOCHS = 3


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def epochs_of(path: Path) -> list[tuple[str, str]]:
    """(step, epoch) of each row: epochs.csv's seconds differ from run to run."""
    return [(r["step"], r["epoch"]) for r in rows(path)]


def as_before_the_change(run_dir: Path) -> None:
    """``run_dir`` as the code before this change left it: each log row's epoch one less, and a checkpoint without
    the mark (its "extra" was always empty)."""
    for name in ("log.csv", "epochs.csv"):
        log = CsvLog(run_dir / name)
        log.renumber("epoch", lambda r: int(r["epoch"]) - 1)
    state = torch.load(run_dir / CHECKPOINT, weights_only=False)
    state["extra"] = {}
    torch.save(state, run_dir / CHECKPOINT)


def test_the_logs_count_epochs_as_the_console_does(tmp_path, capsys):
    steps_per_epoch = 32  # batch 2: log.csv rows at 20 in the first epoch, 40 and 60 in the second, 80 in the third
    run(ToyTask(), LoopConfig(tmp_path, epochs=EPOCHS, batch_size=2))
    printed = re.findall(r"^epoch (\d+): ", capsys.readouterr().out, re.MULTILINE)
    assert printed == ["1", "2", "3"]
    assert [r["epoch"] for r in rows(tmp_path / "epochs.csv")] == printed
    assert [(r["step"], r["epoch"]) for r in rows(tmp_path / "log.csv")] == \
           [("20", "1"), ("40", "2"), ("60", "2"), ("80", "3")]
    assert all(-(-int(s) // steps_per_epoch) == int(e) for s, e in epochs_of(tmp_path / "epochs.csv"))
    assert logs_count_epochs_from_one(load_checkpoint(tmp_path))


def test_a_resume_of_a_new_run_trims_and_appends_counting_from_one(tmp_path):
    run(ToyTask(), LoopConfig(tmp_path / "a", epochs=EPOCHS, batch_size=4))
    with pytest.raises(KeyboardInterrupt):  # StoppedEarly, in epoch 3 (steps 33-48)
        run(ToyTask(), LoopConfig(tmp_path / "b", epochs=EPOCHS, batch_size=4, max_steps=42))
    for name in ("log.csv", "epochs.csv"):  # as a kill after the last step would leave them
        shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
    run(ToyTask(), LoopConfig(tmp_path / "b", epochs=EPOCHS, batch_size=4, resume=True))
    assert (tmp_path / "b" / "log.csv").read_text() == (tmp_path / "a" / "log.csv").read_text()
    assert epochs_of(tmp_path / "b" / "epochs.csv") == [("16", "1"), ("32", "2"), ("48", "3")]


# batch 4: 16 steps an epoch, shorter than log.csv's 20: its old rows hold no epoch 0 (20 in epoch 1, 40 in epoch 2);
# batch 2: 32 steps an epoch, its first row in epoch 0
@pytest.mark.parametrize("batch_size, stop_at", [(4, 42), (2, 45)])
def test_a_run_begun_before_the_logs_counted_from_one_is_renumbered_when_resumed(tmp_path, batch_size, stop_at):
    run(ToyTask(), LoopConfig(tmp_path / "a", epochs=EPOCHS, batch_size=batch_size))
    with pytest.raises(KeyboardInterrupt):
        run(ToyTask(), LoopConfig(tmp_path / "b", epochs=EPOCHS, batch_size=batch_size, max_steps=stop_at))
    for name in ("log.csv", "epochs.csv"):  # rows past its checkpoint, as a kill after the last step leaves them
        shutil.copy(tmp_path / "a" / name, tmp_path / "b" / name)
    as_before_the_change(tmp_path / "b")
    assert "0" in [r["epoch"] for r in rows(tmp_path / "b" / "epochs.csv")]
    run(ToyTask(), LoopConfig(tmp_path / "b", epochs=EPOCHS, batch_size=batch_size, resume=True))
    assert (tmp_path / "b" / "log.csv").read_text() == (tmp_path / "a" / "log.csv").read_text()
    assert epochs_of(tmp_path / "b" / "epochs.csv") == epochs_of(tmp_path / "a" / "epochs.csv")
    assert [e for _, e in epochs_of(tmp_path / "a" / "epochs.csv")] == ["1", "2", "3"]
    assert logs_count_epochs_from_one(load_checkpoint(tmp_path / "b"))


def test_a_resume_killed_before_its_first_checkpoint_does_not_renumber_the_old_logs_twice(tmp_path, monkeypatch):
    """Renumbered, the logs lie beside the old checkpoint, without the mark, until the resumed run saves one: the
    next resume renumbers them again, and must come to the same numbers (not 2, 3, 4)."""
    import training.checkpoints as checkpoints

    run(ToyTask(), LoopConfig(tmp_path / "a", epochs=EPOCHS, batch_size=4))
    with pytest.raises(KeyboardInterrupt):
        run(ToyTask(), LoopConfig(tmp_path / "b", epochs=EPOCHS, batch_size=4, max_steps=42))
    as_before_the_change(tmp_path / "b")

    def killed(state, path):
        raise RuntimeError("killed")

    with monkeypatch.context() as m:
        m.setattr(checkpoints.torch, "save", killed)
        with pytest.raises(RuntimeError):
            run(ToyTask(), LoopConfig(tmp_path / "b", epochs=EPOCHS, batch_size=4, resume=True))
    assert not logs_count_epochs_from_one(load_checkpoint(tmp_path / "b"))
    assert epochs_of(tmp_path / "b" / "epochs.csv") == [("16", "1"), ("32", "2")]  # renumbered already
    run(ToyTask(), LoopConfig(tmp_path / "b", epochs=EPOCHS, batch_size=4, resume=True))
    assert (tmp_path / "b" / "log.csv").read_text() == (tmp_path / "a" / "log.csv").read_text()
    assert epochs_of(tmp_path / "b" / "epochs.csv") == epochs_of(tmp_path / "a" / "epochs.csv")


def test_old_logs_whose_epochs_csv_lacks_finished_epochs_are_said_to_be_numbered_by_what_it_has(tmp_path, caplog):
    (tmp_path / "log.csv").write_text("step,epoch,loss\n20,1,0.5\n40,2,0.4\n")
    (tmp_path / "epochs.csv").write_text("step,epoch,w0\n16,0,0.1\n")  # epoch 1 (counted from 0) gone
    with caplog.at_level(logging.WARNING):
        count_epochs_from_one(CsvLog(tmp_path / "epochs.csv"), CsvLog(tmp_path / "log.csv"), finished=2)
    assert [(r["step"], r["epoch"]) for r in rows(tmp_path / "log.csv")] == [("20", "2"), ("40", "2")]
    assert epochs_of(tmp_path / "epochs.csv") == [("16", "1")]
    said = caplog.records[-1].getMessage()
    assert said.startswith(f"{tmp_path / 'log.csv'}: ") and "epochs.csv lacks epoch(s) 2 of the 2" in said
