"""Built-in forecasters: any ``nn.Module`` mapping ``(batch, input_size)`` to ``(batch, h)`` will do.

The learners call models only through ``torch.func.functional_call`` with explicit parameter dicts, so a
model needs no special forward path. Each built-in model names its *head* (``head_prefixes``): the
parameters that ANIL adapts while the body stays shared. No model keeps running statistics (``vmap``
forbids in-place buffer updates), so normalization, where used, is ``LayerNorm``.

- ``mlp``: the seed's network, ``input_size -> 10 -> ReLU -> 10 -> ReLU -> h`` (width and depth options).
- ``nbeats``: a small stack of fully connected residual blocks with backcast and forecast heads, generic
  basis (Oreshkin et al. 2020), without the ensembling.
- ``Ensemble``: ``members`` independent copies of any of them, stored as stacked parameters and run in one
  vectorized pass (``--ensemble N``), optionally each looking at a different number of the most recent
  inputs (``--ensemble-inputs 12,18,24``, N-BEATS' ensembling over lookbacks) or working in a different
  space (``--ensemble-transforms identity,log,last``: a ``log`` member sees and forecasts the logarithm of
  the scaled values, so its loss is on relative errors; an ``asinh`` member works on their inverse
  hyperbolic sine, which is the logarithm's shape for large values and takes values below zero; a ``last``
  member sees its window minus its last value and forecasts the change from it).
- ``gru``: a one-layer GRU encoder over the input window with a linear head, written out step by step from
  linear maps so that it is vmap-able and twice differentiable on every device (cuDNN's fused RNN kernels
  have no double backward, so second-order MAML through ``nn.GRU`` fails on CUDA).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from fewcast.errors import InputError, describe_ids

TRANSFORMS = ("identity", "log", "asinh", "last")
LOG_FLOOR = 1e-3  # a log member reads scaled values below this (zeros) as this: log(1e-3) = -6.9


def relu_stack(width: int, hidden: int, depth: int) -> nn.Sequential:
    """``depth`` times Linear -> ReLU, from ``width`` inputs to ``hidden`` units."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers)


class MLP(nn.Module):
    """``input_size -> hidden -> ReLU -> ... -> h``: ``depth`` hidden layers of ``hidden`` units."""

    head_prefixes = ("head.",)

    def __init__(self, input_size: int, h: int, hidden: int = 10, depth: int = 2):
        super().__init__()
        self.body = relu_stack(input_size, hidden, depth)
        self.head = nn.Linear(hidden if depth else input_size, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, input_size) -> (batch, h)
        return self.head(self.body(x))


