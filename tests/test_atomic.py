"""Files of a run are whole or as they were: a process killed while writing each kind of file, and a full disk
(a file size limit: writes fail with EFBIG) that stops a command with one line and loses nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch

from fewcast import checkpoint
from fewcast.atomic import atomic_write
from fewcast.errors import StorageError
from tests.conftest import TRAIN_SETTINGS, fewcast

# Runs fewcast's command line, killed (SIGKILL) as it writes the NTH file named TARGET: just before the
# rename that would put it in place; for metrics.csv, after writing half of the row of meta-iteration NTH.
KILLED = """
import os, signal, sys
target, nth = sys.argv[1], int(sys.argv[2])
seen = 0
rename = os.replace
def replace(src, dst, *args, **kw):
    global seen
    if os.path.basename(os.fspath(dst)) == target:
        seen += 1
        if seen == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    return rename(src, dst, *args, **kw)
os.replace = replace
from fewcast import run
row = run.TrainingRun._row
def cut(self, phase):
    write = row(self, phase)
    def half(values):
        if target == "metrics.csv" and phase != "pretrained" and values["iteration"] == nth:
            self._metrics.write(f"{phase},{nth},0.12")
            self._metrics.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        write(values)
    return half
run.TrainingRun._row = cut
from fewcast.cli import main
sys.exit(main(sys.argv[3:]))
"""

# Runs fewcast's command line under a file size limit of LIMIT bytes.
LIMITED = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from fewcast.cli import main
sys.exit(main(sys.argv[2:]))
"""


def killed(target: str, nth: int, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", KILLED, target, str(nth), *map(str, args)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr  # killed, as planned
    return proc


def same_weights(run, reference) -> None:
    got, state, _ = checkpoint.load(run / "checkpoint")
    want, _, _ = checkpoint.load(reference / "checkpoint")
    assert state["phase"] == "done" and set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


def whole_metrics(run, reference) -> None:
    """Every row once, as the uninterrupted run wrote it."""
    columns = ["phase", "iteration", "train_loss", "val_loss"]
    pd.testing.assert_frame_equal(pd.read_csv(run / "metrics.csv")[columns],
                                  pd.read_csv(reference / "metrics.csv")[columns])


@pytest.mark.parametrize("target, nth, recover", [
    ("config.toml", 1, "again"),    # the run's first file: nothing to resume, train again
    ("split.json", 1, "again"),
    ("checkpoint", 25, "resume"),   # a checkpoint replacing the previous one
    ("metrics.csv", 7, "resume"),   # a row cut in the middle
    ("selection.csv", 1, "resume"),  # the networks trained, the forecast being chosen
])
def test_a_train_killed_while_writing_each_file_recovers_whole(target, nth, recover, data, uninterrupted, tmp_path):
    run = tmp_path / "run"
    killed(target, nth, "train", data, "--out", run, *TRAIN_SETTINGS)
    if target in ("config.toml", "split.json"):
        assert not (run / target).exists()  # never half-written: absent until whole
    else:
        checkpoint.load(run / "checkpoint")  # readable: the new one or the previous one
    args = ["--resume"] if recover == "resume" else TRAIN_SETTINGS
    proc = fewcast("train", data, "--out", run, *args)
    assert proc.returncode == 0, proc.stderr
    same_weights(run, uninterrupted)
    whole_metrics(run, uninterrupted)
    assert not list(run.glob(".*.tmp*"))  # the killed writer's temporaries are gone
    assert (run / "selection.csv").read_text() == (uninterrupted / "selection.csv").read_text()


@pytest.mark.parametrize("target", ["results.csv", "report.html", "trajectory.png"])
def test_an_evaluate_killed_while_writing_keeps_the_previous_file(target, uninterrupted, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run, ignore=shutil.ignore_patterns(".lock"))
    (run / target).write_bytes(b"a previous version\n")
    killed(target, 1, "evaluate", run)
    assert (run / target).read_bytes() == b"a previous version\n"  # the previous whole file, not half a new one
    proc = fewcast("evaluate", run)
    assert proc.returncode == 0, proc.stderr
    assert (run / target).read_bytes() != b"a previous version\n" and not list(run.glob(".*.tmp*"))


def test_a_full_disk_stops_train_with_one_line_and_resume_continues(data, uninterrupted, tmp_path):
    """Past the limit, the first checkpoint holding the meta-trainer (about 150 kB with these settings; those
    of pre-training about 110 kB) cannot be written: train stops, naming it; the previous checkpoint loads."""
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", LIMITED, "130000", "train", data, "--out", run, *TRAIN_SETTINGS],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"fewcast train: error: could not write the checkpoint {run / 'checkpoint'}: File too large; the previous "
        f"checkpoint is kept. Once it can be written, resume with: fewcast train {data} --out {run} --resume"]
    _, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "metasgd" and "trainer" not in state  # written as meta-training began
    assert not list(run.glob(".*.tmp*"))
    again = fewcast("train", data, "--out", run, "--resume")  # space again
    assert again.returncode == 0, again.stderr
    same_weights(run, uninterrupted)
    whole_metrics(run, uninterrupted)


def test_a_full_disk_stops_evaluate_and_forecast_naming_the_file(uninterrupted, data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run, ignore=shutil.ignore_patterns(".lock"))
    proc = subprocess.run([sys.executable, "-c", LIMITED, "20000", "evaluate", run], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert line.startswith(f"fewcast evaluate: error: could not write {run}/") and line.endswith(": File too large")
    assert not list(run.glob(".*.tmp*"))
    out = tmp_path / "forecasts.csv"
    out.write_text("previous\n")
    proc = subprocess.run([sys.executable, "-c", LIMITED, "100", "forecast", run, "--data", data, "--out", out],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"fewcast forecast: error: could not write {out}: File too large"
    assert out.read_text() == "previous\n"


def test_atomic_write_failure_is_a_storage_error_and_leaves_nothing(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(StorageError, match=f"could not write {target}: Is a directory"):
        atomic_write(target, "new")
    assert (target / "inside").read_text() == "kept" and sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
