"""Every learner's vectorized meta-gradient against a plain per-task torch.autograd loop."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.func import functional_call

from fewcast.errors import InputError
from fewcast.learners import (
    ANIL,
    MAML,
    MetaSGD,
    MetaTrainer,
    Reptile,
    TrainingDiverged,
    TrainingInterrupted,
    window_loss,
)
from fewcast.learners.base import _key
from fewcast.models import Ensemble, build_model, head_names
from fewcast.panel import Panel
from fewcast.tasks import TaskSampler
from fewcast.windows import Windows

T, SHOTS, QRY, INPUT, H = 6, 5, 3, 8, 2


def random_tasks(seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shape = lambda n, d: torch.randn(T, n, d, generator=g, dtype=dtype)  # noqa: E731
    return shape(SHOTS, INPUT), shape(SHOTS, H), shape(QRY, INPUT), shape(QRY, H)


def tiny_model(name: str = "mlp", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    options = {"mlp": {"hidden": 7}, "nbeats": {"hidden": 6, "blocks": 2}, "gru": {"hidden": 4}}[name]
    return build_model(name, INPUT, H, **options).double()


def reference_meta_grad(learner, x_spt, y_spt, x_qry, y_qry, first_order: bool, step_weights=None):
    """The meta-gradient by a per-task loop with torch.autograd.grad (create_graph for second order)."""
    model = learner.model
    loss_fn = window_loss(learner.loss_name)
    params = dict(model.named_parameters())
    names = learner.adapt_names
    steps = learner.inner_steps
    weights = step_weights if step_weights is not None else torch.eye(steps)[-1]
    total = 0.0
    for t in range(x_spt.shape[0]):
        fast = {n: params[n] for n in names}
        for s in range(steps):
            pred = functional_call(model, {**params, **fast}, (x_spt[t],))
            support = loss_fn(pred, y_spt[t]).mean()
            grads = torch.autograd.grad(support, list(fast.values()), create_graph=not first_order,
                                        allow_unused=True)  # N-BEATS' last backcast feeds nothing
            grads = [torch.zeros_like(fast[n]) if g is None else g for n, g in zip(names, grads)]
            fast = {n: fast[n] - learner.inner_lr(n, s) * g for n, g in zip(names, grads)}
            if weights[s] != 0:
                query = loss_fn(functional_call(model, {**params, **fast}, (x_qry[t],)), y_qry[t]).mean()
                total = total + weights[s] * query
    meta = [p for p in learner.parameters()]
    return torch.autograd.grad(total / x_spt.shape[0], meta, allow_unused=True)


def vectorized_meta_grad(learner, tasks):
    learner.zero_grad()
    learner.meta_loss(*tasks).backward()
    return [p.grad for p in learner.parameters()]


def assert_grads_close(a, b, atol=1e-5):
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        ga = torch.zeros(()) if ga is None else ga
        gb = torch.zeros(()) if gb is None else gb
        torch.testing.assert_close(ga.expand_as(gb) if ga.dim() == 0 else ga, gb, atol=atol, rtol=1e-5)


LEARNER_CASES = {
    "maml": lambda m: MAML(m, inner_lr=0.1, inner_steps=2),
    "maml-1step": lambda m: MAML(m, inner_lr=0.05, inner_steps=1),
    "fomaml": lambda m: MAML(m, inner_lr=0.1, inner_steps=2, first_order=True),
    "anil": lambda m: ANIL(m, inner_lr=0.3, inner_steps=3),
    "metasgd": lambda m: MetaSGD(m, inner_lr=0.1, inner_steps=2),
    "maml-lslr": lambda m: MAML(m, inner_lr=0.1, inner_steps=3, learn_inner_lr=True),
    "maml-mae": lambda m: MAML(m, inner_lr=0.1, inner_steps=2, loss="mae"),
    "maml-smape": lambda m: MAML(m, inner_lr=0.1, inner_steps=2, loss="smape"),
}


GRADIENT_CASES = [(case, "mlp") for case in LEARNER_CASES] + [
    (case, model) for case in ("maml", "anil", "metasgd") for model in ("nbeats", "gru")
]


@pytest.mark.parametrize(("case", "model_name"), GRADIENT_CASES)
def test_meta_gradient_matches_per_task_loop(case, model_name):
    learner = LEARNER_CASES[case](tiny_model(model_name))
    with torch.no_grad():  # make learned rates differ per element / step so that indexing errors show
        for p in (learner.lslr or {}).values():
            p.mul_(torch.linspace(0.5, 1.5, p.numel(), dtype=p.dtype).view_as(p))
        for p in getattr(learner, "lrs", {}).values():
            p.mul_(torch.rand(p.shape, dtype=p.dtype) + 0.5)
    learner.double()
    tasks = random_tasks()
    expected = reference_meta_grad(learner, *tasks, first_order=learner.first_order)
    assert_grads_close(vectorized_meta_grad(learner, tasks), expected)


def test_multi_step_loss_matches_weighted_reference():
    learner = MAML(tiny_model(), inner_lr=0.1, inner_steps=3, multi_step_loss=True, msl_iterations=10)
    learner.iteration = 4
    w = learner.step_weights()
    assert w.sum() == pytest.approx(1.0) and w[-1] > w[0] > 0
    tasks = random_tasks(1)
    expected = reference_meta_grad(learner, *tasks, first_order=False, step_weights=w.double())
    assert_grads_close(vectorized_meta_grad(learner, tasks), expected)
    learner.iteration = 1000  # annealed: nearly all weight on the last step
    assert learner.step_weights()[-1] == pytest.approx(1 - 2 * 0.01)


def test_fomaml_is_maml_with_detached_inner_gradients_and_differs_from_second_order():
    tasks = random_tasks(2)
    second = MAML(tiny_model(), inner_lr=0.2, inner_steps=2)
    first = MAML(copy.deepcopy(second.model), inner_lr=0.2, inner_steps=2, first_order=True)
    g2, g1 = vectorized_meta_grad(second, tasks), vectorized_meta_grad(first, tasks)
    assert_grads_close(g1, reference_meta_grad(first, *tasks, first_order=True))
    # the second-order terms are real: the meta-gradients differ by far more than round-off
    diff = max(float((a - b).abs().max()) for a, b in zip(g1, g2))
    assert diff > 1e-3
    # ... and vanish when the inner step does: with inner_lr 0 both are the plain query gradient
    z2 = vectorized_meta_grad(MAML(copy.deepcopy(second.model), inner_lr=0.0, inner_steps=2), tasks)
    z1 = vectorized_meta_grad(MAML(copy.deepcopy(second.model), inner_lr=0.0, first_order=True, inner_steps=2), tasks)
    assert_grads_close(z1, z2, atol=1e-12)


def test_derivative_order_annealing():
    tasks = random_tasks(3)
    annealed = MAML(tiny_model(), inner_lr=0.2, inner_steps=2, first_order_iterations=5)
    first = MAML(copy.deepcopy(annealed.model), inner_lr=0.2, inner_steps=2, first_order=True)
    second = MAML(copy.deepcopy(annealed.model), inner_lr=0.2, inner_steps=2)
    annealed.iteration = 4
    assert_grads_close(vectorized_meta_grad(annealed, tasks), vectorized_meta_grad(first, tasks))
    annealed.iteration = 5
    assert_grads_close(vectorized_meta_grad(annealed, tasks), vectorized_meta_grad(second, tasks))


def test_finite_differences_on_a_tiny_model():
    torch.manual_seed(4)
    model = build_model("mlp", 3, 1, hidden=2, depth=1).double()
    learner = MAML(model, inner_lr=0.3, inner_steps=2)
    g = torch.Generator().manual_seed(0)
    tasks = [torch.randn(2, 4, d, generator=g, dtype=torch.float64) for d in (3, 1, 3, 1)]
    grads = vectorized_meta_grad(learner, tasks)
    eps = 1e-6
    for p, gp in zip(learner.parameters(), grads):
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = learner.meta_loss(*tasks).item()
            flat[i] = old - eps
            down = learner.meta_loss(*tasks).item()
            flat[i] = old
            assert (up - down) / (2 * eps) == pytest.approx(gp.view(-1)[i].item(), rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("cls", [MAML, ANIL, MetaSGD, Reptile])
def test_one_inner_step_lowers_the_support_loss(cls):
    learner = cls(tiny_model(), inner_lr=0.01, inner_steps=1)
    x_spt, y_spt, _, _ = random_tasks(5)
    before = window_loss("mse")(learner.forecast(learner.adapt(x_spt, y_spt, steps=0), x_spt), y_spt).mean(-1)
    after = window_loss("mse")(learner.forecast(learner.adapt(x_spt, y_spt), x_spt), y_spt).mean(-1)
    assert torch.all(after < before)


def test_adapt_matches_reference_and_masks_padding():
    learner = MAML(tiny_model(), inner_lr=0.1, inner_steps=2)
    x_spt, y_spt, _, _ = random_tasks(6)
    mask = torch.ones(T, SHOTS, dtype=torch.float64)
    mask[0, :2] = 0  # task 0 has only its last 3 windows
    mask[1] = 0  # task 1 has none: zero-shot
    params = learner.adapt(x_spt, y_spt, mask)
    base = dict(learner.model.named_parameters())
    for t in range(T):
        keep = mask[t].bool()
        fast = dict(base)
        for _ in range(2):
            if keep.any():
                pred = functional_call(learner.model, fast, (x_spt[t, keep],))
                grads = torch.autograd.grad(((pred - y_spt[t, keep]) ** 2).mean(), list(fast.values()))
                fast = {n: fast[n] - 0.1 * g for n, g in zip(fast, grads)}
        for n in base:
            torch.testing.assert_close(params[n][t], fast[n])


def test_anil_adapts_only_the_head():
    model = tiny_model("nbeats")
    learner = ANIL(model, inner_lr=0.5, inner_steps=1)
    assert learner.adapt_names == head_names(model) == ["blocks.0.forecast.weight", "blocks.0.forecast.bias",
                                                         "blocks.1.forecast.weight", "blocks.1.forecast.bias"]
    x_spt, y_spt, _, _ = random_tasks(7)
    params = learner.adapt(x_spt, y_spt)
    for n, p in model.named_parameters():
        changed = not torch.allclose(params[n], p.expand_as(params[n]))
        assert changed == (n in learner.adapt_names)


def test_metasgd_rates_are_meta_parameters_and_zero_rates_freeze():
    learner = MetaSGD(tiny_model(), inner_lr=0.1)
    names = {n for n, _ in learner.named_parameters()}
    assert {f"lrs.{_key(n)}" for n, _ in learner.model.named_parameters()} <= names
    with torch.no_grad():
        for p in learner.lrs.values():
            p.zero_()
    x_spt, y_spt, _, _ = random_tasks(8)
    params = learner.adapt(x_spt, y_spt)
    for n, p in learner.model.named_parameters():
        torch.testing.assert_close(params[n], p.expand_as(params[n]))


def test_reptile_update_is_its_definition():
    learner = Reptile(tiny_model(), inner_lr=0.05, inner_steps=3)
    tasks = random_tasks(9)
    x_spt, y_spt = tasks[0], tasks[1]
    learner.zero_grad()
    learner.meta_backward(*tasks)
    base = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    adapted_sum = {n: torch.zeros_like(p) for n, p in base.items()}
    for t in range(T):  # plain SGD per task, as the definition says
        model = copy.deepcopy(learner.model)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        for _ in range(3):
            opt.zero_grad()
            ((model(x_spt[t]) - y_spt[t]) ** 2).mean().backward()
            opt.step()
        for n, p in model.named_parameters():
            adapted_sum[n] += p.detach()
    for n, p in learner.model.named_parameters():
        torch.testing.assert_close(p.grad, base[n] - adapted_sum[n] / T)
    # with SGD of rate eps the outer step is meta += eps * (mean adapted - meta)
    torch.optim.SGD(learner.parameters(), lr=0.5).step()
    for n, p in learner.model.named_parameters():
        torch.testing.assert_close(p.detach(), base[n] + 0.5 * (adapted_sum[n] / T - base[n]))


def test_gru_matches_torch_gru():
    model = tiny_model("gru").float()
    reference = torch.nn.GRU(1, 4, batch_first=True)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(model.x2h.weight)
        reference.bias_ih_l0.copy_(model.x2h.bias)
        reference.weight_hh_l0.copy_(model.h2h.weight)
        reference.bias_hh_l0.copy_(model.h2h.bias)
    x = torch.randn(5, INPUT)
    _, last = reference(x.unsqueeze(-1))
    torch.testing.assert_close(model(x), model.head(last[0]))


@pytest.mark.parametrize("name", ["mlp", "nbeats", "gru"])
def test_models_map_windows_to_horizons(name):
    model = build_model(name, 12, 4)
    assert model(torch.randn(3, 12)).shape == (3, 4)
    assert not list(model.buffers())


def _seasonal_sampler(seed: int, n_series: int = 60) -> TaskSampler:
    rng = np.random.default_rng(seed)
    t = np.arange(80)
    series = [10 + 3 * np.sin(2 * np.pi * (t + rng.integers(12)) / 12) * rng.uniform(0.5, 2) for _ in range(n_series)]
    panel = Panel.from_arrays(np.array([f"s{i}" for i in range(n_series)]), series)
    return TaskSampler(Windows(panel, 12, 3), shots=5, query_shots=2, seed=seed)


def test_trainer_learns_and_validates():
    torch.manual_seed(0)
    learner = MAML(build_model("mlp", 12, 3, hidden=32), inner_lr=0.01, inner_steps=1)
    trainer = MetaTrainer(learner, _seasonal_sampler(0), _seasonal_sampler(1).latest(), outer_lr=3e-3,
                          meta_batch_size=32, iterations=150, val_every=25, cosine=True)
    first = trainer.validate()
    history = trainer.fit()
    assert len(history) == 150 and history[-1]["outer_lr"] < 1e-6
    vals = [r["val_loss"] for r in history if not np.isnan(r["val_loss"])]
    assert len(vals) == 6 and min(vals) < 0.2 * first
    assert trainer.validate() == pytest.approx(min(vals), rel=1e-5)  # ends on the best weights


def test_trainer_stops_on_divergence():
    learner = MAML(build_model("mlp", 12, 3), inner_lr=1e30, inner_steps=2)
    trainer = MetaTrainer(learner, _seasonal_sampler(0), iterations=5)
    with pytest.raises(TrainingDiverged, match="at iteration 1; lower the learning rates"):
        trainer.fit()


def test_trainer_early_stopping():
    learner = MAML(build_model("mlp", 12, 3), inner_lr=0.01)
    trainer = MetaTrainer(learner, _seasonal_sampler(0), _seasonal_sampler(1).sample(16), outer_lr=0.0,
                          iterations=100, val_every=5, patience=2)
    history = trainer.fit()
    # the starting weights are validated first and stay the best (outer_lr 0): two validations without
    # improvement, at iterations 5 and 10, stop it
    assert len(history) == 10


def test_moving_average_of_weights_is_its_recursion_and_is_what_validates():
    """``ema``: after every step avg = d * avg + (1 - d) * w with d = min(ema, (1 + n) / (10 + n)); the
    validation scores the average, keep-the-best stores it, and training ends on it."""
    torch.manual_seed(0)
    learner = MAML(build_model("mlp", 12, 3, hidden=16), inner_lr=0.01)
    val = _seasonal_sampler(1).latest()
    trainer = MetaTrainer(learner, _seasonal_sampler(0), val, outer_lr=1e-2, meta_batch_size=8, iterations=12,
                          val_every=4, ema=0.9)
    avg = {k: v.clone() for k, v in learner.state_dict().items()}
    trainer.best_val = trainer.validate()
    for n in range(1, 13):
        row = trainer.step()
        d = min(0.9, (1 + n) / (10 + n))
        raw = learner.state_dict()
        avg = {k: d * avg[k] + (1 - d) * raw[k] for k in avg}
        for k in avg:
            torch.testing.assert_close(trainer.averaged[k], avg[k])
        if n % 4 == 0:  # validated on the average, not on the raw weights it trains
            with torch.no_grad():
                raw_copy = {k: v.clone() for k, v in raw.items()}
                learner.load_state_dict(avg)
                expected = trainer.validate()
                learner.load_state_dict(raw_copy)
            assert row["val_loss"] == pytest.approx(expected, rel=1e-6)
            assert trainer.validate() != pytest.approx(expected, rel=1e-6)  # the raw weights score otherwise
    assert not torch.equal(trainer.averaged["model.head.weight"], learner.state_dict()["model.head.weight"])
    trainer.iteration = trainer.iterations  # nothing left to do: fit() only ends on the kept weights
    trainer.fit()
    for k, v in learner.state_dict().items():
        assert torch.equal(v, trainer.best_state[k])
    with pytest.raises(ValueError, match="ema must be a decay"):
        MetaTrainer(learner, _seasonal_sampler(0), ema=1.0)
    with pytest.raises(InputError, match=r"must be a decay in \[0, 1\) \(got 1.5; `pretrain_ema`"):
        MetaTrainer(learner, _seasonal_sampler(0), ema=1.5)  # a one-line error at the command line, exit 2


def test_moving_average_resumes_exactly():
    def make(**hooks):
        torch.manual_seed(0)
        learner = MAML(build_model("mlp", 12, 3, hidden=16), inner_lr=0.01)
        return MetaTrainer(learner, _seasonal_sampler(0), _seasonal_sampler(1).latest(), outer_lr=1e-2,
                           meta_batch_size=8, iterations=10, val_every=3, ema=0.8, **hooks)

    straight = make()
    straight.fit()
    saved = []
    first = make(on_checkpoint=lambda t: saved.append(t.state_dict()), should_interrupt=lambda: first.iteration == 5)
    with pytest.raises(TrainingInterrupted):
        first.fit()
    second = make()
    second.load_state_dict(*saved[0])
    second.fit()
    for k, v in straight.learner.state_dict().items():
        assert torch.equal(v, second.learner.state_dict()[k]), k
    plain = make()
    plain.ema, plain.averaged = 0.0, None
    with pytest.raises(ValueError, match="no moving average"):
        make().load_state_dict(*plain.state_dict())


def test_compiled_meta_gradient_equals_eager():
    tasks = [t.float() for t in random_tasks(11)]
    eager = MAML(tiny_model().float(), inner_lr=0.1, inner_steps=2)
    compiled = MAML(copy.deepcopy(eager.model), inner_lr=0.1, inner_steps=2)
    compiled.compile()
    assert_grads_close(vectorized_meta_grad(compiled, tasks), vectorized_meta_grad(eager, tasks), atol=1e-5)
    assert compiled._compiled is not None  # it really ran compiled


def test_compile_failure_falls_back_to_eager(monkeypatch):
    learner = MAML(tiny_model(), inner_lr=0.1, inner_steps=1)

    def broken(*args, **kwargs):
        raise RuntimeError("no backend for this")

    learner._compiled = broken
    tasks = random_tasks(12)
    with pytest.warns(UserWarning, match="torch.compile failed on the meta-loss .*running eagerly"):
        loss = learner.meta_loss(*tasks)
    assert learner._compiled is None
    expected = MAML(copy.deepcopy(learner.model), inner_lr=0.1, inner_steps=1).meta_loss(*tasks)
    torch.testing.assert_close(loss, expected)


@pytest.mark.parametrize("case", ["maml", "metasgd", "anil", "fomaml"])
def test_ensemble_members_learn_and_forecast_as_if_alone(case):
    """An ensemble's meta-gradient for member k is member k's own meta-gradient (over the number of
    members: the meta-loss averages them), and its adapted forecast is the mean of the members' own."""
    members = 3
    torch.manual_seed(5)
    ensemble = LEARNER_CASES[case](Ensemble(lambda: build_model("mlp", INPUT, H, hidden=7).double(), members))
    torch.manual_seed(5)
    alone = [LEARNER_CASES[case](build_model("mlp", INPUT, H, hidden=7).double()) for _ in range(members)]
    with torch.no_grad():  # learned rates made to differ per element and member; each member gets its own
        for p in getattr(ensemble, "lrs", {}).values():
            p.mul_(torch.rand(p.shape, dtype=p.dtype) + 0.5)
        for k, learner in enumerate(alone):
            for key, p in getattr(learner, "lrs", {}).items():
                p.copy_(ensemble.lrs[f"net__{key}"][k])
    ensemble.double()
    tasks = random_tasks(4)
    grads = dict(zip([n for n, _ in ensemble.named_parameters()], vectorized_meta_grad(ensemble, tasks)))
    for k, learner in enumerate(alone):
        for name, g in zip([n for n, _ in learner.named_parameters()], vectorized_meta_grad(learner, tasks)):
            key = f"model.net.{name[len('model.'):]}" if name.startswith("model.") else f"lrs.net__{name[len('lrs.'):]}"
            got = grads[key][k]
            torch.testing.assert_close(got, torch.zeros_like(g) if g is None else g / members, atol=1e-10, rtol=1e-7)
    x_spt, y_spt, x_qry, _ = tasks
    with torch.no_grad():
        got = ensemble.forecast(ensemble.adapt(x_spt, y_spt), x_qry)  # (tasks, query_shots, h)
        want = torch.stack([lrn.forecast(lrn.adapt(x_spt, y_spt), x_qry) for lrn in alone]).mean(0)
    torch.testing.assert_close(got, want)