class NBeatsBlock(nn.Module):
    def __init__(self, input_size: int, h: int, hidden: int, layers: int):
        super().__init__()
        self.fc = relu_stack(input_size, hidden, layers)
        self.backcast = nn.Linear(hidden, input_size)
        self.forecast = nn.Linear(hidden, h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.fc(x)  # (batch, hidden)
        return self.backcast(z), self.forecast(z)  # (batch, input_size), (batch, h)


class NBeats(nn.Module):
    """Generic N-BEATS: ``blocks`` residual blocks; each removes its backcast and adds its forecast.

    The head (for ANIL) is every block's forecast layer.
    """

    def __init__(self, input_size: int, h: int, hidden: int = 256, blocks: int = 3, layers: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(NBeatsBlock(input_size, h, hidden, layers) for _ in range(blocks))
        self.head_prefixes = tuple(f"blocks.{i}.forecast." for i in range(blocks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, input_size) -> (batch, h)
        residual = x
        forecast = 0.0
        for block in self.blocks:
            backcast, f = block(residual)
            residual = residual - backcast
            forecast = forecast + f
        return forecast


class GRU(nn.Module):
    """One-layer GRU over the window (one value per step) and a linear head on the last state.

    The recurrence is written with plain linear maps (the same equations as ``nn.GRU``), so it composes
    with ``vmap`` and is built only from operations that have second derivatives on every device (tested on
    the CPU; not yet run on a GPU).
    """

    head_prefixes = ("head.",)

    def __init__(self, input_size: int, h: int, hidden: int = 32):
        super().__init__()
        self.hidden = hidden
        self.x2h = nn.Linear(1, 3 * hidden)
        self.h2h = nn.Linear(hidden, 3 * hidden)
        self.head = nn.Linear(hidden, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, input_size) -> (batch, h)
        gates_x = self.x2h(x.unsqueeze(-1))  # (batch, input_size, 3 * hidden)
        state = x.new_zeros(x.shape[0], self.hidden)  # (batch, hidden)
        for t in range(x.shape[1]):  # over time steps, not over series
            gx = gates_x[:, t]
            gh = self.h2h(state)  # (batch, 3 * hidden)
            r = torch.sigmoid(gx[:, : self.hidden] + gh[:, : self.hidden])
            z = torch.sigmoid(gx[:, self.hidden : 2 * self.hidden] + gh[:, self.hidden : 2 * self.hidden])
            n = torch.tanh(gx[:, 2 * self.hidden :] + r * gh[:, 2 * self.hidden :])
            state = (1 - z) * n + z * state
        return self.head(state)


class Ensemble(nn.Module):
    """``members`` independently initialized copies of a model, run at once: ``(..., input_size) ->
    (members, ..., h)``.

    The members' parameters are stacked along a leading axis under the wrapped model's own names (prefixed
    ``net.``), so a learner adapts and meta-trains every member in one vectorized pass; each member's loss
    and gradients involve only its own slice, so members train independently (the learners sum member
    losses in the inner loop and average member forecasts when forecasting).
    """

    def __init__(self, make, members: int, inputs: list[int] | None = None, input_size: int = 0,
                 transforms: list[str] | None = None):
        super().__init__()
        if members < 1:
            raise InputError(f"an ensemble needs at least 1 member (got {members})")
        check_transforms(transforms)
        kinds = member_kinds(transforms, members)
        for kind in ("log", "asinh", "last"):  # log_members, ...: (members,) 1 for a member of that kind, or None
            flags = torch.tensor([float(k == kind) for k in kinds]) if kind in kinds else None
            self.register_buffer(f"{kind}_members", flags)
        mask = None  # (members, input_size): member k sees only its last inputs[k % len(inputs)] values
        if inputs:
            if any(not 1 <= n <= input_size for n in inputs):
                raise InputError(f"ensemble_inputs {inputs} must each be between 1 and input_size={input_size}")
            sizes = torch.tensor([inputs[k % len(inputs)] for k in range(members)])  # (members,)
            steps = torch.arange(input_size)  # (input_size,)
            mask = (steps[None, :] >= input_size - sizes[:, None]).float()
        self.register_buffer("input_mask", mask)
        nets = [make() for _ in range(members)]  # consecutive draws of the random generator
        self.net = nets[0]
        stacked, buffers = stack_module_state(nets)  # name -> (members, ...)
        if buffers:
            raise InputError(f"{type(nets[0]).__name__} has buffers; an ensemble needs a model without them")
        for name, value in stacked.items():
            module, _, leaf = name.rpartition(".")
            setattr(self.net.get_submodule(module) if module else self.net, leaf, nn.Parameter(value))
        prefixes = getattr(self.net, "head_prefixes", None)
        if prefixes:
            self.head_prefixes = tuple(f"net.{p}" for p in prefixes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., input_size) -> (members, ..., h)
        """Each member's output in its own space (a ``log`` member's is a log value: see :meth:`values`)."""
        params = dict(self.net.named_parameters())  # (members, ...) each
        if self.input_mask is None and self.log_members is None and self.asinh_members is None \
                and self.last_members is None:
            return vmap(lambda p: functional_call(self.net, p, (x,)))(params)
        members = next(iter(params.values())).shape[0]
        xs = self.targets(x, x).expand(members, *x.shape)  # (members, ..., input_size): what each member sees
        if self.input_mask is not None:
            # a member with a shorter input sees zeros before it: its first layer's weights there get no gradient
            xs = xs * self.input_mask.to(x.dtype).view(members, *([1] * (x.dim() - 1)), -1)
        return vmap(lambda p, xm: functional_call(self.net, p, (xm,)))(params, xs)

    def targets(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Scaled values ``y (..., n)`` in each member's space, ``(members, ..., n)``, for windows whose
        scaled inputs are ``x (..., input_size)``: the learners' losses compare a member's output with
        these. ``y`` itself when every member works on the values as they are."""
        out = y
        if self.log_members is not None:
            out = torch.where(_pick(self.log_members, y.dim()), torch.log(torch.clamp(y, min=LOG_FLOOR)), out)
        if self.asinh_members is not None:
            out = torch.where(_pick(self.asinh_members, y.dim()), torch.asinh(y), out)
        if self.last_members is not None:
            out = torch.where(_pick(self.last_members, y.dim()), y - x[..., -1:], out)
        return out

    def values(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Members' outputs ``(members, ..., h)`` for inputs ``x (..., input_size)`` back to scaled values
        (``exp`` for the log members, plus the last input for the last members)."""
        res = out
        if self.log_members is not None:
            pick = _pick(self.log_members, out.dim() - 1)
            res = torch.where(pick, torch.exp(torch.where(pick, out, torch.zeros_like(out))), res)  # no inf elsewhere
        if self.asinh_members is not None:
            pick = _pick(self.asinh_members, out.dim() - 1)
            res = torch.where(pick, torch.sinh(torch.where(pick, out, torch.zeros_like(out))), res)
        if self.last_members is not None:
            res = torch.where(_pick(self.last_members, out.dim() - 1), out + x[..., -1:], res)
        return res


def _pick(flags: torch.Tensor, dims: int) -> torch.Tensor:
    """``(members,)`` 0/1 flags as a boolean ``(members, 1, ..., 1)`` with ``dims`` trailing axes."""
    return flags.to(torch.bool).view(-1, *([1] * dims))


def check_transforms(transforms: list[str] | None) -> None:
    unknown = sorted(set(transforms or []) - set(TRANSFORMS))
    if unknown:
        raise InputError(f"unknown ensemble_transforms {', '.join(unknown)}; choose from {', '.join(TRANSFORMS)}")


def member_kinds(transforms: list[str] | None, members: int) -> list[str]:
    """Each member's space: member ``k`` takes ``transforms[k % len]`` (``[]`` without transforms)."""
    return [transforms[k % len(transforms)] for k in range(members)] if transforms else []


def uses_transform(transforms: list[str] | None, members: int, kind: str = "log") -> bool:
    """Whether any of ``members`` members works in space ``kind``."""
    return kind in member_kinds(transforms, members)


def check_log_values(panel, cfg, column: str) -> None:
    """Refuse a panel with negative values when a member of the model of ``cfg`` (a
    :class:`~fewcast.config.ModelConfig`) works on logs (zeros are fine: they are floored); the error names
    ``column`` and the series."""
    if not uses_transform(cfg.ensemble_transforms, cfg.ensemble) or panel.n_series == 0:
        return
    nonempty = np.flatnonzero(panel.lengths > 0)
    lowest = np.minimum.reduceat(panel.values, panel.offsets[nonempty])  # (nonempty series,)
    negative = nonempty[lowest < 0]
    if len(negative):
        raise InputError(f"column '{column}': negative values in series {describe_ids(panel.ids[negative])}, which a "
                         f"log ensemble member cannot take: shift those series above zero, or train on data "
                         f"with such values (its members then work on asinh, not log)")


MODELS = {"mlp": MLP, "nbeats": NBeats, "gru": GRU}


def build_model(name: str, input_size: int, h: int, **options) -> nn.Module:
    """A built-in model by name, e.g. ``build_model("mlp", 30, 1, hidden=10, depth=2)``."""
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](input_size, h, **options)


def build_from_config(cfg, input_size: int, h: int) -> nn.Module:
    """A built-in model from a :class:`~fewcast.config.ModelConfig` (``name``, ``hidden``, ``depth``,
    ``blocks``, ``ensemble``, ``ensemble_inputs``, ``ensemble_transforms``): ``depth`` is the MLP's hidden
    layers and each N-BEATS block's layers; an :class:`Ensemble` of ``ensemble`` members when it is above 1
    or its one member works in another space than the identity."""
    options = {"hidden": cfg.hidden}
    if cfg.name == "mlp":
        options["depth"] = cfg.depth
    elif cfg.name == "nbeats":
        options.update(layers=cfg.depth, blocks=cfg.blocks)
    check_transforms(cfg.ensemble_transforms)
    if cfg.ensemble > 1 or set(member_kinds(cfg.ensemble_transforms, 1)) - {"identity"}:
        return Ensemble(lambda: build_model(cfg.name, input_size, h, **options), cfg.ensemble,
                        cfg.ensemble_inputs, input_size, cfg.ensemble_transforms)
    return build_model(cfg.name, input_size, h, **options)


def head_names(model: nn.Module) -> list[str]:
    """Names of the parameters ANIL adapts: the model's ``head_prefixes``, else its last parameters."""
    names = [n for n, _ in model.named_parameters()]
    prefixes = getattr(model, "head_prefixes", None)
    if prefixes:
        chosen = [n for n in names if n.startswith(tuple(prefixes))]
    else:  # a user's model without a declared head: its final weight and bias
        last_module = names[-1].rsplit(".", 1)[0] if "." in names[-1] else ""
        chosen = [n for n in names if n.rsplit(".", 1)[0] == last_module] if last_module else names[-1:]
    if not chosen:
        raise InputError(f"{type(model).__name__} declares head_prefixes {prefixes} that match no parameter")
    return chosen
