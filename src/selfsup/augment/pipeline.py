"""View pipelines: a batch of images in, a batch of augmented, normalized views out.

Order as SimCLR (Chen et al. 2020, App. A): crop -> flip -> colour jitter -> grayscale ->
blur -> solarize -> normalize. Everything runs on the batch's device with fresh random
parameters per sample; `generator` (on that device) makes the views reproducible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor

from selfsup.augment.blur import gaussian_blur, sample_blur_sigma, simclr_kernel_size
from selfsup.augment.color import (
    JitterParams,
    apply_color_jitter,
    apply_grayscale,
    sample_jitter_params,
    solarize,
)
from selfsup.augment.crop import center_crop_resize, resized_crop, sample_crop_boxes
from selfsup.augment.normalize import CIFAR10_MEAN, CIFAR10_STD, normalize

# On CPU the per-pixel ops run on chunks of about this many pixels per colour plane (64 CIFAR
# images): the chunk's planes stay in cache and its temporaries are recycled by malloc instead
# of being page-faulted in afresh; measured ~2x on the colour jitter (2-core box).
# Accelerators take the batch in one piece.
_CPU_CHUNK_PIXELS = 1 << 16


def _plain(values: dict) -> dict:
    """Tuples -> lists, so the description dumps with yaml.safe_dump and json alike."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _to_rgb(x: Tensor) -> Tensor:
    """Grayscale (N, 1, H, W) -> (N, 3, H, W); 3-channel input is returned as it is."""
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def _coins(n: int, p: float, device: torch.device, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, device=device, generator=generator) < p


