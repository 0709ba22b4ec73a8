"""The Hugging Face adapter loads a tiny model saved to a local directory (nothing downloaded)."""

import pytest
import torch

from selfsup.encoders.registry import create_encoder
from tests.tiny_bert import save_tiny_bert

transformers = pytest.importorskip(
    "transformers", reason="transformers is optional and not installed: hf_text is untested here"
)


@pytest.fixture
def tiny_bert_dir(tmp_path):
    return save_tiny_bert(tmp_path)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_local_directory_loads(tiny_bert_dir, pooling):
    import selfsup.encoders.hf_text  # noqa: F401  (registers hf_text)

    enc = create_encoder("hf_text", path=str(tiny_bert_dir), pooling=pooling).eval()
    ids = torch.randint(1, 64, (3, 9))
    ids[0, 5:] = 0
    assert enc.num_features == 32
    assert enc.forward_features(ids).shape == (3, 9, 32)
    out = enc(ids)
    assert out.shape == (3, 32)
    torch.testing.assert_close(out[0], enc(ids[:1, :5])[0], atol=1e-5, rtol=1e-5)
