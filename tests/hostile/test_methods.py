"""Recipes that cannot learn are refused up front, with the fix in the message (#15.9)."""

from __future__ import annotations

import pytest
import torch

from selfsup.build import build_sampler
from selfsup.config import ConfigError
from selfsup.engine.config import TrainConfig
from selfsup.engine.loop import fit
from selfsup.methods import create_method
from selfsup.modalities.text import TextModality
from selfsup.run import run_config


def test_supervised_method_refuses_labels_of_a_single_class():
    """#15.9: with one class every pair is a positive, so SupCon & co. had no negative and
    trained on; the old build_sampler built a sampler for it."""
    with pytest.raises(ConfigError, match=r"1 class.*>= 2 classes.*sub-folder per class"):
        build_sampler({}, torch.zeros(40, dtype=torch.long), 8, seed=0)
    build_sampler({}, torch.arange(40) % 2, 8, seed=0)  # two classes are enough


def test_text_simcse_refuses_a_batch_of_one_sentence(tmp_path):
    """#15.9: SimCSE's negatives are the batch's other sentences; at batch size 1 the old code
    trained at loss 0 without a word."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"a {w} is on the {o}" for w in "abcd" for o in "xyz") + "\n")
    text = TextModality(run_config(None, [f"data={corpus}", "encoder=text_transformer_tiny",
                                          "data_args={vocab_size: 40}"], "text"))  # fmt: skip
    text.load(lambda *a: None)
    method = create_method("simcse", text.encoder())
    cfg = TrainConfig(
        steps=1, batch_size=1, optimizer="adamw", device="cpu", precision="fp32",
        out_dir=str(tmp_path / "run"), progress=False, channels_last=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"SimCSE needs >= 2 sentences.*train.batch_size >= 2"):
        fit(method, text.train, text.views("simcse_views"), cfg)
