"""A run directory: its layout, its checkpoints of trained networks, and training into it with exact resume.

``RUN/`` holds ``config.toml`` (every setting), ``split.json`` (the series split: the meta-test series
are never trained on, nor is any series' last ``h`` points), ``metrics.csv`` (a row per iteration, both
phases) and ``checkpoint/`` (see :mod:`fewcast.checkpoint`), written every ``checkpoint_every``
iterations, at the end of each phase, and when SIGINT or SIGTERM asks the run to stop; ``fewcast
evaluate`` adds the results table, pictures and report (:mod:`fewcast.report`). A checkpoint's tensors are
named by what they belong to: ``learner.``, ``pretrained.``, ``calibration.`` (the intervals, see
:mod:`fewcast.intervals`) and (while training) ``trainer.``. The run has
two phases: pre-training (``pretrained``) and meta-training (the learner), then ``done``. A resumed run
reloads the phase, weights, optimizer, schedule, sampler and RNG state of the checkpoint and ends with the
same weights as an uninterrupted run with the same seed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import warnings
from pathlib import Path

import pandas as pd
import torch

from fewcast import checkpoint, datasets, lock
from fewcast.atomic import atomic_write
from fewcast.config import Settings, dumps_toml, read_toml
from fewcast.data import load_panel_data
from fewcast.errors import InputError, RunWarning, StorageError
from fewcast.experiment import Experiment, Hooks
from fewcast.learners import GradientLearner, MetaTrainer, Pretrain, build_learner
from fewcast.models import build_from_config

CONFIG, SPLIT, METRICS, CHECKPOINT = "config.toml", "split.json", "metrics.csv", "checkpoint"
SELECTION = "selection.csv"  # the candidates' validation ranking, the chosen one first
METRIC_FIELDS = ["phase", "iteration", "train_loss", "val_loss", "outer_lr", "seconds", "tasks_per_second"]
SELECT, DONE = "select", "done"  # the networks are trained: choosing the forecast; everything is


def save_networks(path: str | Path, learner: GradientLearner, pretrained: Pretrain, state: dict,
                  settings: Settings, trainer: MetaTrainer | None = None) -> None:
    """A checkpoint of the networks (either may be None while training), while training the trainer, and the
    forecasts' interval calibration (``state["calibration"]``, stored as ``calibration.<method>`` tensors and
    ``calibration.~short-history``, :data:`fewcast.intervals.SHORT`)."""
    state = dict(state)
    tensors = calibration_tensors(state.pop("calibration", {}))
    if trainer is not None:
        t_tensors, t_state = trainer.state_dict()
        tensors.update({f"trainer.{k}": v for k, v in t_tensors.items()})
        state = {**state, "trainer": t_state}
    for prefix, module in (("pretrained.", pretrained), ("learner.", learner)):
        if module is not None:
            tensors.update({f"{prefix}{k}": v for k, v in module.state_dict().items()})
    checkpoint.save(path, tensors, state, settings)


def calibration_tensors(calibration: dict) -> dict[str, torch.Tensor]:
    """The intervals' calibration as checkpoint tensors, ``calibration.<method>`` (and ``calibration.`` +
    :data:`fewcast.intervals.SHORT`)."""
    return {f"calibration.{name}": torch.as_tensor(table, dtype=torch.float64) for name, table in calibration.items()}


def load_networks(path: str | Path) -> tuple[Settings, dict, GradientLearner, Pretrain]:
    """The settings, state, learner and pre-trained network of a finished run's checkpoint; of a run that a
    writer is training now, its last complete checkpoint's networks as they stand, with a :class:`RunWarning`."""
    tensors, state, settings = checkpoint.load(path)
    _upgrade(Path(path), state, settings)
    state["calibration"] = {k: v.double().numpy() for k, v in checkpoint.section(tensors, "calibration.").items()}
    if state.get("phase") != DONE:
        tensors = _networks_so_far(Path(path), tensors, state, settings)
    def network():
        return build_from_config(settings.model, settings.data.input_size, settings.data.h)

    pretrained = Pretrain(network(), loss=settings.learner.loss)
    learner = build_learner(settings.learner.name, network(), **settings.learner.options())
    for prefix, module in (("learner.", learner), ("pretrained.", pretrained)):
        try:
            module.load_state_dict(checkpoint.section(tensors, prefix), strict=True)
        except RuntimeError as exc:
            first = " ".join(line.strip() for line in str(exc).splitlines()[:2])
            raise InputError(f"checkpoint {path} does not fit its own settings: {first}") from None
    return settings, state, learner, pretrained


