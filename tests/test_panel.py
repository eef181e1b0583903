"""The long-frame contract: validation into a Panel, and every bad input's one-line error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fewcast.errors import InputError, PanelWarning
from fewcast.panel import Panel, concat_ranges, from_frame, read_panel


def test_concat_ranges_matches_loop():
    starts, lengths = np.array([5, 0, 10, 3]), np.array([3, 0, 2, 1])
    expected = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
    np.testing.assert_array_equal(concat_ranges(starts, lengths), expected)


def test_from_frame_sorts_and_offsets(frame):
    panel = from_frame(frame)
    assert list(panel.ids) == sorted(frame["unique_id"].unique())
    assert panel.values.dtype == np.float32 and panel.values.flags["C_CONTIGUOUS"]
    for i, uid in enumerate(panel.ids):
        expected = frame[frame.unique_id == uid].sort_values("ds")
        np.testing.assert_allclose(panel.series(i), expected["y"].to_numpy(np.float32))
        np.testing.assert_array_equal(panel.times(i), expected["ds"].to_numpy())
    assert panel.offsets[-1] == len(frame)
    assert panel.freq == "MS"


def test_renamed_columns_round_trip(frame):
    renamed = frame.rename(columns={"unique_id": "id", "ds": "date", "y": "realValue"})
    panel = from_frame(renamed, id_col="id", time_col="date", target_col="realValue")
    back = panel.to_frame()
    assert list(back.columns) == ["id", "date", "realValue"]
    assert len(back) == len(frame)


def test_integer_time_and_text_dates(tmp_path, frame):
    ints = frame.assign(ds=frame.groupby("unique_id").cumcount() + 1)
    assert from_frame(ints).freq == 1
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)  # dates become text in the file
    panel = read_panel(path)
    assert panel.ds.dtype.kind == "M" and panel.n_series == 12


def test_parquet_file(tmp_path, frame):
    path = tmp_path / "p.parquet"
    frame.to_parquet(path, index=False)
    panel = read_panel(path)
    np.testing.assert_allclose(panel.values, from_frame(frame).values)


def test_fill_interpolates(frame):
    panel = from_frame(frame)
    broken = panel.to_frame()
    row = panel.offsets[3] + 5
    truth = (broken.loc[row - 1, "y"] + broken.loc[row + 1, "y"]) / 2
    broken.loc[row, "y"] = np.nan
    with pytest.warns(PanelWarning, match="interpolated 1"):
        filled = from_frame(broken, fill=True)
    assert filled.values[row] == pytest.approx(truth, rel=1e-5)


def test_short_series_dropped_with_count(frame):
    short = pd.DataFrame({"unique_id": ["tiny"] * 3, "ds": pd.date_range("2020", periods=3, freq="MS"),
                          "y": [1.0, 2.0, 3.0]})
    with pytest.warns(PanelWarning, match=r"dropped 1 of 13 series shorter than 20 .*'tiny'"):
        panel = from_frame(pd.concat([frame, short]), min_length=20)
    assert "tiny" not in panel.ids and panel.n_series == 12
    with pytest.raises(InputError, match="every series is shorter than 500"):
        from_frame(frame, min_length=500)


def test_take_slice_split(frame):
    panel = from_frame(frame)
    head, tail = panel.split_last(5)
    assert np.all(tail.lengths == 5) and np.all(head.lengths == panel.lengths - 5)
    np.testing.assert_array_equal(tail.series(2), panel.series(2)[-5:])
    sub = panel.select(["s05", "s01"])
    np.testing.assert_array_equal(sub.series(0), panel.series(5))
    with pytest.raises(InputError, match="unknown series 'nope'"):
        panel.select(["nope"])


def test_from_arrays_sorts_ids():
    panel = Panel.from_arrays(np.array(["b", "a"]), [np.ones(3), np.zeros(4)])
    assert list(panel.ids) == ["a", "b"]
    np.testing.assert_array_equal(panel.series(0), np.zeros(4))
    np.testing.assert_array_equal(panel.times(1), [1, 2, 3])


# -- every bad input: its error through the API and exit code 2 through `fewcast validate` ----------

def _bad_inputs(frame: pd.DataFrame) -> dict:
    f = frame.copy()
    dup = pd.concat([f, f[f.unique_id == "s03"].head(2)])
    nonnum = f.astype({"y": object})
    nonnum.loc[nonnum.unique_id == "s04", "y"] = "n/a"
    boolean = f.assign(y=f.y > 10)
    nan = f.copy()
    nan.loc[nan.unique_id == "s07", "y"] = np.nan
    inf = f.copy()
    inf.loc[inf.index[inf.unique_id == "s08"][0], "y"] = np.inf
    bad_ds = f.astype({"ds": str})
    bad_ds.loc[bad_ds.index[bad_ds.unique_id == "s02"][0], "ds"] = "not a date"
    mixed_ds = f.astype({"ds": str})
    mixed_ds.loc[mixed_ds.index[mixed_ds.unique_id == "s06"][:3], "ds"] = "17"
    return {
        "missing column": (f.drop(columns="y"), r"missing column 'y' \(columns found: unique_id, ds\)"),
        "non-numeric y": (nonnum, r"column 'y' has non-numeric values \(e.g. 'n/a'\) in series 's04'"),
        "boolean y": (boolean, "column 'y' is boolean"),
        "NaN y": (nan, r"column 'y' has \d+ NaN or infinite values in series 's07' .*--fill"),
        "infinite y": (inf, r"column 'y' has 1 NaN or infinite values in series 's08'"),
        "duplicates": (dup, r"column 'ds': 2 duplicate \(unique_id, ds\) rows in series 's03'"),
        "unparseable ds": (bad_ds, r"column 'ds' has values that are not dates .*'not a date'.* 's02'"),
        "mixed ds": (mixed_ds, r"column 'ds' has a mix of plain numbers and dates .*'s06'"),
    }


BAD_CASES = ["missing column", "non-numeric y", "boolean y", "NaN y", "infinite y", "duplicates",
             "unparseable ds", "mixed ds"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_frame(case, frame, tmp_path, run_cli):
    bad, pattern = _bad_inputs(frame)[case]
    with pytest.raises(InputError, match=pattern):
        from_frame(bad)
    path = tmp_path / "bad.parquet" if case == "boolean y" else tmp_path / "bad.csv"
    if path.suffix == ".csv":
        bad.to_csv(path, index=False)
    else:
        bad.to_parquet(path, index=False)
    code, out, err = run_cli("validate", path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("fewcast validate: error: ")


def test_mixed_python_types_in_ds(frame):
    mixed = frame.astype({"ds": object})
    mixed.loc[mixed.index[mixed.unique_id == "s09"][0], "ds"] = 5
    with pytest.raises(InputError, match=r"column 'ds' has mixed value types .*'s09'"):
        from_frame(mixed)


def test_many_bad_ids_are_counted(frame):
    nan = frame.assign(y=np.nan)
    with pytest.raises(InputError, match=r"'s00', 's01', 's02', 's03', 's04' and 7 more \(12 series\)"):
        from_frame(nan)


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("empty.csv", b"", "is an empty file"),
        ("header.csv", b"unique_id,ds,y\n", "has no rows"),
        ("data.xlsx", b"PK\x03\x04", r"is not a CSV or Parquet file \(extension '.xlsx'\)"),
        ("fake.parquet", b"not parquet at all", "could not be read as Parquet"),
        ("binary.csv", b"\xff\xfe\x00\x81\x00" * 50, "could not be read as CSV"),
    ],
)
def test_bad_files(name, content, pattern, tmp_path, run_cli):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=pattern):
        read_panel(path)
    code, _out, err = run_cli("validate", path)
    assert code == 2 and err.count("\n") == 1 and pattern.split("\\")[0].split("(")[0].strip() in err


def test_missing_path(tmp_path, run_cli):
    code, _, err = run_cli("validate", tmp_path / "nope.csv")
    assert code == 2 and "no such file" in err


def test_too_short_through_cli(frame, tmp_path, run_cli):
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    code, _, err = run_cli("validate", path, "--input-size", "200", "--h", "1")
    assert code == 2 and "every series is shorter than 201 points" in err
    code, out, err = run_cli("validate", path, "--input-size", "45", "--h", "5")
    assert code == 0 and "warning: dropped" in err and "series:     " in out


def test_validate_summary(frame, tmp_path, run_cli):
    path = tmp_path / "p.csv"
    frame.rename(columns={"unique_id": "id", "y": "realValue"}).to_csv(path, index=False)
    code, out, _ = run_cli("validate", path, "--id-col", "id", "--target-col", "realValue",
                           "--input-size", "12", "--h", "3")
    lengths = frame.groupby("unique_id").size()
    windows = int((lengths - 15 + 1).sum())
    assert code == 0
    assert "series:     12" in out
    assert f"min {lengths.min()}, median {np.median(lengths):g}, max {lengths.max()}" in out
    assert "MS (monthly)" in out
    assert f"windows:    {windows} of 12 -> 3" in out


def test_real_command_exits_2_without_traceback(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unique_id,ds,value\na,1,2\n")
    proc = subprocess.run([sys.executable, "-m", "fewcast", "validate", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "fewcast validate: error: missing column 'y' (columns found: unique_id, ds, value); "
        "name the right one with --target-col"
    )
