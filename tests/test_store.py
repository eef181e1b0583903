"""The memory-mapped cache for panels larger than memory: same values, no copy, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fewcast.errors import InputError
from fewcast.frame import from_frame
from fewcast.store import cache_dir, open_cache
from fewcast.tasks import TaskSampler
from fewcast.windows import Windows
from tests.conftest import make_frame


def sorted_frame() -> pd.DataFrame:
    return make_frame(n_series=15).sort_values(["unique_id", "ds"]).reset_index(drop=True)


def write_parquet(frame: pd.DataFrame, path, row_group_size: int = 100) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)


def test_cache_matches_the_in_memory_panel(tmp_path):
    frame = sorted_frame()
    path = tmp_path / "panel.parquet"
    write_parquet(frame, path)
    mapped = open_cache(path)
    memory = from_frame(frame)
    assert isinstance(mapped.values, np.memmap) or isinstance(mapped.values.base, np.memmap)
    np.testing.assert_array_equal(mapped.ids, memory.ids)
    np.testing.assert_array_equal(mapped.offsets, memory.offsets)
    np.testing.assert_array_equal(mapped.values, memory.values)
    np.testing.assert_array_equal(mapped.ds, memory.ds)
    assert mapped.freq == "MS"
    # tasks sampled from the mapped panel equal those from the in-memory one
    a = TaskSampler(Windows(mapped, 12, 3), 4, seed=1).sample(32)
    b = TaskSampler(Windows(memory, 12, 3), 4, seed=1).sample(32)
    np.testing.assert_array_equal(a.x_spt.numpy(), b.x_spt.numpy())
    # built once: a second open reuses it; a changed file rebuilds it
    stamp = (cache_dir(path) / "values.npy").stat().st_mtime_ns
    open_cache(path)
    assert (cache_dir(path) / "values.npy").stat().st_mtime_ns == stamp
    write_parquet(frame.assign(y=frame.y + 1), path)
    np.testing.assert_allclose(open_cache(path).values, memory.values + 1, rtol=1e-6)


def test_zoned_stamps_are_held_as_in_memory(tmp_path):
    # Arrow keeps zoned stamps in UTC; the cache holds them as the in-memory path does: Paris month starts
    # as wall-clock month starts (every stamp at midnight), Paris hours in UTC
    frame = sorted_frame()
    months = frame["ds"].dt.tz_localize("Europe/Paris")
    hours = pd.Series(pd.date_range("2019-10-26", periods=len(frame), freq="h", tz="Europe/Paris"))
    for name, stamps, wall in (("months", months, True), ("hours", hours, False)):
        zoned = frame.assign(ds=stamps.to_numpy())
        path = tmp_path / f"{name}.parquet"
        write_parquet(zoned, path)
        mapped, memory = open_cache(path), from_frame(zoned)
        np.testing.assert_array_equal(mapped.ds, memory.ds)
        assert mapped.freq == memory.freq and mapped.zone.wall == memory.zone.wall == wall
        assert (mapped.to_frame()["ds"].to_numpy() == memory.to_frame()["ds"].to_numpy()).all()


def test_directory_of_parquet_files_in_file_order(tmp_path):
    frame = sorted_frame()
    ids = frame.unique_id.unique()
    (tmp_path / "parts").mkdir()
    write_parquet(frame[frame.unique_id.isin(ids[8:])], tmp_path / "parts" / "a.parquet")
    write_parquet(frame[frame.unique_id.isin(ids[:8])], tmp_path / "parts" / "b.parquet")
    mapped = open_cache(tmp_path / "parts")
    assert list(mapped.ids) == list(ids[8:]) + list(ids[:8])  # file order, not sorted
    memory = from_frame(frame)
    for uid in ("s00", "s09", "s14"):
        i, j = mapped.index_of([uid])[0], memory.index_of([uid])[0]
        np.testing.assert_array_equal(mapped.series(i), memory.series(j))


def test_gaps_found_across_chunks():
    from fewcast.store import _check_gaps

    frame = sorted_frame()
    holed = frame.drop(index=frame.index[frame.unique_id == "s09"][[3, 20]])
    panel = from_frame(frame)
    ds = holed["ds"].to_numpy().astype("datetime64[ns]")
    offsets = np.concatenate([[0], np.cumsum(holed.groupby("unique_id").size().to_numpy())])
    for chunk in (7, 64, 10**6):  # chunk edges fall inside series and between them
        _check_gaps(panel.ds, panel.offsets, panel.ids, "ds", chunk=chunk)
        with pytest.raises(InputError, match=r"2 gaps in the time stamps of series 's09' \(1 series\)"):
            _check_gaps(ds, offsets, panel.ids, "ds", chunk=chunk)


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda f: f.sample(frac=1.0, random_state=0), "not increasing inside series|more than one run of rows"),
        (lambda f: pd.concat([f[f.unique_id != "s03"], f[f.unique_id == "s03"].iloc[::-1]]),
         r"column 'ds' is not increasing inside series 's03'"),
        (lambda f: f.assign(y=np.where(f.unique_id == "s05", np.nan, f.y)), r"NaN or infinite values in series 's05'"),
        (lambda f: f.drop(columns="y"), "missing column 'y'"),
        (lambda f: f.drop(index=f.index[f.unique_id == "s07"][5:7]),
         r"column 'ds': 1 gap in the time stamps of series 's07' \(1 series\); .*`fill=True`"),
    ],
)
def test_streaming_errors(tmp_path, mutate, pattern):
    path = tmp_path / "bad.parquet"
    write_parquet(mutate(sorted_frame()), path)
    with pytest.raises(InputError, match=pattern):
        open_cache(path)


def test_training_on_the_mapped_panel_equals_training_in_memory(tmp_path):
    from fewcast.data import load_panel_data
    from fewcast.evaluation import run
    from fewcast.experiment import Experiment
    from tests.conftest import tiny_settings

    frame = sorted_frame()
    path = tmp_path / "panel.parquet"
    write_parquet(frame, path)
    results = {}
    for memmap in (False, True):
        settings = tiny_settings()
        settings.update("train", {"memmap": memmap})
        settings.update("eval", {"classical": ["naive"], "combine": ["naive"]})
        exp = Experiment(settings, load_panel_data(path, settings), log=lambda *_: None)
        if memmap:
            assert isinstance(exp.train_panel.values, np.memmap) or exp.train_panel.values.base is not None
        results[memmap] = run(exp)
    for method, yhat in results[False].forecasts.items():
        np.testing.assert_array_equal(yhat, results[True].forecasts[method], err_msg=method)
    np.testing.assert_array_equal(results[False].test_ids, results[True].test_ids)
