"""Settings as dataclasses, one TOML section each, saved with every run and checkpoint.

``[data]``, ``[model]``, ``[learner]``, ``[train]`` and ``[eval]`` map one to one onto :class:`DataConfig`,
:class:`ModelConfig`, :class:`LearnerConfig`, :class:`TrainConfig` and :class:`EvalConfig`; every field
is also a command-line option (``--inner-lr`` for ``inner_lr``). Unknown keys are an error, so a typo
in a config file never silently falls back to a default.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from fewcast.errors import InputError


@dataclass
class DataConfig:
    """Which panel, how it is cut into windows, and how series are split."""

    dataset: str = "m3-monthly"  # an embedded dataset name, or a CSV / Parquet path
    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"
    fill: bool = False  # interpolate NaN or infinite targets and insert missing time stamps instead of failing
    input_size: int = 24
    h: int = 0  # 0: the dataset's official horizon (user data: required)
    season_length: int = 0  # 0: the dataset's (user data: guessed from the frequency)
    scaler: str = "mean_abs"
    deseasonalize: bool = False  # divide each series by its classical seasonal indices (fewcast.seasonal)
    drop_zero_target: bool = False
    history: int = 0  # 0: all; T: meta-test series are cut to their last T observations
    staleness: int = 0  # training data ends this many points before each series' visible end (a model
    # trained a while ago); at h or more, the validation horizon lies after everything trained on
    val_frac: float = 0.1
    test_frac: float = 0.3
    memmap: bool = False  # Parquet data larger than memory: a memory-mapped cache, rows sorted by id and time


@dataclass
class ModelConfig:
    name: str = "mlp"
    hidden: int = 128
    depth: int = 2  # mlp: hidden layers; nbeats: layers per block
    blocks: int = 3  # nbeats only
    ensemble: int = 3  # independently initialized members trained side by side; forecasts are their mean
    ensemble_inputs: list[int] = field(default_factory=list)  # member k sees its last [k % len] inputs; []: all
    ensemble_transforms: list[str] = field(default_factory=lambda: ["identity", "log", "last"])  # member k works on
    # "identity", "log" or "last" (minus the last input) scaled values, cycling through the list ([]: all
    # identity); log needs values >= 0


@dataclass
class LearnerConfig:
    name: str = "metasgd"
    inner_lr: float = 0.001
    inner_steps: int = 1
    first_order: bool = False
    loss: str = "mae"
    multi_step_loss: bool = False
    msl_iterations: int = 100
    learn_inner_lr: bool = False
    first_order_iterations: int = 0
    adapt: str = "all"  # "all" parameters or only the model's "head" (anil always adapts the head)
    shots: int = 20
    query_shots: int = 1
    init: str = "pretrained"  # start meta-training from the pre-trained network, or from "random"
    outer_params: str = "rates"  # what meta-training updates: "all" (weights and learned rates) or "rates" only


@dataclass
class TrainConfig:
    outer_lr: float = 0.001
    meta_batch_size: int = 128
    iterations: int = 150
    pretrain_iterations: int = 1000
    pretrain_lr: float = 0.001
    pretrain_batch_size: int = 0  # 0: meta_batch_size * (shots + query_shots) windows; -1: full batch
    pretrain_ema: float = 0.995  # pre-training validates and keeps a moving average of its weights with this
    # decay, warmed up as min(decay, (1 + n) / (10 + n)) at step n (0: the raw weights)
    clip: float = 10.0
    val_every: int = 25
    patience: int = 0  # validations without improvement before stopping; 0: never stop early
    cosine: bool = False  # both training phases anneal their learning rate to 0 along a cosine
    seed: int = 0  # the split of series, the initial weights and the sampled tasks
    model_seed: int = 0  # another draw of initial weights and sampled tasks on the same split (same seed)
    device: str = "auto"
    compile: bool = False  # torch.compile the meta-step (falls back to eager when it does not compile)
    checkpoint_every: int = 0


# how a forecast adapts: the meta-learner, plain SGD on every window, or per series: the meta-learner on a series
# with fewer than eval.finetune_all_min_shots windows, plain SGD on every window of the others
ADAPTATIONS = ("learned", "finetune_all", "auto")


@dataclass
class EvalConfig:
    protocol: str = "holdout"
    learners: list[str] = field(default_factory=list)  # extra learners to score beside maml and the default
    classical: list[str] = field(default_factory=lambda: ["naive", "seasonal_naive", "autoets", "theta"])
    combine: list[str] = field(default_factory=lambda: ["autoets"])  # classical methods each averaged with the
    # adapted learner's forecast, scored as "<learner>+<method>" (each must be in classical)
    adapt_steps: int = 0  # adaptation steps at test time; 0: the learner's inner_steps
    adapt_shots: int = 0  # support windows at test time (a series' most recent ones); 0: the learner's shots
    finetune_all_shots: int = 200  # pretrained_finetune_all: plain SGD on up to this many of a series' latest
    # windows (every window of a monthly M3 series), the best adaptation found on validation; 0: not scored
    finetune_all_steps: int = 20
    finetune_all_lr: float = 0.003
    finetune_all_min_shots: int = 30  # auto ("<learner>_auto" in results tables): pretrained_finetune_all on a
    # series with at least this many windows, the learner on the others (chosen on validation)
    curve_steps: int = 10  # adaptation steps in the learning-trajectory plot
    shots_curve: list[int] = field(default_factory=lambda: [0, 1, 2, 5, 10, 20])
    plot_series: int = 6
    trajectory_title: str = ""


@dataclass
class Settings:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    SECTIONS = ("data", "model", "learner", "train", "eval")
    # settings that never changed a run (the validation set is every validation series' latest task); older
    # config files still hold them, so they are read and ignored
    RETIRED = MappingProxyType({"train": frozenset({"val_tasks"})})

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
        """Set fields of one section, checking names and types."""
        target = getattr(self, section)
        known = {f.name: f for f in fields(target)}
        for key, value in values.items():
            if key in self.RETIRED.get(section, ()):
                continue
            if key not in known:
                raise InputError(f"{where}: unknown setting {section}.{key}; known: {', '.join(known)}")
            inner = int if known[key].type == "list[int]" else str  # what a list setting holds
            setattr(target, key, _coerce(value, getattr(target, key), f"{section}.{key}", where, inner))

    def field_sections(self) -> dict[str, str]:
        """Which section each setting name belongs to (names are unique across sections)."""
        return {f.name: s for s in self.SECTIONS for f in fields(getattr(self, s)) if f.name != "name"}


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
                return [inner(v.strip()) if isinstance(v, str) else inner(v) for v in items if v != ""]
            except ValueError:
                pass
    else:
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return kind(value)
        except (TypeError, ValueError):
            pass
    raise InputError(f"{where}: {name} must be {kind.__name__}, got {value!r}")


def read_toml(path: str | Path) -> dict[str, Any]:
    """A settings file as written (sections of name = value), or an InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such config file: {path}")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None


