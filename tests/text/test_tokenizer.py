import pytest
import torch

from selfsup.data.tokenizer import SPECIAL_TOKENS, load_tokenizer, train_tokenizer

CORPUS = [
    "a man is playing a guitar .",
    "a woman is slicing an onion .",
    "two dogs are running through the snow .",
    "the children are playing in the park .",
    "a man is riding a horse on the beach .",
] * 20


@pytest.fixture(scope="module", params=["wordpiece", "bpe"])
def tok(request):
    return train_tokenizer(CORPUS, vocab_size=300, kind=request.param, max_length=32)


def test_special_ids_fixed(tok):
    assert [tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id] == [0, 1, 2, 3, 4]
    assert [tok.tokenizer.id_to_token(i) for i in range(5)] == list(SPECIAL_TOKENS)


def test_round_trip(tok):
    sentences = ["a man is playing a guitar.", "two children are running on the beach."]
    ids = tok.encode(sentences)
    assert ids.dtype == torch.long and ids.shape[0] == 2
    assert (ids[:, 0] == tok.cls_id).all()
    assert tok.decode(ids) == sentences


def test_padding_and_truncation(tok):
    ids = tok.encode(["a man", "a man is riding a horse on the beach " * 5], max_length=16)
    assert ids.shape[1] == 16  # truncated to max_length
    assert ids[1, -1] == tok.sep_id  # [SEP] kept last after truncation
    short = ids[0]
    n = int((short != tok.pad_id).sum())
    assert short[n - 1] == tok.sep_id and (short[n:] == tok.pad_id).all()
    assert tok.special_mask(ids)[:, 0].all()


def test_save_load_same_ids(tok, tmp_path):
    path = tok.save(tmp_path / "run")
    assert path.name == "tokenizer.json"
    for loaded in (load_tokenizer(tmp_path / "run"), load_tokenizer(path)):
        assert loaded.vocab_size == tok.vocab_size and loaded.max_length == 32
        assert torch.equal(loaded.encode(CORPUS[:5]), tok.encode(CORPUS[:5]))


def test_unknown_kind_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="wordpiece"):
        train_tokenizer(CORPUS, kind="unigram")
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "nothing")
