"""bf16 on a CPU without fast bf16 kernels falls back to fp32 (issue 6), with one warning."""

import pytest
import torch

from selfsup.engine import loop


@pytest.fixture
def no_fast_bf16(monkeypatch):
    loop.cpu_has_fast_bf16.cache_clear()
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    yield
    loop.cpu_has_fast_bf16.cache_clear()


def _matmul_dtype(precision: str) -> torch.dtype:
    a = torch.randn(4, 4)
    with loop.autocast(torch.device("cpu"), precision):
        return (a @ a).dtype


def test_bf16_runs_in_bf16_where_the_cpu_has_it():
    loop.cpu_has_fast_bf16.cache_clear()
    if not loop.cpu_has_fast_bf16():
        pytest.skip("this CPU has no fast bf16: the fallback test below covers it")
    assert _matmul_dtype("bf16") == torch.bfloat16


def test_bf16_falls_back_to_fp32_without_fast_kernels(no_fast_bf16):
    with pytest.warns(UserWarning, match="no fast bf16.*fp32"):
        assert _matmul_dtype("bf16") == torch.float32
    assert _matmul_dtype("bf16") == torch.float32  # decided once: no second warning needed
    assert _matmul_dtype("fp32") == torch.float32
