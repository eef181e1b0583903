"""Training runs on disk: exact resume after SIGKILL, Ctrl-C, divergence, determinism, the README flow."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from fewcast import checkpoint
from tests.conftest import TRAIN_SETTINGS as SETTINGS
from tests.conftest import fewcast


def final_tensors(run: Path) -> dict[str, torch.Tensor]:
    tensors, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "done"
    return tensors


def test_resume_after_sigkill_equals_uninterrupted(data, uninterrupted, tmp_path):
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "fewcast", "train", str(data), "--out", str(run), *SETTINGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = run / "checkpoint" / "state.json"
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
            continue
        if state["phase"] == "metasgd" and state.get("trainer", {}).get("iteration", 0) >= 20:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = state["trainer"]["iteration"]
            break
        time.sleep(0.005)
    proc.wait()
    assert killed_at is not None, "the run finished before it could be killed halfway"
    _, state, _ = checkpoint.load(run / "checkpoint")  # whatever moment the kill hit, a checkpoint reads
    assert state["phase"] == "metasgd"
    resumed = fewcast("train", data, "--out", run, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming meta-training at iteration" in resumed.stderr
    straight, again = final_tensors(uninterrupted), final_tensors(run)
    assert set(straight) == set(again)
    for key in straight:
        assert torch.equal(straight[key], again[key]), key
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.groupby("phase", sort=False).size()) == [40, 60]
    assert metrics.groupby("phase")["iteration"].apply(lambda s: s.is_monotonic_increasing).all()


def test_same_seed_same_metrics(data, uninterrupted, tmp_path):
    proc = fewcast("train", data, "--out", tmp_path / "again", *SETTINGS)
    assert proc.returncode == 0, proc.stderr
    a = pd.read_csv(uninterrupted / "metrics.csv")
    b = pd.read_csv(tmp_path / "again" / "metrics.csv")
    pd.testing.assert_frame_equal(a[["phase", "iteration", "train_loss", "val_loss"]],
                                  b[["phase", "iteration", "train_loss", "val_loss"]])


def test_sigint_saves_and_says_how_to_resume(data, tmp_path):
    run = tmp_path / "interrupted"
    proc = subprocess.Popen([sys.executable, "-m", "fewcast", "train", str(data), "--out", str(run),
                             *SETTINGS[:-1], "--iterations", "100000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and "metasgd" in metrics.read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert re.search(r"interrupted at iteration \d+; checkpoint saved in .*Resume with: fewcast train .* --resume", err)
    assert "Traceback" not in err
    _, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "metasgd" and state["trainer"]["iteration"] >= 1
    again = fewcast("train", data, "--out", run, *SETTINGS)
    assert again.returncode == 2 and "already holds a training run; pass --resume" in again.stderr


def test_divergence_names_the_iteration_and_keeps_the_checkpoint(data, tmp_path):
    run = tmp_path / "diverged"
    proc = fewcast("train", data, "--out", run, *SETTINGS, "--learner", "maml", "--outer-params", "all",
                   "--inner-lr", "1e30", "--inner-steps", "2")
    assert proc.returncode == 1
    assert re.search(r"the meta-loss became nan at iteration 1; lower the learning rates", proc.stderr)
    _, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "maml"  # pre-training finished and was kept


def test_tensorboard_option(data, tmp_path):
    import importlib.util

    proc = fewcast("train", data, "--out", tmp_path / "tb", *SETTINGS[:-3], "--tensorboard", "--quiet",
                   "--iterations", "3", "--pretrain-iterations", "3")
    if importlib.util.find_spec("tensorboard") is None:
        assert proc.returncode == 2 and "--tensorboard needs the tensorboard package" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))
