"""Checkpoints: atomic, pickle-free, and refused when tampered with."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from fewcast import checkpoint
from fewcast.config import Settings, load_toml
from fewcast.errors import InputError


def write(path):
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "rng": torch.tensor([1, 2, 3], dtype=torch.uint8)}
    checkpoint.save(path, tensors, {"iteration": 7}, Settings())
    return tensors


def test_round_trip(tmp_path):
    tensors = write(tmp_path / "ck")
    loaded, state, settings = checkpoint.load(tmp_path / "ck")
    for k, v in tensors.items():
        torch.testing.assert_close(loaded[k], v)
    assert state["iteration"] == 7 and settings.to_dict() == Settings().to_dict()
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == sorted([*checkpoint.FILES, checkpoint.MANIFEST])
    assert not list(tmp_path.glob(".ck.*"))  # no temporary directory left behind


@pytest.mark.parametrize("part, name, before", [("model", "ensemble_transforms", []),
                                               ("train", "pretrain_ema", 0.0),
                                               ("train", "pretrain_patience", 0),
                                               ("train", "select_top", 1)])
def test_a_checkpoint_from_before_a_setting_existed_loads_as_it_was_written(tmp_path, part, name, before):
    """Checkpoints written before ``ensemble_transforms`` existed hold identity members only, and those
    written before ``pretrain_ema`` pre-trained without an average, those before ``pretrain_patience`` ran every
    pre-training iteration, those before ``select_top`` forecast with the best candidate alone: loading one
    must not give it today's default (a log member whose weights it never trained, an average its state lacks,
    a resumed pre-training that stops where the original never would, another forecast)."""
    write(tmp_path / "ck")
    config = tmp_path / "ck" / "config.toml"
    config.write_text("".join(line for line in config.read_text().splitlines(keepends=True)
                              if not line.startswith(name)))
    manifest = {n: checkpoint._sha256(tmp_path / "ck" / n) for n in checkpoint.FILES}
    (tmp_path / "ck" / checkpoint.MANIFEST).write_text(json.dumps(manifest))
    _, _, settings = checkpoint.load(tmp_path / "ck")
    assert getattr(getattr(settings, part), name) == before
    today = getattr(getattr(Settings(), part), name)
    assert getattr(getattr(load_toml(config), part), name) == today  # a config: today's default


class Bomb:
    def __reduce__(self):  # unpickling this would run code
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_pickle_bomb_dropped_in_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "ck")
    (tmp_path / "ck" / "optimizer.pt").write_bytes(pickle.dumps(Bomb()))
    with pytest.raises(InputError, match=r"unexpected files \['optimizer.pt'\]; refusing"):
        checkpoint.load(tmp_path / "ck")
    (tmp_path / "ck" / "optimizer.pt").unlink()
    (tmp_path / "ck" / "model.safetensors").write_bytes(pickle.dumps(Bomb()))  # replaced by a pickle
    with pytest.raises(InputError, match=r"model\.safetensors does not match its manifest"):
        checkpoint.load(tmp_path / "ck")
    assert not (tmp_path / "PWNED").exists()


def test_truncated_file_is_refused(tmp_path):
    write(tmp_path / "ck")
    path = tmp_path / "ck" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(InputError, match="does not match its manifest"):
        checkpoint.load(tmp_path / "ck")


def test_manifest_cannot_be_forged_into_a_bad_file(tmp_path):
    import hashlib
    import json

    write(tmp_path / "ck")
    path = tmp_path / "ck" / "model.safetensors"
    path.write_bytes(path.read_bytes()[:40])
    manifest = json.loads((tmp_path / "ck" / "manifest.json").read_text())
    manifest["model.safetensors"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "ck" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="unreadable"):
        checkpoint.load(tmp_path / "ck")


def test_killed_write_leaves_the_previous_checkpoint(tmp_path):
    write(tmp_path / "ck")
    # a writer killed between its two renames leaves only ck.old: it is found and read
    (tmp_path / "ck").rename(tmp_path / "ck.old")
    _, state, _ = checkpoint.load(tmp_path / "ck")
    assert state["iteration"] == 7
    with pytest.raises(InputError, match="no checkpoint in"):
        checkpoint.load(tmp_path / "elsewhere")
