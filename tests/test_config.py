"""Settings: sections by lifetime, help beside every field, each section's own checks, and config files
and checkpoints of earlier releases read where their settings belong now."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from fewcast.config import MOVED, Settings, dumps_toml, load_toml
from fewcast.errors import InputError
from fewcast.presets import preset

# a config.toml as runs wrote it before settings were grouped by lifetime (every moved key, some changed)
OLD_CONFIG = """
[data]
dataset = "tourism-monthly"
input_size = 36
val_frac = 0.2
test_frac = 0.25
staleness = 24
history = 60
drop_zero_target = true
memmap = false

[learner]
name = "maml"
adapt = "head"
shots = 12
query_shots = 2
init = "random"
outer_params = "all"

[train]
iterations = 7

[eval]
learners = ["anil"]
adapt_shots = 40
adapt_steps = 5
finetune_all_shots = 100
finetune_all_steps = 10
finetune_all_lr = 0.01
finetune_all_min_shots = 25
"""


def test_round_trip_through_toml(tmp_path):
    s = Settings()
    s.update("train", {"shots": 7, "cosine": True})
    s.update("model", {"ensemble_inputs": [12, 18]})
    (tmp_path / "c.toml").write_text(dumps_toml(s))
    assert load_toml(tmp_path / "c.toml") == s


def test_an_old_config_file_is_read_where_its_settings_belong_now(tmp_path):
    (tmp_path / "old.toml").write_text(OLD_CONFIG)
    s = load_toml(tmp_path / "old.toml")
    assert (s.data.input_size, s.learner.name, s.learner.adapt_params) == (36, "maml", "head")
    assert (s.train.val_frac, s.train.test_frac, s.train.staleness, s.train.drop_zero_target) == (0.2, 0.25, 24, True)
    assert (s.train.shots, s.train.query_shots, s.train.init, s.train.outer_params) == (12, 2, "random", "all")
    assert (s.eval.history, s.eval.extra_learners, s.train.iterations) == (60, ["anil"], 7)
    f = s.forecast
    assert (f.adapt_shots, f.adapt_steps, f.finetune_all_shots, f.finetune_all_steps, f.finetune_all_lr,
            f.finetune_all_min_shots) == (40, 5, 100, 10, 0.01, 25)
    assert {old for old, _ in MOVED} <= {"data", "learner", "eval"}


def test_a_retired_setting_in_an_old_config_is_ignored(tmp_path):
    """``train.val_tasks`` never changed a run, and the data is now the command's argument, not a setting;
    config files written with them still load, and a typo still fails."""
    config = tmp_path / "config.toml"
    config.write_text('[train]\nval_tasks = 512\niterations = 7\n[data]\ndataset = "game"\n')
    assert load_toml(config).train.iterations == 7
    config.write_text("[train]\nval_taks = 512\n")
    with pytest.raises(InputError, match=r"unknown setting train\.val_taks"):
        load_toml(config)


def test_every_setting_says_what_it_does_and_has_one_name():
    names = []
    for section in Settings.SECTIONS:
        for f in fields(getattr(Settings(), section)):
            assert len(f.metadata.get("help", "")) > 10, f"{section}.{f.name}"
            names.append(f.name)
    assert len([n for n in names if n != "name"]) == len(set(names) - {"name"})


@pytest.mark.parametrize("section, values, message", [
    ("data", {"scaler": "zscore"}, "unknown scaler 'zscore'; choose one of mean_abs, standard, none"),
    ("data", {"input_size": -1}, "`input_size` must be 0 or more"),
    ("model", {"name": "lstm"}, "unknown model 'lstm'"),
    ("model", {"ensemble_transforms": ["sqrt"]}, "unknown ensemble_transforms sqrt"),
    ("learner", {"name": "protonet"}, "unknown learner 'protonet'"),
    ("learner", {"adapt_params": "body"}, "unknown adapt_params 'body'"),
    ("forecast", {"adapt_steps": -1}, "`adapt_steps` must be 0 or more"),
    ("train", {"staleness": -1}, "`staleness` must be 0 or more"),
    ("train", {"val_frac": 0.6, "test_frac": 0.5}, "sum below 1"),
    ("train", {"outer_params": "weights"}, "unknown outer_params 'weights'"),
    ("train", {"pretrain_ema": 1.0}, r"`pretrain_ema` must be a decay in \[0, 1\)"),
    ("eval", {"protocol": "cv"}, "unknown protocol 'cv'; choose one of holdout, all-series"),
    ("eval", {"classical": ["naive"], "combine": ["theta"]}, "combine lists theta, which classical does not"),
    ("eval", {"extra_learners": ["maml", "nosuch"]}, "unknown extra_learners 'nosuch'; choose one of maml"),
    ("train", {"val_every": 0}, "`val_every` must be 1 or more"),
    ("train", {"meta_batch_size": 0}, "`meta_batch_size` must be 1 or more"),
    ("train", {"pretrain_batch_size": -5}, "`pretrain_batch_size` must be -1 or more"),
    ("train", {"seed": -1}, "`seed` must be 0 or more"),
    ("train", {"outer_lr": -1.0}, "`outer_lr` must be 0 or more"),
    ("train", {"iterations": -1}, "`iterations` must be 0 or more"),
    ("train", {"clip": -1.0}, "`clip` must be 0 or more"),
    ("train", {"device": "tpu"}, "`device` must be auto, cpu, cuda, cuda:N or another device torch knows"),
    ("model", {"blocks": 0}, "`blocks` must be 1 or more"),
    ("model", {"name": "nbeats", "depth": 0}, "`depth` must be 1 or more"),
    ("learner", {"inner_lr": -0.1}, "`inner_lr` must be 0 or more"),
])
def test_each_section_checks_its_own_values(section, values, message):
    s = Settings()
    s.update(section, values)
    with pytest.raises(InputError, match=message):
        s.check()
    Settings().check()  # the defaults pass


@pytest.mark.parametrize("section, values, message", [
    ("train", {"iterations": True}, "train.iterations must be int, got True"),
    ("eval", {"shots_curve": [1.5, 2]}, r"eval.shots_curve must be a list of int, got \[1.5, 2\]"),
    ("train", {"outer_lr": False}, "train.outer_lr must be float, got False"),
    ("train", {"iterations": np.float32(2.5)}, "train.iterations must be int, got "),
    ("train", {"iterations": np.True_}, "train.iterations must be int, got "),
])
def test_a_value_that_would_change_meaning_is_not_converted(section, values, message):
    with pytest.raises(InputError, match=message):
        Settings().update(section, values)


def test_a_log_member_needs_a_scaler_that_keeps_values_positive():
    s = Settings()
    s.update("data", {"scaler": "standard"})
    with pytest.raises(InputError, match=r"ensemble_transforms 'log' .* 'standard' scaler"):
        s.check()
    s.update("model", {"ensemble_transforms": ["identity", "last"]})
    s.check()


def test_presets_name_their_panel():
    settings, dataset = preset("seed")
    assert dataset == "game" and settings.learner.name == "maml" and settings.forecast.adapt_steps == 10
    assert settings.train.shots == 10 and settings.data.input_size == 30
    assert preset("default") == (Settings(), "m3-monthly")
    with pytest.raises(InputError, match="unknown preset 'fast'"):
        preset("fast")