def _chunks(n: int, size: int, device: torch.device) -> list[slice]:
    step = n if device.type != "cpu" else max(1, _CPU_CHUNK_PIXELS // (size * size))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


@dataclass(frozen=True)
class ViewParams:
    """The per-sample random draws of one `ViewPipeline` call (N rows each; None = op off).

    boxes: (N, 4) long crop boxes [top, left, height, width]; flips: (N,) bool;
    jitter: colour-jitter parameters; gray, solarize: (N,) bool; blur_sigma: (N,) float,
    0 = no blur.
    """

    boxes: Tensor
    flips: Tensor
    jitter: JitterParams | None
    gray: Tensor | None
    blur_sigma: Tensor | None
    solarize: Tensor | None

    def __getitem__(self, rows: slice) -> ViewParams:
        """The parameters of samples `rows` (the chunks of `ViewPipeline.apply`)."""
        cut = {f.name: getattr(self, f.name) for f in fields(self)}
        return ViewParams(**{k: None if v is None else v[rows] for k, v in cut.items()})


@dataclass
class ViewPipeline:
    """One random view per image, SimCLR-style; defaults are SimCLR's CIFAR-10 recipe.

    Defaults (Chen et al. 2020, App. A and B.9): crop scale (0.08, 1.0), ratio (3/4, 4/3);
    flip 0.5; colour jitter 0.4/0.4/0.4/0.1 (strength 0.5) with p 0.8; grayscale 0.2; no blur
    (p 0.5 with sigma (0.1, 2.0) on ImageNet) and no solarize (BYOL uses 0.2 on one view);
    CIFAR-10 mean/std. blur_kernel None means 10 % of `size`, made odd (SimCLR).

    __call__(images, generator=None): images (N, C, H, W) uint8 (0..255) or float in [0, 1],
    C in {1, 3}, any H, W -> (N, 3, size, size) float32 (float input keeps its dtype),
    normalized.
    `sample` + `apply` are the same call split into its random and deterministic halves.
    """

    size: int = 32
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    jitter_p: float = 0.8
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD
    blur_kernel: int | None = None

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n, _, h, w = images.shape
        return self.apply(images, self.sample(n, h, w, images.device, generator))

    def sample(
        self,
        n: int,
        h: int,
        w: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> ViewParams:
        """Draw every random parameter for n images of size (h, w), for the whole batch at once
        (so the views do not depend on how `apply` chunks the work)."""
        device = torch.device(device)
        boxes = sample_crop_boxes(n, h, w, self.scale, self.ratio, device, generator)
        flips = _coins(n, self.flip_p, device, generator)
        jitter = gray = sigma = sol = None
        strengths = (self.brightness, self.contrast, self.saturation, self.hue)
        if self.jitter_p > 0 and any(strengths):
            jitter = sample_jitter_params(n, *strengths, self.jitter_p, device, generator)
        if self.gray_p > 0:
            gray = _coins(n, self.gray_p, device, generator)
        if self.blur_p > 0:
            sigma = sample_blur_sigma(n, self.blur_sigma, self.blur_p, device, generator)
        if self.solarize_p > 0:
            sol = _coins(n, self.solarize_p, device, generator)
        return ViewParams(boxes, flips, jitter, gray, sigma, sol)

    def apply(self, images: Tensor, params: ViewParams) -> Tensor:
        """The deterministic half: images (N, C, H, W) uint8 or float -> (N, 3, s, s) float32."""
        n, s = images.shape[0], self.size
        dtype = images.dtype if images.is_floating_point() else torch.float32
        out = torch.empty(n, 3, s, s, dtype=dtype, device=images.device)
        for rows in _chunks(n, s, images.device):
            self._apply_chunk(images[rows], params[rows], out[rows])
        return out

    def _apply_chunk(self, images: Tensor, params: ViewParams, out: Tensor) -> None:
        # The only float conversion happens inside the crop; the flip is fused into it.
        # Gray (C = 1) input is cropped first and repeated to RGB after: same result, 3x less.
        x = _to_rgb(resized_crop(images, params.boxes, self.size, hflip=params.flips))
        if params.jitter is not None:
            x = apply_color_jitter(x, params.jitter, inplace=True)  # x is ours: no copies
        if params.gray is not None:
            x = apply_grayscale(x, params.gray, inplace=True)
        if params.blur_sigma is not None:
            kernel = self.blur_kernel or simclr_kernel_size(self.size)
            x = gaussian_blur(x, kernel, params.blur_sigma)
        if params.solarize is not None:
            x = solarize(x, 0.5, params.solarize)  # BYOL's threshold on [0, 1] images
        normalize(x, self.mean, self.std, out=out)  # straight into the batch's output

    def compile(self) -> None:
        """torch.compile the deterministic half in place (as `nn.Module.compile`): crop, jitter,
        grayscale, blur and normalize fuse into a few kernels instead of ~75 launches. The
        draws stay eager: a `torch.Generator` argument cannot be traced. Idempotent."""
        if "_apply_chunk" not in vars(self):
            self._apply_chunk = torch.compile(self._apply_chunk)  # type: ignore[method-assign]

    def describe(self) -> dict:
        """Plain-data description for the run config."""
        return {"type": "ViewPipeline", **_plain(asdict(self))}


@dataclass
class EvalView:
    """Deterministic evaluation view: centred crop (`crop_fraction` of the short side), resize
    to `size` (antialiased), normalize. Same call signature as `ViewPipeline`; the generator is
    ignored. images: (N, C, H, W) uint8 or float in [0, 1] -> (N, 3, size, size) float32.
    """

    size: int = 32
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD
    crop_fraction: float = 1.0

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = _to_rgb(center_crop_resize(images, self.size, self.crop_fraction))
        return normalize(x, self.mean, self.std)  # not in place: x may be a view of images

    def describe(self) -> dict:
        """Plain-data description for the run config."""
        return {"type": "EvalView", **_plain(asdict(self))}


class MultiView:
    """Several view pipelines over the same images: one view per pipeline.

    Pipelines may differ in size (multi-crop: 2 global + several local views, DINO/SwAV).
    __call__(images, generator=None) -> list of (N, 3, size_k, size_k) tensors.
    """

    def __init__(self, pipelines: Sequence[ViewPipeline | EvalView]) -> None:
        if not pipelines:
            raise ValueError("MultiView needs at least one pipeline")
        self.pipelines = list(pipelines)
        self.groups = _equal_groups(self.pipelines)  # (pipeline, its view positions)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        """Equal pipelines run once over the images repeated (SimCLR's two views: one pass over
        2N images instead of two over N). Every view still draws its own parameters. Half the
        kernel launches: SimCLR views on an H100 went from 280 k to 406 k views/s (CPU, 1 thread:
        25.2 k -> 26.0 k, side by side)."""

        def batch_for(slots: list[int]) -> Tensor:
            return images if len(slots) == 1 else images.repeat(len(slots), 1, 1, 1)

        return self.run_groups(batch_for, generator)

    def run_groups(
        self, batch_for: Callable[[list[int]], Tensor], generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """Run each group of equal pipelines once on `batch_for(its view positions)` (the
        groups' inputs stacked along the batch) and hand each position its share, in order."""
        views: list[Tensor | None] = [None] * len(self.pipelines)
        for pipeline, slots in self.groups:
            out = pipeline(batch_for(slots), generator).chunk(len(slots))
            for slot, view in zip(slots, out, strict=True):
                views[slot] = view
        return views  # type: ignore[return-value]

    def compile(self) -> None:
        """Compile each distinct pipeline's deterministic half (`ViewPipeline.compile`)."""
        for pipeline, _ in self.groups:
            if isinstance(pipeline, ViewPipeline):
                pipeline.compile()

    def __len__(self) -> int:
        return len(self.pipelines)

    def __repr__(self) -> str:
        return f"MultiView({self.pipelines!r})"

    def describe(self) -> dict:
        """Plain-data description for the run config."""
        return {"type": "MultiView", "views": [p.describe() for p in self.pipelines]}


def _equal_groups(pipelines: list) -> list[tuple[ViewPipeline | EvalView, list[int]]]:
    """(pipeline, the view positions it makes), equal pipelines grouped, in order."""
    groups: list[tuple[ViewPipeline | EvalView, list[int]]] = []
    for i, p in enumerate(pipelines):
        match = next((g for g in groups if g[0] == p), None)
        if match is None:
            groups.append((p, [i]))
        else:
            match[1].append(i)
    return groups
