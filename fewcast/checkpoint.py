"""Checkpoints that cannot run code and cannot be half-written.

A checkpoint is a directory: ``model.safetensors`` (every tensor: weights, learned rates, optimizer
moments, the best-validating weights, RNG states), ``state.json`` (numbers and strings: the iteration,
counters, generator states), ``config.toml`` (every setting) and ``manifest.json`` (the SHA-256 of each
of those files). Loading reads safetensors, JSON and TOML only, never pickle, and refuses a checkpoint
whose files do not match their manifest, that holds any other file, or that lacks one: a tampered or
truncated checkpoint is an :class:`~fewcast.errors.InputError` before anything is loaded into a model.

Writing is atomic: the files go into a fresh sibling directory, each fsync'ed, and the directory is then
renamed over the previous checkpoint (the old one kept as ``NAME.old`` until the rename is done), so a
``kill -9`` at any moment leaves a readable checkpoint: the new one, or the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as deserialize
from safetensors.torch import save as serialize

from fewcast.atomic import fsync_dir
from fewcast.config import Settings, dumps_toml, parse_toml
from fewcast.errors import InputError, StorageError

FILES = ("model.safetensors", "state.json", "config.toml")
MANIFEST = "manifest.json"
FORMAT = "fewcast-checkpoint-1"
# settings added after checkpoints were first written, each with the value that reproduces a checkpoint whose
# config.toml lacks it (a new default must not rebuild or resume an old run as something it never was)
BEFORE = {("model", "ensemble_transforms"): [], ("train", "pretrain_ema"): 0.0, ("train", "pretrain_patience"): 0,
          ("train", "select_top"): 1}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(directory: str | Path, tensors: dict[str, torch.Tensor], state: dict, settings: Settings) -> Path:
    """Write a checkpoint to ``directory`` atomically (replacing any previous one). A write that fails is a
    :class:`StorageError`, and the previous checkpoint stays as it was."""
    directory = Path(directory)
    tmp = None
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
        flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        (tmp / "model.safetensors").write_bytes(serialize(flat))  # written by Python: a failure is an OSError
        (tmp / "state.json").write_text(json.dumps({"format": FORMAT, **state}, indent=1, default=_json_default))
        (tmp / "config.toml").write_text(dumps_toml(settings))
        manifest = {name: _sha256(tmp / name) for name in FILES}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for name in (*FILES, MANIFEST):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        fsync_dir(tmp)
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(directory, old)
        os.replace(tmp, directory)
        fsync_dir(directory.parent)
        if old.exists():
            shutil.rmtree(old)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            raise StorageError(f"could not write the checkpoint {directory}: {exc.strerror or exc}; "
                               f"the previous checkpoint is kept") from exc
        raise
    return directory


def section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose names start with ``prefix``, with the prefix removed (``"learner."`` -> a state dict)."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in state.json")


def locate(directory: str | Path) -> Path:
    """The checkpoint to read: ``directory``, or the ``.old`` one left by a write that was killed."""
    directory = Path(directory)
    if (directory / MANIFEST).exists():
        return directory
    old = directory.with_name(directory.name + ".old")
    if (old / MANIFEST).exists():
        return old
    raise InputError(f"no checkpoint in {directory} (no {MANIFEST}); train first, or check the path")


def load(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict, Settings]:
    """Verify and read a checkpoint: ``(tensors, state, settings)``; nothing is unpickled. A checkpoint
    replaced by a writer while it is read is read again (the new one)."""
    for attempt in range(40):
        found = locate(directory)
        try:
            inode = os.stat(found).st_ino
        except FileNotFoundError:  # replaced between locate and stat
            continue
        try:
            return _read(found)
        except (InputError, OSError):
            if attempt == 39 or not _replaced(found, inode):
                raise
            time.sleep(0.05)
    return _read(locate(directory))


def _replaced(directory: Path, inode: int) -> bool:
    try:
        return os.stat(directory).st_ino != inode
    except FileNotFoundError:
        return True


def _read(directory: Path) -> tuple[dict[str, torch.Tensor], dict, Settings]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"checkpoint {directory}: unreadable {MANIFEST} ({exc}); refusing to load it") from None
    present = {p.name for p in directory.iterdir()}
    expected = {*FILES, MANIFEST}
    extra, missing = present - expected, expected - present
    if extra or missing or set(manifest) != set(FILES):
        what = f"unexpected files {sorted(extra)}" if extra else f"missing files {sorted(missing)}"
        raise InputError(f"checkpoint {directory} has {what}; refusing to load it (it may have been tampered with)")
    raw = {}
    for name in FILES:  # each file read once: what is verified is what is parsed
        try:
            raw[name] = (directory / name).read_bytes()
        except OSError as exc:
            raise InputError(f"checkpoint {directory}: unreadable {name} ({exc}); refusing to load it") from None
        if hashlib.sha256(raw[name]).hexdigest() != manifest[name]:
            raise InputError(f"checkpoint {directory}: {name} does not match its manifest (truncated or modified);"
                             f" refusing to load it")
    try:
        # tensors in memory of their own, not views of a file that the next checkpoint replaces
        tensors = deserialize(raw["model.safetensors"])
        state = json.loads(raw["state.json"])
    except (SafetensorError, ValueError) as exc:
        raise InputError(f"checkpoint {directory}: unreadable ({exc}); refusing to load it") from None
    if state.get("format") != FORMAT:
        raise InputError(f"checkpoint {directory}: unknown format {state.get('format')!r} (expected {FORMAT})")
    written = parse_toml(raw["config.toml"].decode(), directory / "config.toml")
    settings = Settings.from_dict(written, str(directory / "config.toml"))
    for (part, name), value in BEFORE.items():
        if name not in written.get(part, {}):  # written before the setting existed: what the run really used
            setattr(getattr(settings, part), name, value)
    return tensors, state, settings
