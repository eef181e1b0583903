"""One writer per run directory: two racing trains, a writer refused while another works, and readers of a run
being trained (its last complete checkpoint, with a warning)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from fewcast import checkpoint
from fewcast.config import read_toml
from fewcast.errors import InputError
from fewcast.lock import LOCK, RunLock, holder
from tests.conftest import TRAIN_SETTINGS, fewcast


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fewcast", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_lock_is_exclusive_and_names_its_holder(tmp_path):
    with RunLock(tmp_path / "run", "fewcast train"):
        assert holder(tmp_path / "run") is None  # this process holds it: not "another writer"
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from fewcast.lock import holder, RunLock\n"
             f"print(holder({str(tmp_path / 'run')!r}))\n"
             f"RunLock({str(tmp_path / 'run')!r}).acquire()"], capture_output=True, text=True)
        import os
        assert child.stdout.strip() == f"process {os.getpid()} (fewcast train)"
        assert f"is being written by process {os.getpid()} (fewcast train)" in child.stderr
    assert holder(tmp_path / "run") is None
    with RunLock(tmp_path / "run"):  # released: taken again
        pass


def test_a_killed_writer_leaves_no_lock_and_its_temporaries_are_removed(tmp_path):
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", "import time; from fewcast.lock import RunLock\n"
                              f"RunLock({str(run)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    assert holder(run) is not None
    (run / ".results.abc.tmp.csv").write_text("half a fi")
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert holder(run) is None
    with RunLock(run):
        assert sorted(p.name for p in run.iterdir()) == [LOCK]


def test_two_trains_racing_for_one_directory(data, tmp_path):
    """Started at the same moment: one fails at once (status 2, one line), the other's files all come from it."""
    run = tmp_path / "raced"
    procs = {seed: start("train", data, "--out", run, *TRAIN_SETTINGS, "--seed", seed) for seed in (1, 2)}
    done = {seed: (p.wait(timeout=300), p.stderr.read()) for seed, p in procs.items()}
    codes = sorted(code for code, _ in done.values())
    assert codes == [0, 2], done
    winner = next(seed for seed, (code, _) in done.items() if code == 0)
    loser_err = next(err for code, err in done.values() if code == 2)
    assert f"{run} is being written by process {procs[winner].pid} (fewcast train)" in loser_err
    assert "Traceback" not in loser_err and len(loser_err.strip().splitlines()) == 1
    assert read_toml(run / "config.toml")["train"]["seed"] == winner
    _, state, settings = checkpoint.load(run / "checkpoint")
    assert settings.train.seed == winner and state["phase"] == "done"
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.groupby("phase", sort=False).size()) == [40, 60]  # one run's rows, each once
    assert not metrics.duplicated(["phase", "iteration"]).any()
    assert json.loads((run / "split.json").read_text()) == state["split"]


def wait_for(condition, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stderr.read()}")
        if condition():
            return
        time.sleep(0.05)
    pytest.fail("timed out")


def phase_of(run) -> str | None:
    try:
        return checkpoint.load(run / "checkpoint")[1]["phase"]
    except InputError:
        return None


def test_a_run_being_trained_forecasts_from_its_last_checkpoint_and_refuses_a_second_writer(data, tmp_path):
    run = tmp_path / "training"
    new = tmp_path / "new.csv"
    pd.read_csv(data).groupby("unique_id").head(30).to_csv(new, index=False)
    trainer = start("train", data, "--out", run, *TRAIN_SETTINGS[:-1], "--pretrain-iterations", "400",
                    "--iterations", "100000", "--checkpoint-every", "1", "--quiet")
    try:
        for phase in ("pretrained", "metasgd"):
            wait_for(lambda phase=phase: phase_of(run) == phase, trainer)
            for attempt in range(3):  # while checkpoints are replaced every iteration
                out = tmp_path / f"{phase}{attempt}.csv"
                proc = fewcast("forecast", run, "--data", new, "--out", out)
                assert proc.returncode == 0, proc.stderr
                assert f"is being trained by process {trainer.pid} (fewcast train) (phase {phase}" in proc.stderr
                assert "forecasting with its last complete checkpoint" in proc.stderr
                forecasts = pd.read_csv(out)
                assert len(forecasts) == 6 * forecasts["unique_id"].nunique()
                assert np.isfinite(forecasts["fewcast"]).all()
        for command in (["evaluate", run], ["train", data, "--out", run, *TRAIN_SETTINGS],
                        ["train", data, "--out", run, "--resume"], ["demo", "--out", run]):
            proc = fewcast(*command)
            assert proc.returncode == 2, (command, proc.stderr)
            assert proc.stderr.strip() == (f"fewcast {command[0]}: error: {run} is being written by process "
                                           f"{trainer.pid} (fewcast train); wait for it to finish, or choose "
                                           f"another --out")
    finally:
        trainer.send_signal(signal.SIGINT)
        trainer.wait(timeout=120)
    assert trainer.returncode == 130
    proc = fewcast("forecast", run, "--data", new, "--out", tmp_path / "stopped.csv")  # no writer: resume first
    assert proc.returncode == 2 and "is not finished" in proc.stderr and "--resume" in proc.stderr


def test_a_directory_the_lock_cannot_be_written_in_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys,
                                                                                uninterrupted):
    import errno
    import os
    import shutil

    from fewcast.cli import main
    from fewcast.errors import StorageError

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    run = tmp_path / "copy"
    shutil.copytree(uninterrupted, run)
    monkeypatch.setattr("fewcast.lock.os.open", read_only)
    with pytest.raises(StorageError, match=r"cannot write .*\.lock: Read-only file system$"):
        RunLock(tmp_path / "run", "fewcast train").acquire()
    assert main(["evaluate", str(run)]) == 1  # status 1, as for a full disk
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fewcast evaluate: error: cannot write" in err


def test_a_damaged_ranking_is_left_out_and_the_run_still_forecasts(tmp_path, uninterrupted, data):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(uninterrupted, run)
    (run / "selection.csv").write_text('garbage,,,"\n')
    made = fewcast("forecast", run, "--data", data, "--out", tmp_path / "f.csv")
    assert made.returncode == 0 and "Traceback" not in made.stderr
    assert "selection.csv cannot be read" in made.stderr and "the validation ranking is left out" in made.stderr
