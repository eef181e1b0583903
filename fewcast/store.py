"""Panels larger than memory: a memory-mapped cache built once beside the data.

``build_cache`` streams a Parquet file (or a directory of Parquet files) in record batches and writes,
into ``<data>.fewcast-cache/``, the values as a float32 ``.npy`` file, the time stamps as an int64 or
datetime64 ``.npy`` file, the per-series ``offsets`` and the ``ids``. ``open_cache`` maps them back as
a :class:`~fewcast.panel.Panel` whose arrays are ``np.memmap`` views: windows and tasks then read only
the pages they touch, so meta-training samples tasks without loading the panel.

Streaming cannot sort, so the rows must come grouped by series and in time order within each series
(as most exports are); anything else is an :class:`~fewcast.errors.InputError` naming the series, with
the advice to sort the data or to use the in-memory path. The cache is rebuilt when the data changes
(size or modification time of any file).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fewcast.calendar import Zone, infer_freq, time_gaps, time_of_day
from fewcast.errors import InputError, describe_ids
from fewcast.frame import parquet_files
from fewcast.panel import Columns, Panel

CACHE_SUFFIX = ".fewcast-cache"


def _fingerprint(files: list[Path]) -> list[list]:
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def cache_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + CACHE_SUFFIX)


def build_cache(path: str | Path, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
                batch_size: int = 1 << 20, progress: bool = False) -> Path:
    """Stream the Parquet data at ``path`` into a memory-mappable cache; returns the cache directory."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    files = parquet_files(path)
    out = cache_dir(path)
    meta_path = out / "meta.json"
    columns = [id_col, time_col, target_col]
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        fresh = meta["sources"] == _fingerprint(files) and meta["columns"] == columns
        if fresh and "tz" in meta:  # a cache from before zoned stamps were held as in memory lacks "tz"
            return out
    readers = []
    for f in files:
        try:
            readers.append(pq.ParquetFile(f, pre_buffer=False))  # pre-buffering keeps every chunk read
        except Exception as exc:  # pyarrow's own error types
            raise InputError(f"{f} could not be read as Parquet: {str(exc).splitlines()[0]}") from None
        missing = [c for c in columns if c not in readers[-1].schema_arrow.names]
        if missing:
            raise InputError(f"{f}: missing column '{missing[0]}' (columns found: "
                             f"{', '.join(readers[-1].schema_arrow.names)})")
    total = sum(r.metadata.num_rows for r in readers)
    if total == 0:
        raise InputError(f"{path} has no rows")
    out.mkdir(exist_ok=True)
    values = np.lib.format.open_memmap(out / "values.npy", mode="w+", dtype=np.float32, shape=(total,))
    time_type = readers[0].schema_arrow.field(time_col).type
    is_date = str(time_type).startswith(("timestamp", "date"))
    ds = np.lib.format.open_memmap(out / "ds.npy", mode="w+", dtype="datetime64[ns]" if is_date else np.int64,
                                   shape=(total,))
    ids: list = []
    starts: list[int] = []
    row, last_id, last_t = 0, None, None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="rows", desc=f"indexing {path.name}")
    for reader in readers:
        for batch in reader.iter_batches(batch_size=batch_size, columns=columns):
            n = batch.num_rows
            id_array = batch.column(id_col)  # stays in Arrow: no Python object per row
            b_y = batch.column(target_col).to_numpy(zero_copy_only=False).astype(np.float32)
            b_t = batch.column(time_col).to_numpy(zero_copy_only=False)
            b_t = b_t.astype("datetime64[ns]") if is_date else b_t.astype(np.int64)
            bad = ~np.isfinite(b_y)
            if bad.any():
                raise InputError(f"column '{target_col}' has NaN or infinite values in series "
                                 f"{describe_ids(np.unique(id_array.filter(pa.array(bad)).to_pylist()))}; "
                                 f"fix them (or use the in-memory path with `fill=True`)")
            # series boundaries inside the batch, and with the previous batch's last series
            new = np.ones(n, dtype=bool)
            if n > 1:
                new[1:] = pc.not_equal(id_array.slice(1), id_array.slice(0, n - 1)).to_numpy(zero_copy_only=False)
            new[0] = id_array[0].as_py() != last_id
            prev_t = np.empty(n, dtype=b_t.dtype)
            prev_t[1:] = b_t[:-1]
            if last_t is not None:
                prev_t[0] = last_t
            backwards = ~new & (b_t <= prev_t)
            if backwards.any():
                bad_ids = np.unique(id_array.filter(pa.array(backwards)).to_pylist())
                raise InputError(f"column '{time_col}' is not increasing inside series "
                                 f"{describe_ids(bad_ids)}: streaming needs rows sorted by "
                                 f"({id_col}, {time_col}); sort the file, or pass `memmap=False`")
            first_rows = np.flatnonzero(new)
            ids.extend(id_array.take(pa.array(first_rows)).to_pylist())
            starts.extend((first_rows + row).tolist())
            values[row : row + n] = b_y
            ds[row : row + n] = b_t
            row += n
            last_id, last_t = id_array[n - 1].as_py(), b_t[-1]
            pa.default_memory_pool().release_unused()
            if bar is not None:
                bar.update(n)
    if bar is not None:
        bar.close()
    values.flush()
    ds.flush()
    ids_text = np.asarray([str(i) for i in ids])  # (series,) in file order
    names, counts = np.unique(ids_text, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"series {describe_ids(names[counts > 1])} appear in more than one run of rows: "
                         f"streaming needs rows grouped by {id_col} (sort the file, or pass `memmap=False`)")
    offsets = np.append(np.asarray(starts, dtype=np.int64), total)
    tz = getattr(time_type, "tz", None)  # Arrow gives zoned stamps as UTC
    wall = bool(tz) and _to_wall_clock(ds, tz)
    _check_gaps(ds, offsets, ids_text, time_col)
    np.save(out / "offsets.npy", offsets)
    np.save(out / "ids.npy", ids_text)
    meta = {"sources": _fingerprint(files), "columns": columns, "rows": total, "series": len(ids), "tz": tz or None,
            "wall": wall}
    meta_path.write_text(json.dumps(meta))  # written last: its presence marks a complete cache
    return out


