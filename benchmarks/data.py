"""Benchmark: windowing and task sampling on a panel of 100,000 series of length 200.

Goals (issue 2): every window indexed in under 1 s, a meta-batch of 256 tasks sampled in under 5 ms,
memory within 2x the raw float32 panel. Also times validating the same panel from a long pandas frame,
and a per-window Python loop for comparison. Peak memory is measured with tracemalloc (numpy and
torch CPU buffers made by numpy are tracked; the sampled tensors are created from numpy arrays).

    .venv/bin/python benchmarks/data.py [--series 100000] [--length 200]
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc

import numpy as np
import pandas as pd

from fewcast.frame import from_frame
from fewcast.panel import Panel
from fewcast.tasks import TaskSampler
from fewcast.windows import Windows


def timed(fn, repeat: int = 1):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def peak_of(fn) -> tuple[object, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--input-size", type=int, default=30)
    ap.add_argument("--h", type=int, default=1)
    ap.add_argument("--shots", type=int, default=10)
    args = ap.parse_args()
    n, length = args.series, args.length
    rng = np.random.default_rng(0)
    values = rng.random(n * length, dtype=np.float32) * 100
    offsets = np.arange(n + 1, dtype=np.int64) * length
    ds = np.tile(np.arange(1, length + 1, dtype=np.int64), n)
    ids = np.array([f"s{i:06d}" for i in range(n)])
    panel = Panel(ids, values, ds, offsets, freq=1)
    raw_mb = values.nbytes / 2**20
    print(f"panel: {n} series x {length} = {len(values):,} float32 values ({raw_mb:.1f} MiB raw)")
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}")

    w, t_index = timed(lambda: Windows(panel, args.input_size, args.h), repeat=3)
    (_, peak_index) = peak_of(lambda: Windows(panel, args.input_size, args.h))
    print(f"index all {len(w):,} windows ({args.input_size} -> {args.h}): {t_index * 1e3:.2f} ms, "
          f"peak {peak_index / 2**20:.2f} MiB")
    positions, t_pos = timed(w.all_positions, repeat=3)
    _, peak_pos = peak_of(w.all_positions)
    print(f"materialize all window start positions: {t_pos * 1e3:.1f} ms, peak {peak_pos / 2**20:.1f} MiB "
          f"({peak_pos / values.nbytes:.2f}x raw)")
    wz, t_drop = timed(lambda: Windows(panel, args.input_size, args.h, drop_zero_target=True), repeat=3)
    _, peak_drop = peak_of(lambda: Windows(panel, args.input_size, args.h, drop_zero_target=True))
    print(f"index with drop_zero_target: {t_drop * 1e3:.1f} ms, peak {peak_drop / 2**20:.1f} MiB "
          f"({peak_drop / values.nbytes:.2f}x raw)")

    sampler = TaskSampler(w, shots=args.shots, query_shots=1, seed=0)
    sampler.sample(256)
    reps = 200
    t = time.perf_counter()
    for _ in range(reps):
        sampler.sample(256)
    t_sample = (time.perf_counter() - t) / reps
    _, peak_sample = peak_of(lambda: sampler.sample(256))
    print(f"sample a meta-batch of 256 tasks ({args.shots} shots, scaled tensors): {t_sample * 1e3:.3f} ms "
          f"(mean of {reps}), peak {peak_sample / 2**20:.2f} MiB")
    for size in (4096, 32768):
        _, ts = timed(lambda size=size: sampler.sample(size), repeat=5)
        print(f"sample a meta-batch of {size} tasks: {ts * 1e3:.2f} ms")

    # the per-window Python loop it replaces, on 1% of the panel, extrapolated
    sub = 1000
    def loop():
        out = []
        for i in range(sub):
            s = panel.series(i)
            for k in range(len(s) - args.input_size - args.h + 1):
                out.append(k + panel.offsets[i])
        return out
    _, t_loop = timed(loop)
    print(f"per-window Python loop over {sub} series: {t_loop * 1e3:.1f} ms "
          f"(~{t_loop * n / sub:.2f} s for the panel, {t_loop * n / sub / t_pos:.0f}x the vectorized positions)")

    frame = pd.DataFrame({"unique_id": np.repeat(ids, length), "ds": ds, "y": values})
    frame = frame.sample(frac=1.0, random_state=0)  # rows out of order, as files often are
    (_, t_frame) = timed(lambda: from_frame(frame))
    print(f"validate a shuffled long frame of {len(frame):,} rows into a Panel: {t_frame:.2f} s")
    del positions, wz


if __name__ == "__main__":
    main()
