"""Logistic-regression probe on frozen sentence features (SentEval-style transfer tasks).

Features are standardized with training statistics (dense) or used as they are (sparse
TF-IDF); the L2 penalty C is picked on a held-out 10 % of the training set from a small grid,
then the probe is refit on the whole training set (SentEval tunes on validation data too).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

C_GRID = (0.01, 0.1, 1.0, 10.0)

Features = torch.Tensor | np.ndarray | sp.spmatrix


def _prepare(train_x: Features, test_x: Features):
    if sp.issparse(train_x):
        return train_x, test_x
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    scaler = StandardScaler().fit(train_x)
    return scaler.transform(train_x), scaler.transform(test_x)


def _fit(x, y, c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)


def logistic_probe(
    train_x: Features,
    train_y: torch.Tensor | np.ndarray,
    test_x: Features,
    test_y: torch.Tensor | np.ndarray,
    c_grid: tuple[float, ...] = C_GRID,
    seed: int = 0,
) -> float:
    """Test accuracy in [0, 1]. train_x: (N, D) dense or sparse; labels (N,) int."""
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    train_x, test_x = _prepare(train_x, test_x)
    if len(c_grid) > 1:
        fx, vx, fy, vy = train_test_split(
            train_x, train_y, test_size=0.1, random_state=seed, stratify=train_y
        )
        best_c = max(c_grid, key=lambda c: _fit(fx, fy, c, seed).score(vx, vy))
    else:
        best_c = c_grid[0]
    return float(_fit(train_x, train_y, best_c, seed).score(test_x, test_y))