def test_ensemble_from_config_names_the_head_and_saves_like_a_model():
    from fewcast.config import ModelConfig
    from fewcast.models import build_from_config

    torch.manual_seed(0)
    model = build_from_config(ModelConfig(name="mlp", hidden=5, depth=2, ensemble=4), INPUT, H)
    assert isinstance(model, Ensemble) and model(torch.randn(3, INPUT)).shape == (4, 3, H)
    assert head_names(model) == ["net.head.weight", "net.head.bias"]
    members = model.net.head.weight  # (members, h, hidden): the members start apart
    assert members.shape == (4, H, 5) and float((members[0] - members[1]).detach().abs().max()) > 1e-3
    torch.manual_seed(1)
    again = build_from_config(ModelConfig(name="mlp", hidden=5, depth=2, ensemble=4), INPUT, H)
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, INPUT)
    torch.testing.assert_close(again(x), model(x))


@pytest.mark.parametrize("case", ["maml-lslr", "metasgd"])
def test_adapt_curve_equals_adapting_each_number_of_steps(case):
    learner = LEARNER_CASES[case](Ensemble(lambda: build_model("mlp", INPUT, H, hidden=7).double(), 2)).double()
    with torch.no_grad():
        for p in (learner.lslr or {}).values():
            p.mul_(torch.linspace(0.5, 1.5, p.numel(), dtype=p.dtype).view_as(p))
    x_spt, y_spt, x_qry, _ = random_tasks(6)
    m_spt = torch.ones(x_spt.shape[:2], dtype=x_spt.dtype)
    m_spt[0, :2] = 0  # padding in one task
    with torch.no_grad():
        preds, losses = learner.adapt_curve(x_spt, y_spt, x_qry, m_spt, steps=4)
        assert preds.shape == (5, T, QRY, H) and losses.shape == (5, T)
        for k in range(5):
            params = learner.adapt(x_spt, y_spt, m_spt, steps=k)
            torch.testing.assert_close(preds[k], learner.forecast(params, x_qry))
            per_window = learner.loss_fn(learner.forecast(params, x_spt), y_spt)
            torch.testing.assert_close(losses[k], (per_window * m_spt).sum(1) / m_spt.sum(1))


