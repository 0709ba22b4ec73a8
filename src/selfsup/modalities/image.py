"""Images: bundled digits, CIFAR-10, or a folder (class sub-folders, or flat + a labels file).

Data in memory as uint8 (N, 3, H, W) (or streamed file by file with `stream=true`), views from
`selfsup.augment.recipes` made on the device, evaluation by kNN, a linear probe and retrieval on
frozen features beside raw pixels and the random-init encoder, few-label fine-tuning, and the
report's pictures (views, retrieval grid, similarity histograms, MAE reconstructions).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from selfsup.augment import recipes
from selfsup.augment.split import split_views
from selfsup.config import ConfigError, RunConfig
from selfsup.data import InMemoryDataset, load_image_data
from selfsup.data.folder import folder_splits
from selfsup.data.memory import split_indices
from selfsup.data.stream import ImageFiles
from selfsup.encoders import create_encoder
from selfsup.engine.loop import resolve_device
from selfsup.eval.features import extract_features
from selfsup.eval.finetune import few_label_finetune
from selfsup.eval.knn_callback import KNNCallback, small_subset
from selfsup.eval.protocol import (
    EvalProtocol,
    EvaluationError,
    check_finite,
    encoder_features,
    evaluate_encoder,
    evaluate_features,
    label_problem,
    raw_pixel_features,
)
from selfsup.eval.table import format_table
from selfsup.modalities.base import (
    Embedded,
    Log,
    Views,
    embedded,
    flagged,
    run_protocol,
    with_flags,
)
from selfsup.report import snapshot
from selfsup.report.reconstructions import reconstruction_data

DEFAULT_SIZE = {"digits": 16, "cifar10": 32}  # the side a run without image_size trains at


class ImageModality:
    """Images (module docstring). `cfg.labels` / `cfg.label_pattern` label a flat folder."""

    name: ClassVar[str] = "image"
    defaults: ClassVar[dict] = {}  # RunConfig's own defaults are the image ones

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.files: ImageFiles | None = None
        self.train: InMemoryDataset | None = None
        self.test: InMemoryDataset | None = None
        self.size = cfg.image_size or DEFAULT_SIZE.get(cfg.data, 32)
        self.features: dict = {}  # "before"/"after" -> (train, test) features, for the report

    # ----- the run
    def load(self, log: Log) -> None:
        """(files to stream or None, train, test): in memory; with stream=true a bounded subset
        of each split (None when streaming without evaluation)."""
        cfg = self.cfg
        if cfg.data_args:
            raise ConfigError(
                f"data_args={cfg.data_args}: images take no data_args (they are text's tokenizer "
                "settings); use image_size, labels, label_pattern, stream."
            )
        if cfg.eval.data:
            raise ConfigError(
                "eval.data is for text runs (STS and labeled sentence files); an image run "
                "evaluates on its data's test split: label a flat folder with --labels."
            )
        test_files = None
        if cfg.stream:
            self.files, test_files = self.stream_files()
        if self.files is None:
            self.train, self.test = load_image_data(
                cfg.data, cfg.image_size, cfg.data_root, cfg.skip_bad_files, **self._label_args()
            )
        elif self._needs_eval_data():  # at most eval.stream_images per split, at the view size
            limit = cfg.eval.stream_images
            self.train = self.files.decode(cfg.image_size, limit)
            self.test = None if test_files is None else test_files.decode(cfg.image_size, limit)
        self._log_data(log)

    def _label_args(self) -> dict:
        cfg = self.cfg
        return {
            "max_image_pixels": cfg.max_image_pixels,
            "labels": cfg.labels or None,
            "label_pattern": cfg.label_pattern or None,
        }

    def _log_data(self, log: Log) -> None:
        train, test = self.train, self.test
        if train is not None:
            self.size = train.inputs.shape[-1]
            shape = tuple(train.inputs.shape)
            log(f"data: {train.name} {shape}" + (f", test {len(test)}" if test else ""))
        if self.files is not None:
            workers = self.cfg.train.loader_workers
            log(f"streaming {len(self.files)} files from {self.cfg.data} with {workers} workers")
        if train is not None and train.skipped:
            log(
                f"skipped {len(train.skipped)} unreadable files (--skip-bad-files): "
                f"{train.skipped[:5]}"
            )

    def stream_files(self) -> tuple[ImageFiles, ImageFiles | None]:
        """(train, test or None) of the folder `cfg.data` as ImageFiles: root/train and
        root/test (or val) as `load_image_splits` finds them; a labeled folder without a test
        split is split 80/20 as `load_image_data` splits it."""
        cfg = self.cfg
        root = Path(cfg.data)
        if cfg.data in DEFAULT_SIZE or not root.is_dir():
            raise ConfigError(
                f"stream=true reads an image folder, but data={cfg.data!r} is not one: pass a "
                "folder (digits and cifar10 fit in memory: drop --stream)."
            )
        if cfg.image_size is None:
            raise ConfigError(
                "stream=true needs image_size (the side of the training views), e.g. "
                "--image-size 224"
            )
        kw = {"seed": cfg.train.seed, "skip_bad_files": cfg.skip_bad_files, **self._label_args()}
        train, test = folder_splits(root, lambda d: ImageFiles.from_folder(d, **kw))
        if test is not None or train.targets is None:
            return train, test
        # The split `load_image_data` makes for evaluation (80/20, seed 0): never train on test.
        train_rows, test_rows = split_indices(len(train), train.targets, 0.2, seed=0)
        return (
            train.subset(train_rows, f"{train.name}-train"),
            train.subset(test_rows, f"{train.name}-test"),
        )

    def _needs_eval_data(self) -> bool:
        ev = self.cfg.eval
        return ev.enabled or ev.report or ev.every > 0

    def encoder(self) -> nn.Module:
        return create_encoder(self.cfg.encoder, **self.cfg.encoder_args)

    def views(self, recipe: str) -> Views:
        fn = getattr(recipes, recipe, None)
        if fn is None or recipe.startswith("_") or not recipe.endswith("_views"):
            known = [n for n in dir(recipes) if n.endswith("_views")]
            raise ConfigError(f"unknown image views recipe {recipe!r}. Known: {', '.join(known)}")
        return fn(self.size)

    def training(self, views: Views) -> tuple[Any, Views]:
        if self.files is None:
            return self.train, views
        # Crops in the DataLoader workers, the rest of the recipe on the device.
        self.files.transform, device_views = split_views(views)
        return self.files, device_views

    def callbacks(self, steps: int) -> list:
        """kNN on a small labeled subset every `eval.every` steps."""
        cfg, train, test = self.cfg, self.train, self.test
        if cfg.eval.every <= 0 or test is None or not (test.has_labels and train.has_labels):
            return []
        n = cfg.eval.every_samples
        return [
            KNNCallback(
                small_subset(train, n, cfg.train.seed),
                small_subset(test, n // 2, cfg.train.seed),
                recipes.eval_view(self.size),
                cfg.eval.every,
                resolve_device(cfg.train.device),
                self.protocol(len(train)),  # k resolved on the whole bank, as at the end
                total_steps=steps,
            )
        ]

    def run_files(self) -> dict[str, str | bytes]:
        return {}

    def protocol(self, bank_size: int) -> EvalProtocol:
        """The run's evaluation settings (`base.run_protocol`)."""
        return run_protocol(self.cfg, bank_size)

    def evaluate(self, encoder: nn.Module, random_encoder: nn.Module | None, log: Log) -> dict:
        """kNN, linear probe and retrieval of the trained encoder and (baselines) random init
        and raw pixels, then few-label fine-tuning; each encoder's features extracted once."""
        cfg, train, test = self.cfg, self.train, self.test
        if test is None or not test.has_labels:
            log(
                "evaluation skipped: the data has no labels (a flat folder: pass --labels) or no "
                "test split"
            )
            return {}
        problem = label_problem(train, test)
        if problem:
            log(f"evaluation skipped: {problem}")
            return {}
        protocol = self.protocol(len(train))
        device, transform = resolve_device(cfg.train.device), recipes.eval_view(self.size)
        # Training left the weights channels_last; `selfsup evaluate` loads them contiguous. The
        # two layouts take different conv kernels (7e-8 apart with AVX2 fp32), enough to move a
        # retrieval tie: evaluate in the layout a loaded encoder has, so both give the same digits.
        encoder.to(memory_format=torch.contiguous_format)
        trained = f"{cfg.method} (trained)"
        encoders = [("after", trained, encoder)]
        rows: dict[str, dict[str, float]] = {}
        if cfg.eval.baselines:
            raw = raw_pixel_features(train), raw_pixel_features(test)
            rows["raw pixels"] = evaluate_features(
                raw[0], train.targets, raw[1], test.targets, protocol
            )
            if random_encoder is not None:
                encoders.insert(0, ("before", "random init", random_encoder))
        for tag, name, enc in encoders:
            where = f"{name} of {cfg.train.out_dir}"
            enc.to(device)
            self.features[tag] = tuple(
                encoder_features(enc, d, transform, protocol, device, where) for d in (train, test)
            )
            f_train, f_test = self.features[tag]
            rows[name] = evaluate_features(f_train, train.targets, f_test, test.targets, protocol)
        log(format_table(rows))
        if cfg.data == "digits" and cfg.eval.baselines:
            log(
                "note: on digits raw pixels are a strong baseline (8x8 centred strokes; kNN on "
                "pixels ≈97 %). The point of the default run is the gain over the random-init "
                "encoder."
            )
        if cfg.eval.finetune:
            rows[trained] |= self._finetune(encoder, log)
        return {"eval_protocol": protocol.to_dict(), "eval": rows}

    def _finetune(self, encoder: nn.Module, log: Log) -> dict[str, float]:
        """Few-label fine-tuning (1 % and 10 % of the train labels) of a copy of `encoder`."""
        t0, cfg = time.perf_counter(), self.cfg
        rows = few_label_finetune(
            encoder,
            self.train,
            self.test,
            recipes.eval_view(self.size),
            device=resolve_device(cfg.train.device),
            precision=cfg.train.precision,
            seed=cfg.train.seed,
        )
        cells = ", ".join(f"{k} {100 * v:.1f}%" for k, v in rows.items())
        log(f"few-label fine-tune: {cells} ({time.perf_counter() - t0:.0f} s)")
        return rows

    def report_sections(self, method: nn.Module) -> list[str]:
        sections = ["curves", "knn", "health", "similarity", "embedding-map", "retrieval", "views"]
        return sections + (["reconstructions"] if hasattr(method, "reconstruct") else [])

    def report_data(
        self, encoder: nn.Module, random_encoder: nn.Module | None, method: nn.Module, views: Views
    ) -> dict[str, np.ndarray]:
        """Embeddings, pair similarities, retrieval and view grids of the test split; a method
        with `reconstruct` (MAE) adds its reconstructions of 8 fixed test images."""
        cfg, train, test = self.cfg, self.train, self.test
        data: dict = {}
        transform = recipes.eval_view(self.size)
        if cfg.eval.enabled and test is not None:
            device = resolve_device(cfg.train.device)
            data = snapshot.collect(
                encoder,
                random_encoder,
                train,
                test,
                views,
                transform,
                device,
                cfg.train.precision,
                seed=cfg.train.seed,
                features=self.features,
            )
        if hasattr(method, "reconstruct") and train is not None:
            images = (test if test is not None else train).inputs
            data |= reconstruction_data(method, images, transform, seed=cfg.train.seed)
        return data

    def skipped(self) -> list[str]:
        return (self.train.skipped if self.train is not None else []) + (
            self.files.skipped if self.files is not None else []
        )

    # ----- after the run
    def attach(self, run_dir: Path) -> None:
        pass  # an image encoder needs nothing but its weights and the view size

    def preprocess(self, raw: torch.Tensor) -> torch.Tensor:
        """uint8 images (N, C, H, W) -> the evaluation view (resized to the run's side,
        normalized) the encoder was evaluated with."""
        if not isinstance(raw, torch.Tensor) or raw.dim() != 4:
            raise ValueError("encode images as a uint8 tensor (N, C, H, W)")
        return recipes.eval_view(self.size)(raw)

    def data_splits(self, spec: str | None, options: dict):
        """(train, test) of `spec` (default: the run's data) with the run's loading settings."""
        spec = spec or self.cfg.data
        size = options.get("image_size") or self.cfg.image_size
        kw = self._label_args() | {
            k: options[k] for k in ("labels", "label_pattern") if options.get(k)
        }
        return load_image_data(spec, size, self.cfg.data_root, self.cfg.skip_bad_files, **kw)

    def evaluate_saved(
        self, encoder: nn.Module, run_dir: Path, data: str | None, options: dict
    ) -> dict[str, float]:
        """The run's recorded protocol (results.json) on its own data, else its config's
        settings with k resolved on this bank; options: flags (k, t, batch_size, precision,
        linear, image_size, labels, label_pattern, device)."""
        train, test = self.data_splits(data, options)
        problem = label_problem(train, test)
        if problem:
            raise EvaluationError(
                f"{problem}. Pass --data with labeled data of >= 2 classes "
                "(or --labels for a flat folder)."
            )
        protocol = self._saved_protocol(run_dir, data, options, len(train))
        device = resolve_device(options.get("device", "auto"))
        view = recipes.eval_view(train.inputs.shape[-1])
        return evaluate_encoder(
            encoder.to(device),
            train,
            test,
            view,
            device,
            protocol=protocol,
            name=options.get("name") or str(run_dir),
        )

    def _saved_protocol(
        self, run_dir: Path, data: str | None, options: dict, bank: int
    ) -> EvalProtocol:
        path = run_dir / "results.json"
        recorded = json.loads(path.read_text()).get("eval_protocol") if path.exists() else None
        if recorded is not None and not (data and data != self.cfg.data):
            protocol, source = EvalProtocol.from_dict(recorded, f"{path} eval_protocol"), str(path)
        else:  # other data, or a run without a record: its settings, k resolved on this bank
            protocol, source = self.protocol(bank), "the run's config (no recorded protocol)"
            protocol = dataclasses.replace(protocol, knn_k=self.cfg.eval.knn_k)
        flags = flagged(options)
        protocol = with_flags(protocol, options, bank)
        print(f"evaluation protocol from {source}: {protocol.to_dict()}")
        if flags:
            print(f"overridden by flags: {flags}")
        return protocol

    def embed(self, encoder: nn.Module, data: str, device: torch.device) -> list[Embedded]:
        train, test = self.data_splits(data, {})
        out = []
        for ds in [train] + ([test] if test is not None else []):
            view = recipes.eval_view(ds.inputs.shape[-1])
            f = check_finite(
                extract_features(encoder.to(device), ds, view, device=device),
                "encoder",
                ds.name or data,
            )
            out.append(embedded(ds, f, data))
        return out

    def example_input(self, encoder: nn.Module) -> torch.Tensor:
        """A seeded (2, in_chans, side, side) float32 batch on the encoder's device."""
        device = next(encoder.parameters()).device
        g = torch.Generator().manual_seed(0)
        chans = getattr(encoder, "in_chans", 3)
        return torch.randn(2, chans, self.size, self.size, generator=g).to(device)