def load_toml(path: str | Path) -> Settings:
    return Settings.from_dict(read_toml(path), str(path))


def dumps_toml(settings: Settings) -> str:
    """The settings as TOML (only strings, numbers, booleans and lists of them occur)."""
    lines = ["# fewcast settings: `fewcast train DATA --config this-file` reruns with them", ""]
    for section, values in settings.to_dict().items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(v)}" for key, v in values.items()]
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


def seed_preset() -> Settings:
    """The seed experiment's settings (../shared/SEED.md), with real per-series tasks, second-order MAML
    and held-out series: 30 -> 1 windows of the ``game`` panel, the 10-10 MLP, one inner SGD step of 0.01,
    Adam 0.001 for 500 iterations of 1,000 tasks (the seed's inert ``tasks_per_meta_batch``, made real),
    a pre-trained network with full-batch Adam 0.01 for 500 iterations, then K = 10 support windows and
    10 SGD steps of 0.01 on 1,000 held-out users."""
    return Settings.from_dict({
        "data": {"dataset": "game", "input_size": 30, "h": 1, "val_frac": 0.1, "test_frac": 0.2},
        "model": {"name": "mlp", "hidden": 10, "depth": 2, "ensemble": 1, "ensemble_transforms": []},
        "learner": {"name": "maml", "inner_lr": 0.01, "inner_steps": 1, "first_order": False, "loss": "mse",
                    "adapt": "all",
                    "shots": 10, "query_shots": 1, "init": "random", "outer_params": "all"},
        "train": {"outer_lr": 0.001, "meta_batch_size": 1000, "iterations": 500, "pretrain_iterations": 500,
                  "pretrain_lr": 0.01, "pretrain_batch_size": -1, "pretrain_ema": 0.0,
                  "val_every": 25},
        "eval": {"adapt_steps": 10, "curve_steps": 10,
                 "trajectory_title": "Average learning trajectory for K=10, starting from initial weights"},
    }, "the seed preset")


PRESETS = {"default": Settings, "seed": seed_preset}


def preset(name: str) -> Settings:
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()


__all__ = [
    "DataConfig", "EvalConfig", "LearnerConfig", "ModelConfig", "Settings", "TrainConfig",
    "dumps_toml", "load_toml", "preset", "seed_preset",
]
