"""Settings: dataclasses grouped by lifetime, one TOML section each, saved with every run and checkpoint.

What a checkpoint needs to rebuild the forecaster: ``[data]`` (columns and windows), ``[model]`` (the
network), ``[learner]`` (the meta-learner) and ``[forecast]`` (how a forecast adapts; its support windows
default to ``train.shots``). What training needs: ``[train]``. What evaluation needs: ``[eval]``. Every
field carries its help text, which the command line shows; each section checks its own values
(``check``). Unknown keys are an error, so a typo in a config file never silently falls back to a
default; keys of older config files that moved or were renamed are read where they belong now
(:data:`MOVED`).
"""

from __future__ import annotations

import numbers
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import numpy as np

from fewcast.baselines import CLASSICAL
from fewcast.errors import InputError
from fewcast.panel import Columns


def setting(default, help: str):
    """A settings field: its default and the help text ``--help`` shows for it."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _one_of(name: str, value, choices) -> None:
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")


def _at_least(section, low, *names: str) -> None:
    for name in names:
        if getattr(section, name) < low:
            raise InputError(f"`{name}` must be {low} or more (got {getattr(section, name)})")


@dataclass
class DataConfig:
    """How a panel is read and cut into windows (the forecaster needs it to forecast)."""

    id_col: str = setting("unique_id", "series id column of the long frame")
    time_col: str = setting("ds", "time column: dates or integer steps")
    target_col: str = setting("y", "value column")
    fill: bool = setting(False, "insert missing time stamps and interpolate NaN or infinite values instead of "
                                "refusing the data")
    input_size: int = setting(0, "input window: how many of a series' latest values a network sees; 0: derived "
                                 "from h, the season and the series' lengths")
    h: int = setting(0, "forecast horizon; 0: an embedded panel's official one (your own data needs it)")
    season_length: int = setting(0, "season length; 0: an embedded panel's own, else guessed from the frequency")
    scaler: str = setting("mean_abs", "how each window is scaled by its own input: mean_abs, standard or none")
    deseasonalize: bool = setting(False, "divide each series by its classical seasonal indices before the "
                                         "networks see it, and multiply their forecasts back")

    @property
    def columns(self) -> Columns:
        return Columns(self.id_col, self.time_col, self.target_col)

    def check(self) -> None:
        from fewcast.windows import SCALERS

        _at_least(self, 0, "input_size", "h", "season_length")
        _one_of("scaler", self.scaler, SCALERS)


@dataclass
class ModelConfig:
    """The network (the forecaster needs it to rebuild the weights)."""

    name: str = setting("mlp", "network: mlp, nbeats or gru")
    hidden: int = setting(128, "units per hidden layer")
    depth: int = setting(2, "mlp: hidden layers; nbeats: layers per block")
    blocks: int = setting(3, "nbeats: residual blocks")
    ensemble: int = setting(3, "independently initialized members trained side by side; a forecast is their mean")
    ensemble_inputs: list[int] = setting([], "member k sees only its last inputs[k % len] values ([]: all)")
    ensemble_transforms: list[str] = setting(["identity", "log", "last"], "member k works on the scaled values "
                                             "(identity), their logarithm (log; asinh, for data below zero) or "
                                             "their change from the window's last value (last), cycling through "
                                             "the list")

    def check(self) -> None:
        from fewcast.models import MODELS, check_transforms

        _one_of("model", self.name, MODELS)
        _at_least(self, 1, "hidden", "ensemble", "blocks")
        _at_least(self, 1 if self.name == "nbeats" else 0, "depth")  # an mlp of depth 0 is linear
        check_transforms(self.ensemble_transforms)


@dataclass
class LearnerConfig:
    """The meta-learner: how a network adapts to a series' own windows."""

    name: str = setting("metasgd", "meta-learner: maml, fomaml, anil, metasgd or reptile")
    inner_lr: float = setting(0.001, "inner learning rate (Meta-SGD: every learned rate's start)")
    inner_steps: int = setting(1, "SGD steps on a series' support windows")
    first_order: bool = setting(False, "leave out the second-order terms of the meta-gradient (FOMAML)")
    loss: str = setting("mae", "window loss: mae, mse or smape")
    multi_step_loss: bool = setting(False, "MAML++: weigh the query loss after every inner step")
    msl_iterations: int = setting(100, "MAML++: outer iterations over which those weights anneal to the last step")
    learn_inner_lr: bool = setting(False, "MAML++: a learned inner rate per layer and step")
    first_order_iterations: int = setting(0, "MAML++: first-order for this many outer iterations first")
    adapt_params: str = setting("all", "which parameters adapt: all, or the network's head (anil: always the head)")

    def options(self) -> dict[str, Any]:
        """The keyword arguments a learner takes (``build_learner(name, model, **options)``)."""
        return {k: v for k, v in asdict(self).items() if k != "name"}

    def check(self) -> None:
        from fewcast.learners import LEARNERS, LOSSES

        _one_of("learner", self.name, LEARNERS)
        _one_of("loss", self.loss, LOSSES)
        _one_of("adapt_params", self.adapt_params, ("all", "head"))
        _at_least(self, 0, "inner_steps", "inner_lr", "msl_iterations", "first_order_iterations")


