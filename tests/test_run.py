"""Training runs on disk: exact resume after SIGKILL, Ctrl-C, divergence, determinism, the README flow."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fewcast import checkpoint
from tests.test_experiment import seasonal_panel

SETTINGS = ["--h", "6", "--input-size", "12", "--season-length", "12", "--hidden", "32", "--shots", "3",
            "--iterations", "60", "--pretrain-iterations", "40", "--meta-batch-size", "64", "--val-every", "10",
            "--checkpoint-every", "2", "--quiet"]


def fewcast(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fewcast", *map(str, args)], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "panel.csv"
    seasonal_panel(40).to_frame().to_csv(path, index=False)
    return path


def final_tensors(run: Path) -> dict[str, torch.Tensor]:
    tensors, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "done"
    return tensors


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "straight"
    proc = fewcast("train", data, "--out", run, *SETTINGS)
    assert proc.returncode == 0, proc.stderr
    return run


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


def test_readme_your_own_data_commands(tmp_path):
    """The three commands of the README's "Your own data" section, run as written (scaled down)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme.split("## Your own data", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(\.venv/bin/fewcast .+)$", section, flags=re.M)
    assert [c.split()[1] for c in commands] == ["validate", "train", "forecast"]
    frame = seasonal_panel(30).to_frame().rename(columns={"unique_id": "store", "ds": "month", "y": "sales"})
    frame.to_csv(tmp_path / "sales.csv", index=False)
    frame[frame.store.isin(["s01", "s02"])].to_csv(tmp_path / "new_stores.csv", index=False)
    small = ["--iterations", "4", "--pretrain-iterations", "4", "--hidden", "16", "--quiet"]
    for command in commands:
        args = command.split()[1:]
        if args[0] == "train":
            args += small
        proc = fewcast(*args, cwd=tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
    out = pd.read_csv(tmp_path / "forecasts.csv")
    assert list(out.columns) == ["store", "month", "fewcast"] and len(out) == 2 * 6


def test_tensorboard_option(data, tmp_path):
    import importlib.util

    proc = fewcast("train", data, "--out", tmp_path / "tb", *SETTINGS[:-3], "--tensorboard", "--quiet",
                   "--iterations", "3", "--pretrain-iterations", "3")
    if importlib.util.find_spec("tensorboard") is None:
        assert proc.returncode == 2 and "--tensorboard needs the tensorboard package" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert list((tmp_path / "tb" / "tensorboard").glob("events.out.tfevents.*"))


def test_forecast_combine_adds_a_column_and_rejects_unknown_methods(data, uninterrupted, tmp_path):
    out = tmp_path / "f.csv"
    proc = fewcast("forecast", uninterrupted, "--data", data, "--out", out, "--combine", "naive")
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(out)
    last = pd.read_csv(data).sort_values(["unique_id", "ds"]).groupby("unique_id")["y"].last()
    assert list(frame.columns) == ["unique_id", "ds", "fewcast", "fewcast+naive"]
    np.testing.assert_allclose(frame["fewcast+naive"], (frame["fewcast"] + frame["unique_id"].map(last)) / 2,
                               rtol=1e-5)
    bad = fewcast("forecast", uninterrupted, "--data", data, "--out", out, "--combine", "arima")
    assert bad.returncode == 2 and "unknown classical method arima" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_forecast_adapts_by_plain_fine_tuning_when_asked(data, uninterrupted, tmp_path):
    from fewcast import FewShotForecaster

    learned, every = tmp_path / "learned.csv", tmp_path / "every.csv"
    assert fewcast("forecast", uninterrupted, "--data", data, "--out", learned).returncode == 0
    proc = fewcast("forecast", uninterrupted, "--data", data, "--out", every, "--adapt", "finetune_all")
    assert proc.returncode == 0, proc.stderr
    by_api = FewShotForecaster.load(uninterrupted / "checkpoint").predict(pd.read_csv(data), adapt="finetune_all")
    np.testing.assert_allclose(pd.read_csv(every)["fewcast"], by_api["fewcast"], rtol=1e-5)
    assert not np.allclose(pd.read_csv(every)["fewcast"], pd.read_csv(learned)["fewcast"])
    auto = tmp_path / "auto.csv"
    proc = fewcast("forecast", uninterrupted, "--data", data, "--out", auto, "--adapt", "auto")
    assert proc.returncode == 0, proc.stderr
    by_api = FewShotForecaster.load(uninterrupted / "checkpoint").predict(pd.read_csv(data), adapt="auto")
    np.testing.assert_allclose(pd.read_csv(auto)["fewcast"], by_api["fewcast"], rtol=1e-5)


def test_forecast_and_evaluate_take_fill(data, uninterrupted, tmp_path):
    """Data with a gap is refused with the advice to pass --fill, which forecast and evaluate take."""
    frame = pd.read_csv(data)
    holed = frame.drop(index=frame.index[(frame.unique_id == frame.unique_id.iloc[0])][10:12])
    holed.to_csv(tmp_path / "holed.csv", index=False)
    out = tmp_path / "f.csv"
    refused = fewcast("forecast", uninterrupted, "--data", tmp_path / "holed.csv", "--out", out)
    assert refused.returncode == 2 and "pass --fill" in refused.stderr and "Traceback" not in refused.stderr
    filled = fewcast("forecast", uninterrupted, "--data", tmp_path / "holed.csv", "--out", out, "--fill")
    assert filled.returncode == 0, filled.stderr
    assert "inserted 2 missing time stamps" in filled.stderr
    assert len(pd.read_csv(out)) == frame.unique_id.nunique() * 6
    run = tmp_path / "run"
    shutil.copytree(uninterrupted, run)  # evaluate writes its results into the run
    scored = fewcast("evaluate", run, "--data", tmp_path / "holed.csv", "--fill")
    assert scored.returncode == 0, scored.stderr
    assert (run / "results.csv").exists()
