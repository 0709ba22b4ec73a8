import pytest
import torch

from selfsup.augment import recipes
from selfsup.data import load_digits
from selfsup.encoders import create_encoder
from selfsup.eval.finetune import few_label_finetune, finetune, label_fraction


def test_label_fraction_is_class_balanced_and_seeded():
    train, _ = load_digits(8)
    sub = label_fraction(train, 0.1, seed=3)
    counts = torch.bincount(sub.targets, minlength=10)
    assert counts.min() >= 12 and counts.max() <= 14  # ~10 % of ~126 per class
    assert torch.equal(sub.targets, label_fraction(train, 0.1, seed=3).targets)
    assert len(label_fraction(train, 0.001)) == 10  # at least one per class


def test_finetune_learns_and_leaves_the_encoder_alone():
    torch.manual_seed(0)
    train, test = load_digits(8)
    encoder = create_encoder("convnet_small", width=8)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    r = finetune(encoder, train, test, recipes.eval_view(8), 0.1, min_steps=60, precision="fp32")
    assert r["labels"] == 126 and r["steps"] == 60
    assert r["top1"] > 0.5  # chance is 0.1; the random-init encoder is fine-tuned end to end
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_few_label_finetune_names_its_rows():
    train, test = load_digits(8)
    encoder = create_encoder("convnet_small", width=4)
    rows = few_label_finetune(
        encoder, train, test, recipes.eval_view(8), (0.01, 0.1), min_steps=2, epochs=1
    )
    assert set(rows) == {"finetune_1pct", "finetune_10pct"}
    assert all(0 <= v <= 1 for v in rows.values())


def test_adamw_finetune_learns():
    """MAE's fine-tuning recipe (AdamW, warm-up, cosine) trains end to end. (A ViT from scratch
    barely moves in this budget: 25 % after 60 steps, so the check uses the small convnet.)"""
    torch.manual_seed(0)
    train, test = load_digits(8)
    encoder = create_encoder("convnet_small", width=8)
    r = finetune(
        encoder, train, test, recipes.eval_view(8), 0.3, epochs=10, batch_size=64,
        min_steps=1, lr=3e-3, precision="fp32", optimizer="adamw", warmup_fraction=0.05,
    )  # fmt: skip
    assert r["top1"] > 0.5, r  # chance is 0.1


def test_unknown_finetune_optimizer_is_named():
    train, test = load_digits(8)
    encoder = create_encoder("convnet_small", width=4)
    with pytest.raises(ValueError, match="'lamb'.*'sgd' or 'adamw'"):
        finetune(encoder, train, test, recipes.eval_view(8), 0.1, min_steps=1, optimizer="lamb")


def test_fp16_finetune_scales_the_loss(monkeypatch):
    """#19.4: fp16 fine-tuning steps through a GradScaler (fp16 gradients underflow without)."""
    scaled = []

    class SpyScaler(torch.amp.GradScaler):
        def scale(self, outputs):
            scaled.append(self.is_enabled())
            return super().scale(outputs)

    monkeypatch.setattr(torch.amp, "GradScaler", SpyScaler)
    train, test = load_digits(8)
    encoder = create_encoder("convnet_small", width=4)
    r = finetune(encoder, train, test, recipes.eval_view(8), 0.01, min_steps=3, epochs=1,
                 precision="fp16")  # fmt: skip
    assert scaled == [True, True, True] and 0 <= r["top1"] <= 1
