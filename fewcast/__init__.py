"""fewcast: few-shot forecasting for panels of short related time series.

Meta-learn a small neural forecaster across a panel (each series a task), then adapt it to a new or
short series with a few gradient steps. Data enters as a long frame (``unique_id``, ``ds``, ``y``).
"""

from fewcast.determinism import initialize_blas
from fewcast.errors import InputError, PanelWarning
from fewcast.forecaster import FewShotForecaster
from fewcast.frame import from_frame, read_panel
from fewcast.panel import Columns, Panel
from fewcast.tasks import Split, Tasks, TaskSampler, split_series
from fewcast.windows import Windows, scale, unscale

__version__ = "0.1.0"

initialize_blas()  # before any multi-threaded product: see fewcast.determinism

__all__ = [
    "Columns",
    "FewShotForecaster",
    "InputError",
    "Panel",
    "PanelWarning",
    "Split",
    "TaskSampler",
    "Tasks",
    "Windows",
    "from_frame",
    "read_panel",
    "scale",
    "split_series",
    "unscale",
]
