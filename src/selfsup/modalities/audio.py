"""Audio: recordings -> mono waveforms (1, S) at the run's rate -> log-mels on the device.

Data (`selfsup.data.audio`): WAV / FLAC / OGG through soundfile, class sub-folders, a flat folder
with `--labels` or `--label-pattern`, or train/ + test/; clips kept in memory, NaN-padded. The
front end (`augment.audio_frontend.LogMel`, torch.stft + a mel filterbank) runs inside the views,
on the training device, for the whole batch; recipes (`augment.audio_views.RECIPES`) are found by
the method's registered recipe name: BYOL -> BYOL-A's views, SimCLR, COLA's segment pairs, MAE.
Every clip is evaluated on a centre crop (or zero-padded window) of `clip_seconds`. Baselines
under the same classifiers: the random-init encoder and log-mel statistics (mean and std of
each band over the clip's frames: the "raw pixels" of audio). A method with `reconstruct` (MAE
on `audio_vit_tiny`) adds its reconstructions of a few test log-mels to the report.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from selfsup.augment import audio_views
from selfsup.augment.audio_frontend import LogMel, frontend_for
from selfsup.config import ConfigError, RunConfig
from selfsup.data.audio import AudioFiles, clip_lengths, load_audio_data, stream_files
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.encoders.registry import encoder_arguments
from selfsup.engine.loop import resolve_device
from selfsup.eval.protocol import (
    EvalProtocol,
    EvaluationError,
    encoder_features,
    evaluate_features,
    label_problem,
)
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
from selfsup.report.reconstructions import reconstruction_arrays

NORM_CLIPS = 1000  # training clips the log-mel mean / std are measured on (BYOL-A: the set's)
REPORT_EMBED, REPORT_EXAMPLES, REPORT_RECON = 2000, 4, 6
LOGMEL_CMAP = "magma"  # the report's log-mels: low = dark, as the views


@dataclasses.dataclass
class AudioDataArgs:
    """`data_args` of an audio run."""

    sample_rate: int = 16000  # BYOL-A and COLA's rate; FSDD ships at 8000
    clip_seconds: float = 1.0  # training crops and the evaluation window (COLA: 1 s segments)
    max_seconds: float = 600.0  # longer files are refused before decoding
    # With --stream: a training step decodes each of its files in a DataLoader worker and reads
    # its centre stream_seconds (the views crop clip_seconds inside them).
    stream_seconds: float = 10.0


def _data_args(raw: dict) -> AudioDataArgs:
    valid = [f.name for f in dataclasses.fields(AudioDataArgs)]
    for key in raw:
        if key not in valid:
            raise ConfigError(
                f"data_args: unknown key {key!r} for audio. Valid: {', '.join(valid)}"
            )
    args = AudioDataArgs(**raw)
    if args.sample_rate < 1000 or args.clip_seconds <= 0:
        raise ConfigError("data_args: sample_rate >= 1000 Hz and clip_seconds > 0, please")
    if args.stream_seconds < args.clip_seconds:
        raise ConfigError("data_args: stream_seconds must be >= clip_seconds (the views' crop)")
    return args


def logmel_statistics(frontend: LogMel, data: InMemoryDataset, batch: int = 256) -> torch.Tensor:
    """The baseline's features: mean and std of each mel band over a clip's own frames
    -> (N, 2 M) (the issue's calibration: 40 bands at 8 kHz, 80 numbers a clip)."""
    out = []
    for start in range(0, len(data), batch):
        x = data.inputs[start : start + batch]
        lms = frontend(x)[:, 0]  # (B, M, F)
        frames = clip_lengths(x) // frontend.hop_length + 1  # center=True STFT frames
        valid = torch.arange(lms.shape[-1])[None] < frames[:, None]  # (B, F)
        w = valid[:, None].float()
        count = w.sum(-1).clamp_min(1)
        mean = (lms * w).sum(-1) / count
        std = (((lms - mean[..., None]) ** 2 * w).sum(-1) / count).sqrt()
        out.append(torch.cat([mean, std], 1))
    return torch.cat(out)


class AudioModality:
    """Audio (module docstring)."""

    name: ClassVar[str] = "audio"
    # BYOL-A (Niizumi et al. 2021): BYOL on its audio views, the AudioNTT2020 encoder, Adam
    # lr 3e-4 as their config.yaml; batch 64 and 20 epochs (theirs: 256 and 100 on a GPU) are
    # ours, for minutes on a CPU.
    defaults: ClassVar[dict] = {
        "modality": "audio",
        "method": "byol",
        "encoder": "audio_ntt",
        "train": {
            "optimizer": "adamw",
            "lr": 3e-4,
            "weight_decay": 0.0,
            "batch_size": 64,
            "epochs": 20.0,
            "warmup_epochs": 0.0,
            "channels_last": False,
        },
    }

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg, self.args = cfg, _data_args(cfg.data_args)
        self.frontend = frontend_for(self.args.sample_rate)
        self.clip = round(self.args.clip_seconds * self.args.sample_rate)
        self.norm: tuple[float, float] = (0.0, 1.0)
        self.train: InMemoryDataset | None = None
        self.test: InMemoryDataset | None = None
        self.stream: AudioFiles | None = None  # --stream: the training files, read on demand
        self.features: dict = {}

    # ----- the run
    def load(self, log: Log) -> None:
        cfg = self.cfg
        if cfg.image_size:
            raise ConfigError("image_size is an image setting; remove it for audio")
        if cfg.data in ("digits", "cifar10"):
            raise ConfigError(
                "--modality audio needs --data: a folder of recordings (class sub-folders, or "
                "flat with --labels / --label-pattern, or train/ and test/)."
            )
        # --stream: in memory only each clip's centre clip_seconds, the evaluation's window;
        # training reads the files again in DataLoader workers (`data.audio.AudioFiles`).
        window = self.clip if cfg.stream else None
        self.train, self.test = self.data_splits(cfg.data, {}, window)
        if cfg.stream:
            rate = self.args.sample_rate
            span = round(self.args.stream_seconds * rate)
            self.stream = stream_files(cfg.data, self.train, rate, span, self.args.max_seconds)
            log(f"streaming {len(self.stream)} training files ({self.args.stream_seconds:g} s "
                f"centre windows) in {cfg.train.workers} DataLoader workers")  # fmt: skip
        self.norm = self._norm_of(self.train)
        test = f", test {len(self.test)}" if self.test is not None else ""
        log(f"data: {self.train.name} {tuple(self.train.inputs.shape)} at "
            f"{self.args.sample_rate} Hz{test}; log-mel mean {self.norm[0]:.2f}, "
            f"std {self.norm[1]:.2f}")  # fmt: skip
        if self.train.skipped:
            log(f"skipped {len(self.train.skipped)} unreadable files: {self.train.skipped[:5]}")

    def _norm_of(self, data: InMemoryDataset) -> tuple[float, float]:
        """Mean and std of the evaluation log-mels of (up to NORM_CLIPS) training clips."""
        lms = audio_views.eval_view(self.frontend, self.clip, (0.0, 1.0))(data.inputs[:NORM_CLIPS])
        return float(lms.mean()), float(lms.std().clamp_min(1e-6))

    def data_splits(self, spec: str | None, options: dict, window: int | None = None):
        """(train, test or None) of `spec` (default: the run's data) at the run's rate; window:
        only each clip's centre `window` samples (`data.audio.load_audio_data`)."""
        cfg = self.cfg
        labels = options.get("labels") or cfg.labels or None
        pattern = options.get("label_pattern") or cfg.label_pattern or None
        return load_audio_data(spec or cfg.data, self.args.sample_rate, labels, pattern,
                               cfg.skip_bad_files, self.args.max_seconds, window)  # fmt: skip

    def _frames(self) -> int:
        return self.frontend.frames(self.clip)

    def encoder(self) -> nn.Module:
        params = encoder_arguments(self.cfg.encoder)
        sizes = {"n_mels": self.frontend.n_mels, "frames": self._frames()}
        kwargs = {k: v for k, v in sizes.items() if k in params} | self.cfg.encoder_args
        return create_encoder(self.cfg.encoder, **kwargs)

    def views(self, recipe: str) -> Views:
        if recipe not in audio_views.RECIPES:
            known = ", ".join(audio_views.RECIPES)
            raise ConfigError(
                f"views {recipe!r} have no audio version. Audio recipes: {known} (--set "
                "views=...); audio methods: byol (BYOL-A), simclr, cola, mae."
            )
        return audio_views.RECIPES[recipe](self.frontend, self.clip, self.norm)

    def eval_transform(self):
        """Waveforms (N, 1, S) -> the evaluation log-mels (N, 1, M, F): the centre window."""
        return audio_views.eval_view(self.frontend, self.clip, self.norm)

    def training(self, views: Views) -> tuple[Any, Views]:
        """The clips in memory, or with --stream the files, read in DataLoader workers."""
        return (self.stream if self.stream is not None else self.train), views

    def callbacks(self, steps: int) -> list:
        return []

    def run_files(self) -> dict[str, str | bytes]:
        """audio.json: the sample rate, window and log-mel normalization of the run."""
        record = dataclasses.asdict(self.args) | {"norm": list(self.norm)}
        return {"audio.json": json.dumps(record, indent=1)}

    def protocol(self, bank_size: int) -> EvalProtocol:
        """The run's evaluation settings (`base.run_protocol`)."""
        return run_protocol(self.cfg, bank_size)

    def evaluate(self, encoder: nn.Module, random_encoder: nn.Module | None, log: Log) -> dict:
        train, test = self.train, self.test
        problem = label_problem(train, test)
        if problem:
            log(f"evaluation skipped: {problem} (label the clips: class folders, --labels or "
                "--label-pattern)")  # fmt: skip
            return {}
        protocol = self.protocol(len(train))
        device = resolve_device(self.cfg.train.device)
        rows: dict[str, dict[str, float]] = {}
        encoders = [("after", f"{self.cfg.method} (trained)", encoder)]
        if self.cfg.eval.baselines:
            stats = [logmel_statistics(self.frontend, d) for d in (train, test)]
            rows["log-mel statistics"] = evaluate_features(
                stats[0], train.targets, stats[1], test.targets, protocol
            )
            if random_encoder is not None:
                encoders.insert(0, ("before", "random init", random_encoder))
        view = self.eval_transform()
        for tag, name, enc in encoders:
            enc.to(device)
            where = f"{name} of {self.cfg.train.out_dir}"
            self.features[tag] = tuple(
                encoder_features(enc, d, view, protocol, device, where) for d in (train, test)
            )
            f_train, f_test = self.features[tag]
            rows[name] = evaluate_features(f_train, train.targets, f_test, test.targets, protocol)
        log(format_table(rows))
        return {"eval_protocol": protocol.to_dict(), "eval": rows}

    def report_sections(self, method: nn.Module) -> list[str]:
        sections = ["curves", "health", "views", "embedding-map"]
        return sections + (["reconstructions"] if hasattr(method, "reconstruct") else [])

    def report_data(
        self, encoder: nn.Module, random_encoder: nn.Module | None, method: nn.Module, views: Views
    ) -> dict[str, np.ndarray]:
        """Example log-mels and their training views (drawn as images), the t-SNE map; a method
        with `reconstruct` (MAE) adds its reconstructions of REPORT_RECON fixed test log-mels."""
        data = self._view_images(views)
        if hasattr(method, "reconstruct"):
            data |= self._reconstructions(method)
        test = self.test
        if test is None or test.targets is None or "after" not in self.features:
            return data
        return data | map_data(test, self.features, self.cfg.train.seed, REPORT_EMBED)

    def _reconstructions(self, method: nn.Module) -> dict[str, np.ndarray]:
        """The recon_* arrays (`report.reconstructions.reconstruction_arrays`) of REPORT_RECON
        test clips (train clips without a test split): their evaluation log-mels (1, M, F), a
        mask seeded by train.seed, the method's prediction; drawn with the views' colormap, low
        bands at the bottom. The display range is the shown originals' min to max (one range
        for all rows, so rows compare), where images use their pixel range [0, 1]."""
        source = self.test if self.test is not None else self.train
        seed = self.cfg.train.seed
        rows = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))
        x = self.eval_transform()(source.inputs[rows[:REPORT_RECON].sort().values])
        lo, hi = float(x.min()), float(x.max())
        span = max(hi - lo, 1e-6)
        device = next(method.parameters()).device
        return reconstruction_arrays(method, x.to(device), [-lo / span], [1 / span], seed,
                                     cmap=LOGMEL_CMAP, origin="lower")  # fmt: skip

    def _view_images(self, views: Views) -> dict[str, np.ndarray]:
        """(E, 1 + V, 3, M, F) uint8: each example's log-mel, then its views, as colour images
        (low = dark), so the report's view grid draws spectrograms as it draws images."""
        import matplotlib

        source = self.test if self.test is not None else self.train
        g = torch.Generator().manual_seed(self.cfg.train.seed)
        x = source.inputs[torch.randperm(len(source), generator=g)[:REPORT_EXAMPLES]]
        made = [self.eval_transform()(x)] + [v for v in views(x.clone(), generator=g)][:3]
        same = [m for m in made if m.shape[-2:] == made[0].shape[-2:]]
        lms = torch.stack(same, 1)[:, :, 0].float()  # (E, 1 + V, M, F)
        lo, hi = lms.amin((1, 2, 3), keepdim=True), lms.amax((1, 2, 3), keepdim=True)
        unit = ((lms - lo) / (hi - lo).clamp_min(1e-6)).flip(-2).numpy()  # low bands at the bottom
        rgb = matplotlib.colormaps[LOGMEL_CMAP](unit)[..., :3]  # (E, V, M, F, 3)
        return {"view_images": (rgb * 255).round().astype(np.uint8).transpose(0, 1, 4, 2, 3)}

    def skipped(self) -> list[str]:
        return self.train.skipped if self.train is not None else []

    # ----- after the run
    def attach(self, run_dir: Path) -> None:
        path, record = run_record(
            run_dir, "audio.json", "its sample rate, window and log-mel normalization"
        )
        try:
            norm = record.pop("norm")
            self.args = _data_args(record)
            self.norm = (float(norm[0]), float(norm[1]))
        except (AttributeError, KeyError, TypeError, IndexError, ValueError) as e:
            raise ValueError(f"{path}: not this run's audio record ({e}); restore it") from e
        if not (np.isfinite(self.norm).all() and self.norm[1] > 0):
            raise ValueError(f"{path}: the log-mel std must be a finite number > 0")
        self.frontend = frontend_for(self.args.sample_rate)
        self.clip = round(self.args.clip_seconds * self.args.sample_rate)

    def preprocess(self, raw: torch.Tensor) -> torch.Tensor:
        """Waveforms (N, S) or (N, 1, S) at the run's sample rate, NaN after a clip's end ->
        the evaluation log-mels (N, 1, M, F) (centre crop of clip_seconds)."""
        x = torch.as_tensor(raw, dtype=torch.float32)
        x = x[:, None] if x.dim() == 2 else x
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"encode mono waveforms (N, S) or (N, 1, S), got {tuple(x.shape)}")
        return self.eval_transform()(x)

    def evaluate_saved(
        self, encoder: nn.Module, run_dir: Path, data: str | None, options: dict
    ) -> dict[str, float]:
        self.train, self.test = self.data_splits(data, options)
        problem = label_problem(self.train, self.test)
        if problem:
            raise EvaluationError(f"{problem}. Pass --data with labeled clips (>= 2 classes).")
        protocol = with_flags(self.protocol(len(self.train)), options, len(self.train))
        device = resolve_device(options.get("device") or "auto")
        name, view = options.get("name") or str(run_dir), self.eval_transform()
        f = [encoder_features(encoder.to(device), d, view, protocol, device, name)
             for d in (self.train, self.test)]  # fmt: skip
        return evaluate_features(f[0], self.train.targets, f[1], self.test.targets, protocol)

    def embed(self, encoder: nn.Module, data: str, device: torch.device) -> list[Embedded]:
        """Every clip of `data`, its centre `clip_seconds` (zero-padded when shorter)."""
        out = []
        train, test = self.data_splits(data, {})
        protocol = self.protocol(len(train))
        for ds in [train] + ([test] if test is not None else []):
            f = encoder_features(encoder.to(device), ds, self.eval_transform(), protocol, device,
                                 "encoder")  # fmt: skip
            out.append(embedded(ds, f, data))
        return out

    def example_input(self, encoder: nn.Module) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 1, self.frontend.n_mels, self._frames(), generator=g)
        return x.to(next(encoder.parameters()).device)
