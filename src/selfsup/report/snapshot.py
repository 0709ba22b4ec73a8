"""What the report needs from the model and data, computed once at the end of a run.

Saved as `report_data.npz` in the run folder so `selfsup report RUN` redraws every picture from
the folder alone (no data set, no model): test embeddings before (random init) and after
training, cosine similarities of positive and negative pairs before and after, a retrieval
grid's images, and a few augmented views. Everything is small (a few MB at most). An MAE run
adds the `recon_*` arrays of `selfsup.report.reconstructions.reconstruction_data`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.data.memory import InMemoryDataset
from selfsup.engine.run_dir import write_atomic
from selfsup.eval.features import extract_features

Views = Callable[..., list[torch.Tensor]]
FILE = "report_data.npz"


def _rows(n: int, k: int, seed: int) -> torch.Tensor:
    """k row indices out of n (all of them if k >= n), sorted, seeded."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[: min(k, n)].sort().values


@torch.no_grad()
def pair_similarities(
    encoder: nn.Module, images: torch.Tensor, views: Views, device, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of positive pairs (two views of one image) and of negative pairs (views
    of two different images), from the encoder's representation.

    images: (N, C, H, W) uint8 -> (pos (N,), neg (N,)): neg pairs image i with image i+1.
    """
    was_training = encoder.training
    encoder.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    made = views(images.to(device), generator=gen)
    if len(made) < 2:  # a one-view recipe (MAE): a second call draws fresh parameters
        made = made + views(images.to(device), generator=gen)
    x_a, x_b = made[:2]
    z_a = F.normalize(encoder(x_a).float(), dim=1)
    z_b = F.normalize(encoder(x_b).float(), dim=1)
    encoder.train(was_training)
    pos = (z_a * z_b).sum(1)
    neg = (z_a * z_b.roll(1, dims=0)).sum(1)
    return pos.cpu().numpy(), neg.cpu().numpy()


def _to_uint8(x: torch.Tensor, mean, std) -> np.ndarray:
    """Normalized views (N, 3, s, s) -> uint8 images for display (undo the normalization)."""
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return ((x.cpu().float() * s + m).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def example_views(
    images: torch.Tensor, views: Views, n_views: int = 6, seed: int = 0
) -> np.ndarray | None:
    """(N, 1 + n_views, 3, s, s) uint8: each image then `n_views` random views (first view's
    recipe). None when the views are not image pipelines with mean/std (e.g. text)."""
    pipelines = getattr(views, "pipelines", None)
    if not pipelines or not hasattr(pipelines[0], "mean"):
        return None
    p = pipelines[0]
    gen = torch.Generator().manual_seed(seed)
    cols = [_to_uint8(p(images, generator=gen), p.mean, p.std) for _ in range(n_views)]
    orig = F.interpolate(images.float(), size=cols[0].shape[-2:], mode="bilinear")
    orig = orig.expand(-1, 3, -1, -1).round().clamp(0, 255).to(torch.uint8).numpy()
    return np.stack([orig, *cols], axis=1)


def retrieval_examples(
    test_f: torch.Tensor, train_f: torch.Tensor, k: int, queries: torch.Tensor
) -> torch.Tensor:
    """(Q, k) indices of the k most cosine-similar train rows for each test row in `queries`."""
    q = F.normalize(test_f[queries], dim=1)
    return (q @ F.normalize(train_f, dim=1).T).topk(min(k, len(train_f)), dim=1).indices


def collect(
    encoder: nn.Module,
    random_encoder: nn.Module | None,
    train: InMemoryDataset,
    test: InMemoryDataset,
    views: Views,
    transform: Callable[[torch.Tensor], torch.Tensor],
    device: str | torch.device = "cpu",
    precision: str = "bf16",
    max_embed: int = 2000,
    n_pairs: int = 512,
    n_queries: int = 8,
    k: int = 8,
    seed: int = 0,
    features: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, np.ndarray]:
    """Arrays for the report (module docstring); test must be labeled for the map and grid.

    max_embed: test rows embedded for the 2-D map (t-SNE cost grows with it).
    features: {"after"/"before": (train (N, D), test (M, D))} the evaluation already extracted
    (`selfsup.run.evaluate_run`); an encoder without them is encoded here.
    """
    features = features or {}
    device = torch.device(device)
    out: dict[str, np.ndarray] = {}
    rows = _rows(len(test), max_embed, seed)
    sub = test.subset(rows)
    encoders = {"after": encoder} | ({"before": random_encoder} if random_encoder else {})
    pair_imgs = test.inputs[_rows(len(test), n_pairs, seed + 1)]
    for tag, enc in encoders.items():
        enc.to(device)
        if tag in features:
            f = features[tag][1][rows]
        else:
            f = extract_features(enc, sub, transform, device=device, precision=precision)
        out[f"emb_{tag}"] = f.numpy().astype(np.float16)
        out[f"pos_{tag}"], out[f"neg_{tag}"] = pair_similarities(enc, pair_imgs, views, device)
    if test.targets is not None:
        out["emb_labels"] = test.targets[rows].numpy()
    if test.classes:
        out["classes"] = np.array(test.classes)
    queries = _rows(len(sub), n_queries, seed + 2)
    if "after" in features:
        train_f = features["after"][0]
    else:
        train_f = extract_features(encoder, train, transform, device=device, precision=precision)
    nbrs = retrieval_examples(torch.from_numpy(out["emb_after"]).float(), train_f, k, queries)
    out["query_images"] = sub.inputs[queries].numpy()
    out["neighbor_images"] = train.inputs[nbrs].numpy()  # (Q, k, C, H, W)
    if train.targets is not None and sub.targets is not None:
        out["query_labels"] = sub.targets[queries].numpy()
        out["neighbor_labels"] = train.targets[nbrs].numpy()
    grid = example_views(test.inputs[_rows(len(test), 6, seed + 3)], views, seed=seed)
    if grid is not None:
        out["view_images"] = grid
    return out


def save(data: dict[str, np.ndarray], run_dir: Path) -> Path:
    """Write `report_data.npz` (compressed) into `run_dir`."""
    path = Path(run_dir) / FILE
    buf = io.BytesIO()  # whole or not at all, and never through a symlink
    np.savez_compressed(buf, **data)
    write_atomic(path, buf.getvalue())
    return path


def load(run_dir: Path) -> dict[str, np.ndarray]:
    """The arrays of `report_data.npz` ({} when the run has none); no pickle is allowed."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
