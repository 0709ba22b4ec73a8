"""Naive loop of the label-aware logistic loss (selfsup.losses.label_logistic), for tests only."""

from __future__ import annotations

import math

from tests.reference.losses_naive import cos, rows


def log_sigmoid(x: float) -> float:
    # -log(1 + e^-x), stable on both sides
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def label_logistic(z, labels, log_scale: float, bias: float) -> float:
    """-1/N sum over ordered pairs i != j of log sigmoid(y_ij (e^t cos_ij + b))."""
    zs, ys = rows(z), [int(v) for v in labels.tolist()]
    n, total = len(zs), 0.0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            y = 1.0 if ys[i] == ys[j] else -1.0
            total += log_sigmoid(y * (math.exp(log_scale) * cos(zs[i], zs[j]) + bias))
    return -total / n
