"""Writing a run to disk: results table (CSV and Markdown), settings (TOML), pictures, an HTML report.

``report.html`` is self-contained: the pictures are embedded as base64 PNG data, no script, no network,
so a browser opens it offline.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from fewcast import plots
from fewcast.atomic import atomic_write
from fewcast.config import Settings, dumps_toml
from fewcast.evaluation import COLUMNS, INTERVAL_COLUMNS, Results


def markdown_table(table: pd.DataFrame) -> str:
    fmt = {"smape": "{:.2f}", "mase": "{:.3f}", "mae": "{:.2f}", "rmse": "{:.2f}", "n_series": "{:d}"}
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in table[COLUMNS].itertuples(index=False):
        cells = [fmt[c].format(getattr(row, c)) if c in fmt else str(getattr(row, c)) for c in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def print_tables(table: pd.DataFrame) -> None:
    """The results table, then the intervals table when there is one, as markdown on stdout."""
    print(markdown_table(sorted_table(table)))
    intervals = interval_markdown(table)
    if intervals:
        print(f"\nIntervals:\n\n{intervals}", end="")


def interval_markdown(table: pd.DataFrame) -> str:
    """The rows with intervals: coverage of the 80 % and 95 % ones, MSIS (95 %), scaled and weighted quantile
    losses; empty when no row has them."""
    rows = _interval_rows(table)
    if rows.empty:
        return ""
    head = ["method", *INTERVAL_COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows.itertuples(index=False):
        lines.append(f"| {r.method} | {r.coverage_80:.3f} | {r.coverage_95:.3f} | {r.msis:.3f} | {r.sql:.3f} | "
                     f"{r.wql:.4f} |")
    return "\n".join(lines) + "\n"


def _interval_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that have intervals, lowest scaled quantile loss first."""
    if "coverage_80" not in table:
        return table.iloc[:0]
    return table[table["coverage_80"].notna()].sort_values("sql")


def sorted_table(table: pd.DataFrame) -> pd.DataFrame:
    return table.sort_values(["protocol", "smape"]).reset_index(drop=True)


def write_run(results: Results, out: str | Path, config: Settings | None = None,
              derived: tuple[Settings, list[str]] | None = None) -> dict[str, Path]:
    """Write every artifact of ``results`` into ``out`` (and ``config`` as ``config.toml``, the settings to rerun
    with, beside what they became for the data: ``derived``); returns their paths by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = sorted_table(results.table)
    paths: dict[str, Path] = {}
    paths["results.csv"] = out / "results.csv"
    atomic_write(paths["results.csv"], table[[*COLUMNS, *INTERVAL_COLUMNS]].to_csv(index=False))
    paths["results.md"] = out / "results.md"
    intervals = interval_markdown(table)
    atomic_write(paths["results.md"], markdown_table(table) + (f"\nIntervals:\n\n{intervals}" if intervals else ""))
    if config is not None:
        paths["config.toml"] = out / "config.toml"
        atomic_write(paths["config.toml"], dumps_toml(config, *(derived or ())))
    if results.selection is not None and not results.selection.table.empty:
        paths["selection.csv"] = out / "selection.csv"
        atomic_write(paths["selection.csv"], results.selection.to_csv())
    for name, log in results.logs.items():
        atomic_write(out / f"metrics_{name}.csv", pd.DataFrame(log).to_csv(index=False))
    pictures = {
        "training_curves.png": lambda p: plots.training_curves(results.logs, p),
        "trajectory.png": lambda p: plots.trajectory(results.trajectory, p, results.settings.eval.trajectory_title),
        "shots_curve.png": lambda p: plots.shots_curve(results.shots_curve, p),
        "series.png": lambda p: plots.series_panels(results.samples, p),
    }
    if results.coverage_curve is not None and not results.coverage_curve.empty:
        pictures["calibration.png"] = lambda p: plots.calibration(results.coverage_curve, p)
    for name, draw in pictures.items():
        paths[name] = draw(out / name)
    paths["report.html"] = out / "report.html"
    pngs = {k: v for k, v in paths.items() if k.endswith(".png")}
    atomic_write(paths["report.html"], render_html(results, table, pngs))
    return paths


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(results: Results, table: pd.DataFrame, pictures: dict[str, Path]) -> str:
    s = results.settings
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(getattr(r, c)))}</td>" for c in COLUMNS) + "</tr>"
        for r in table[COLUMNS].itertuples(index=False)
    )
    timing = "".join(f"<li>{html.escape(k)}: {v:.1f} s</li>" for k, v in results.timings.items())
    settings = html.escape(dumps_toml(s))
    methods = "\n".join(f"<dt>{html.escape(name)}</dt><dd>{html.escape(text)}</dd>"
                        for name, text in results.methods.items())
    chosen = _selection(results, table)
    captions = {
        "training_curves.png": "Meta-training: meta-train loss per iteration and meta-validation loss.",
        "trajectory.png": "Support loss and horizon sMAPE after 0..N adaptation steps, per initialization.",
        "shots_curve.png": "Forecast sMAPE against the number of support windows (shots).",
        "series.png": "A sample of meta-test series: history, truth, forecasts before and after adaptation, and "
                      "the fewcast forecast's 80 % and 95 % intervals.",
        "calibration.png": "Observed against nominal coverage of the central intervals, on the held-out series.",
    }
    figures = "\n".join(
        f"<figure>{_img(p, captions.get(n, n))}<figcaption>{html.escape(captions.get(n, n))}</figcaption></figure>"
        for n, p in pictures.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fewcast report: {html.escape(results.dataset)}</title>
<style>
body {{ font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
td:nth-child(-n+2) {{ text-align: left; }} img {{ max-width: 100%; }} pre {{ background: #f6f6f6; padding: 1em; }}
</style></head><body>
<h1>fewcast: {html.escape(results.dataset)}, {html.escape(s.eval.protocol)} protocol</h1>
<p>Meta-learner <b>{html.escape(s.learner.name)}</b> on {html.escape(s.model.name)}; forecasts of series the
networks never saw (holdout) or of every series' official horizon (all-series). Lower is better.</p>
<h2>Results</h2>
<table id="results"><thead><tr>{"".join(f"<th>{c}</th>" for c in COLUMNS)}</tr></thead>
<tbody>
{rows}
</tbody></table>
{chosen}
{_intervals(table, results.short_history)}
<h2>Methods</h2>
<dl id="methods">
{methods}
</dl>
<h2>Pictures</h2>
{figures}
<h2>Time</h2><ul>{timing}</ul>
<h2>Settings</h2><pre>{settings}</pre>
</body></html>
"""


