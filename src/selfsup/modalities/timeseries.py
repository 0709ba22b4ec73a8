"""Time series and sensor data: float series (C, T), NaN for missing steps and end padding.

Data (`selfsup.data.series`): a UCR / UEA folder (.tsv or .ts), the UCI HAR folder, or .npy /
.npz arrays with `--labels`, normalized as each benchmark's protocol does. Views from
`selfsup.augment.series_views` (TS2Vec crops, TS-TCC weak/strong, ...), sequence encoders from the
registry (`ts2vec_encoder`, `gru`, `lstm`, `fcn`, `resnet1d`, `series_transformer`). Evaluation:
the TS2Vec protocol (an RBF SVM on max-pooled representations, C by 5-fold CV; Yue et al. 2022),
kNN and the linear probe, beside the raw series and the random-init encoder under the same
classifiers. The report adds example series with their views and per-class accuracy.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from selfsup.augment import series_views
from selfsup.config import ConfigError, RunConfig
from selfsup.data.memory import InMemoryDataset
from selfsup.data.series import Normalization, centre_series, load_series_data
from selfsup.encoders import create_encoder
from selfsup.engine.loop import resolve_device
from selfsup.eval.protocol import (
    EvalProtocol,
    EvaluationError,
    encoder_features,
    evaluate_features,
    label_problem,
)
from selfsup.eval.svm import per_class_accuracy, svm_predict
from selfsup.eval.table import format_table
from selfsup.modalities.base import (
    Embedded,
    Log,
    Views,
    embedded,
    map_data,
    run_protocol,
    run_record,
    with_flags,
)

REPORT_EMBED, REPORT_EXAMPLES = 2000, 4


def raw_series_features(data: InMemoryDataset) -> torch.Tensor:
    """The raw-series baseline: each series flattened (N, C*T), missing steps as 0."""
    return torch.nan_to_num(data.inputs.flatten(1).float())


class SeriesModality:
    """Time series (module docstring)."""

    name: ClassVar[str] = "timeseries"
    # TS2Vec's training recipe (Yue et al. 2022, their train.py): batch 8, AdamW lr 1e-3 (torch's
    # weight decay 0.01), a constant learning rate, 200 iterations for sets of <= 100,000 values
    # (600 above: --steps 600), fp32.
    defaults: ClassVar[dict] = {
        "modality": "timeseries",
        "method": "ts2vec",
        "encoder": "ts2vec_encoder",
        "train": {
            "optimizer": "adamw",
            "lr": 1e-3,
            "weight_decay": 0.01,
            "batch_size": 8,
            "steps": 200,
            "warmup_epochs": 0.0,
            "min_lr_ratio": 1.0,
            "precision": "fp32",
            "channels_last": False,
        },
    }

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.train: InMemoryDataset | None = None
        self.test: InMemoryDataset | None = None
        self.channels, self.length = 1, 128
        self.features: dict = {}  # "before"/"after" -> (train, test) features
        self.normalization: Normalization | None = None  # the run's, once loaded or attached
        self.predictions: dict = {}  # "before"/"after" -> SVM test predictions

    # ----- the run
    def load(self, log: Log) -> None:
        cfg = self.cfg
        for key in ("image_size", "stream", "data_args"):
            if getattr(cfg, key):
                raise ConfigError(f"{key} is not a time-series setting; remove it")
        if cfg.data in ("digits", "cifar10"):
            raise ConfigError(
                "--modality timeseries needs --data: a UCR/UEA folder (<Name>_TRAIN.tsv or .ts), "
                "the 'UCI HAR Dataset' folder, or a .npy/.npz array (N, C, T) with --labels."
            )
        labels, pattern = cfg.labels or None, cfg.label_pattern or None
        self.train, self.test = load_series_data(cfg.data, labels, pattern)
        self.normalization = self.train.normalization
        _, self.channels, self.length = self.train.inputs.shape
        test = f", test {len(self.test)}" if self.test is not None else ""
        norm = getattr(self.train, "normalization", None)
        log(f"data: {self.train.name} {tuple(self.train.inputs.shape)}{test}"
            + (f"; normalization: {norm}" if norm else ""))  # fmt: skip

    def encoder(self) -> nn.Module:
        kwargs = {"in_chans": self.channels, **self.cfg.encoder_args}
        return create_encoder(self.cfg.encoder, **kwargs)

    def views(self, recipe: str) -> Views:
        if recipe not in series_views.RECIPES:
            known = ", ".join(series_views.RECIPES)
            raise ConfigError(
                f"views {recipe!r} have no time-series version. Series recipes: {known} "
                "(--set views=...); series methods: ts2vec, cpc, and simclr / byol / ... with "
                "--set views=series_simclr_views."
            )
        return series_views.RECIPES[recipe](self.length)

    def training(self, views: Views) -> tuple[Any, Views]:
        """The train split; variable-length series centred in their rows, as TS2Vec's fit does
        (end-padded, crops of the padded length often hold no step of a short series)."""
        x = self.train.inputs
        if not torch.isnan(x[..., -1]).all(dim=1).any():  # every series fills its row
            return self.train, views
        return dataclasses.replace(self.train, inputs=centre_series(x)), views

    def callbacks(self, steps: int) -> list:
        return []

    def run_files(self) -> dict[str, str | bytes]:
        """normalization.json: the scaling the training data got, applied to new series."""
        return {"normalization.json": json.dumps(self.normalization.to_dict(), indent=1)}

    def protocol(self, bank_size: int) -> EvalProtocol:
        """The run's evaluation settings (`base.run_protocol`)."""
        return run_protocol(self.cfg, bank_size)

    def _row(self, tag: str, f_train, f_test, protocol) -> dict[str, float]:
        """kNN, linear probe, retrieval and the TS2Vec SVM of one set of features."""
        train, test = self.train, self.test
        row = evaluate_features(f_train, train.targets, f_test, test.targets, protocol)
        if not self.cfg.eval.svm:
            return row
        pred = svm_predict(f_train, train.targets, f_test, self.cfg.train.seed)
        self.predictions[tag] = pred
        return {"svm_acc": float(np.mean(pred == test.targets.numpy())), **row}

    def evaluate(self, encoder: nn.Module, random_encoder: nn.Module | None, log: Log) -> dict:
        train, test = self.train, self.test
        problem = label_problem(train, test)
        if problem:
            log(f"evaluation skipped: {problem}")
            return {}
        protocol = self.protocol(len(train))
        device = resolve_device(self.cfg.train.device)
        rows: dict[str, dict[str, float]] = {}
        encoders = [("after", f"{self.cfg.method} (trained)", encoder)]
        if self.cfg.eval.baselines:
            raw = raw_series_features(train), raw_series_features(test)
            rows["raw series"] = self._row("raw", *raw, protocol)
            if random_encoder is not None:
                encoders.insert(0, ("before", "random init", random_encoder))
        for tag, name, enc in encoders:
            where = f"{name} of {self.cfg.train.out_dir}"
            enc.to(device)
            self.features[tag] = tuple(
                encoder_features(enc, d, None, protocol, device, where) for d in (train, test)
            )
            rows[name] = self._row(tag, *self.features[tag], protocol)
        log(format_table(rows))
        evaluation = protocol.to_dict() | {"svm": "RBF SVM, C by 5-fold CV (TS2Vec protocol)"}
        return {"eval_protocol": evaluation, "eval": rows}

    def report_sections(self, method: nn.Module) -> list[str]:
        return ["curves", "health", "series-views", "embedding-map", "per-class"]

    def report_data(
        self, encoder: nn.Module, random_encoder: nn.Module | None, method: nn.Module, views: Views
    ) -> dict[str, np.ndarray]:
        data = self._view_examples(views)
        test = self.test
        if test is None or test.targets is None or "after" not in self.features:
            return data
        data |= map_data(test, self.features, self.cfg.train.seed, REPORT_EMBED)
        k = len(data["classes"])
        for tag, suffix in (("after", ""), ("before", "_before")):
            if tag in self.predictions:
                acc = per_class_accuracy(self.predictions[tag], test.targets.numpy(), k)
                data[f"per_class_acc{suffix}"] = acc
        if "per_class_acc" in data:
            data["per_class_support"] = np.bincount(test.targets.numpy(), minlength=k)
            data["per_class_metric"] = np.array("SVM (TS2Vec protocol)")
        return data

    def _view_examples(self, views: Views) -> dict[str, np.ndarray]:
        """A few series and two views of each from the training recipe (NaN-padded)."""
        source = self.test if self.test is not None else self.train
        g = torch.Generator().manual_seed(self.cfg.train.seed)
        rows = torch.randperm(len(source), generator=g)[:REPORT_EXAMPLES].sort().values
        x = source.inputs[rows]
        made = [v for v in views(x.clone(), generator=g) if v.dim() == 3]
        if len(made) < 2:  # a one-view recipe (CPC): a second call draws fresh parameters
            made += [v for v in views(x.clone(), generator=g) if v.dim() == 3]
        return {
            "series_examples": x.numpy(),
            "series_view_a": made[0].float().numpy(),
            "series_view_b": made[1].float().numpy(),
        }

    def skipped(self) -> list[str]:
        return []

    # ----- after the run
    def attach(self, run_dir: Path) -> None:
        """Read the run's normalization.json: new series are scaled as its training data."""
        path, record = run_record(run_dir, "normalization.json", "the scaling of its training data")
        self.normalization = Normalization.from_dict(record, str(path))
        self.channels = len(self.normalization.mean)

    def preprocess(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw series (N, C, T) (or (N, T)) float, NaN for missing steps -> scaled as the run's
        training data (its normalization.json)."""
        x = torch.as_tensor(raw, dtype=torch.float32)
        if x.dim() == 2:  # (N, T): one channel
            x = x[:, None]
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(
                f"encode series as (N, {self.channels}, T) (the run's channels), got shape "
                f"{tuple(x.shape)}"
            )
        return x if self.normalization is None else self.normalization.apply(x)

    def data_splits(self, spec: str | None, options: dict):
        """(train, test) of `spec` (default: the run's data), scaled as the run's data."""
        cfg = self.cfg
        labels = options.get("labels") or cfg.labels or None
        pattern = options.get("label_pattern") or cfg.label_pattern or None
        return load_series_data(spec or cfg.data, labels, pattern, self.normalization)

    def evaluate_saved(
        self, encoder: nn.Module, run_dir: Path, data: str | None, options: dict
    ) -> dict[str, float]:
        """The trained row (SVM, kNN, linear) of `encoder` on `data` (default: the run's)."""
        self.train, self.test = self.data_splits(data, options)
        problem = label_problem(self.train, self.test)
        if problem:
            raise EvaluationError(f"{problem}. Pass --data with labeled series (>= 2 classes).")
        protocol = self.protocol(len(self.train))
        protocol = with_flags(protocol, options, len(self.train))
        device = resolve_device(options.get("device") or "auto")
        name = options.get("name") or str(run_dir)
        encoder.to(device)
        feats = [encoder_features(encoder, d, None, protocol, device, name)
                 for d in (self.train, self.test)]  # fmt: skip
        return self._row("after", *feats, protocol)

    def embed(self, encoder: nn.Module, data: str, device: torch.device) -> list[Embedded]:
        out = []
        train, test = self.data_splits(data, {})
        protocol = self.protocol(len(train))
        for ds in [train] + ([test] if test is not None else []):
            f = encoder_features(encoder.to(device), ds, None, protocol, device, "encoder")
            out.append(embedded(ds, f, data))
        return out

    def example_input(self, encoder: nn.Module) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        chans = getattr(encoder, "in_chans", self.channels)
        x = torch.randn(2, chans, self.length, generator=g)
        return x.to(next(encoder.parameters()).device)
