"""Reading a long data frame (a file or pandas) into a validated :class:`~fewcast.panel.Panel`.

fewcast takes Nixtla's long format at every public boundary: one row per (series, time) with columns
``unique_id``, ``ds`` and ``y``; ``id_col``, ``time_col`` and ``target_col`` rename them. Everything that
can be wrong with the input is an :class:`~fewcast.errors.InputError` naming the column and the offending
series; nothing is silently coerced.
"""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from fewcast.atomic import atomic_path
from fewcast.calendar import Zone, describe_freq, infer_freq, time_crowded, time_gaps, zoned
from fewcast.errors import InputError, PanelWarning, describe_ids
from fewcast.fill import check_finite, insert_missing
from fewcast.panel import Columns, Panel


def from_frame(
    df: pd.DataFrame,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    fill: bool = False,
    min_length: int = 1,
) -> Panel:
    """Validate a long frame into a :class:`Panel`.

    Raises :class:`InputError` for missing columns, a non-numeric or boolean target, NaN or infinite
    targets (unless ``fill``, which interpolates linearly inside each series), duplicate
    (``id``, ``time``) rows, gaps in a series' time stamps at the panel's frequency (:func:`time_gaps`;
    ``fill`` inserts the missing stamps and interpolates their targets), unparseable or mixed-type
    timestamps and an empty frame. Series shorter than
    ``min_length`` are dropped with a :class:`PanelWarning` that counts them, or an error if none is left.
    """
    cols = Columns(id_col, time_col, target_col)
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame with columns {id_col}, {time_col}, {target_col}")
    missing = [c for c in (id_col, time_col, target_col) if c not in df.columns]
    if missing:
        setting = {id_col: "id_col", time_col: "time_col", target_col: "target_col"}
        found = ", ".join(map(str, df.columns[:10])) + (", ..." if len(df.columns) > 10 else "")
        indexed = missing[0] in [n for n in df.index.names if n is not None]
        raise InputError(
            f"missing column '{missing[0]}' (columns found: {found}); "
            + ("it is in the frame's index: move it to a column with `df.reset_index()`" if indexed
               else f"name the right one with `{setting[missing[0]]}`")
        )
    doubled = [c for c in dict.fromkeys((id_col, time_col, target_col)) if np.count_nonzero(df.columns == c) > 1]
    if doubled:
        raise InputError(f"column '{doubled[0]}' appears {np.count_nonzero(df.columns == doubled[0])} times in the "
                         f"frame; keep one of them")
    if len(df) == 0:
        raise InputError("the input has no rows")
    unused = [str(c) for c in df.columns if c not in (id_col, time_col, target_col)]
    if unused:
        warnings.warn(f"column{'s' if len(unused) > 1 else ''} {', '.join(unused[:5])}"
                      f"{f' and {len(unused) - 5} more' if len(unused) > 5 else ''} not used: each series is "
                      f"forecast from its own values (no exogenous features)", PanelWarning, stacklevel=2)

    raw_ids = df[id_col]
    try:
        codes, uniques = pd.factorize(raw_ids, sort=True)
    except TypeError:  # ids of mixed types cannot be ordered: compare them as text
        codes, uniques = pd.factorize(raw_ids.where(raw_ids.isna(), raw_ids.astype(str)), sort=True)
    if (codes < 0).any():  # factorize marks missing values with -1
        raise InputError(f"column '{id_col}' has {int((codes < 0).sum())} empty values; every row needs an id")
    uniques = np.asarray(uniques)

    y = _parse_target(df[target_col], codes, uniques, target_col)
    ds, zone = _parse_time(df[time_col], codes, uniques, time_col)

    # sort by (series, time) with one integer key: series code, then the time's rank among all times
    key = ds.view(np.int64) if ds.dtype.kind == "M" else ds
    if len(key) > 1 and not _is_sorted(codes, key):
        rank, times = pd.factorize(key, sort=True)
        order = np.argsort(codes.astype(np.int64) * len(times) + rank, kind="stable")
        codes, key, ds, y = codes[order], key[order], ds[order], y[order]

    dup = (codes[1:] == codes[:-1]) & (key[1:] == key[:-1])
    if dup.any():
        bad = uniques[np.unique(codes[1:][dup])]
        raise InputError(
            f"column '{time_col}': {int(dup.sum())} duplicate ({id_col}, {time_col}) rows in series "
            f"{describe_ids(bad)}; keep one row per time stamp (aggregate or drop duplicates)"
        )

    lengths = np.bincount(codes, minlength=len(uniques))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    freq = infer_freq(ds, offsets)
    gap = time_gaps(ds, offsets, freq) & (lengths[codes[:-1]] >= min_length)  # (rows - 1,): a step skips time
    if gap.any():
        if not fill:
            i = np.flatnonzero(gap)
            bad = uniques[np.unique(codes[i])]
            gaps = f"{len(i)} gap{'s' if len(i) > 1 else ''}"
            raise InputError(
                f"column '{time_col}': {gaps} in the time stamps of series {describe_ids(bad)} (e.g. "
                f"{_stamp(ds[i[0]])} then {_stamp(ds[i[0] + 1])}, at a frequency of {describe_freq(freq)}); add "
                f"the missing rows, or pass `fill=True` to insert them and interpolate '{target_col}'"
            )
        n, gapped = len(codes), uniques[np.unique(codes[:-1][gap])]
        codes, ds, y = insert_missing(codes, ds, y, gap, offsets, freq, uniques, time_col)
        warnings.warn(f"inserted {len(codes) - n} missing time stamps of '{time_col}' in {describe_ids(gapped)}",
                      PanelWarning, stacklevel=2)
        lengths = np.bincount(codes, minlength=len(uniques))
        offsets = np.concatenate([[0], np.cumsum(lengths)])
    crowded = time_crowded(ds, offsets, freq) & (lengths[codes[:-1]] >= min_length)  # (rows - 1,)
    if crowded.any():
        i = np.flatnonzero(crowded)
        raise InputError(
            f"column '{time_col}': the time stamps of series {describe_ids(uniques[np.unique(codes[i])])} are closer "
            f"together than the panel's frequency of {describe_freq(freq)} (e.g. {_stamp(ds[i[0]])} then "
            f"{_stamp(ds[i[0] + 1])}); give every series at one frequency (aggregate those series to it)")
    y = check_finite(y, codes, uniques, offsets, target_col, fill)
    panel = Panel(uniques, y, ds, offsets, cols, freq, zone)
    return panel.drop_short(min_length)


