import pytest
import torch

import selfsup.encoders.text_transformer  # noqa: F401  (registers the text encoders)
from selfsup.data.tokenizer import train_tokenizer
from selfsup.encoders.registry import create_encoder, list_encoders
from selfsup.encoders.text_transformer import TextTransformer, encode_sentences, sif_weights

TEXT_ENCODERS = list_encoders("text_transformer")


def test_sizes_registered():
    assert TEXT_ENCODERS == [
        "text_transformer_base",
        "text_transformer_mini",
        "text_transformer_small",
        "text_transformer_tiny",
    ]


@pytest.mark.parametrize(
    "name, pooling", [(n, "mean") for n in TEXT_ENCODERS] + [("text_transformer_tiny", "cls")]
)
def test_shapes(name, pooling):
    enc = create_encoder(name, vocab_size=50, pooling=pooling).eval()
    ids = torch.randint(5, 50, (3, 7))
    ids[1, 4:] = 0  # padding
    assert enc.forward_features(ids).shape == (3, 7, enc.num_features)
    assert enc(ids).shape == (3, enc.num_features)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_does_not_change_embedding(pooling):
    enc = TextTransformer(vocab_size=50, dim=32, depth=2, heads=2, pooling=pooling).eval()
    ids = torch.randint(5, 50, (4, 6))
    padded = torch.cat([ids, torch.zeros(4, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(enc(padded), enc(ids), atol=1e-5, rtol=1e-5)


def test_mean_pooling_ignores_padding_rows():
    enc = TextTransformer(vocab_size=50, dim=16, depth=1, heads=2).eval()
    ids = torch.tensor([[2, 7, 9, 3, 0, 0]])
    feats = enc.forward_features(ids)
    torch.testing.assert_close(enc(ids), feats[:, :4].mean(1))


def test_dropout_makes_two_passes_differ_in_training_only():
    enc = TextTransformer(vocab_size=50, dim=32, depth=2, heads=2)
    ids = torch.randint(5, 50, (2, 6))
    assert not torch.allclose(enc(ids), enc(ids))
    enc.eval()
    torch.testing.assert_close(enc(ids), enc(ids))


def test_bad_arguments():
    with pytest.raises(ValueError, match="pooling"):
        TextTransformer(pooling="max")
    enc = TextTransformer(vocab_size=50, dim=16, depth=1, heads=2, max_len=8)
    with pytest.raises(ValueError, match="max_len"):
        enc(torch.ones(1, 9, dtype=torch.long))


def test_encode_sentences_keeps_order_and_mode():
    sentences = ["a b c d e f", "a", "b c", "d e f"] * 3
    tok = train_tokenizer(sentences * 5, vocab_size=60)
    enc = TextTransformer(vocab_size=tok.vocab_size, dim=16, depth=1, heads=2)
    out = encode_sentences(enc, tok, sentences, batch_size=3)
    assert out.shape == (12, 16) and enc.training
    enc.eval()
    torch.testing.assert_close(out, enc(tok.encode(sentences)))


def test_weighted_pooling_is_the_token_weighted_mean():
    enc = TextTransformer(vocab_size=20, dim=8, depth=1, heads=2, pooling="weighted").eval()
    weights = torch.arange(20, dtype=torch.float) / 10
    enc.set_token_weights(weights)
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 5, 3, 0, 0, 0]])
    feats = enc.forward_features(ids)
    w = weights[ids] * (ids != 0)
    expected = (feats * w[..., None]).sum(1) / w.sum(1, keepdim=True)
    torch.testing.assert_close(enc(ids), expected)
    # Not the plain mean, and a zero-weight token does not count at all.
    assert not torch.allclose(enc(ids)[:1], feats[:1, :4].mean(1))
    enc.set_token_weights(torch.ones(20).index_fill(0, torch.tensor([2, 3]), 0.0))
    torch.testing.assert_close(enc(ids)[:1], feats[:1, 1:3].mean(1))


def test_token_weights_saved_only_when_used_and_checked():
    weighted = TextTransformer(vocab_size=20, dim=8, depth=0, pooling="weighted")
    assert "token_weights" in weighted.state_dict()
    assert "token_weights" not in TextTransformer(vocab_size=20, dim=8, depth=0).state_dict()
    with pytest.raises(ValueError, match="token weights"):
        weighted.set_token_weights(torch.ones(19))
    with pytest.raises(ValueError, match="token weights"):
        weighted.set_token_weights(-torch.ones(20))


def test_bag_without_positions_ignores_word_order():
    enc = TextTransformer(vocab_size=20, dim=8, depth=0, positions=False).eval()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    shuffled = torch.tensor([[2, 11, 7, 9, 3]])
    torch.testing.assert_close(enc(ids), enc(shuffled))
    assert not enc.position_embedding.requires_grad
    with_positions = TextTransformer(vocab_size=20, dim=8, depth=0).eval()
    assert not torch.allclose(with_positions(ids), with_positions(shuffled))


def test_sif_weights_follow_arora_et_al():
    special = torch.tensor([0, 1, 2, 3, 4])
    ids = torch.tensor([[2, 5, 5, 6, 3], [2, 5, 7, 3, 0]])  # 5 tokens: word 5 x3, 6 x1, 7 x1
    w = sif_weights(ids, vocab_size=9, special_ids=special, a=0.1)
    assert w.shape == (9,) and w[special].eq(0).all()
    torch.testing.assert_close(w[5], torch.tensor(0.1 / (0.1 + 3 / 5)))
    torch.testing.assert_close(w[6], torch.tensor(0.1 / (0.1 + 1 / 5)))
    assert w[8] == 1.0  # unseen: p(w) = 0
    assert w[5] < w[6] == w[7]  # frequent words weigh less
