"""Data-parallel meta-training: a 2-rank step (gloo, CPU) equals a single-process step on the same tasks."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from fewcast import distributed
from fewcast.learners import MAML, MetaSGD, MetaTrainer
from fewcast.models import build_model
from fewcast.tasks import Tasks

M = 16  # tasks per rank


class FixedSampler:
    """Hands out the same given tasks every time (a rank's share, or all of them)."""

    def __init__(self, tasks: Tasks):
        self.tasks = tasks

    def sample(self, n: int) -> Tasks:
        assert n == self.tasks.x_spt.shape[0]
        return self.tasks

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def all_tasks() -> Tasks:
    g = torch.Generator().manual_seed(0)
    shape = lambda n, d: torch.randn(2 * M, n, d, generator=g)  # noqa: E731
    idx = np.arange(2 * M)
    return Tasks(shape(5, 12), shape(5, 3), shape(2, 12), shape(2, 3), idx, idx)


def share(tasks: Tasks, rank: int) -> Tasks:
    sl = slice(rank * M, (rank + 1) * M)
    return Tasks(tasks.x_spt[sl], tasks.y_spt[sl], tasks.x_qry[sl], tasks.y_qry[sl], tasks.series[sl], tasks.k[sl])


def make_learner(kind: str):
    torch.manual_seed(1)
    model = build_model("mlp", 12, 3, hidden=16)
    return MAML(model, inner_lr=0.1, inner_steps=2) if kind == "maml" else MetaSGD(model, inner_lr=0.1)


def one_step(learner, sampler, meta_batch_size: int, d=None) -> None:
    trainer = MetaTrainer(learner, sampler, outer_lr=1e-2, meta_batch_size=meta_batch_size, iterations=1,
                          clip=1.0, dist=d)
    trainer.step()


def worker(rank: int, world: int, port: int, kind: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank))
    torch.set_num_threads(1)
    d = distributed.from_env("cpu")
    learner = make_learner(kind)
    if rank == 1:  # a rank that starts from other weights gets rank 0's by broadcast
        with torch.no_grad():
            for p in learner.parameters():
                p.add_(1.0)
    one_step(learner, FixedSampler(share(all_tasks(), rank)), 2 * M, d)
    save_file({k: v.contiguous() for k, v in learner.state_dict().items()}, f"{out}.{rank}")
    distributed.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["maml", "metasgd"])
def test_two_rank_step_equals_single_process_step(kind, tmp_path):
    out = str(tmp_path / "weights")
    mp.spawn(worker, args=(2, free_port(), kind, out), nprocs=2, join=True)
    single = make_learner(kind)
    one_step(single, FixedSampler(all_tasks()), 2 * M)
    expected = single.state_dict()
    for rank in (0, 1):
        got = load_file(f"{out}.{rank}")
        assert set(got) == set(expected)
        for key, value in expected.items():
            torch.testing.assert_close(got[key], value, atol=1e-6, rtol=0, msg=f"rank {rank}: {key}")
    # and the step really moved the weights
    start = make_learner(kind).state_dict()
    assert any(not torch.allclose(start[k], expected[k]) for k in start)


def test_torchrun_train_writes_one_run(tmp_path):
    """``torchrun --nproc_per_node 2 -m fewcast train``: rank 0 alone writes; the run forecasts."""
    import shutil
    import subprocess
    import sys

    from fewcast import FewShotForecaster
    from tests.conftest import seasonal_panel

    data = tmp_path / "panel.csv"
    seasonal_panel(30).to_frame().to_csv(data, index=False)
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    run = tmp_path / "run"
    proc = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "fewcast", "train", str(data),
         "--out", str(run), "--h", "6", "--input-size", "12", "--season-length", "12", "--hidden", "16",
         "--shots", "3", "--iterations", "6", "--pretrain-iterations", "6", "--meta-batch-size", "8",
         "--checkpoint-every", "2", "--quiet"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained metasgd") == 1
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 6 + 6
    fc = FewShotForecaster.load(run / "checkpoint")
    assert len(fc.predict(seasonal_panel(3).to_frame())) == 3 * 6


def test_torchrun_resume_after_sigterm_equals_uninterrupted(tmp_path):
    """A 2-rank run stopped by SIGTERM (torchrun forwards it to both ranks, which agree to stop at the
    same iteration and checkpoint) and resumed with ``--resume`` ends on the uninterrupted run's weights."""
    import json
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from fewcast import checkpoint
    from tests.conftest import seasonal_panel

    data = tmp_path / "panel.csv"
    seasonal_panel(30).to_frame().to_csv(data, index=False)
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch(run, *extra):
        return [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "fewcast", "train",
                str(data), "--out", str(run), "--h", "6", "--input-size", "12", "--season-length", "12",
                "--hidden", "16", "--ensemble", "1", "--shots", "3", "--iterations", "100",
                "--pretrain-iterations", "6", "--meta-batch-size", "8", "--val-every", "10", "--checkpoint-every",
                "5", "--quiet", *extra]

    straight = subprocess.run(launch(tmp_path / "straight"), capture_output=True, text=True, env=env, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]

    run = tmp_path / "stopped"
    proc = subprocess.Popen(launch(run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline, stopped_at = time.time() + 200, None
    while time.time() < deadline and proc.poll() is None:
        try:
            state = json.loads((run / "checkpoint" / "state.json").read_text())
        except (OSError, ValueError):
            time.sleep(0.01)
            continue
        if state["phase"] == "metasgd" and state.get("trainer", {}).get("iteration", 0) >= 20:
            proc.send_signal(signal.SIGTERM)
            stopped_at = state["trainer"]["iteration"]
            break
        time.sleep(0.005)
    proc.wait(timeout=120)
    assert stopped_at is not None, "the run finished before it could be stopped"
    _, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "metasgd" and state["trainer"]["iteration"] < 100
    resumed = subprocess.run(launch(run, "--resume"), capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    want, _, _ = checkpoint.load(tmp_path / "straight" / "checkpoint")
    got, state, _ = checkpoint.load(run / "checkpoint")
    assert state["phase"] == "done" and set(got) == set(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