def test_ensemble_members_with_shorter_inputs_ignore_older_values():
    from fewcast.config import Settings
    from fewcast.models import build_from_config

    settings = Settings()
    settings.update("model", {"hidden": 5, "ensemble": 4, "ensemble_inputs": "3,5,8"})  # as the CLI passes it
    assert settings.model.ensemble_inputs == [3, 5, 8]
    model = build_from_config(settings.model, INPUT, H)
    x = torch.randn(6, INPUT)
    older = x.clone()
    older[:, : INPUT - 5] = 1e3  # change only what members seeing 3 or 5 inputs must not see
    change = (model(x) - model(older)).abs().amax(dim=(1, 2))  # (members,)
    assert change[0] == 0 and change[1] == 0 and change[3] == 0  # inputs 3, 5, 3 (cycled)
    assert change[2] > 0  # the member that sees all 8
    with pytest.raises(InputError, match="ensemble_inputs"):
        settings.update("model", {"ensemble_inputs": [3, 9]})
        build_from_config(settings.model, INPUT, H)


def _in_space(kind: str, tasks):
    """Windows ``(x_spt, y_spt, x_qry, y_qry)`` as a member of ``kind`` sees them alone."""
    x_spt, y_spt, x_qry, y_qry = tasks
    if kind == "log":
        return [t.log() for t in tasks]
    if kind == "asinh":
        return [t.asinh() for t in tasks]
    if kind == "last":  # each window minus its own last input
        return [x_spt - x_spt[..., -1:], y_spt - x_spt[..., -1:], x_qry - x_qry[..., -1:], y_qry - x_qry[..., -1:]]
    return list(tasks)


