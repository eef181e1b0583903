"""The pictures of a run, as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fewcast.atomic import atomic_path

COLORS = {"train": "tab:blue", "validation": "tab:orange"}


def _save(fig, path: Path, dpi: int = 110, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def training_curves(logs: dict[str, list[dict]], path: Path) -> Path:
    """Meta-train loss (every iteration, smoothed) and meta-validation loss, one panel per learner."""
    names = list(logs)
    if not names:
        fig, ax = plt.subplots(figsize=(4.5, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no training log in this run", ha="center", va="center")
        return _save(fig, path, tight=False)
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        frame = pd.DataFrame(logs[name])
        if frame.empty:
            continue
        window = max(1, len(frame) // 50)
        ax.plot(frame["iteration"], frame["train_loss"], color=COLORS["train"], alpha=0.25, lw=0.8)
        ax.plot(frame["iteration"], frame["train_loss"].rolling(window, min_periods=1).mean(),
                color=COLORS["train"], label="meta-train")
        val = frame.dropna(subset=["val_loss"])
        if len(val):
            ax.plot(val["iteration"], val["val_loss"], "o-", color=COLORS["validation"], ms=3, label="meta-validation")
        ax.set_title(name)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss (scaled windows)")
        ax.legend(fontsize=8)
    return _save(fig, path)


def trajectory(frame: pd.DataFrame, path: Path, title: str = "") -> Path:
    """The seed's plot done right: support loss and horizon sMAPE after 0..N adaptation steps."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for init, part in frame.groupby("init", sort=False):
        left.plot(part["steps"], part["support_loss"], "o-", ms=3, label=init)
        right.plot(part["steps"], part["smape"], "o-", ms=3, label=init)
    left.set_title("average support loss (what adaptation minimizes)")
    right.set_title("average forecast sMAPE on the unseen horizon")
    for ax in (left, right):
        ax.set_xlabel("gradient steps with SGD")
        ax.legend(fontsize=8)
        low, high = ax.get_ylim()
        if low > 0 and high / low > 20:  # scratch is often far above the rest: keep the rest readable
            ax.set_yscale("log")
    left.set_ylabel("loss")
    right.set_ylabel("sMAPE (%)")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def shots_curve(frame: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for method, part in frame.groupby("method", sort=False):
        ax.plot(part["shots"], part["smape"], "o-", label=method)
    ax.set_xlabel("shots (support windows per series)")
    ax.set_ylabel("forecast sMAPE (%)")
    ax.set_title("accuracy against the number of shots")
    ax.legend(fontsize=8)
    return _save(fig, path)


def series_panels(samples: list[dict], path: Path, context: int = 60) -> Path:
    """History (last ``context`` points), truth, forecasts before and after adaptation and the forecast's
    80 % and 95 % intervals, per series."""
    n = len(samples)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 2.8 * rows), squeeze=False)
    for ax, sample in zip(axes.flat, samples):
        hist = sample["history"][-context:]
        n_hist = len(sample["history"])
        t_hist = np.arange(n_hist - len(hist), n_hist)
        t_fc = np.arange(n_hist, n_hist + len(sample["truth"]))
        ax.plot(t_hist, hist, color="black", lw=1, label="history")
        for level, (lo, hi) in sample.get("bands", {}).items():  # 95 % then 80 %: a fan
            ax.fill_between(t_fc, lo, hi, color="tab:blue", alpha=0.12 if level >= 95 else 0.25, lw=0,
                            label=f"fewcast {level} % interval")
        ax.plot(t_fc, sample["truth"], color="black", lw=1, ls="--", label="truth")
        for label, yhat in sample["forecasts"].items():
            ax.plot(t_fc, yhat, lw=1.2, label=label)
        ax.set_title(f"{sample['unique_id']} ({sample['shots']} support windows)", fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _save(fig, path, dpi=100, tight=False)


def calibration(curve: pd.DataFrame, path: Path) -> Path:
    """Observed against nominal coverage of the central intervals, per method (the diagonal: calibrated)."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 100], [0, 100], color="grey", lw=1, ls=":", label="calibrated")
    for method, part in curve.groupby("method", sort=False):
        ax.plot(part["nominal"], part["observed"], marker="o", lw=1.2, label=method)
    ax.set_xlabel("nominal coverage (%)")
    ax.set_ylabel("observed coverage (%)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return _save(fig, path)
