"""kNN accuracy during training: a curve of "is it learning?" from a small labeled subset.

Every `every` steps the frozen backbone encodes a small labeled train subset (the memory bank)
and a small test subset; the weighted kNN top-1, with the run's `EvalProtocol` k and t (k
resolved on the full training set, as the final evaluation resolves it), is added to the log as
`knn_top1`. Small subsets keep it cheap: 2,000 + 1,000 images of 32 px cost a few seconds of CPU
with a ResNet-18, so the curve is comparable across steps, not to the final number.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from selfsup.data.memory import InMemoryDataset, class_subset
from selfsup.engine.loop import Callback
from selfsup.eval.features import extract_features
from selfsup.eval.knn import knn_accuracy
from selfsup.eval.protocol import EvalProtocol
from selfsup.methods.base import Method, StepOutput


def small_subset(data: InMemoryDataset, max_samples: int, seed: int = 0) -> InMemoryDataset:
    """A class-balanced subset of at most about `max_samples` rows (all of `data` if smaller)."""
    if len(data) <= max_samples:
        return data
    return class_subset(data, max(1, max_samples // data.num_classes), seed)


class KNNCallback(Callback):
    """Log `knn_top1` of `method.backbone` every `every` steps and at the last log step.

    The loop calls callbacks on log steps only, so the evaluation runs on the first log step at
    or after each multiple of `every` (exactly on it when `every` is a multiple of `log_every`).
    train, test: labeled data (use `small_subset`); transform: the deterministic eval view.
    protocol: k, t, batch size and precision; an unset k is resolved on `train`'s size.
    """

    def __init__(
        self,
        train: InMemoryDataset,
        test: InMemoryDataset,
        transform: Callable[[torch.Tensor], torch.Tensor],
        every: int,
        device: str | torch.device = "cpu",
        protocol: EvalProtocol | None = None,
        total_steps: int | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"every={every}: must be >= 1 step")
        if train.targets is None or test.targets is None:
            raise ValueError("KNNCallback needs labeled train and test data")
        self.train, self.test, self.transform = train, test, transform
        self.every, self.device, self.total_steps = every, device, total_steps
        self.protocol = (protocol or EvalProtocol()).resolve(len(train))
        self.last = 0  # step of the previous evaluation

    def due(self, step: int) -> bool:
        """True when a multiple of `every` was passed since the last evaluation (or at the end)."""
        return step // self.every > self.last // self.every or step == self.total_steps

    def on_log(self, step: int, method: Method, out: StepOutput, metrics: dict) -> None:
        if not self.due(step):
            return
        self.last = step
        metrics["knn_top1"] = self.evaluate(method.backbone)

    def evaluate(self, encoder: torch.nn.Module) -> float:
        """kNN top-1 in [0, 1] of `encoder` on the subsets (extract_features restores .train())."""
        p = self.protocol
        kw = dict(batch_size=p.batch_size, device=self.device, precision=p.precision)
        train_f = extract_features(encoder, self.train, self.transform, **kw)
        test_f = extract_features(encoder, self.test, self.transform, **kw)
        acc = knn_accuracy(train_f, self.train.targets, test_f, self.test.targets, p.knn_k, p.knn_t)
        return acc["top1"]