def _back(kind: str, forecast, x):
    back = {"log": lambda: forecast.exp(), "asinh": lambda: forecast.sinh(), "last": lambda: forecast + x[..., -1:]}
    return back.get(kind, lambda: forecast)()


@pytest.mark.parametrize("case", ["maml", "metasgd"])
@pytest.mark.parametrize("transforms", [["identity", "log"], ["log", "last", "identity"], ["asinh", "identity"]])
def test_members_learn_in_their_own_space_and_forecast_values(case, transforms):
    """With ``ensemble_transforms``, each member's meta-gradient is that of the member alone on the
    windows as its space shows them (the scaled windows, their logs, or each window minus its last input;
    over the number of members), and the forecast is the mean of the members' forecasts brought back
    (exp of the log member's, the last input added to the last member's)."""
    members = len(transforms)
    torch.manual_seed(7)
    ensemble = LEARNER_CASES[case](Ensemble(lambda: build_model("mlp", INPUT, H, hidden=7).double(), members,
                                            transforms=transforms)).double()
    torch.manual_seed(7)
    alone = [LEARNER_CASES[case](build_model("mlp", INPUT, H, hidden=7).double()) for _ in range(members)]
    g = torch.Generator().manual_seed(3)
    tasks = [torch.rand(T, n, d, generator=g, dtype=torch.float64) * 2 + 0.2  # positive, as scaled values are
             for n, d in ((SHOTS, INPUT), (SHOTS, H), (QRY, INPUT), (QRY, H))]
    own = [_in_space(kind, tasks) for kind in transforms]  # what each member sees alone
    grads = dict(zip([n for n, _ in ensemble.named_parameters()], vectorized_meta_grad(ensemble, tasks)))
    for k, learner in enumerate(alone):
        for name, g_alone in zip([n for n, _ in learner.named_parameters()], vectorized_meta_grad(learner, own[k])):
            key = f"model.net.{name[len('model.'):]}" if name.startswith("model.") else f"lrs.net__{name[len('lrs.'):]}"
            torch.testing.assert_close(grads[key][k], g_alone / members, atol=1e-10, rtol=1e-7)
    x_spt, y_spt, x_qry, _ = tasks
    with torch.no_grad():
        got = ensemble.forecast(ensemble.adapt(x_spt, y_spt), x_qry)  # (tasks, query_shots, h)
        want = [_back(kind, lrn.forecast(lrn.adapt(o[0], o[1]), o[2]), x_qry)
                for kind, lrn, o in zip(transforms, alone, own)]
    torch.testing.assert_close(got, torch.stack(want).mean(0))


