"""The TS2Vec classification protocol: an RBF SVM on frozen instance representations.

Yue et al. 2022 (TS2Vec, Sec. 4.1 and their evaluation code): each series is one vector (the
encoder's max pooling over time), an SVM with an RBF kernel (gamma "scale") is fit on the train
split with C picked by 5-fold cross-validation from {1e-4, ..., 1e4, inf}, on at most 10,000
train rows (a stratified subsample), then scored on the test split. With fewer than 5 samples per
class (or 50 in all) there is nothing to cross-validate: C = inf (a hard margin), as theirs.
The same classifier runs on the raw series (NaN as 0), the baseline beside every encoder.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4, np.inf)
MAX_SAMPLES = 10_000
FOLDS = 5


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return np.nan_to_num(x.reshape(len(x), -1).astype(np.float64))


def fit_svm(features, labels, seed: int = 0) -> SVC:
    """An RBF SVM on `features` (N, D) and `labels` (N,), C by 5-fold CV (module docstring)."""
    x, y = _numpy(features), np.asarray(labels)
    counts = np.unique(y, return_counts=True)[1]
    with threadpool_limits(1, user_api="blas"):  # thin products; threads only wait here
        if len(x) // len(counts) < FOLDS or len(x) < 50:
            return SVC(C=np.inf, gamma="scale").fit(x, y)
        if len(x) > MAX_SAMPLES:
            x, _, y, _ = train_test_split(
                x, y, train_size=MAX_SAMPLES, random_state=seed, stratify=y
            )
        folds = StratifiedKFold(FOLDS, shuffle=False)  # GridSearchCV's cv=5 for a classifier
        search = GridSearchCV(SVC(kernel="rbf", gamma="scale"), {"C": list(C_GRID)}, cv=folds)
        with warnings.catch_warnings():  # a rare class (< 5 members) warns, as it did for them
            warnings.simplefilter("ignore", UserWarning)
            return search.fit(x, y).best_estimator_


def svm_predict(train_x, train_y, test_x, seed: int = 0) -> np.ndarray:
    """Test predictions (M,) of `fit_svm` on train (N, D) / (N,), applied to test (M, D)."""
    model = fit_svm(train_x, train_y, seed)
    with threadpool_limits(1, user_api="blas"):
        return model.predict(_numpy(test_x))


def per_class_accuracy(pred: np.ndarray, labels, classes: int) -> np.ndarray:
    """(classes,) share of each class's test samples predicted right; NaN for a class with none."""
    y = np.asarray(labels)
    return np.array([np.mean(pred[y == c] == c) if np.any(y == c) else np.nan
                     for c in range(classes)])  # fmt: skip
