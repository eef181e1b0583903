"""A run's report: every artifact written, the results table, a description of every method it scores, the
pictures, the settings; and that Chromium renders it."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd
import pytest

from fewcast.config import load_toml
from tests.conftest import cli, seasonal_panel, tiny_settings


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``fewcast demo`` on a small CSV with renamed columns and tiny settings, run once for the module."""
    tmp = tmp_path_factory.mktemp("demo")
    frame = seasonal_panel().to_frame().rename(columns={"unique_id": "id", "y": "sales"})
    data = tmp / "sales.csv"
    frame.to_csv(data, index=False)
    out = tmp / "run"
    code, stdout, err = cli(
        "demo", "--dataset", data, "--id-col", "id", "--target-col", "sales", "--out", out, "--quiet",
        "--h", 6, "--input-size", 12, "--season-length", 12, "--hidden", 16, "--inner-steps", 1, "--shots", 3,
        "--iterations", 6, "--pretrain-iterations", 6, "--meta-batch-size", 8, "--val-every", 3,
        "--classical", "naive,seasonal_naive", "--combine", "seasonal_naive",
        "--curve-steps", 2, "--shots-curve", "0,2", "--plot-series", 2,
    )
    assert code == 0, err
    return data, out, stdout


class Structure(HTMLParser):
    """The parts of a report a reader relies on: the results table's cells, the methods described, images."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.described: list[str] = []
        self.images: list[str] = []
        self._in = None  # "td" or "dt" while inside one
        self._table = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
        elif tag == "tr" and self._table == "results":
            self.rows.append([])
        elif tag in ("td", "dt"):
            self._in = tag
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "dt"):
            self._in = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in == "td" and self._table == "results":
            self.rows[-1].append(data)
        elif self._in == "dt":
            self.described.append(data)


def structure(path) -> Structure:
    parser = Structure()
    parser.feed(path.read_text())
    return parser


def test_demo_writes_every_artifact(tiny_run):
    _, out, stdout = tiny_run
    for name in ("results.csv", "results.md", "config.toml", "report.html", "training_curves.png",
                 "trajectory.png", "shots_curve.png", "series.png"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == ["protocol", "method", "smape", "mase", "mae", "rmse", "n_series", "coverage_80",
                                   "coverage_95", "msis", "sql", "wql"]
    assert set(table["n_series"]) == {9} and "| protocol | method |" in stdout
    expected = {"metasgd", "metasgd_zeroshot", "maml", "maml_zeroshot", "pretrained", "pretrained_finetune",
                "scratch", "pretrained_finetune_all", "metasgd_auto", "naive", "seasonal_naive",
                "metasgd+seasonal_naive", "metasgd_auto+seasonal_naive", "pretrained_finetune_all+seasonal_naive",
                "fewcast"}
    assert set(table["method"]) == expected
    saved = load_toml(out / "config.toml")  # every setting, the horizon and season as used
    assert saved.data.id_col == "id" and saved.data.target_col == "sales" and saved.train.iterations == 6
    assert (saved.data.h, saved.data.season_length) == (6, 12)
    assert saved.learner.name == tiny_settings().learner.name


def test_report_shows_the_table_a_description_of_each_method_and_the_pictures(tiny_run):
    _, out, _ = tiny_run
    table = pd.read_csv(out / "results.csv")
    report = structure(out / "report.html")
    assert [row[1] for row in report.rows if row] == list(table["method"])  # the table, in its order
    assert all(len(row) == 7 for row in report.rows if row)
    assert sorted(report.described) == sorted(table["method"])  # every row says what it is
    calibrated = table["coverage_80"].notna().any()  # intervals: their table and the calibration plot
    assert len(report.images) == 4 + calibrated and all(src.startswith("data:image/png;base64,")
                                                         for src in report.images)
    assert ('id="intervals"' in (out / "report.html").read_text()) == calibrated
    assert (out / "calibration.png").exists() == calibrated
    assert "[learner]" in (out / "report.html").read_text()  # the settings, as config.toml has them


def test_report_renders_in_chromium(tiny_run):
    from tools.check_report import check, find_chromium

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium)")
    _, out, _ = tiny_run
    result = check(out / "report.html")
    table = pd.read_csv(out / "results.csv")
    assert result["images"] == 4 and result["rendered"] == 4
    assert result["rows"] == len(table) and result["methods"] == list(table["method"])
    assert sorted(result["described"]) == sorted(table["method"])


def test_the_intervals_say_why_seasonal_naive_has_none():
    """A scored seasonal naive without intervals (a history of one season or less) is named, not silently
    missing; with its intervals it is a row of the table and no such note is written."""
    from fewcast.evaluation import INTERVAL_COLUMNS
    from fewcast.report import _intervals

    scores = dict(zip(INTERVAL_COLUMNS, (0.8, 0.95, 6.0, 0.6, 0.08)))
    table = pd.DataFrame([{"method": "fewcast", **scores}, {"method": "seasonal_naive"}])
    text = _intervals(table)
    assert "Seasonal naive has no interval here: statsforecast gave none for some of the held-out series" in text
    assert "<td>seasonal_naive</td>" not in text and "<td>fewcast</td>" in text
    table.loc[1, INTERVAL_COLUMNS] = [0.7, 0.9, 8.0, 0.9, 0.1]
    text = _intervals(table)
    assert "no interval here" not in text and "<td>seasonal_naive</td>" in text
