"""Text runs go through the one training loop (selfsup.engine.fit)."""

import pytest
import torch

from selfsup.encoders.text_transformer import encode_sentences
from selfsup.engine import TrainConfig, fit
from selfsup.methods.simcse import build_text_run

SENTENCES = [
    f"a {w} is {v} the {o}"
    for w in ("man", "dog", "girl")
    for v in ("near", "on", "under")
    for o in ("car", "bed", "tree")
]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(SENTENCES * 2) + "\n")
    return path


@pytest.mark.parametrize(
    "method, views",
    [("mlm", ()), ("simcse", ("deletion", "crop"))],
)
def test_fit_and_encode(corpus, tmp_path, method, views):
    run = build_text_run(
        method, corpus, encoder="text_transformer_tiny", vocab_size=60, view_names=views
    )
    cfg = TrainConfig(
        steps=2,
        batch_size=8,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=0.01,
        out_dir=str(tmp_path / "run"),
        progress=False,
        log_every=1,
        channels_last=False,
    )
    result = fit(run.method, run.train, run.views, cfg)
    assert result.steps == 2 and (tmp_path / "run" / "encoder.safetensors").exists()
    emb = encode_sentences(run.method.backbone, run.tokenizer, SENTENCES[:4])
    assert emb.shape == (4, 128) and torch.isfinite(emb).all()


def test_supervised_pairs_with_hard_negatives(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "".join(f"{s}\t{s} now\t{SENTENCES[-1 - i]}\n" for i, s in enumerate(SENTENCES))
    )
    run = build_text_run("simcse", path, encoder="text_transformer_tiny", vocab_size=60)
    assert run.train.inputs.shape[:2] == (len(SENTENCES), 3)
    views = run.views(run.train.inputs[:4])
    assert len(views) == 3
    out = run.method.training_step(views)
    out.loss.backward()


def test_unknown_method(corpus):
    with pytest.raises(ValueError, match="mlm"):
        build_text_run("bert", corpus, encoder="text_transformer_tiny", vocab_size=60)


def test_weighted_pooling_gets_sif_weights_of_the_data(corpus):
    run = build_text_run(
        "simcse", corpus, encoder="text_transformer_tiny", vocab_size=60, pooling="weighted"
    )
    w, tok = run.method.backbone.token_weights, run.tokenizer
    assert torch.all(w[tok.special_ids] == 0)
    a_id, car_id = (tok.encode([word], 8)[0, 1].item() for word in ("a", "car"))
    assert w[a_id] < w[car_id] < 1  # "a" is in every sentence, "car" in a third of them