def _intervals(table: pd.DataFrame, short: dict | None = None) -> str:
    """The interval scores of the rows that have intervals, and how many held-out histories were short."""
    rows = _interval_rows(table)
    if rows.empty:
        return ""
    note = ""
    if short is not None and short["series"]:
        note = (f" {short['series']} of the {short['of']} held-out histories are shorter than the shortest "
                f"validation history ({short['length']} points): their volatility is their recent one times "
                f"{short['ratio']:.3f}" + (", their errors' distribution that of the validation horizons forecast "
                                           "from short histories." if short.get("tables") else "."))
    for name, label in (("seasonal_naive", "Seasonal naive"), ("autoets", "AutoETS")):
        if name in set(table["method"]) and name not in set(rows["method"]):
            note += (f" {label} has no interval here: statsforecast gave none for some of the held-out series"
                     + (" (from a history of one season or less)." if name == "seasonal_naive" else "."))
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(getattr(r, c)))}</td>" for c in ("method", *INTERVAL_COLUMNS))
        + "</tr>" for r in rows.itertuples(index=False))
    return ("<h2>Intervals</h2>\n<p>Coverage of the 80 % and 95 % intervals (nominal 0.80 and 0.95), MSIS of the "
            "95 % one, and the scaled (sql) and weighted (wql) quantile losses over the quantiles 0.1 ... 0.9; "
            "lower losses are better. fewcast's intervals are its validation errors scaled by each series' "
            "volatility, in the shape the training series' validation errors give them (a history shorter than "
            "every validation history: its recent volatility, converted by the validation series' ratio of whole "
            f"to recent); AutoETS and seasonal naive keep statsforecast's own."
            f"{html.escape(note)}</p>\n"
            "<table id=\"intervals\"><thead><tr>"
            + "".join(f"<th>{c}</th>" for c in ("method", *INTERVAL_COLUMNS))
            + f"</tr></thead>\n<tbody>\n{body}\n</tbody></table>")


def _selection(results: Results, table: pd.DataFrame) -> str:
    """The validation ranking beside the test scores of the same methods, and which was chosen and why."""
    chosen = results.selection
    if chosen is None:
        return ""
    head = f"<h2>Chosen on validation</h2>\n<p>fewcast forecasts with {html.escape(chosen.reason())}.</p>"
    if chosen.table.empty:
        return head
    test = table.set_index("method")
    if "fewcast" in test.index and chosen.chosen not in test.index:  # an average of candidates: the fewcast row
        test.loc[chosen.chosen] = test.loc["fewcast"]
    rows = "\n".join(
        f"<tr><td>{r.rank}</td><td>{html.escape(r.method)}</td><td>{r.smape:.2f}</td><td>{r.mase:.3f}</td>"
        f"<td>{r.score:.3f}</td><td>{_cell(test, r.method, 'smape', 2)}</td><td>{_cell(test, r.method, 'mase', 3)}</td>"
        f"</tr>" for r in chosen.table.itertuples(index=False))
    return (f"{head}\n<table id=\"selection\"><thead><tr><th>rank</th><th>method</th><th>validation sMAPE</th>"
            f"<th>validation MASE</th><th>score</th><th>test sMAPE</th><th>test MASE</th></tr></thead>\n"
            f"<tbody>\n{rows}\n</tbody></table>")


def _cell(test: pd.DataFrame, method: str, column: str, digits: int) -> str:
    return f"{test.loc[method, column]:.{digits}f}" if method in test.index else "-"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
