"""Text runs go through the one training loop (selfsup.engine.fit), built by the text modality."""

import pytest
import torch

from selfsup.config import ConfigError
from selfsup.encoders.text_transformer import encode_sentences
from selfsup.engine import TrainConfig, fit
from selfsup.methods import create_method
from selfsup.modalities.text import TextModality
from selfsup.run import run_config

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


def text_modality(data, *overrides: str) -> TextModality:
    """The text modality of a run on `data` with a tiny encoder and vocabulary, loaded."""
    cfg = run_config(None, [f"data={data}", "encoder=text_transformer_tiny",
                            "data_args={vocab_size: 60}", *overrides], "text")  # fmt: skip
    text = TextModality(cfg)
    text.load(lambda *a: None)
    return text


@pytest.mark.parametrize("method, views", [("mlm", "mlm_views"), ("simcse", "deletion,crop")])
def test_fit_and_encode(corpus, tmp_path, method, views):
    text = text_modality(corpus)
    model = create_method(method, text.encoder())
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
    result = fit(model, text.train, text.views(views), cfg)
    assert result.steps == 2 and (tmp_path / "run" / "encoder.safetensors").exists()
    emb = encode_sentences(model.backbone, text.tokenizer, SENTENCES[:4])
    assert emb.shape == (4, 128) and torch.isfinite(emb).all()


def test_supervised_pairs_with_hard_negatives(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "".join(f"{s}\t{s} now\t{SENTENCES[-1 - i]}\n" for i, s in enumerate(SENTENCES))
    )
    text = text_modality(path)
    assert text.train.inputs.shape[:2] == (len(SENTENCES), 3)
    views = text.views("simcse_views")(text.train.inputs[:4])
    assert len(views) == 3
    out = create_method("simcse", text.encoder()).training_step(views)
    out.loss.backward()


def test_image_recipes_and_pairs_for_mlm_are_refused_with_the_text_choices(corpus, tmp_path):
    text = text_modality(corpus)
    with pytest.raises(ConfigError, match="simcse_views, mlm_views"):
        text.views("simclr_views")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{s}\t{s} now\n" for s in SENTENCES))
    paired = text_modality(pairs)
    with pytest.raises(ConfigError, match="one sentence a line"):
        paired.training(paired.views("mlm_views"))


def test_weighted_pooling_gets_sif_weights_of_the_data(corpus):
    text = text_modality(corpus, "encoder_args={pooling: weighted}")
    w, tok = text.encoder().token_weights, text.tokenizer
    assert torch.all(w[tok.special_ids] == 0)
    a_id, car_id = (tok.encode([word], 8)[0, 1].item() for word in ("a", "car"))
    assert w[a_id] < w[car_id] < 1  # "a" is in every sentence, "car" in a third of them
