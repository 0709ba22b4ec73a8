"""Linear probe: L2-regularized multinomial logistic regression on frozen features.

One probe for images and text. The protocol is SimCLR's transfer evaluation (Chen et al. 2020,
App. B.6, after Kornblith et al. 2019): scikit-learn's LogisticRegression (L-BFGS) on frozen
features, the L2 strength picked on held-out training data, then refit on the whole training
set. They search 45 values of the penalty; C_GRID keeps 4 decades (a probe costs 5 fits, not 46).
The held-out share, 10 %, follows SentEval's tuning on validation data for transfer tasks.
Dense features are standardized with training statistics; sparse ones (TF-IDF) are used as they
are (centering would densify them).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse L2 strength; 1.0 is scikit-learn's default
HOLDOUT = 0.1  # share of the training set that picks C (SentEval-style validation)
MAX_ITER = 2000  # L-BFGS iterations; scikit-learn's 100 stops early on standardized features

Features = torch.Tensor | np.ndarray | sp.spmatrix


def _prepare(train_x: Features, test_x: Features):
    if sp.issparse(train_x):
        return train_x, test_x
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    scaler = StandardScaler().fit(train_x)
    return scaler.transform(train_x), scaler.transform(test_x)


def _fit(x, y: np.ndarray, c: float, seed: int, max_iter: int) -> LogisticRegression:
    # One BLAS thread: the (N, D) x (D, classes) products are thin, and on a busy CPU threaded
    # OpenBLAS waits on its own barriers (digits, 768 features, 2 loaded cores: 1.0 s vs 16 s).
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)  # its score at max_iter still counts
        return LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(x, y)


def _can_hold_out(y: np.ndarray, holdout: float) -> bool:
    """A stratified split needs >= 2 samples per class and >= 1 per class on each side."""
    counts = np.unique(y, return_counts=True)[1]
    n_val = int(np.ceil(holdout * len(y)))
    return counts.min() >= 2 and len(counts) <= n_val <= len(y) - len(counts)


def pick_c(
    x, y: np.ndarray, c_grid: tuple[float, ...], holdout: float, seed: int, max_iter: int
) -> float:
    """The C of `c_grid` with the best held-out accuracy (first on ties); the grid's value
    nearest scikit-learn's default 1.0 when the set is too small to hold out every class."""
    if len(c_grid) == 1:
        return c_grid[0]
    if not _can_hold_out(y, holdout):
        return min(c_grid, key=lambda c: abs(np.log(c)))
    fx, vx, fy, vy = train_test_split(x, y, test_size=holdout, random_state=seed, stratify=y)
    return max(c_grid, key=lambda c: _fit(fx, fy, c, seed, max_iter).score(vx, vy))


def linear_probe(
    train_x: Features,
    train_y: torch.Tensor | np.ndarray,
    test_x: Features,
    test_y: torch.Tensor | np.ndarray,
    c_grid: tuple[float, ...] = C_GRID,
    holdout: float = HOLDOUT,
    seed: int = 0,
    max_iter: int = MAX_ITER,
) -> float:
    """Test accuracy in [0, 1]. train_x: (N, D) dense or sparse, test_x: (M, D); labels (N,),
    (M,) int. C is picked from `c_grid` on a stratified `holdout` share of the training set."""
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    train_x, test_x = _prepare(train_x, test_x)
    c = pick_c(train_x, train_y, tuple(c_grid), holdout, seed, max_iter)
    return float(_fit(train_x, train_y, c, seed, max_iter).score(test_x, test_y))
