"""The interface every kind of data implements, so that one run path serves them all.

A modality is built from the run configuration (`Modality(cfg)`) and answers the run layer's
questions in order: `load` the data, the default `encoder`, the `views` of a method's recipe,
what `training` reads, which `callbacks` watch training, the files it adds to the run folder
(`run_files`), its `evaluate` table and `report_data`. After a run the same object, `attach`ed
to the run folder, reads raw inputs back (`preprocess`), evaluates and embeds other data and
gives `export` its example input. docs/modalities.md describes the design.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from selfsup.config import RunConfig
from selfsup.data.memory import InMemoryDataset
from selfsup.engine.loop import Callback
from selfsup.eval.protocol import EvalProtocol

Views = Callable[..., list[torch.Tensor]]
Log = Callable[..., None]


@dataclass
class Embedded:
    """One split of embedded data: features (N, D) float32 and, per row, its source (a file, a
    line) and label name ("" when unlabeled)."""

    name: str
    features: torch.Tensor
    sources: list[str]
    labels: list[str]


def run_protocol(cfg: RunConfig, bank_size: int) -> EvalProtocol:
    """The run's evaluation settings (eval.knn_k / knn_t / linear / batch_size, train.precision
    and seed), kNN k resolved on a labeled bank of `bank_size`: one for every modality."""
    return EvalProtocol(
        knn_k=cfg.eval.knn_k,
        knn_t=cfg.eval.knn_t,
        linear=cfg.eval.linear,
        seed=cfg.train.seed,
        batch_size=cfg.eval.batch_size,
        precision=cfg.train.precision,
    ).resolve(bank_size)


FLAG_KEYS = ("knn_k", "knn_t", "batch_size", "precision", "linear")


def flagged(options: dict) -> dict:
    """The protocol settings `selfsup evaluate` was given on its command line (not None)."""
    return {k: options[k] for k in FLAG_KEYS if options.get(k) is not None}


def with_flags(protocol: EvalProtocol, options: dict, bank_size: int) -> EvalProtocol:
    """`protocol` with the flags of `options` applied, k resolved on `bank_size`."""
    return dataclasses.replace(protocol, **flagged(options)).resolve(bank_size)


def embedded(ds: InMemoryDataset, features: torch.Tensor, fallback: str) -> Embedded:
    """One split for `selfsup embed`: its rows' sources (files, lines) and label names."""
    names = ds.classes or []
    labels = [""] * len(ds) if ds.targets is None else [
        names[t] if t < len(names) else str(t) for t in ds.targets.tolist()]  # fmt: skip
    sources = ds.sources or [str(i) for i in range(len(ds))]
    return Embedded(ds.name or fallback, features, list(sources), labels)


def run_record(run_dir: Path, name: str, holds: str) -> tuple[Path, Any]:
    """(path, parsed JSON) of the modality's file `name` in a run folder (`run_files` wrote it):
    FileNotFoundError saying what the folder keeps there (`holds`) when missing, ValueError
    naming the file when it is not JSON. The caller checks the fields."""
    path = Path(run_dir) / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: missing; the run folder keeps {holds} there, beside the encoder (train "
            f"again, or copy {name} back)."
        )
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); restore the run's own file") from e


def map_data(test: InMemoryDataset, features: dict, seed: int, limit: int = 2000) -> dict:
    """The report's t-SNE arrays: up to `limit` seeded test rows of each encoder's features
    (`features`: tag "before"/"after" -> (train, test) features), their labels and classes."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(test), generator=g)[:limit].sort().values
    data = {
        "emb_labels": test.targets[rows].numpy(),
        "classes": np.array(test.classes or [str(c) for c in range(test.num_classes)]),
    }
    for tag in ("after", "before"):
        if tag in features:
            data[f"emb_{tag}"] = features[tag][1][rows].numpy().astype(np.float16)
    return data


class Modality(Protocol):
    """What the run layer asks of a kind of data (module docstring); shapes per modality."""

    name: ClassVar[str]
    # Config defaults applied before the YAML file and the flags (e.g. text trains with AdamW).
    defaults: ClassVar[dict]

    def __init__(self, cfg: RunConfig) -> None: ...

    def load(self, log: Log) -> None:
        """Read the training data (and the evaluation data) the config names."""

    def encoder(self) -> nn.Module:
        """The config's encoder, sized for the loaded data (a tokenizer's vocabulary ...)."""

    def views(self, recipe: str) -> Views:
        """The views of recipe `recipe` (a method's registered recipe, or the config's)."""

    def training(self, views: Views) -> tuple[Any, Views]:
        """(what `engine.fit` reads, the views it applies): a dataset with `targets` or None."""

    def callbacks(self, steps: int) -> list[Callback]:
        """Evaluations during training that only this kind of data can make (kNN on images)."""

    def run_files(self) -> dict[str, str | bytes]:
        """Files the run folder needs beside the encoder to use it (a tokenizer)."""

    def evaluate(self, encoder: nn.Module, random_encoder: nn.Module | None, log: Log) -> dict:
        """{"eval": {row: {column: value in [0, 1]}}, ...}: the trained encoder beside this
        data's baselines; {} (and a note) when the data cannot be evaluated."""

    def report_sections(self, method: nn.Module) -> list[str]:
        """Ids of the report sections that fit this run (`selfsup.report.html`)."""

    def report_data(
        self, encoder: nn.Module, random_encoder: nn.Module | None, method: nn.Module, views: Views
    ) -> dict[str, np.ndarray]:
        """The arrays the report draws (report_data.npz), computed once at the end."""

    def skipped(self) -> list[str]:
        """Files skipped while reading (--skip-bad-files), for results.json."""

    # After the run: the same object, attached to the run folder.
    def attach(self, run_dir: Path) -> None:
        """Read back what `run_files` wrote (a tokenizer) to use the run's encoder."""

    def preprocess(self, raw: Any) -> torch.Tensor:
        """Raw inputs (uint8 images, a list of sentences ...) -> the encoder's input batch."""

    def evaluate_saved(
        self, encoder: nn.Module, run_dir: Path, data: str | None, options: dict
    ) -> dict[str, float]:
        """`selfsup evaluate`: the table row of `encoder` on `data` (default: the run's)."""

    def embed(self, encoder: nn.Module, data: str, device: torch.device) -> list[Embedded]:
        """`selfsup embed`: every split of `data`, embedded."""

    def example_input(self, encoder: nn.Module) -> torch.Tensor:
        """A small batch of the encoder's input, for `selfsup export`."""