def _to_wall_clock(ds: np.ndarray, tz: str, chunk: int = 1 << 22) -> bool:
    """Rewrite UTC stamps ``ds`` as wall-clock times in ``tz`` when every one falls at the same local time of
    day, read in chunks of rows (the in-memory path's :func:`~fewcast.calendar.zoned`); whether it did."""
    def local(lo: int) -> np.ndarray:
        utc = pd.DatetimeIndex(np.asarray(ds[lo : lo + chunk]))
        return utc.tz_localize("UTC").tz_convert(tz).tz_localize(None).to_numpy(dtype="datetime64[ns]")

    first = None
    for lo in range(0, len(ds), chunk):  # a loop over chunks of rows
        of_day = time_of_day(local(lo))
        first = of_day[0] if first is None else first
        if (of_day != first).any():
            return False
    for lo in range(0, len(ds), chunk):
        ds[lo : lo + chunk] = local(lo)
    ds.flush()
    return True


def _check_gaps(ds: np.ndarray, offsets: np.ndarray, ids: np.ndarray, time_col: str,
                chunk: int = 1 << 22) -> None:
    """An InputError naming the series whose time stamps skip a period, read in chunks of rows (the
    in-memory path's :func:`~fewcast.calendar.time_gaps`, which can also fill them)."""
    freq = infer_freq(ds, offsets)
    total = len(ds)
    rows = []
    for lo in range(0, max(total - 1, 0), chunk):  # a loop over chunks of rows; each overlaps the next by one
        hi = min(lo + chunk + 1, total)
        inner = offsets[(offsets > lo) & (offsets < hi)] - lo
        local = np.concatenate([[0], inner, [hi - lo]])  # series boundaries inside the chunk
        rows.append(lo + np.flatnonzero(time_gaps(np.asarray(ds[lo:hi]), local, freq)))
    gap = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if len(gap):
        bad = ids[np.unique(np.searchsorted(offsets, gap, side="right") - 1)]
        raise InputError(f"column '{time_col}': {len(gap)} gap{'s' if len(gap) > 1 else ''} in the time stamps "
                         f"of series {describe_ids(bad)}; add the missing rows to the data (or pass `memmap=False` and "
                         f"`fill=True` to insert them)")


def open_cache(path: str | Path, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
               progress: bool = False) -> Panel:
    """The panel at ``path`` as memory-mapped arrays (building the cache first if needed).

    Series come in file order; ``Panel.ids`` are text.
    """
    out = build_cache(path, id_col, time_col, target_col, progress=progress)
    values = np.load(out / "values.npy", mmap_mode="r")
    ds = np.load(out / "ds.npy", mmap_mode="r")
    offsets = np.load(out / "offsets.npy")
    ids = np.load(out / "ids.npy")
    meta = json.loads((out / "meta.json").read_text())
    zone = Zone(meta["tz"], meta["wall"]) if meta.get("tz") else None
    return Panel(ids, values, ds, offsets, Columns(id_col, time_col, target_col), zone=zone)