def _networks_so_far(path: Path, tensors: dict, state: dict, settings: Settings) -> dict:
    """The ``learner.`` and ``pretrained.`` tensors of an unfinished checkpoint that a writer holds: the
    best-validating (else current) weights of the phase in progress; a learner not yet meta-trained starts as
    meta-training would, from the pre-trained network with its initial rates."""
    writer = lock.holder(path.parent) if path.name == CHECKPOINT else None
    phase = state.get("phase")
    if writer is None:
        raise InputError(f"the training run in {path} is not finished (it stopped in phase {phase!r}); "
                         f"continue it with `fewcast train ... --resume`")
    trained = checkpoint.section(tensors, "trainer.best.") or checkpoint.section(tensors, "trainer.learner.")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("trainer.")}
    if phase == "pretrained":
        tensors.update({f"pretrained.{k}": v for k, v in trained.items()})
    elif phase == settings.learner.name:
        tensors.update({f"learner.{k}": v for k, v in trained.items()})
    if not checkpoint.section(tensors, "learner."):
        start = build_learner(settings.learner.name, build_from_config(settings.model, settings.data.input_size,
                                                                       settings.data.h), **settings.learner.options())
        weights = start.state_dict()
        if settings.train.init == "pretrained":
            weights.update({k: v for k, v in checkpoint.section(tensors, "pretrained.").items() if k in weights})
        tensors.update({f"learner.{k}": v for k, v in weights.items()})
    iteration = state.get("trainer", {}).get("iteration", 0)
    warnings.warn(f"{path.parent} is being trained by {writer} (phase {phase}, iteration {iteration}): "
                  f"forecasting with its last complete checkpoint, not the finished networks", RunWarning,
                  stacklevel=3)
    return tensors


def _upgrade(path: Path, state: dict, settings: Settings) -> None:
    """A checkpoint of a run from before runs recorded their data and its horizon: the data named in
    ``RUN/config.toml`` (``data.dataset``, when the checkpoint is ``RUN/checkpoint``), and an embedded panel's
    own horizon and season where the settings say 0."""
    config = path.parent / CONFIG
    if "source" not in state and path.name == CHECKPOINT and config.exists():
        state["source"] = read_toml(config).get("data", {}).get("dataset")
    source = state.get("source")
    if source and datasets.is_embedded(source) and not settings.data.h:
        info = datasets.DATASETS[source]
        settings.update("data", {"h": info.h, "season_length": settings.data.season_length or info.season_length})


def read_metrics(run: str | Path) -> dict[str, list[dict]]:
    """A run's ``metrics.csv``, one list of rows per training phase (empty when there is none)."""
    rows = _metric_rows(Path(run) / METRICS)
    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=METRIC_FIELDS)
    numbers = METRIC_FIELDS[1:]
    frame[numbers] = frame[numbers].apply(pd.to_numeric, errors="coerce")
    return {phase: part.drop(columns="phase").to_dict("records") for phase, part in frame.groupby("phase", sort=False)}


def _metric_rows(path: Path) -> list[dict]:
    """The complete rows of ``metrics.csv`` (as strings): a last line cut short by a crash is left out."""
    if not path.exists():
        return []
    text = path.read_text()
    text = text[: text.rfind("\n") + 1]  # up to the last whole line
    return [row for row in csv.DictReader(io.StringIO(text)) if None not in row.values() and None not in row]


