"""Probing game state: linear classifiers on frozen features predict each state variable, scored
by F1 (the AtariARI protocol, Anand et al. 2019, "Unsupervised State Representation Learning in
Atari", arXiv:1906.08226, Sec. 5 and appendix).

Every variable is a RAM byte (0-255), so each probe is a linear classifier over its values (256
in the benchmark; here the values its training labels take, `Classes`) trained with
cross-entropy, Adam, early stopping on the validation split; its score is the weighted F1 of its
test predictions; the per-game figure averages them within each of the benchmark's categories
(agent / small object / other localization, score-clock-lives, misc) and then across the
categories present, so many variables of one kind (Breakout's bricks) do not dominate. All the
probes of one encoder train together, as one (D, sum of K_v) linear map whose V blocks have
their own loss and their own early stopping: the same V independent classifiers, one pass over the
features per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch.nn import functional as F

from selfsup.data import atari_ram

IGNORED = -100  # the class id of a label whose value no training label has


@dataclass(frozen=True)
class ProbeSettings:
    """The probe's training, AtariARI's defaults (atariari/benchmark/probe.py, scripts/
    run_probe.py): Adam lr 3e-4, batch 64, at most 100 epochs, early stopping after 15 epochs
    without a better validation score, the features as the encoder gives them. Departures, for
    one pass that trains every probe at once: epochs are permutations of the train split
    (theirs draws frames with replacement), the score watched is each probe's validation loss
    and its best epoch is kept (theirs: the accuracy, keeping the last weights), and no
    learning-rate reduction on plateaus.

    standardize: scale each feature to zero mean, unit variance on the train split first. Not
    the benchmark's, and it matters: Adam at lr 3e-4 fits badly on uncentred features, so an
    untrained CNN scores far lower raw than standardized (Pong, 84 x 84: mean F1 0.10 raw
    against 0.75 standardized; the paper's random-CNN figure is 0.17). The agent modality
    reports both.
    """

    lr: float = 3e-4
    batch_size: int = 64
    max_epochs: int = 100
    patience: int = 15
    standardize: bool = False
    seed: int = 0


def _standardizer(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (1, D) of the training features (a linear probe's optimum is unchanged by
    an affine map of its input; Adam's path to it is not)."""
    return x.mean(0, keepdim=True), x.std(0, keepdim=True).clamp_min(1e-6)


class Classes:
    """Each variable's classes: the values its training labels take (a value never seen in
    training cannot be learned, so its logit would only be pushed down; leaving it out makes
    the (D, V x 256) map a (D, sum of K_v) one, 5-20x smaller on Atari RAM bytes).

    values: per variable, (K_v,) sorted values; encode maps labels to class ids (-100, the
    ignored id, for an unseen value); decode maps class ids back to values."""

    def __init__(self, train_labels: np.ndarray) -> None:
        self.values = [np.unique(col) for col in train_labels.T]  # train_labels (N, V)
        self.sizes = [len(v) for v in self.values]

    def encode(self, labels: np.ndarray) -> torch.Tensor:
        """(N, V) values -> (N, V) long class ids, -100 where a value is unseen."""
        out = np.full(labels.shape, IGNORED, dtype=np.int64)
        for v, values in enumerate(self.values):
            pos = np.searchsorted(values, labels[:, v]).clip(0, len(values) - 1)
            out[:, v] = np.where(values[pos] == labels[:, v], pos, IGNORED)
        return torch.from_numpy(out)

    def decode(self, logits: torch.Tensor) -> np.ndarray:
        """(N, sum K_v) logits -> (N, V) predicted values."""
        blocks = logits.split(self.sizes, dim=1)
        return np.stack([self.values[v][b.argmax(1).numpy()] for v, b in enumerate(blocks)], 1)


def _losses(probe: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, sizes: list[int]):
    """(N, D) features, (N, V) class ids -> (V,) mean cross-entropy of each variable's probe
    over its labels of a seen value (0 for a variable without any)."""
    blocks = probe(x).split(sizes, dim=1)
    counts = (y != IGNORED).sum(0).clamp_min(1)  # (V,)
    sums = [F.cross_entropy(b, y[:, v], ignore_index=IGNORED, reduction="sum")
            for v, b in enumerate(blocks)]  # fmt: skip
    return torch.stack(sums) / counts


def train_probes(
    f_train: torch.Tensor, y_train: torch.Tensor, f_val: torch.Tensor, y_val: torch.Tensor,
    sizes: list[int], settings: ProbeSettings,
) -> torch.nn.Linear:  # fmt: skip
    """V linear probes (one Linear(D, sum of sizes)), each kept at its best validation epoch.

    f_*: (N, D) float features (standardized); y_*: (N, V) long class ids (`Classes.encode`);
    sizes: the V class counts K_v.
    """
    g = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    probe = torch.nn.Linear(f_train.shape[1], sum(sizes))
    opt = torch.optim.Adam(probe.parameters(), lr=settings.lr)
    v = y_train.shape[1]
    best_loss = torch.full((v,), math.inf)
    best = probe.weight.detach().clone(), probe.bias.detach().clone()
    waited = torch.zeros(v, dtype=torch.long)
    owner = torch.repeat_interleave(torch.arange(v), torch.as_tensor(sizes))  # row -> variable
    for _ in range(settings.max_epochs):
        for rows in torch.randperm(len(f_train), generator=g).split(settings.batch_size):
            opt.zero_grad(set_to_none=True)
            # Each probe's loss is its own: the sum trains the V blocks independently.
            _losses(probe, f_train[rows], y_train[rows], sizes).sum().backward()
            opt.step()
        with torch.no_grad():
            val = _losses(probe, f_val, y_val, sizes)
            better = val < best_loss
            best_loss = torch.where(better, val, best_loss)
            waited = torch.where(better, 0, waited + 1)
            rows = better[owner]  # the improved blocks' rows
            best[0][rows], best[1][rows] = probe.weight[rows], probe.bias[rows]
        if bool((waited >= settings.patience).all()):
            break
    with torch.no_grad():
        probe.weight.copy_(best[0])
        probe.bias.copy_(best[1])
    return probe


def probe_states(
    features: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    labels: tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]],
    settings: ProbeSettings = ProbeSettings(),
) -> dict[str, float]:
    """Per-variable weighted F1 of linear probes on (train, val, test) features.

    features: three (N_split, D) float tensors; labels: three {variable: (N_split,) ints in
    [0, 256)} with the same variables (the caller leaves out the low-entropy ones,
    `data.atari_ram.low_entropy`). Returns {variable: F1 in [0, 1]} in the order given.
    """
    names = list(labels[0])
    if not names:
        return {}
    x = [f.float() for f in features]
    if settings.standardize:
        mean, std = _standardizer(x[0])
        x = [(f - mean) / std for f in x]
    y = [np.stack([np.asarray(lab[k], dtype=np.int64) for k in names], 1) for lab in labels]
    classes = Classes(y[0])
    probe = train_probes(x[0], classes.encode(y[0]), x[1], classes.encode(y[1]), classes.sizes,
                         settings)  # fmt: skip
    with torch.no_grad():
        pred = classes.decode(probe(x[2]))
    return {
        k: float(f1_score(y[2][:, i], pred[:, i], average="weighted", zero_division=0))
        for i, k in enumerate(names)
    }


def category_f1(per_variable: dict[str, float]) -> dict[str, float]:
    """{"f1": the mean across categories (AtariARI's per-game figure, Table 2), "f1_<category>":
    each present category's mean} from per-variable F1 (`data.atari_ram.categories_of`: a
    variable counts in each category its name meets; one that meets none counts in no mean)."""
    by_category: dict[str, list[float]] = {}
    for name, f1 in per_variable.items():
        for category in atari_ram.categories_of(name):
            by_category.setdefault(category, []).append(f1)
    means = {c: float(np.mean(by_category[c])) for c in atari_ram.CATEGORIES if c in by_category}
    if not means:  # no variable in a category: the plain mean over variables
        return {"f1": float(np.mean(list(per_variable.values())))} if per_variable else {}
    return {"f1": float(np.mean(list(means.values())))} | {f"f1_{c}": v for c, v in means.items()}
