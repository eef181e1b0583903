"""A training run on disk: ``fewcast train`` writes it, ``--resume`` continues it, exactly.

``RUN/`` holds ``config.toml`` (every setting), ``split.json`` (the series split: the meta-test series
are never trained on, nor is any series' last ``h`` points), ``metrics.csv`` (a row per iteration, both
phases) and ``checkpoint/`` (see :mod:`fewcast.checkpoint`), written every ``checkpoint_every``
iterations, at the end of each phase, and when SIGINT or SIGTERM asks the run to stop. The run has two
phases: pre-training (``pretrained``) and meta-training (the learner). A resumed run reloads the phase,
weights, optimizer, schedule, sampler and RNG state of the checkpoint and ends with the same weights as an
uninterrupted run with the same seed.
"""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

from fewcast import checkpoint
from fewcast.config import Settings, dumps_toml
from fewcast.errors import InputError
from fewcast.experiment import Experiment
from fewcast.learners import MetaTrainer, Pretrain
from fewcast.report import atomic_write

METRIC_FIELDS = ["phase", "iteration", "train_loss", "val_loss", "outer_lr", "seconds", "tasks_per_second"]


class StopFlag:
    """Set by SIGINT / SIGTERM; the trainer checks it after every iteration."""

    def __init__(self):
        self.raised = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def __call__(self) -> bool:
        return self.raised


class TrainingRun:
    """Train (or resume) into ``directory``."""

    def __init__(self, directory: str | Path, settings: Settings | None = None, resume: bool = False,
                 progress: bool = True, log=print, tensorboard: bool = False):
        self.dir = Path(directory)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise InputError("--tensorboard needs the tensorboard package: "
                                 "pip install 'fewcast[tensorboard]' (or pip install tensorboard)") from None
            self.tb = SummaryWriter(str(Path(directory) / "tensorboard"))
        self.ck = self.dir / "checkpoint"
        self.log = log
        self.resume_state: tuple | None = None
        if resume:
            tensors, state, saved = checkpoint.load(self.ck)
            if state.get("phase") == "done":
                raise InputError(f"the run in {self.dir} is already complete; nothing to resume")
            self.resume_state = (tensors, state)
            settings = saved
        elif (self.ck / checkpoint.MANIFEST).exists() or self.ck.with_name("checkpoint.old").exists():
            raise InputError(f"{self.dir} already holds a training run; pass --resume to continue it, "
                             f"or choose another --out")
        if settings is None:
            raise InputError("no settings given")
        self.settings = settings
        self.experiment = Experiment(settings, progress=progress, log=log)
        self.main = self.experiment.dist is None or self.experiment.dist.main  # only rank 0 writes
        split = self.experiment.split
        self.split = {"train": split.train.tolist(), "val": split.val.tolist(), "test": split.test.tolist()}
        if self.main:
            self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.dir / "config.toml", dumps_toml(settings))
            atomic_write(self.dir / "split.json", json.dumps(self.split, indent=1))
        self._metrics_start()

    # -- metrics ------------------------------------------------------------------------------------
    def _metrics_start(self) -> None:
        self._metrics = None
        if not self.main:
            return
        path = self.dir / "metrics.csv"
        keep: list[dict] = []
        if self.resume_state is not None and path.exists():  # drop rows after the checkpoint
            _, state = self.resume_state
            order = ["pretrained", self.settings.learner.name]
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    if order.index(row["phase"]) < order.index(state["phase"]) or (
                            row["phase"] == state["phase"] and int(row["iteration"]) <= state["trainer"]["iteration"]):
                        keep.append(row)
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, METRIC_FIELDS)
            writer.writeheader()
            writer.writerows(keep)
        self._metrics = open(path, "a", newline="")
        self._writer = csv.DictWriter(self._metrics, METRIC_FIELDS, extrasaction="ignore")

    def _row(self, phase: str):
        def write(row: dict) -> None:
            self._writer.writerow({"phase": phase, **row})
            self._metrics.flush()
            if self.tb is not None:
                self.tb.add_scalar(f"{phase}/train_loss", row["train_loss"], row["iteration"])
                if row["val_loss"] == row["val_loss"]:
                    self.tb.add_scalar(f"{phase}/val_loss", row["val_loss"], row["iteration"])
        return write

    # -- checkpoints --------------------------------------------------------------------------------
    def _save(self, phase: str, trainer: MetaTrainer | None, pretrained: Pretrain | None, learner=None) -> None:
        if not self.main:
            return
        tensors, state = {}, {"phase": phase, "freq": self.experiment.data.visible.freq,
                              "columns": [self.settings.data.id_col, self.settings.data.time_col,
                                          self.settings.data.target_col], "split": self.split}
        if trainer is not None:
            t_tensors, t_state = trainer.state_dict()
            tensors.update({f"trainer.{k}": v for k, v in t_tensors.items()})
            state["trainer"] = t_state
        if pretrained is not None:
            tensors.update({f"pretrained.{k}": v for k, v in pretrained.state_dict().items()})
        if learner is not None:
            tensors.update({f"learner.{k}": v for k, v in learner.state_dict().items()})
        checkpoint.save(self.ck, tensors, state, self.settings)

    def train(self, stop=None) -> None:
        """Both phases, from scratch or from the checkpoint; checkpoints as it goes."""
        exp, name = self.experiment, self.settings.learner.name
        tensors, state = self.resume_state or ({}, {"phase": "pretrained"})
        try:
            pretrained = None
            if state["phase"] == "pretrained":
                trainer = exp.pretrain_trainer(on_iteration=self._row("pretrained"), should_interrupt=stop,
                                               on_checkpoint=lambda t: self._save("pretrained", t, None))
                if "trainer" in state:
                    trainer.load_state_dict(checkpoint.section(tensors, "trainer."), state["trainer"])
                    self.log(f"resuming pre-training at iteration {trainer.iteration}")
                pretrained = exp.fit("pretrained", trainer)
                state, tensors = {"phase": name}, {}
                self._save(name, None, pretrained)
            else:
                pretrained = exp.pretrain_trainer().learner
                pretrained.load_state_dict(checkpoint.section(tensors, "pretrained."), strict=True)
            trainer = exp.meta_trainer(name, pretrained, on_iteration=self._row(name), should_interrupt=stop,
                                       on_checkpoint=lambda t: self._save(name, t, pretrained))
            if "trainer" in state:
                trainer.load_state_dict(checkpoint.section(tensors, "trainer."), state["trainer"])
                self.log(f"resuming meta-training at iteration {trainer.iteration}")
            learner = exp.fit(name, trainer)
            self._save("done", None, pretrained, learner)
        finally:
            if self._metrics is not None:
                self._metrics.close()
            if self.tb is not None:
                self.tb.close()
