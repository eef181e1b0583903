"""Benchmark: a panel larger than it needs to be in memory, indexed once and sampled from disk.

Writes a synthetic Parquet file of 1,000,000 series x 200 points (sorted by series and time, 200 million
rows), then: builds the memory-mapped cache (``fewcast.store.build_cache``: one streaming pass), opens it,
indexes every window and samples meta-batches of tasks. Reports the time of each step, the peak anonymous
memory of the process (RssAnon: what the process itself allocates; the mapped file pages are
page cache the kernel can drop), and tasks sampled per second. Goal (issue 6): under 1 GB above the model.

    .venv/bin/python benchmarks/memmap.py [--series 1000000] [--length 200] [--dir /tmp/fewcast-memmap]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def anon_mb() -> tuple[float, float]:
    """(current RssAnon, peak VmHWM) in MiB."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["RssAnon"][0]) / 1024, int(fields["VmHWM"][0]) / 1024


def write_panel(path: Path, n: int, length: int, chunk: int = 20_000) -> None:
    rng = np.random.default_rng(0)
    schema = pa.schema([("unique_id", pa.string()), ("ds", pa.int64()), ("y", pa.float32())])
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            ids = np.repeat(np.char.add("s", np.arange(lo, lo + k).astype(str)), length)
            ds = np.tile(np.arange(1, length + 1, dtype=np.int64), k)
            y = (rng.random(k * length, dtype=np.float32) * 100).astype(np.float32)
            writer.write_table(pa.table({"unique_id": ids, "ds": ds, "y": y}, schema=schema))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=1_000_000)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--dir", default="/tmp/fewcast-memmap")
    ap.add_argument("--reuse", action="store_true", help="keep a Parquet file written by an earlier run")
    args = ap.parse_args()
    root = Path(args.dir)
    path = root / "panel.parquet"
    if not (args.reuse and path.exists()):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
    shutil.rmtree(root / "panel.parquet.fewcast-cache", ignore_errors=True)
    t = time.perf_counter()
    action = "reused"
    if not path.exists():
        write_panel(path, args.series, args.length)
        action = f"wrote in {time.perf_counter() - t:.0f} s"
    print(f"{args.series:,} x {args.length} = {args.series * args.length:,} rows, "
          f"{path.stat().st_size / 2**30:.2f} GiB Parquet ({action})")

    from fewcast.store import build_cache, open_cache
    from fewcast.tasks import TaskSampler
    from fewcast.windows import Windows

    base, _ = anon_mb()
    t = time.perf_counter()
    build_cache(path)
    t_build = time.perf_counter() - t
    after_build, _ = anon_mb()
    t = time.perf_counter()
    panel = open_cache(path)
    windows = Windows(panel, 30, 1)
    t_open = time.perf_counter() - t
    sampler = TaskSampler(windows, shots=10, query_shots=1, seed=0)
    sampler.sample(256)
    t = time.perf_counter()
    reps = 200
    for _ in range(reps):
        sampler.sample(256)
    t_sample = (time.perf_counter() - t) / reps
    now, _ = anon_mb()
    print(f"build the cache (one streaming pass): {t_build:.0f} s; anonymous memory after it "
          f"+{after_build - base:.0f} MiB")
    print(f"open it and index all {len(windows):,} windows: {t_open * 1e3:.0f} ms")
    print(f"sample a meta-batch of 256 tasks from the mapped panel: {t_sample * 1e3:.2f} ms "
          f"({256 / t_sample:,.0f} tasks/s)")
    print(f"anonymous memory now: +{now - base:.0f} MiB above the start "
          f"(the panel is {panel.values.nbytes / 2**20:.0f} MiB of values + {panel.ds.nbytes / 2**20:.0f} MiB of "
          f"time stamps on disk)")


if __name__ == "__main__":
    main()
