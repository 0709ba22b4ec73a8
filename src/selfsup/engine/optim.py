"""Optimizers and parameter groups: SGD, LARS, AdamW; no weight decay on norms and biases."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from selfsup.engine.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights with decay, and 1-d parameters (norm scales, biases) without.

    Excluding norms and biases from decay (and from LARS adaptation) follows SimCLR/BYOL
    (Chen et al. 2020; Grill et al. 2020) and Goyal et al. 2017.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay, "lars": True},
        {"params": no_decay, "weight_decay": 0.0, "lars": False},
    ]


class LARS(torch.optim.Optimizer):
    """Layer-wise adaptive rate scaling (You et al. 2017), SGD with momentum underneath.

    For each parameter of a group with `lars=True`, the update is scaled by the trust ratio
    eta * ||w|| / ||g + wd * w|| (as the SimSiam/BYOL reference code); groups with `lars=False`
    (norms, biases) take plain SGD, as in SimCLR and BYOL. eta=0.001 is the paper's trust
    coefficient.
    """

    def __init__(
        self,
        params: Iterable,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
    ):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                if group["lars"]:
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm, 1.0
                    )
                    g = g * trust
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = g.clone()
                else:
                    buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])
        return loss


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by `cfg.optimizer` over `param_groups(model, cfg.weight_decay)`."""
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "lars":
        return LARS(groups, lr=cfg.peak_lr, momentum=cfg.momentum)
    for g in groups:
        g.pop("lars")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.peak_lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.peak_lr, betas=cfg.betas)
