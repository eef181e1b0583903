"""Benchmark: one meta-training step of second-order MAML, in tasks per second.

One step = forward on the support, ``inner_steps`` inner SGD steps, query loss, the meta-gradient and the
Adam update. The seed's MLP (input 30 -> 10 -> 10 -> 1), ``shots=10`` support and 10 query windows per
task, meta-batch 32, 256 and 4096, inner steps 1 and 5. Four implementations of the same step, in the same
run, each configuration in a fresh process (so that peak memory is its own):

- ``fewcast``: ``fewcast.learners.MAML.meta_backward`` + ``Adam.step``;
- ``vmap``: a bare ``torch.func`` implementation written out in a few lines (the floor fewcast should be
  within 1.2x of);
- ``loop``: a per-task Python loop with ``torch.autograd.grad(create_graph=True)``;
- ``higher``: the ``higher`` library's ``innerloop_ctx``, per task (it has no task batching);
- ``fewcast_compile``: fewcast with ``torch.compile`` on the meta-loss (``--methods`` adds it; the first,
  compiling call is the warm-up and not timed).

``--device cuda`` runs it all on a GPU (timings synchronize the device); see ``benchmarks/gpu.sh``.

    .venv/bin/pip install higher==0.2.1   # benchmark-only dependency (make bench does it)
    .venv/bin/python benchmarks/meta_step.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

INPUT, H, SHOTS, QUERY = 30, 1, 10, 10


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak() -> None:
    """Reset the kernel's high-water mark of this process's resident memory (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run_one(method: str, tasks: int, inner_steps: int, seconds: float, device: str = "cpu") -> dict:
    import torch
    from torch.func import functional_call, grad, vmap

    from fewcast.learners import MAML
    from fewcast.models import build_model

    torch.manual_seed(0)
    model = build_model("mlp", INPUT, H, hidden=10, depth=2).to(device)
    lr = 0.01
    x_spt, y_spt = torch.randn(tasks, SHOTS, INPUT, device=device), torch.randn(tasks, SHOTS, H, device=device)
    x_qry, y_qry = torch.randn(tasks, QUERY, INPUT, device=device), torch.randn(tasks, QUERY, H, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    if method in ("fewcast", "fewcast_compile"):
        learner = MAML(model, inner_lr=lr, inner_steps=inner_steps)
        if method == "fewcast_compile":
            learner.compile()

        def step():
            opt.zero_grad()
            learner.meta_backward(x_spt, y_spt, x_qry, y_qry)
            opt.step()

    elif method == "vmap":
        def loss(params, x, y):
            return ((functional_call(model, params, (x,)) - y) ** 2).mean()

        def task(params, xs, ys, xq, yq):
            fast = params
            for _ in range(inner_steps):
                g = grad(loss)(fast, xs, ys)
                fast = {n: fast[n] - lr * g[n] for n in fast}
            return loss(fast, xq, yq)

        def step():
            opt.zero_grad()
            params = dict(model.named_parameters())
            vmap(task, in_dims=(None, 0, 0, 0, 0))(params, x_spt, y_spt, x_qry, y_qry).mean().backward()
            opt.step()

    elif method == "loop":
        def step():
            opt.zero_grad()
            params = dict(model.named_parameters())
            total = 0.0
            for t in range(tasks):
                fast = params
                for _ in range(inner_steps):
                    support = ((functional_call(model, fast, (x_spt[t],)) - y_spt[t]) ** 2).mean()
                    grads = torch.autograd.grad(support, list(fast.values()), create_graph=True)
                    fast = {n: p - lr * g for (n, p), g in zip(fast.items(), grads)}
                total = total + ((functional_call(model, fast, (x_qry[t],)) - y_qry[t]) ** 2).mean()
            (total / tasks).backward()
            opt.step()

    elif method == "higher":
        import higher

        inner_opt = torch.optim.SGD(model.parameters(), lr=lr)

        def step():
            opt.zero_grad()
            for t in range(tasks):
                with higher.innerloop_ctx(model, inner_opt, copy_initial_weights=False) as (fmodel, diffopt):
                    for _ in range(inner_steps):
                        diffopt.step(((fmodel(x_spt[t]) - y_spt[t]) ** 2).mean())
                    (((fmodel(x_qry[t]) - y_qry[t]) ** 2).mean() / tasks).backward()
            opt.step()
    else:
        raise ValueError(method)

    base = rss_mb()  # model, tasks and optimizer exist; the steps' own working memory comes on top
    reset_peak()
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step()  # warm-up (and compilation)
    step()
    sync()
    n, started = 0, time.perf_counter()
    while True:
        step()
        n += 1
        sync()
        elapsed = time.perf_counter() - started
        if elapsed > seconds or (n >= 50 and elapsed > seconds / 5):
            break
    peak = peak_mb()
    return {"method": method, "tasks": tasks, "inner_steps": inner_steps, "steps_timed": n,
            "ms_per_step": 1e3 * elapsed / n, "tasks_per_s": tasks * n / elapsed,
            "peak_mb_above_setup": peak - base, "rss_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "TASKS", "STEPS"))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--quick", action="store_true", help="meta-batch 256, one inner step only")
    ap.add_argument("--methods", default="fewcast,vmap,loop,higher")
    ap.add_argument("--batches", default="32,256,4096")
    ap.add_argument("--steps", default="1,5", help="inner steps to measure")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.child:
        method, tasks, steps = args.child
        print(json.dumps(run_one(method, int(tasks), int(steps), args.seconds, args.device)))
        return

    import torch

    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "no GPU"
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"python {platform.python_version()}, device {args.device} ({gpu})")
    batches = [256] if args.quick else [int(b) for b in args.batches.split(",")]
    steps_list = [1] if args.quick else [int(x) for x in args.steps.split(",")]
    methods = args.methods.split(",")
    rows = []
    for steps in steps_list:
        for tasks in batches:
            for method in methods:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", method, str(tasks), str(steps), "--seconds",
                     str(args.seconds), "--device", args.device], capture_output=True, text=True, check=False,
                )
                if out.returncode != 0:
                    print(f"{method} {tasks} {steps}: failed\n{out.stderr.strip().splitlines()[-1]}")
                    continue
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"inner_steps={steps} meta_batch={tasks:>5} {method:>8}: {r['tasks_per_s']:>10.0f} tasks/s "
                      f"({r['ms_per_step']:.1f} ms/step, {r['steps_timed']} steps, "
                      f"peak +{r['peak_mb_above_setup']:.0f} MiB, rss {r['rss_mb']:.0f} MiB)", flush=True)
    print("\n| inner steps | meta-batch | fewcast tasks/s | bare vmap | per-task loop | higher | "
          "fewcast / loop | fewcast / higher | vmap / fewcast | peak MiB fewcast / loop | fewcast compiled |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for steps in steps_list:
        for tasks in batches:
            by = {r["method"]: r for r in rows if r["tasks"] == tasks and r["inner_steps"] == steps}
            rate = {m: by[m]["tasks_per_s"] if m in by else float("nan")
                    for m in ("fewcast", "vmap", "loop", "higher", "fewcast_compile")}
            mem = {m: f"{by[m]['peak_mb_above_setup']:.0f}" if m in by else "-" for m in ("fewcast", "loop")}
            print(f"| {steps} | {tasks} | {rate['fewcast']:.0f} | {rate['vmap']:.0f} | {rate['loop']:.0f} | "
                  f"{rate['higher']:.0f} | {rate['fewcast'] / rate['loop']:.1f}x | "
                  f"{rate['fewcast'] / rate['higher']:.1f}x | {rate['vmap'] / rate['fewcast']:.2f} | "
                  f"{mem['fewcast']} / {mem['loop']} | {rate['fewcast_compile']:.0f} |")


if __name__ == "__main__":
    main()
