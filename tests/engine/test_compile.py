"""train.compile: the compiled step trains like the eager one; bad values are refused."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from selfsup.augment.recipes import simclr_views
from selfsup.augment.split import split_views
from selfsup.build import build_method
from selfsup.data.memory import InMemoryDataset
from selfsup.encoders import create_encoder
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import fit


def _data(n: int = 32, size: int = 16) -> InMemoryDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return InMemoryDataset(images, torch.randint(0, 4, (n,), generator=g))


def _fit(out, compile: str):
    torch.manual_seed(0)
    method = build_method("simclr", create_encoder("convnet_small", width=8), {})
    views = simclr_views(16)
    cfg = TrainConfig(
        steps=3, batch_size=16, lr=0.1, precision="fp32", device="cpu", progress=False,
        log_every=1, out_dir=str(out), compile=compile,
    )  # fmt: skip
    result = fit(method, _data(), views, cfg)
    return result, load_file(out / "encoder.safetensors"), method, views


@pytest.mark.slow  # ~1 min: inductor compiles the forward, backward and views on the CPU
def test_compiled_step_trains_like_the_eager_step(tmp_path):
    eager, w_eager, *_ = _fit(tmp_path / "eager", "none")
    compiled, w_compiled, method, views = _fit(tmp_path / "step", "step")
    # The whole forward and the views' deterministic half really ran compiled.
    assert method._compiled_call_impl is not None
    assert "_apply_chunk" in vars(views.groups[0][0])
    # Same keys as a plain module (compile is in place), same weights up to float reordering
    # after 3 SGD steps: a step that dropped a term or a view would differ by far more.
    assert w_eager.keys() == w_compiled.keys()
    for k, w in w_eager.items():
        torch.testing.assert_close(w_compiled[k], w, rtol=1e-3, atol=1e-4, msg=k)
    assert compiled.last_metrics["loss"] == pytest.approx(eager.last_metrics["loss"], rel=1e-3)


def test_compiled_views_equal_eager_views():
    x = torch.randint(0, 256, (8, 3, 20, 20), dtype=torch.uint8)
    views = simclr_views(16)
    eager = views(x, generator=torch.Generator().manual_seed(1))
    views.compile()
    views.compile()  # idempotent: no compiled function wrapped twice
    compiled = views(x, generator=torch.Generator().manual_seed(1))
    for a, b in zip(eager, compiled, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    _, device_half = split_views(simclr_views(16))  # --stream: the views after the crops
    device_half.compile()
    assert "_apply_chunk" in vars(device_half.inner.groups[0][0])


def test_compile_values():
    assert TrainConfig(compile=True).compile == "backbone"  # the old boolean setting
    assert TrainConfig(compile=False).compile == "none"
    with pytest.raises(ValueError, match="compile='all'"):
        TrainConfig(compile="all")
    with pytest.raises(ValueError, match="compile_mode='fast'"):
        TrainConfig(compile_mode="fast")