def _stamp(t) -> str:
    if not isinstance(t, np.datetime64):
        return str(int(t))
    t = pd.Timestamp(t)
    return str(t.date()) if t == t.normalize() else str(t)


def _is_sorted(codes: np.ndarray, key: np.ndarray) -> bool:
    dc = np.diff(codes)
    return bool(np.all((dc > 0) | ((dc == 0) & (np.diff(key) > 0))))


def _parse_target(col: pd.Series, codes, uniques, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col):
        raise InputError(f"column '{name}' is boolean; the target must be numeric")
    if pd.api.types.is_timedelta64_dtype(col) or pd.api.types.is_complex_dtype(col):
        raise InputError(f"column '{name}' holds {col.dtype} values; the target must be real numbers")
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if col.dtype == object and col.map(type).eq(bool).any():
        bad = uniques[np.unique(codes[col.map(type).eq(bool).to_numpy()])]
        raise InputError(f"column '{name}' holds boolean values in series {describe_ids(bad)}; it must be numeric")
    num = pd.to_numeric(col, errors="coerce")
    bad_rows = (num.isna() & col.notna()).to_numpy()
    if bad_rows.any():
        example = col[bad_rows].iloc[0]
        bad = uniques[np.unique(codes[bad_rows])]
        raise InputError(
            f"column '{name}' has non-numeric values (e.g. {example!r}) in series {describe_ids(bad)}"
        )
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


# a time stamp's trailing UTC offset, after its time of day: "...T00:00:00+01:00", "... 08:30-0500", "...Z"
_OFFSET = r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?)\s*(?:Z|[+-]\d\d:?\d\d)$"


