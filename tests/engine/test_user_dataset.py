"""fit() on a user's own map-style Dataset: the in-memory path's samples step by step, tuples,
numpy, padded token ids, clear errors, exact resume, and the runnable examples of
docs/datasets.md."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, IterableDataset

from selfsup.augment.text_views import TextViews
from selfsup.build import build_method, build_views
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine.batches import DatasetBatches, EpochBatches, collate_samples
from selfsup.engine.checkpoint import list_checkpoints
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import TrainResult, fit
from selfsup.methods import create_method, list_methods

DOC = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
CPU = torch.device("cpu")
SPECIALS = torch.tensor([0, 1, 2, 3, 4])  # pad, unk, cls, sep, mask


def _images(n: int = 32, size: int = 8) -> torch.Tensor:
    """(n, 3, size, size) uint8, the same every call."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


class Images(Dataset):
    """A user's dataset over a tensor: bare samples, (sample, target), or numpy samples."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None, numpy: bool = False):
        self.x, self.y, self.numpy = x, y, numpy

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        sample = self.x[i].numpy() if self.numpy else self.x[i]
        return sample if self.y is None else (sample, int(self.y[i]), f"extra {i}")


class Sentences(Dataset):
    """Token ids `[CLS] w... [SEP]` of lengths 4..11 (different per sample), 1-D long."""

    def __init__(self, n: int = 32, vocab: int = 50):
        g = torch.Generator().manual_seed(1)
        lengths = torch.randint(2, 10, (n,), generator=g).tolist()
        words = [torch.randint(5, vocab, (k,), generator=g) for k in lengths]
        self.rows = [torch.cat([torch.tensor([2]), w, torch.tensor([3])]) for w in words]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.rows[i]


class Returns(Dataset):
    """Every sample is `value` (a PIL image, a str, a dict ...)."""

    def __init__(self, value: object, n: int = 16):
        self.value, self.n = value, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> object:
        return self.value


def _cfg(out: Path, **train) -> TrainConfig:
    base = dict(steps=4, batch_size=8, lr=0.1, checkpoint_every=2, log_every=1, workers=0)
    return TrainConfig(
        precision="fp32", device="cpu", progress=False, out_dir=str(out), deterministic=True,
        channels_last=False, **{**base, **train},
    )  # fmt: skip


def _fit_images(train, out: Path, method: str = "simclr", **train_cfg) -> TrainResult:
    torch.manual_seed(0)
    model = build_method(method, create_encoder("convnet_small", width=4), {})
    cfg = _cfg(out, **train_cfg)
    config = {"method": method, "train": {"lr": cfg.lr, "resume": cfg.resume}}
    return fit(model, train, build_views(method, "", 8), cfg, run_config=config)


def _simcse(encoder):
    if "simcse" in list_methods():
        return create_method("simcse", encoder)
    from selfsup.methods.simcse import SimCSE

    return SimCSE(encoder)


def _fit_text(out: Path, **train_cfg) -> TrainResult:
    torch.manual_seed(0)
    enc = create_encoder("text_transformer_tiny", vocab_size=50, dim=32, max_len=16)
    cfg = _cfg(out, **{"optimizer": "adamw", "lr": 1e-3, **train_cfg})
    config = {"method": "simcse", "train": {"lr": cfg.lr, "resume": cfg.resume}}
    return fit(_simcse(enc), Sentences(), TextViews(SPECIALS), cfg, run_config=config)


def _losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows]


def test_user_dataset_trains_exactly_as_the_in_memory_path(tmp_path):
    x = _images()
    _fit_images(InMemoryDataset(x), tmp_path / "memory")
    _fit_images(Images(x), tmp_path / "user")
    memory, user = _losses(tmp_path / "memory"), _losses(tmp_path / "user")
    assert len(memory) == 4 and user == memory  # the same samples and views, step by step
    enc = "encoder.safetensors"
    assert (tmp_path / "user" / enc).read_bytes() == (tmp_path / "memory" / enc).read_bytes()


def test_batches_are_the_epoch_batches_rows_with_targets_from_tuples_and_numpy():
    x, y = _images(), torch.arange(32) % 4
    batches = EpochBatches(32, 8, seed=3)
    for train, want_y in [(Images(x), None), (Images(x, y, numpy=True), y)]:
        source = DatasetBatches(train, batches, CPU, 1, 4, workers=0)
        for step in (1, 2, 3):
            xb, yb, n = source.next(step)
            idx = batches.indices(step)
            assert n == 8 and xb.dtype == torch.uint8 and torch.equal(xb, x[idx])
            assert yb is None if want_y is None else torch.equal(yb, want_y[idx])
    # -1 is "no label" (as InMemoryDataset and ImageFiles mark it): no targets for the method
    unlabeled = Images(x, torch.full((32,), -1))
    assert DatasetBatches(unlabeled, batches, CPU, 0, 1, workers=0).next(0)[1] is None


def test_tuple_targets_reach_a_label_method_and_numpy_samples_train(tmp_path):
    x, y = _images(), torch.arange(32) % 4
    result = _fit_images(Images(x, y, numpy=True), tmp_path / "supcon", method="supcon", steps=2)
    assert np.isfinite(result.last_metrics["loss"])


def test_variable_length_token_ids_are_padded_and_train_with_text_views(tmp_path):
    data = Sentences()
    batches = EpochBatches(len(data), 8)
    ids, y, n = DatasetBatches(data, batches, CPU, 0, 1, workers=0).next(0)
    rows = [data[i] for i in batches.indices(0).tolist()]
    longest = max(len(r) for r in rows)
    assert y is None and n == 8 and ids.shape == (8, longest) and ids.dtype == torch.long
    for row, padded in zip(rows, ids, strict=True):
        assert torch.equal(padded[: len(row)], row) and not padded[len(row) :].any()
    result = _fit_text(tmp_path / "simcse", steps=3)
    assert np.isfinite(result.last_metrics["loss"])


def test_collate_pads_with_the_datasets_pad_id():
    samples = [(0, torch.tensor([2, 7, 3]), None), (5, torch.tensor([2, 3]), None)]
    x, y = collate_samples(samples, pad_id=9)
    assert y is None and x.tolist() == [[2, 7, 3], [2, 3, 9]]


@pytest.mark.parametrize("workers", [0, 2])  # from a worker: the same ValueError and message
def test_a_sample_that_is_not_a_tensor_says_what_to_return(tmp_path, workers):
    from PIL import Image

    picture = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match=r"(?s)Returns\[\d+\].*PIL.*Image.*uint8 \(C, H, W\)"):
        _fit_images(Returns(picture), tmp_path / "pil", workers=workers)
    with pytest.raises(ValueError, match=r"(?s)type builtins\.str.*token ids.*encode\("):
        _fit_images(Returns("a sentence"), tmp_path / "str", workers=workers)
    bad_target = Returns((torch.zeros(3, 8, 8, dtype=torch.uint8), "cat"))
    with pytest.raises(ValueError, match=r"target 'cat' \(str\).*integer class id"):
        _fit_images(bad_target, tmp_path / "tgt", workers=workers)


def test_samples_of_different_shapes_name_the_dataset_the_shapes_and_the_index():
    class Sizes(Dataset):
        def __len__(self) -> int:
            return 8

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.zeros(3, 8, 8 if i % 2 else 6, dtype=torch.uint8)

    source = DatasetBatches(Sizes(), EpochBatches(8, 8), CPU, 0, 1, workers=0)
    with pytest.raises(ValueError, match=r"(?s)Sizes\[\d\] has shape \(3, 8, \d\) but Sizes\[\d\] "
                       r"has shape \(3, 8, \d\).*Resize or crop"):  # fmt: skip
        source.next(0)


def test_fit_refuses_what_it_cannot_index_before_claiming_a_folder(tmp_path):
    class Stream(IterableDataset):
        def __iter__(self):
            yield from _images()

        def __len__(self) -> int:
            return 32

    for bad in (object(), (torch.zeros(3) for _ in range(4)), Stream()):
        with pytest.raises(TypeError, match=r"(?s)InMemoryDataset.*ImageFiles.*__len__ and "):
            _fit_images(bad, tmp_path / "bad")
        assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("modality", ["image", "text"])  # text: dropout draws the global RNG
def test_user_dataset_resume_equals_uninterrupted(tmp_path, modality):
    def run(out: Path, **train) -> TrainResult:
        if modality == "text":
            return _fit_text(out, **train)
        return _fit_images(Images(_images(), torch.arange(32) % 4), out, **train)

    run(tmp_path / "full")
    run(tmp_path / "part", checkpoint_every=1, keep_checkpoints=9)
    for step, path in list_checkpoints(tmp_path / "part"):
        if step > 2:  # as if killed after step 2
            path.unlink()
    (tmp_path / "part" / "encoder.safetensors").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an unloadable checkpoint would silently restart
        result = run(tmp_path / "part", resume=True, checkpoint_every=1, workers=2)
    assert result.resumed_from == 2
    full = (tmp_path / "full" / "encoder.safetensors").read_bytes()
    assert (tmp_path / "part" / "encoder.safetensors").read_bytes() == full


def test_docs_datasets_examples_run(tmp_path, monkeypatch):
    """Every ```python block of docs/datasets.md runs as written (each is a few steps)."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks and "class" in blocks[0] and "fit(" in blocks[0]
    monkeypatch.chdir(tmp_path)
    for k, code in enumerate(blocks):
        scope: dict = {}
        exec(compile(code, f"{DOC}:python block {k + 1}", "exec"), scope)  # noqa: S102 (our doc)
        assert scope["features"].ndim == 2 and torch.isfinite(scope["features"]).all()