def test_log_members_from_config_floor_zeros_and_refuse_unknown_transforms():
    from fewcast.config import Settings
    from fewcast.models import LOG_FLOOR, build_from_config

    settings = Settings()
    settings.update("model", {"hidden": 5, "ensemble": 3, "ensemble_transforms": "identity,log"})  # as the CLI
    assert settings.model.ensemble_transforms == ["identity", "log"]
    model = build_from_config(settings.model, INPUT, H)
    assert model.log_members.tolist() == [0.0, 1.0, 0.0]  # cycled over the members
    y = torch.tensor([[0.0, 2.0]])  # (1, h): a zero and a positive scaled value
    want_log = torch.tensor([[np.log(LOG_FLOOR), np.log(2.0)]], dtype=torch.float32)
    x = torch.ones(1, INPUT)  # (1, input_size): identity and log members do not look at it
    torch.testing.assert_close(model.targets(y, x), torch.stack([y, want_log, y]))
    torch.testing.assert_close(model.values(torch.stack([y, want_log, y]), x),
                               torch.stack([y, y.clamp(min=LOG_FLOOR), y]))
    x = torch.rand(4, INPUT) + 0.5
    out = model(x)  # (members, 4, h); the log member's output is a log value
    single = build_model("mlp", INPUT, H, hidden=5)
    single.load_state_dict({n[len("net."):]: p[1] for n, p in model.state_dict().items() if n.startswith("net.")})
    torch.testing.assert_close(out[1], single(x.log()))
    settings.update("model", {"ensemble": 1, "ensemble_transforms": "log"})
    assert isinstance(build_from_config(settings.model, INPUT, H), Ensemble)  # one log member is still one
    settings.update("model", {"ensemble_transforms": "identity,log"})
    assert not isinstance(build_from_config(settings.model, INPUT, H), Ensemble)  # one identity member: a model
    settings.update("model", {"ensemble_transforms": "identity,sqrt"})
    with pytest.raises(InputError, match="unknown ensemble_transforms sqrt"):
        build_from_config(settings.model, INPUT, H)