@dataclass
class ForecastConfig:
    """How a forecast adapts to each series: the adapted learner, and plain fine-tuning on every window."""

    adapt_shots: int = setting(0, "support windows a forecast adapts on (a series' latest); 0: train.shots")
    adapt_steps: int = setting(0, "adaptation steps of a forecast; 0: learner.inner_steps")
    finetune_all_shots: int = setting(200, "pretrained_finetune_all: plain SGD on up to this many of a series' "
                                           "latest windows (0: not scored in results tables)")
    finetune_all_steps: int = setting(20, "pretrained_finetune_all: SGD steps")
    finetune_all_lr: float = setting(0.003, "pretrained_finetune_all: SGD learning rate")
    finetune_all_min_shots: int = setting(30, "<learner>_auto: pretrained_finetune_all on a series with at least "
                                              "this many windows, the learner on the others")

    def check(self) -> None:
        _at_least(self, 0, "adapt_shots", "adapt_steps", "finetune_all_shots", "finetune_all_steps", "finetune_all_lr",
                  "finetune_all_min_shots")


@dataclass
class TrainConfig:
    """Pre-training and meta-training: tasks, split, optimizer, schedule, checkpoints."""

    shots: int = setting(0, "support windows of a meta-training task; 0: up to 20, as many as the series hold")
    query_shots: int = setting(1, "query windows of a meta-training task")
    init: str = setting("pretrained", "meta-training starts from the pre-trained network, or from random weights")
    outer_params: str = setting("rates", "what meta-training updates: all (weights and learned rates) or rates")
    val_frac: float = setting(0.1, "share of series for meta-validation")
    test_frac: float = setting(0.3, "share of series held out for the holdout protocol")
    staleness: int = setting(0, "training data ends this many points before each series' visible end (at h or "
                                "more, nothing trained on overlaps the validation horizon)")
    drop_zero_target: bool = setting(False, "drop windows whose targets are all zero (as the seed experiment did)")
    memmap: bool = setting(False, "Parquet data larger than memory: a memory-mapped cache (rows sorted by id, time)")
    outer_lr: float = setting(0.001, "Adam learning rate of meta-training")
    meta_batch_size: int = setting(128, "tasks per meta-training iteration")
    iterations: int = setting(150, "meta-training iterations")
    pretrain_iterations: int = setting(4000, "pre-training iterations at most")
    pretrain_patience: int = setting(16, "pre-training stops after this many validations without improvement, so "
                                         "that its length follows the panel (0: never)")
    pretrain_lr: float = setting(0.001, "Adam learning rate of pre-training")
    pretrain_batch_size: int = setting(0, "windows per pre-training iteration; 0: meta_batch_size * (shots + "
                                          "query_shots); -1: every window")
    pretrain_ema: float = setting(0.995, "pre-training validates and keeps a moving average of its weights with "
                                         "this decay, warmed up as min(decay, (1 + n) / (10 + n)) (0: raw weights)")
    clip: float = setting(10.0, "gradient norm clip (0: none)")
    val_every: int = setting(25, "iterations between validations")
    patience: int = setting(0, "meta-training stops after this many validations without improvement (0: never)")
    cosine: bool = setting(False, "anneal both phases' learning rate to 0 along a cosine")
    seed: int = setting(0, "the split of series, the initial weights and the sampled tasks")
    model_seed: int = setting(0, "another draw of initial weights and sampled tasks on the same split")
    device: str = setting("auto", "auto, cpu or cuda")
    compile: bool = setting(False, "torch.compile the meta-step (falls back to eager when it does not compile)")
    checkpoint_every: int = setting(0, "iterations between checkpoints (0: at the end of each phase only)")
    select: bool = setting(True, "choose the forecast on a leak-free validation cut: the networks also train on "
                                 "the data up to h points before its end, and every candidate is scored on the rest")
    select_top: int = setting(2, "the forecast is the average of this many best candidates on validation (1: the "
                                 "best alone)")
    select_training: int = setting(300, "holdout protocol: the choice also ranks the candidates on the horizons of "
                                        "up to this many training series over its cuts (their earlier windows "
                                        "trained the networks, these horizons did not) and the intervals take the "
                                        "shape of their errors (their overall width stays the validation "
                                        "series'). 0: the validation series alone")

    def check(self) -> None:
        _one_of("init", self.init, ("pretrained", "random"))
        _one_of("outer_params", self.outer_params, ("all", "rates"))
        _at_least(self, 1, "query_shots", "select_top", "meta_batch_size", "val_every")
        _at_least(self, 0, "shots", "staleness", "patience", "pretrain_patience", "checkpoint_every",
                  "select_training", "iterations", "pretrain_iterations", "outer_lr", "pretrain_lr", "clip", "seed",
                  "model_seed")
        _at_least(self, -1, "pretrain_batch_size")
        if self.device != "auto":
            import torch

            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                raise InputError(f"`device` must be auto, cpu, cuda, cuda:N or another device torch knows "
                                 f"(got {self.device!r})") from None
        if not (0 <= self.val_frac < 1 and 0 <= self.test_frac < 1 and self.val_frac + self.test_frac < 1):
            raise InputError(f"`val_frac` and `test_frac` must be in [0, 1) and sum below 1 (got {self.val_frac}, "
                             f"{self.test_frac})")
        if not 0.0 <= self.pretrain_ema < 1.0:
            raise InputError(f"`pretrain_ema` must be a decay in [0, 1) (got {self.pretrain_ema}); 0 turns the "
                             f"average off")


