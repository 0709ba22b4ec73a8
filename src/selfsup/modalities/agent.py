"""Agents: an environment's observation sequences -> state representations, probed for game state.

Data (`selfsup.data.episodes`): a folder `selfsup collect` wrote (uint8 frames, actions,
rewards, episode boundaries and console RAM, in `.npz` shards with an `episodes.json` manifest).
Episodes are split 70 / 10 / 20 % into train / val / test (AtariARI, Anand et al. 2019); the
encoder pretrains on the train episodes without labels. A training sample is an anchor step t;
the views gather its observation (the `stack` latest frames of its episode) and the observation
`offset` steps later, on the training device (`augment.frame_views.RECIPES`: CURL's two shifts
of one observation, ATC's t and t + 3, ST-DIM's consecutive frames). Evaluation is the AtariARI
probe (`eval.state_probe`): a linear classifier per RAM state variable on frozen features,
weighted F1, averaged within and then across the benchmark's categories, beside the random-init
encoder and a probe on the pixels themselves (area-resized to at most 42 x 42).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from selfsup.augment import frame_views
from selfsup.config import ConfigError, RunConfig
from selfsup.data import atari_ram
from selfsup.data.episodes import read_episodes
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.encoders.registry import encoder_arguments
from selfsup.engine.loop import resolve_device
from selfsup.eval.protocol import EvalProtocol, EvaluationError, encoder_features
from selfsup.eval.state_probe import ProbeSettings, category_f1, probe_states
from selfsup.eval.table import format_table
from selfsup.modalities.base import Embedded, Log, Views, run_protocol, run_record

SPLIT = (0.7, 0.1, 0.2)  # AtariARI's train / val / test shares, by episode (episodes.py)
# The pixel baseline reads frames area-resized to at most 42 x 42: at 84 x 84 its 7,056-input
# probes took ~8x the time of all the encoder rows together (2-core CPU, Pong, 7k train frames).
PIXELS = 42
REPORT_EXAMPLES = 4


@dataclasses.dataclass
class AgentDataArgs:
    """`data_args` of an agent run."""

    stack: int = 1  # frames per observation; AtariARI probes single frames, agents stack 3-4
    offset: int | None = None  # steps between a pair's observations; None: the recipe's own


def _data_args(raw: dict) -> AgentDataArgs:
    valid = [f.name for f in dataclasses.fields(AgentDataArgs)]
    for key in raw:
        if key not in valid:
            known = ", ".join(valid)
            raise ConfigError(f"data_args: unknown key {key!r} for agent. Valid: {known}")
    args = AgentDataArgs(**raw)
    if not isinstance(args.stack, int) or args.stack < 1:
        raise ConfigError(f"data_args.stack must be an integer >= 1, got {args.stack!r}")
    if args.offset is not None and (not isinstance(args.offset, int) or args.offset < 0):
        raise ConfigError(f"data_args.offset must be an integer >= 0, got {args.offset!r}")
    return args


def split_steps(starts: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) step indices from each step's episode start `starts` (T,) long
    (`Episodes.starts`): whole episodes 70 / 10 / 20 % in a seeded
    order (AtariARI); with fewer than 3 episodes, each episode's steps in contiguous
    70 / 10 / 20 % blocks instead (a short collection of one long game)."""
    ids = torch.unique(starts)
    n = len(ids)
    if n >= 3:
        order = ids[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
        a = min(max(1, round(SPLIT[0] * n)), n - 2)
        b = min(max(a + 1, round((SPLIT[0] + SPLIT[1]) * n)), n - 1)
        groups = order[:a], order[a:b], order[b:]
        return tuple(torch.nonzero(torch.isin(starts, g))[:, 0] for g in groups)  # type: ignore[return-value]
    parts: tuple[list, list, list] = ([], [], [])
    for s in ids.tolist():
        steps = torch.nonzero(starts == s)[:, 0]
        a, b = round(SPLIT[0] * len(steps)), round((SPLIT[0] + SPLIT[1]) * len(steps))
        for part, block in zip(parts, (steps[:a], steps[a:b], steps[b:]), strict=True):
            part.append(block)
    return tuple(torch.cat(p) for p in parts)  # type: ignore[return-value]


def _digest(frame: torch.Tensor) -> bytes:
    return hashlib.blake2b(frame.numpy().tobytes(), digest_size=16).digest()


def unseen(frames: torch.Tensor, test: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """The `test` steps whose frame is byte-identical to no frame of the `seen` steps (AtariARI
    removes those from its test split: label_preprocess.py)."""
    known = {_digest(frames[i]) for i in seen.tolist()}
    return torch.as_tensor([i for i in test.tolist() if _digest(frames[i]) not in known],
                           dtype=torch.long)  # fmt: skip


class AgentModality:
    """Agents' observations (module docstring)."""

    name: ClassVar[str] = "agent"
    # ST-DIM's training (atariari/methods/stdim.py and its argparser): Adam lr 3e-4, batch 64,
    # the Nature CNN; fp32. 10 epochs of the train episodes (theirs: 100 epochs of 100k frames)
    # is ours, for minutes on a CPU.
    defaults: ClassVar[dict] = {
        "modality": "agent",
        "method": "stdim",
        "encoder": "nature_cnn",
        "train": {
            "optimizer": "adamw",
            "lr": 3e-4,
            "weight_decay": 0.0,
            "batch_size": 64,
            "epochs": 10.0,
            "warmup_epochs": 0.0,
            "min_lr_ratio": 1.0,
            "precision": "fp32",
            "channels_last": False,
        },
    }

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg, self.args = cfg, _data_args(cfg.data_args)
        self.frames = torch.empty(0, 1, 84, 84, dtype=torch.uint8)  # (T, c, H, W)
        self.starts = torch.empty(0, dtype=torch.long)  # (T,) first step of each step's episode
        self.splits: dict[str, torch.Tensor] = {}  # train / val / test step indices
        self.labels: dict[str, np.ndarray] = {}  # kept state variable -> (T,) values
        self.game, self.offset = "", 0
        self.probes: dict[str, dict[str, float]] = {}  # row -> per-variable F1
        self._on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    # ----- the run
    def load(self, log: Log) -> None:
        cfg = self.cfg
        for key in ("image_size", "stream", "labels", "label_pattern"):
            if getattr(cfg, key):
                raise ConfigError(f"{key} is not an agent setting; remove it")
        if cfg.data in ("digits", "cifar10"):
            raise ConfigError(
                "--modality agent needs --data: a folder of episodes, e.g. `selfsup collect "
                "--env ALE/Pong-v5 --steps 20000 --out frames/pong`, then --data frames/pong."
            )
        self._read(cfg.data)
        sizes = {k: len(v) for k, v in self.splits.items()}
        log(f"data: {self.game or 'episodes'} {tuple(self.frames.shape)} uint8, "
            f"{len(torch.unique(self.starts))} episodes; steps {sizes}; "
            f"{len(self.labels)} state variables probed")  # fmt: skip

    def _read(self, folder: str) -> None:
        """Frames, episode starts, splits and the probed (not low-entropy) state labels."""
        eps = read_episodes(folder)
        frames = torch.from_numpy(eps.frames)
        self.frames = frames[:, None] if frames.dim() == 3 else frames
        self.starts = torch.from_numpy(eps.starts)
        train, val, test = split_steps(self.starts, self.cfg.train.seed)
        test = unseen(self.frames, test, torch.cat([train, val]))
        self.splits = {"train": train, "val": val, "test": test}
        self.game = eps.game
        labels = eps.labels() if self.game in atari_ram.ANNOTATIONS else {}
        kept = [k for k in labels if k not in atari_ram.low_entropy(labels)]
        self.labels = {k: labels[k] for k in kept}
        self._on.clear()

    def encoder(self) -> nn.Module:
        _, c, h, w = self.frames.shape
        sizes = {"in_chans": c * self.args.stack, "frame_size": (h, w),
                 "full_resolution": (h, w) == (210, 160)}  # fmt: skip
        params = encoder_arguments(self.cfg.encoder)
        kwargs = {k: v for k, v in sizes.items() if k in params or k == "in_chans"}
        return create_encoder(self.cfg.encoder, **(kwargs | self.cfg.encoder_args))

    def _device_data(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The frames and episode starts on `device`, moved once."""
        if device not in self._on:
            self._on[device] = self.frames.to(device), self.starts.to(device)
        return self._on[device]

    def observations(self, steps: torch.Tensor) -> torch.Tensor:
        """Steps (N,) long -> their observations (N, stack * c, H, W) uint8 on the steps'
        device: the `stack` latest frames of the episode, oldest first, its first frame
        repeated before its start (gym's FrameStack after a reset)."""
        frames, starts = self._device_data(steps.device)
        k = self.args.stack
        rows = steps[:, None] - (k - 1) + torch.arange(k, device=steps.device)
        rows = torch.maximum(rows, starts[steps][:, None])  # (N, k)
        return frames[rows].flatten(1, 2)

    def _pairs(self, anchors: torch.Tensor, offset: int) -> torch.Tensor:
        """Anchor steps (N,) -> (N, 2, C, H, W): observation t and observation t + offset."""
        return torch.stack([self.observations(anchors), self.observations(anchors + offset)], 1)

    def views(self, recipe: str) -> Views:
        if recipe not in frame_views.RECIPES:
            raise ConfigError(
                f"views {recipe!r} have no agent version. Agent recipes: "
                f"{', '.join(frame_views.RECIPES)} (--set views=...); agent methods: stdim, "
                "curl, atc, and simclr / byol / moco on shifted observations."
            )
        made = frame_views.RECIPES[recipe]
        self.offset = made.offset if self.args.offset is None else self.args.offset

        def views(anchors: torch.Tensor, generator: torch.Generator | None = None):
            """Anchor steps (N,) long -> the recipe's two views (N, C, H, W) float."""
            return made(self._pairs(anchors, self.offset), generator)

        return views

    def training(self, views: Views) -> tuple[Any, Views]:
        """The train split's anchor steps t whose t + offset is in the same episode, as an
        (N,) long dataset: the views gather the observations on the training device."""
        t = self.splits["train"]
        later = (t + self.offset).clamp_max(len(self.starts) - 1)
        anchors = t[(self.starts[later] == self.starts[t]) & (t + self.offset < len(self.starts))]
        if not len(anchors):
            raise ConfigError(
                f"{self.cfg.data}: no training step has a step {self.offset} later in its "
                "episode; collect longer episodes (more --steps) or lower data_args.offset."
            )
        return InMemoryDataset(anchors, name=Path(self.cfg.data).name), views

    def callbacks(self, steps: int) -> list:
        return []

    def run_files(self) -> dict[str, str | bytes]:
        """agent.json: the frame layout and stack the encoder reads."""
        _, c, h, w = self.frames.shape
        record = dataclasses.asdict(self.args) | {"frame_shape": [c, h, w], "game": self.game}
        return {"agent.json": json.dumps(record, indent=1)}

    def protocol(self, bank_size: int) -> EvalProtocol:
        """Feature extraction settings (batch size, precision) of the run."""
        return run_protocol(self.cfg, bank_size)

    def split_features(self, encoder: nn.Module, name: str) -> tuple[torch.Tensor, ...]:
        """Frozen features (N_split, D) of the train, val and test observations."""
        device = resolve_device(self.cfg.train.device)
        protocol = self.protocol(max(1, len(self.splits["train"])))
        encoder.to(device)
        where = f"{name} of {self.cfg.train.out_dir}"
        return tuple(
            encoder_features(
                encoder, InMemoryDataset(self.splits[s]), self._scaled, protocol, device, where
            )  # fmt: skip
            for s in ("train", "val", "test")
        )

    def _scaled(self, steps: torch.Tensor) -> torch.Tensor:
        return self.observations(steps).float() / 255.0

    def pixel_features(self, steps: torch.Tensor) -> torch.Tensor:
        """The pixel baseline: observations area-resized to at most PIXELS x PIXELS, flattened
        (N, C * h * w) in [0, 1]."""
        x = self._scaled(steps)
        size = (min(PIXELS, x.shape[-2]), min(PIXELS, x.shape[-1]))
        return torch.nn.functional.adaptive_avg_pool2d(x, size).flatten(1)

    def probe(self, features: tuple[torch.Tensor, ...], standardize: bool = False):
        """{variable: test F1} of the AtariARI probes on (train, val, test) features."""
        labels = tuple({k: v[self.splits[s].numpy()] for k, v in self.labels.items()}
                       for s in ("train", "val", "test"))  # fmt: skip
        settings = ProbeSettings(seed=self.cfg.train.seed, standardize=standardize)
        return probe_states(features, labels, settings)  # type: ignore[arg-type]

    def _row(self, name: str, features: tuple[torch.Tensor, ...]) -> dict[str, float]:
        """The table row of one set of features: the protocol's F1 across categories and per
        category, and the same probes' F1 on standardized features (`ProbeSettings`)."""
        self.probes[name] = self.probe(features)
        standardized = category_f1(self.probe(features, standardize=True))
        row = category_f1(self.probes[name])
        return {"f1": row.pop("f1"), "f1_standardized": standardized["f1"], **row}

    def evaluate(self, encoder: nn.Module, random_encoder: nn.Module | None, log: Log) -> dict:
        problem = self._label_problem()
        if problem:
            log(f"evaluation skipped: {problem}")
            return {}
        rows: dict[str, dict[str, float]] = {}
        encoders = [(f"{self.cfg.method} (trained)", encoder)]
        if self.cfg.eval.baselines:
            pixels = tuple(self.pixel_features(self.splits[s]) for s in ("train", "val", "test"))
            rows["pixels"] = self._row("pixels", pixels)
            if random_encoder is not None:
                encoders.insert(0, ("random init", random_encoder))
        for name, enc in encoders:
            rows[name] = self._row(name, self.split_features(enc, name))
        log(format_table(rows))
        published = atari_ram.PUBLISHED_F1.get(self.game, {})
        return {
            "eval_protocol": dataclasses.asdict(ProbeSettings(seed=self.cfg.train.seed))
            | {
                "f1_standardized": "the same probes on features standardized on train",
                "protocol": "AtariARI linear probes, weighted F1 per state variable",
                "splits": {k: len(v) for k, v in self.splits.items()},
            },  # fmt: skip
            "eval": rows,
            "state_probe": {"per_variable_f1": self.probes, "published_f1": published},
        }

    def _label_problem(self) -> str | None:
        if not self.labels:
            if self.game not in atari_ram.ANNOTATIONS:
                return (f"{self.game or 'this environment'} has no AtariARI RAM annotation "
                        f"(annotated: {', '.join(atari_ram.ANNOTATIONS)})")  # fmt: skip
            return "every state variable is near constant in these episodes (collect more steps)"
        if min(len(v) for v in self.splits.values()) == 0:
            return "a split (train / val / test) is empty; collect more steps"
        return None

    def report_sections(self, method: nn.Module) -> list[str]:
        return ["curves", "health", "views", "state-probe"]

    def report_data(
        self, encoder: nn.Module, random_encoder: nn.Module | None, method: nn.Module, views: Views
    ) -> dict[str, np.ndarray]:
        """Example observations with their two views (grayscale drawn as RGB), and the probe's
        per-variable F1 of each row."""
        g = torch.Generator().manual_seed(self.cfg.train.seed)
        dataset, _ = self.training(views)
        anchors = dataset.inputs[torch.randperm(len(dataset), generator=g)[:REPORT_EXAMPLES]]
        made = [self._scaled(anchors)] + views(anchors, generator=g)
        x = torch.stack([m[:, -1:] if m.shape[1] % 3 else m[:, -3:] for m in made], 1)
        images = (x.expand(-1, -1, 3, -1, -1) * 255).round().to(torch.uint8).numpy()
        data = {"view_images": images}
        if self.probes:
            names = list(next(iter(self.probes.values())))
            data["probe_variables"] = np.array(names)
            data["probe_rows"] = np.array(list(self.probes))
            data["probe_f1"] = np.array([[f1.get(k, np.nan) for k in names]
                                         for f1 in self.probes.values()])  # fmt: skip
        published = atari_ram.PUBLISHED_F1.get(self.game)
        if published:
            data["probe_published_names"] = np.array(list(published))
            data["probe_published_f1"] = np.array(list(published.values()))
        return data

    def skipped(self) -> list[str]:
        return []

    # ----- after the run
    def attach(self, run_dir: Path) -> None:
        path, record = run_record(run_dir, "agent.json", "the frame layout its encoder reads")
        try:
            c, h, w = (int(v) for v in record.pop("frame_shape"))
            self.game = str(record.pop("game", ""))
            self.args = _data_args(record)
        except (AttributeError, KeyError, TypeError, ValueError, ConfigError) as e:
            raise ValueError(f"{path}: not this run's agent record ({e}); restore it") from e
        self.frames = torch.empty(0, c, h, w, dtype=torch.uint8)

    def preprocess(self, raw: torch.Tensor) -> torch.Tensor:
        """Observations (N, stack * c, H, W) (or (N, H, W) single grayscale frames) uint8 ->
        the encoder's float input in [0, 1]."""
        x = torch.as_tensor(raw)
        x = x[:, None] if x.dim() == 3 else x
        _, c, h, w = self.frames.shape
        want = (c * self.args.stack, h, w)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"encode observations as (N, {want[0]}, {h}, {w}) uint8 frames (the run's "
                f"stack x channels and frame size), got {tuple(x.shape)}"
            )
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()

    def evaluate_saved(
        self, encoder: nn.Module, run_dir: Path, data: str | None, options: dict
    ) -> dict[str, float]:
        """The trained row (mean F1 across categories and per category) of `encoder` on the
        episodes `data` (default: the run's)."""
        self._read(data or self.cfg.data)
        problem = self._label_problem()
        if problem:
            raise EvaluationError(f"{problem}. Pass --data with episodes of an annotated game.")
        return self._row("after", self.split_features(encoder, options.get("name") or "encoder"))

    def embed(self, encoder: nn.Module, data: str, device: torch.device) -> list[Embedded]:
        self._read(data)
        protocol = self.protocol(len(self.starts))
        encoder.to(device)
        steps = torch.arange(len(self.starts))
        f = encoder_features(encoder, InMemoryDataset(steps), self._scaled, protocol, device,
                             "encoder")  # fmt: skip
        return [Embedded(Path(data).name, f, [str(i) for i in steps.tolist()], [""] * len(f))]

    def example_input(self, encoder: nn.Module) -> torch.Tensor:
        _, c, h, w = self.frames.shape
        x = torch.rand(2, c * self.args.stack, h, w, generator=torch.Generator().manual_seed(0))
        return x.to(next(encoder.parameters()).device)