class StopFlag:
    """Set by SIGINT / SIGTERM; the trainer checks it after every iteration. A process forked while it is in
    force (a worker of statsforecast's process pool) keeps SIGINT's flag, which it never reads (Ctrl-C is the
    parent's to answer), but dies on SIGTERM as before: a pool stops its workers with SIGTERM, and a worker
    that only raised a flag would never stop."""

    def __init__(self):
        self.raised = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        _IN_FORCE.append(self)
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        _IN_FORCE.remove(self)
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def __call__(self) -> bool:
        return self.raised


_IN_FORCE: list[StopFlag] = []  # the flags in force in this process, the outermost first


def _forked_child() -> None:
    """In a child forked under a :class:`StopFlag`: SIGTERM's handler from before the outermost flag."""
    if _IN_FORCE:
        before = _IN_FORCE[0]._old.get(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)
        _IN_FORCE.clear()


os.register_at_fork(after_in_child=_forked_child)


class TrainingRun(Hooks):
    """Train the data ``source`` (or resume) into ``directory``."""

    def __init__(self, directory: str | Path, source: str | None = None, settings: Settings | None = None,
                 resume: bool = False, progress: bool = True, log=print, tensorboard: bool = False):
        self.dir = Path(directory)
        self.ck = self.dir / CHECKPOINT
        self.log, self.progress = log, progress
        self.resumed: tuple | None = None
        self.method: str | None = None  # the forecast chosen on validation
        if resume:
            tensors, state, settings = checkpoint.load(self.ck)
            if state.get("phase") == DONE:
                raise InputError(f"the run in {self.dir} is already complete; nothing to resume")
            _upgrade(self.ck, state, settings)
            self.resumed = (tensors, state)
            source, self.method = state.get("source"), state.get("method")
            self.start = state["phase"]
        elif (self.ck / checkpoint.MANIFEST).exists() or self.ck.with_name(CHECKPOINT + ".old").exists():
            raise InputError(f"{self.dir} already holds a training run; pass --resume to continue it, "
                             f"or choose another --out")
        if settings is None or source is None:
            raise InputError("no settings or data given")
        self.tb = _tensorboard(self.dir) if tensorboard else None
        data = load_panel_data(source, settings)
        self.experiment = Experiment(settings, data, progress=progress, log=log)
        self.settings, self.source = self.experiment.settings, str(source)  # as derived for the data
        self.main = self.experiment.dist is None or self.experiment.dist.main  # only rank 0 writes
        split = self.experiment.split
        self.split = {"train": split.train.tolist(), "val": split.val.tolist(), "test": split.test.tolist()}
        if self.main and not resume:  # the settings as given, to rerun with; the checkpoint holds them as used
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.dir / CONFIG, dumps_toml(settings, self.settings, self.experiment.derived))
            atomic_write(self.dir / SPLIT, json.dumps(self.split, indent=1))
        self._metrics_start()

    # -- metrics ------------------------------------------------------------------------------------
    def _metrics_start(self) -> None:
        """Open ``metrics.csv`` for appending; on resume, keep only the rows up to the checkpoint (rewritten
        atomically), so that no row is written twice."""
        self._metrics = None
        if not self.main:
            return
        path = self.dir / METRICS
        keep: list[dict] = []
        if self.resumed is not None:  # drop rows after the checkpoint
            _, state = self.resumed
            order = ["pretrained", self.settings.learner.name, SELECT]
            last = state.get("trainer", {}).get("iteration", 0)  # no trainer state: the phase had just begun
            keep = [row for row in _metric_rows(path) if row["phase"] in order and (
                order.index(row["phase"]) < order.index(state["phase"])
                or (row["phase"] == state["phase"] and int(row["iteration"]) <= last))]
        text = io.StringIO()
        writer = csv.DictWriter(text, METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(keep)
        atomic_write(path, text.getvalue())
        self._metrics = open(path, "a", newline="")

    def _row(self, phase: str):
        def write(row: dict) -> None:
            line = io.StringIO()
            csv.DictWriter(line, METRIC_FIELDS, extrasaction="ignore").writerow({"phase": phase, **row})
            try:
                self._metrics.write(line.getvalue())  # one whole line at a time
                self._metrics.flush()
            except OSError as exc:
                raise StorageError(f"could not write {self.dir / METRICS}: {exc.strerror or exc}") from exc
            if self.tb is not None:
                self.tb.add_scalar(f"{phase}/train_loss", row["train_loss"], row["iteration"])
                if row["val_loss"] == row["val_loss"]:
                    self.tb.add_scalar(f"{phase}/val_loss", row["val_loss"], row["iteration"])
        return write

    # -- the hooks of Experiment.train ----------------------------------------------------------------
    def _save(self, phase: str, trainer: MetaTrainer | None, pretrained: Pretrain | None, learner=None) -> None:
        if not self.main:
            return
        d = self.settings.data
        state = {"phase": phase, "source": self.source, "freq": self.experiment.data.visible.freq,
                 "columns": [d.id_col, d.time_col, d.target_col], "split": self.split, "method": self.method}
        save_networks(self.ck, learner, pretrained, state, self.settings, trainer)

    def trainer_options(self, phase: str, pretrained: Pretrain | None) -> dict:
        return dict(on_iteration=self._row(phase), should_interrupt=self.stop,
                    on_checkpoint=lambda t: self._save(phase, t, pretrained))

    def restore(self, phase: str, trainer: MetaTrainer) -> None:
        if self.resumed is None or self.resumed[1]["phase"] != phase or "trainer" not in self.resumed[1]:
            return
        tensors, state = self.resumed
        trainer.load_state_dict(checkpoint.section(tensors, "trainer."), state["trainer"])
        what = "pre-training" if phase == "pretrained" else "meta-training"
        self.log(f"resuming {what} at iteration {trainer.iteration}")

    def restore_pretrained(self, pretrained: Pretrain) -> None:
        pretrained.load_state_dict(checkpoint.section(self.resumed[0], "pretrained."), strict=True)

    def finished(self, phase: str, pretrained: Pretrain, learner: GradientLearner | None = None) -> None:
        if phase == DONE and self.settings.train.select:
            phase = SELECT  # trained: the forecast is chosen before the run is done
        self._save(phase, None, pretrained, learner)

    def train(self, stop=None) -> None:
        """Both phases, from scratch or from the checkpoint, checkpointing as it goes; then (unless
        ``train.select`` is off) the forecast chosen on validation."""
        self.stop = stop
        try:
            if self.start != SELECT:
                self.experiment.train(hooks=self)
            if self.settings.train.select:
                self._select()
        finally:
            if self._metrics is not None:
                try:
                    self._metrics.close()
                except OSError:  # the row that could not be written; the error is already on its way
                    pass
            if self.tb is not None:
                self.tb.close()


    def _select(self) -> None:
        """Choose the forecast on validation, write the ranking, and mark the checkpoint done with it."""
        from fewcast.selection import select

        chosen = select(self.experiment, self.stop)
        self.method = chosen.chosen
        self.log(f"forecast chosen on validation: {chosen.reason()}")
        if self.main:
            atomic_write(self.dir / SELECTION, chosen.to_csv())
            tensors, state, _ = checkpoint.load(self.ck)
            tensors.update(calibration_tensors(chosen.calibration))
            checkpoint.save(self.ck, tensors, {**state, "phase": DONE, "method": self.method}, self.settings)


def _tensorboard(directory: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--tensorboard needs the tensorboard package: "
                         "pip install 'fewcast[tensorboard]' (or pip install tensorboard)") from None
    return SummaryWriter(str(directory / "tensorboard"))