PROTOCOLS = ("holdout", "all-series")


@dataclass
class EvalConfig:
    """Scoring on held-out series: protocol, methods, pictures."""

    protocol: str = setting("holdout", "holdout (held-out series never trained on) or all-series")
    history: int = setting(0, "held-out series are cut to their last T observations (0: all of it)")
    extra_learners: list[str] = setting([], "learners meta-trained and scored beside the run's and maml")
    classical: list[str] = setting(list(CLASSICAL), "classical methods scored")
    combine: list[str] = setting(["autoets", "theta"], "classical methods each averaged with the adapted "
                                                       "networks' forecasts (each must be in classical)")
    curve_steps: int = setting(10, "adaptation steps in the learning-trajectory plot")
    shots_curve: list[int] = setting([0, 1, 2, 5, 10, 20], "support windows of the accuracy-against-shots plot")
    plot_series: int = setting(6, "held-out series drawn in the report")
    trajectory_title: str = setting("", "title of the learning-trajectory plot")

    def check(self) -> None:
        from fewcast.baselines import check_methods
        from fewcast.learners import LEARNERS

        _one_of("protocol", self.protocol, PROTOCOLS)
        for name in self.extra_learners:
            _one_of("extra_learners", name, LEARNERS)
        _at_least(self, 0, "history", "curve_steps", "plot_series")
        check_methods(self.classical)
        missing = [m for m in self.combine if m not in self.classical]
        if missing:
            raise InputError(f"combine lists {', '.join(missing)}, which classical does not compute: add it to "
                             f"`classical` or drop it from `combine`")


# keys of older config files, read where they belong now: (section, key) -> (section, key)
MOVED = MappingProxyType({
    ("learner", "adapt"): ("learner", "adapt_params"),
    **{("learner", k): ("train", k) for k in ("shots", "query_shots", "init", "outer_params")},
    **{("data", k): ("train", k) for k in ("val_frac", "test_frac", "staleness", "drop_zero_target", "memmap")},
    ("data", "history"): ("eval", "history"),
    **{("eval", k): ("forecast", k) for k in ("adapt_shots", "adapt_steps", "finetune_all_shots",
                                             "finetune_all_steps", "finetune_all_lr", "finetune_all_min_shots")},
    ("eval", "learners"): ("eval", "extra_learners"),
})


