"""fit() on files read by DataLoader workers: it trains, and the crops depend only on the step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from selfsup.augment.split import split_views
from selfsup.build import build_method, build_views
from selfsup.data.stream import ImageFiles
from selfsup.encoders import create_encoder
from selfsup.engine.checkpoint import list_checkpoints
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import fit
from tests.data.test_stream import make_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("stream") / "f", n_per_class=8)


def _fit(folder: Path, out: Path, method: str = "simclr", **train):
    torch.manual_seed(0)
    method_obj = build_method(method, create_encoder("convnet_small", width=4), {})
    crops, device_views = split_views(build_views(method, "", 16))
    files = ImageFiles.from_folder(folder, transform=crops, seed=0)
    base = dict(steps=4, batch_size=8, lr=0.1, checkpoint_every=2, log_every=1, workers=0)
    cfg = TrainConfig(
        precision="fp32", device="cpu", progress=False, out_dir=str(out), deterministic=True,
        **{**base, **train},
    )  # fmt: skip
    config = {"method": method, "train": {"lr": cfg.lr, "resume": cfg.resume}}
    return fit(method_obj, files, device_views, cfg, run_config=config)


def test_streaming_fit_trains_and_workers_do_not_change_the_result(folder, tmp_path):
    a = _fit(folder, tmp_path / "w0", workers=0)
    _fit(folder, tmp_path / "w2", workers=2)
    assert a.steps == 4 and torch.isfinite(torch.tensor(a.last_metrics["loss"]))
    enc = "encoder.safetensors"
    assert (tmp_path / "w0" / enc).read_bytes() == (tmp_path / "w2" / enc).read_bytes()
    assert a.samples_per_second > 0


def test_streaming_resume_equals_uninterrupted(folder, tmp_path):
    _fit(folder, tmp_path / "full", steps=6)
    _fit(folder, tmp_path / "part", steps=6, checkpoint_every=1, keep_checkpoints=9)
    for step, path in list_checkpoints(tmp_path / "part"):
        if step > 3:
            path.unlink()
    (tmp_path / "part" / "encoder.safetensors").unlink()
    result = _fit(folder, tmp_path / "part", steps=6, resume=True, workers=2)
    assert result.resumed_from == 3
    full = (tmp_path / "full" / "encoder.safetensors").read_bytes()
    assert (tmp_path / "part" / "encoder.safetensors").read_bytes() == full


def test_streaming_passes_labels_to_label_methods(folder, tmp_path):
    result = _fit(folder, tmp_path / "supcon", method="supcon", steps=2)
    assert torch.isfinite(torch.tensor(result.last_metrics["loss"]))


def test_ranks_read_the_halves_of_the_single_process_batch(folder):
    """Under DDP each rank reads its rows of the global batch with the same crops: together
    they hold exactly the crops one process reads (crops are seeded by step and file)."""
    from selfsup.engine.batches import EpochBatches, StreamBatches

    crops, _ = split_views(build_views("simclr", "", 16))
    files = ImageFiles.from_folder(folder, transform=crops, seed=3)
    cpu = torch.device("cpu")

    def read(rank: int, world: int) -> list:
        batches = EpochBatches(len(files), 8, seed=1, rank=rank, world=world)
        source = StreamBatches(files, batches, cpu, 1, 3, workers=1)
        return [source.next(step) for step in (1, 2)]

    one = read(0, 1)
    halves = [read(r, 2) for r in range(2)]
    for step in range(2):
        views, y, n = one[step]
        assert n == 8 and y.shape == (8,)
        for v, view in enumerate(views):
            both = torch.cat([halves[r][step][0][v] for r in range(2)])
            assert torch.equal(both, view) and view.dtype == torch.uint8
        assert torch.equal(torch.cat([halves[r][step][1] for r in range(2)]), y)


def test_default_workers_leave_two_cores_to_the_step(monkeypatch):
    import os

    from selfsup.engine import config

    for cores, want in ((1, 0), (2, 0), (4, 3), (16, 8)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, c=cores: set(range(c)))
        assert config.default_workers() == want
    assert TrainConfig(workers=3).loader_workers == 3


def test_multicrop_views_of_two_sizes_stream_and_reach_the_device_half(folder):
    from selfsup.augment.recipes import multicrop_views
    from selfsup.engine.batches import EpochBatches, StreamBatches

    crops, device_views = split_views(multicrop_views(16, n_local=2))
    files = ImageFiles.from_folder(folder, transform=crops)
    source = StreamBatches(files, EpochBatches(len(files), 4), torch.device("cpu"), 0, 1, 0)
    views, _, n = source.next(0)
    assert n == 4 and [v.shape[-1] for v in views] == [16, 16, 8, 8]
    out = device_views(views, torch.Generator().manual_seed(0))
    assert [tuple(o.shape) for o in out] == [(4, 3, 16, 16)] * 2 + [(4, 3, 8, 8)] * 2
    assert all(o.dtype == torch.float32 for o in out)