def _parse_time(col: pd.Series, codes, uniques, name: str) -> tuple[np.ndarray, Zone | None]:
    """``(stamps, zone)``: datetime64 or int64 stamps, and the :class:`Zone` of stamps that had one."""
    def fail(rows: np.ndarray, what: str):
        example = col[rows].iloc[0]  # text quoted, a number as written
        shown = repr(example) if isinstance(example, str) else example
        bad = uniques[np.unique(codes[rows])]
        raise InputError(f"column '{name}' has {what} (e.g. {shown}) in series {describe_ids(bad)}")

    empty = col.isna().to_numpy()
    if empty.any():
        bad = uniques[np.unique(codes[empty])]
        raise InputError(f"column '{name}' has {int(empty.sum())} empty values in series {describe_ids(bad)}")
    if pd.api.types.is_bool_dtype(col):
        raise InputError(f"column '{name}' is boolean; use dates or integer time steps")
    if isinstance(col.dtype, pd.PeriodDtype):  # each period by its first moment (a fiscal quarter's first day)
        return col.dt.start_time.to_numpy(dtype="datetime64[ns]"), None
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return zoned(col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"),
                     col.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"), col.dt.tz)
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.to_numpy(dtype="datetime64[ns]"), None
    if pd.api.types.is_integer_dtype(col):
        return _compact_dates(col.to_numpy(dtype=np.int64), name), None
    if pd.api.types.is_float_dtype(col):
        frac = (col % 1 != 0).to_numpy()
        if frac.any():
            fail(frac, "fractional time steps")
        return _compact_dates(col.to_numpy(dtype=np.int64), name), None

    # object column: numbers, dates as text, or a mix of both
    kinds = col.map(lambda v: "number" if isinstance(v, (int, float, np.number)) else type(v).__name__)
    if kinds.nunique() > 1:
        minority = kinds != kinds.mode().iloc[0]
        fail(minority.to_numpy(), f"mixed value types ({', '.join(sorted(kinds.unique()))})")
    rows, texts = pd.factorize(col.astype(str).str.strip())  # stamps repeat across series: parse each text once
    text = pd.Series(texts)  # (distinct texts,); rows: (rows,) which one each row holds
    as_number = pd.to_numeric(text, errors="coerce")
    numeric = as_number.notna().to_numpy()
    if numeric.all():
        frac = (as_number % 1 != 0).to_numpy()
        if frac.any():
            fail(frac[rows], "fractional time steps")
        return _compact_dates(as_number.to_numpy(dtype=np.int64), name)[rows], None
    if numeric.any():
        fail(numeric[rows], "a mix of plain numbers and dates")
    local_text = text.str.replace(_OFFSET, r"\1", regex=True)  # the wall-clock time of a stamp with an offset
    with_offset = (local_text != text).to_numpy()
    if with_offset.any() and not with_offset.all():
        fail((with_offset if with_offset[rows].sum() * 2 < len(rows) else ~with_offset)[rows],
             "a mix of time stamps with and without a UTC offset")
    day_first = _day_first(local_text, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": we check below
        parsed = pd.to_datetime(text, errors="coerce", utc=with_offset.any(), dayfirst=day_first)  # offsets: UTC
        wall = pd.to_datetime(local_text, errors="coerce", dayfirst=day_first) if with_offset.any() else None
    bad = parsed.isna().to_numpy() | (wall.isna().to_numpy() if wall is not None else False)
    if bad.any():
        fail(bad[rows], "values that are not dates in one consistent format")
    if wall is None:
        return parsed.to_numpy(dtype="datetime64[ns]")[rows], None
    utc = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")[rows]
    local = wall.to_numpy(dtype="datetime64[ns]")[rows]
    shifts = np.unique(local - utc)  # the UTC offsets met: one is a fixed zone, several (summer time) no name
    tz = datetime.timezone(pd.Timedelta(shifts[0]).to_pytimedelta()) if len(shifts) == 1 else None
    return zoned(utc, local, tz)


def _compact_dates(steps: np.ndarray, name: str) -> np.ndarray:
    """Integer time ``steps`` as they are, or as dates, with a warning, where every one is a date written
    ``YYYYMMDD`` (``20150131``; as steps they would jump from ``20150131`` to ``20150201``)."""
    if len(steps) == 0 or steps.min() < 18000101 or steps.max() > 22001231:
        return steps
    values, rows = np.unique(steps, return_inverse=True)  # (distinct,), (rows,): each parsed once
    parsed = pd.to_datetime(pd.Series(values).astype(str), format="%Y%m%d", errors="coerce")
    if parsed.isna().any():
        return steps
    warnings.warn(f"column '{name}': numbers such as {values[0]} read as dates written YYYYMMDD "
                  f"({parsed.iloc[0]:%Y-%m-%d}); forecasts are dated", PanelWarning, stacklevel=4)
    return parsed.to_numpy(dtype="datetime64[ns]")[rows]


def _day_first(text: pd.Series, name: str) -> bool:
    """Whether numeric dates such as ``01/02/2020`` (distinct texts) are day-first. A first field above 12
    says so and a second above 12 says not; when both stay at 12 or below, the reading in which the stamps
    fall on fewer days of the month wins (monthly or quarterly data fall on one day), with a warning.
    Dates of any other form are left to pandas."""
    fields = text.str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:$|[ T])")  # (texts, 2): day or month each
    if len(text) == 0 or fields.isna().any().any():
        return False
    first, second = fields[0].astype(int), fields[1].astype(int)
    if (first > 12).any() or (second > 12).any():
        return bool((first > 12).any())
    day_first = first.nunique() < second.nunique()
    if (first != second).any():
        example = text[first != second].iloc[0]
        stamp = pd.to_datetime(pd.Series([example]), dayfirst=day_first).iloc[0]
        reading = f"{stamp.day} {stamp:%B %Y}"
        warnings.warn(f"column '{name}': dates such as {example!r} can be read day-first or month-first; read "
                      f"{'day' if day_first else 'month'}-first ({example} is {reading}), the reading in which "
                      f"they fall on fewer days of the month; write dates as YYYY-MM-DD to be sure",
                      PanelWarning, stacklevel=4)
    return day_first


CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def parquet_files(path: str | Path) -> list[Path]:
    """The Parquet files a path names: the file itself, or a directory's ``.parquet`` and ``.pq`` files in
    name order."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in PARQUET_SUFFIXES)
    if not files:
        raise InputError(f"{path} is a directory with no .parquet files in it")
    return files


# the texts pandas reads as missing values by default (in every column but the ids)
MISSING = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
           "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


def read_frame(path: str | Path, id_col: str = "unique_id") -> pd.DataFrame:
    """Read a CSV (optionally compressed) or Parquet file, or a directory of Parquet files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        return pd.concat([_read_parquet(p) for p in parquet_files(path)], ignore_index=True)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".xz", ".zst", ".zip"}:
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in PARQUET_SUFFIXES:
        return _read_parquet(path)
    if kind in CSV_SUFFIXES:
        if path.stat().st_size == 0:
            raise InputError(f"{path} is an empty file")
        sep, engine = (None, "python") if kind == ".tsv" else (",", "c")
        try:
            # ids as text: '007' stays '007', and 'NA' (North America) or 'None' is an id, not a missing one
            header = pd.read_csv(path, sep=sep, engine=engine, nrows=0).columns
            missing = {c: MISSING if c != id_col else [""] for c in header}
            df = pd.read_csv(path, sep=sep, dtype={id_col: str}, engine=engine, keep_default_na=False,
                             na_values=missing)
        except pd.errors.EmptyDataError:
            raise InputError(f"{path} is an empty file") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path} could not be read as CSV: {first}") from None
        if len(df.columns) <= 1 and len(df) == 0:
            raise InputError(f"{path} has a header but no rows")
        return df
    raise InputError(
        f"{path} is not a CSV or Parquet file (extension {kind or 'none'!r}); "
        f"save it as .csv or .parquet"
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise InputError(f"{path} is an empty file")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises its own types; say which file and why in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} could not be read as Parquet: {first}") from None


def read_panel(path: str | Path, id_col: str = "unique_id", time_col: str = "ds", target_col: str = "y",
               fill: bool = False, min_length: int = 1) -> Panel:
    """Read and validate a CSV or Parquet file into a :class:`Panel`."""
    df = read_frame(path, id_col)
    return from_frame(df, id_col, time_col, target_col, fill=fill, min_length=min_length)


def check_writable(path: str | Path) -> str:
    """The suffix of ``path`` when a frame can be written there (a .csv or .parquet name in a directory that
    exists), else an InputError saying what to change."""
    suffix = Path(path).suffix.lower()
    if suffix not in (*PARQUET_SUFFIXES, ".csv"):
        raise InputError(f"cannot write {path}: use a .csv or .parquet file name")
    if not Path(path).parent.is_dir():
        raise InputError(f"cannot write {path}: no directory {Path(path).parent}; create it first")
    return suffix


def write_frame(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a long frame to a ``.csv`` or ``.parquet`` file (by its name), atomically: the file is whole or
    as it was."""
    suffix = check_writable(path)
    with atomic_path(path) as tmp:
        if suffix in PARQUET_SUFFIXES:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
