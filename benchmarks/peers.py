"""The peer a user would pick instead of fewcast: neuralforecast's NHITS, trained on the same training series
and forecasting the same held-out series from the same histories.

NHITS is a global network trained on windows of the training series, as fewcast's networks are, without
adaptation: a new series is forecast from its last ``input_size`` values. Settings, the same on every panel:
an input of ``max(fewcast's input_size, 2 h)`` values (neuralforecast's examples use 2 h to 5 h), 1,000
training steps, a robust per-window scaler, windows padded at the start of short series, seed 1, on the device
fewcast trains on (``accelerator``: ``cpu``, or ``gpu`` where fewcast runs on CUDA).

neuralforecast is never a dependency of fewcast: install it for the benchmarks with
``pip install -c constraints.txt -e '.[bench]'`` (``make bench`` does).
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from fewcast.panel import Columns, Panel

STEPS = 1000
COLUMNS = Columns("unique_id", "ds", "y")


def available() -> bool:
    try:
        import neuralforecast  # noqa: F401
    except ImportError:
        return False
    return True


def nhits(train: Panel, histories: list[Panel], h: int, input_size: int, steps: int = STEPS,
          accelerator: str = "cpu") -> tuple[list[np.ndarray], float]:
    """NHITS trained on ``train``; its forecasts ``(series, h)`` of each panel of ``histories`` (rows in the
    panel's series order), and the seconds its training took."""
    from neuralforecast import NeuralForecast
    from neuralforecast.models import NHITS

    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    freq = train.freq if train.freq is not None else 1
    model = NHITS(h=h, input_size=max(input_size, 2 * h), max_steps=steps, scaler_type="robust",
                  start_padding_enabled=True, random_seed=1, accelerator=accelerator, enable_progress_bar=False,
                  enable_model_summary=False, logger=False)
    nf = NeuralForecast(models=[model], freq=freq)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        nf.fit(df=train.to_frame(COLUMNS))
        seconds = time.perf_counter() - started
        out = []
        for history in histories:
            pred = nf.predict(df=history.to_frame(COLUMNS))  # (series * h rows): unique_id, ds, NHITS
            pred = pred.reset_index() if "unique_id" not in pred.columns else pred
            values = pred.set_index("unique_id").loc[history.ids, "NHITS"]  # the panel's series order, steps kept
            out.append(values.to_numpy(np.float64).reshape(history.n_series, h))
    return out, seconds
