"""Where a panel comes from: an embedded dataset's name or a file's path, with its horizon held out.

Every command and the Python API read data through here: :func:`read_source` gives the panel a name or
path stands for, :func:`load_panel_data` that panel split into what models may see of each series and the
``h`` points after it (an embedded panel's official test horizon, a file's last ``h`` points). A file
whose name is also an embedded dataset's is read as the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fewcast import datasets
from fewcast.calendar import guess_season
from fewcast.config import DataConfig, Settings
from fewcast.errors import InputError, describe_ids
from fewcast.frame import read_panel
from fewcast.panel import Columns, Panel


@dataclass
class PanelData:
    """What models may see of every series (``visible``) and the ``h`` points after it (``horizon``)."""

    name: str
    visible: Panel
    horizon: Panel | None
    h: int
    season_length: int
    cut: np.ndarray | None = None  # memory-mapped data: ``visible`` is the whole panel, series i visible up to cut[i]

    @classmethod
    def from_panel(cls, name: str, panel: Panel, h: int, season_length: int = 0) -> PanelData:
        """Every series' last ``h`` points held out as its horizon; the season guessed when 0."""
        visible, horizon = panel.split_last(h)
        return cls(name, visible, horizon, h, season_length or guess_season(panel.freq))

    def visible_part(self, pos: np.ndarray) -> Panel:
        """The visible part of the series at ``pos`` (a copy of those series only)."""
        part = self.visible.take(pos)
        return part if self.cut is None else part.slice(0, self.cut[pos])

    def horizon_values(self, pos: np.ndarray) -> np.ndarray:
        """``(len(pos), h)`` values of the horizon of the series at ``pos``."""
        if self.cut is None:
            part = self.horizon.take(pos)
        else:
            part = self.visible.take(pos).slice(self.cut[pos], self.cut[pos] + self.h)
        return part.values.reshape(len(pos), self.h).astype(np.float64)


def read_source(source: str | Path, columns: Columns | None = None, fill: bool = False,
                min_length: int = 1) -> tuple[Panel, datasets.Dataset | None]:
    """The panel ``source`` names, and the dataset when it is an embedded one: that dataset's visible part
    (its official horizon held out), or a CSV / Parquet file read and validated (``columns``, ``fill``).
    Series shorter than ``min_length`` are dropped with a warning that counts them."""
    if datasets.is_embedded(source):
        data = datasets.load(str(source))
        return data.train.drop_short(min_length), data
    c = columns or Columns()
    return read_panel(source, c.id_col, c.time_col, c.target_col, fill=fill, min_length=min_length), None


def load_panel_data(source: str | Path, settings: Settings) -> PanelData:
    """The panel ``source`` names, split into what models may see and the horizon: an embedded panel's
    official horizon (its first ``data.h`` points), a file's last ``data.h`` points. With ``train.memmap``,
    a Parquet file or directory larger than memory, used through a memory-mapped cache (:mod:`fewcast.store`)."""
    data = settings.data
    official = datasets.DATASETS[str(source)].h if datasets.is_embedded(source) else 0
    h = data.h or official
    if not official and not Path(source).exists():
        raise InputError(f"no such file: {source} (nor an embedded dataset: `fewcast datasets` lists them)")
    if not h:
        raise InputError("your own data needs a forecast horizon: set `h`")
    if official and h > official:
        raise InputError(f"h={h} is longer than {source}'s official horizon of {official}")
    if settings.train.memmap and not official:
        return _mapped(source, data)
    panel, dataset = read_source(source, data.columns, data.fill, min_length=h + 2)
    if dataset is None:
        return PanelData.from_panel(Path(source).name, panel, h, data.season_length)
    horizon = dataset.test.select(panel.ids).slice(0, h)
    return PanelData(str(source), panel, horizon, h, data.season_length or dataset.season_length)


def _mapped(source: str | Path, data: DataConfig) -> PanelData:
    """A Parquet file or directory as a memory-mapped panel, each series visible up to its last ``h`` points."""
    from fewcast.store import open_cache

    panel = open_cache(source, data.id_col, data.time_col, data.target_col, progress=True)
    short = panel.lengths < data.h + 2
    if short.any():
        raise InputError(f"column '{data.target_col}': series shorter than h + 2 = {data.h + 2} points: "
                         f"{describe_ids(panel.ids[short])}; drop them from the data (memory-mapped data is used "
                         f"as it is)")
    return PanelData(Path(source).name, panel, None, data.h, data.season_length or guess_season(panel.freq),
                     cut=panel.lengths - data.h)


def resolved(settings: Settings, data: PanelData) -> tuple[Settings, list[str]]:
    """A copy of ``settings`` with every setting left to the data derived for ``data``
    (:func:`fewcast.derive.derive`), as a run records them, and why each was derived."""
    from fewcast.derive import derive

    return derive(settings, data.visible if data.cut is None else data.visible.slice(0, data.cut), data.h,
                  data.season_length)