@dataclass
class Settings:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    SECTIONS = ("data", "model", "learner", "forecast", "train", "eval")
    # settings that never changed what a run computes (data.dataset: the data is the command's argument);
    # older config files still hold them, so they are read and ignored
    RETIRED = MappingProxyType({"train": frozenset({"val_tasks"}), "data": frozenset({"dataset"})})

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {s: asdict(getattr(self, s)) for s in self.SECTIONS}

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "settings") -> Settings:
        settings = cls()
        for section, values in raw.items():
            if section not in cls.SECTIONS:
                raise InputError(f"{where}: unknown section [{section}]; expected one of {', '.join(cls.SECTIONS)}")
            if not isinstance(values, dict):
                raise InputError(f"{where}: [{section}] must be a table of settings")
            settings.update(section, values, where)
        return settings

    def update(self, section: str, values: dict[str, Any], where: str = "settings") -> None:
        """Set fields of one section, checking names and types (keys of older files: where they are now)."""
        for key, value in values.items():
            if key in self.RETIRED.get(section, ()):
                continue
            part, name = MOVED.get((section, key), (section, key))
            target = getattr(self, part)
            known = {f.name: f for f in fields(target)}
            if name not in known:
                raise InputError(f"{where}: unknown setting {part}.{name}; known: {', '.join(known)}")
            inner = int if known[name].type == "list[int]" else str  # what a list setting holds
            setattr(target, name, _coerce(value, getattr(target, name), f"{part}.{name}", where, inner))

    def field_sections(self) -> dict[str, str]:
        """Which section each setting name belongs to (names are unique across sections)."""
        return {f.name: s for s in self.SECTIONS for f in fields(getattr(self, s)) if f.name != "name"}

    def adapt_shots(self) -> int:
        """How many of a series' latest windows a forecast adapts on: ``forecast.adapt_shots``, else the
        support windows of a meta-training task (``train.shots``)."""
        return self.forecast.adapt_shots or self.train.shots

    def adapt_steps(self) -> int | None:
        """A forecast's adaptation steps: ``forecast.adapt_steps``, else None (the learner's own)."""
        return self.forecast.adapt_steps or None

    def check(self) -> None:
        """Every section's own checks, then those across sections; an InputError names the setting."""
        from fewcast.models import uses_transform

        for section in self.SECTIONS:
            getattr(self, section).check()
        if uses_transform(self.model.ensemble_transforms, self.model.ensemble) and self.data.scaler == "standard":
            raise InputError("ensemble_transforms 'log' takes the log of scaled values, which the 'standard' scaler "
                             "makes negative: use `scaler=mean_abs` (or none) with it")


def _coerce(value: Any, current: Any, name: str, where: str, inner: type = str) -> Any:
    kind = type(current)
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif isinstance(current, list):
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, list):
            try:
                return [inner(v.strip()) if isinstance(v, str) else _number(v, inner) for v in items if v != ""]
            except (TypeError, ValueError):
                pass
    else:
        try:
            return _number(value, kind)
        except (TypeError, ValueError):
            pass
    what = f"a list of {inner.__name__}" if kind is list else kind.__name__
    raise InputError(f"{where}: {name} must be {what}, got {value!r}")


def _number(value: Any, kind: type) -> Any:
    """``kind(value)``, refusing what would change its meaning: a boolean for a number, a fraction for a
    whole number (a ValueError)."""
    if isinstance(value, (bool, np.bool_)) and kind is not bool:
        raise ValueError(value)
    if kind is int and isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        if not float(value).is_integer():
            raise ValueError(value)
    return kind(value)


def read_toml(path: str | Path) -> dict[str, Any]:
    """A settings file as written (sections of name = value), or an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such config file: {path}")
    return parse_toml(path.read_text(), path)


def parse_toml(text: str, where: str | Path) -> dict[str, Any]:
    """Settings text (``where`` names it in errors) as sections of name = value, or an InputError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where} is not valid TOML: {exc}") from None


def load_toml(path: str | Path) -> Settings:
    return Settings.from_dict(read_toml(path), str(path))


def dumps_toml(settings: Settings, derived: Settings | None = None, reasons: list[str] = ()) -> str:
    """The settings as TOML (only strings, numbers, booleans and lists of them occur); with ``derived``, the
    value each setting took for the data beside it as a comment, and ``reasons`` at the top."""
    lines = ["# fewcast settings: `fewcast train DATA --config this-file` reruns with them", ""]
    if reasons:
        lines += ["# derived from the data:", *(f"#   {line}" for line in reasons), ""]
    used = derived.to_dict() if derived is not None else {}
    for section, values in settings.to_dict().items():
        lines.append(f"[{section}]")
        for key, v in values.items():
            took = used.get(section, {}).get(key, v)
            note = f"  # for this data: {_toml_value(took)}" if took != v else ""
            lines.append(f"{key} = {_toml_value(v)}{note}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    text = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


__all__ = [
    "DataConfig", "EvalConfig", "ForecastConfig", "LearnerConfig", "ModelConfig", "Settings", "TrainConfig",
    "dumps_toml", "load_toml",
]
