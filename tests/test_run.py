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
import pytest
import torch

from fewcast import checkpoint
from fewcast.config import MOVED, Settings, _toml_value, load_toml
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


def test_a_process_pool_forked_under_the_stop_flag_stops_its_workers():
    # statsforecast's pool (the classical fits of the choice, under `train`'s flag) ends with terminate(),
    # which stops its workers with SIGTERM: a worker that only raised the flag kept the pool waiting forever
    code = """if True:
        import os, signal, time
        from multiprocessing import get_context
        from fewcast.run import StopFlag
        with StopFlag() as stop:
            pool = get_context("fork").Pool(2)
            pool.map_async(time.sleep, [1, 1, 1, 1])
            time.sleep(0.3)
            pool.terminate()
            os.kill(os.getpid(), signal.SIGTERM)  # the parent's SIGTERM still raises the flag
            print("terminated", stop())
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "terminated True"), done.stderr


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


def old_layout(settings: Settings, dataset: str) -> str:
    """Settings as runs wrote config.toml before settings were grouped by lifetime (and held the data)."""
    raw = settings.to_dict()
    old = {section: dict(values) for section, values in raw.items()}
    for (section, key), (part, name) in MOVED.items():
        old[section][key] = old[part].pop(name)
    old.pop("forecast")
    old["data"]["dataset"] = dataset
    return "\n".join(f"[{section}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in values.items())
                     for section, values in old.items())


def test_a_run_written_before_settings_moved_still_evaluates_and_forecasts(tmp_path):
    """A finished run of the previous layout: config.toml in the old sections, holding the data; a checkpoint
    with h = 0 (the panel's own) and no record of its data. It loads, evaluates on its data and forecasts."""
    run = tmp_path / "old"
    small = ["--iterations", "2", "--pretrain-iterations", "2", "--shots", "3", "--input-size", "6", "--hidden", "8",
             "--quiet"]
    assert fewcast("train", "m3-yearly", "--out", run, *small).returncode == 0
    ck = run / "checkpoint"
    state = json.loads((ck / "state.json").read_text())
    del state["source"]
    (ck / "state.json").write_text(json.dumps(state))
    settings = load_toml(ck / "config.toml")
    settings.update("data", {"h": 0, "season_length": 0})
    for path in (ck / "config.toml", run / "config.toml"):
        path.write_text(old_layout(settings, "m3-yearly"))
    manifest = {n: checkpoint._sha256(ck / n) for n in checkpoint.FILES}
    (ck / checkpoint.MANIFEST).write_text(json.dumps(manifest))
    from fewcast.run import load_networks

    upgraded, state, _, _ = load_networks(ck)
    assert state["source"] == "m3-yearly" and (upgraded.data.h, upgraded.data.season_length) == (6, 1)
    assert upgraded.train.shots == 3
    scored = fewcast("evaluate", run, "--classical", "naive", "--combine", "")
    assert scored.returncode == 0, scored.stderr
    assert pd.read_csv(run / "results.csv")["n_series"].iloc[0] == 194


def test_a_run_killed_as_meta_training_began_resumes_to_the_same_weights(data, uninterrupted, tmp_path, monkeypatch):
    """The checkpoint written when pre-training ends holds no meta-training state yet: a run killed before
    meta-training's first checkpoint resumes from it (meta-training from its start) to the same weights."""
    from fewcast.cli import build_parser
    from fewcast.experiment import Experiment
    from fewcast.options import settings_from_args
    from fewcast.run import TrainingRun

    run = tmp_path / "early"
    settings = settings_from_args(build_parser().parse_args(["train", str(data), "--out", str(run), *SETTINGS]))

    class Killed(Exception):
        pass

    def killed(*_, **__):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(Experiment, "meta_trainer", killed)
        with pytest.raises(Killed):
            TrainingRun(run, str(data), settings, progress=False, log=lambda *_: None).train()
    _, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "metasgd" and "trainer" not in state
    TrainingRun(run, resume=True, progress=False, log=lambda *_: None).train()
    straight, again = final_tensors(uninterrupted), final_tensors(run)
    assert set(straight) == set(again) and all(torch.equal(straight[k], again[k]) for k in straight)
    assert list(pd.read_csv(run / "metrics.csv").groupby("phase", sort=False).size()) == [40, 60]
