import torch
import torch.nn.functional as F

from selfsup.augment.text_views import MaskedTokenViews
from selfsup.encoders.text_transformer import TextTransformer
from selfsup.losses.mlm import masked_token_loss
from selfsup.methods.mlm import MaskedLanguageModel


def test_loss_only_on_chosen_positions():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=g)
    labels = torch.full((3, 5), -100)
    labels[0, 1], labels[2, 3] = 4, 7
    expected = F.cross_entropy(torch.stack([logits[0, 1], logits[2, 3]]), torch.tensor([4, 7]))
    torch.testing.assert_close(masked_token_loss(logits, labels), expected)
    changed = logits.clone()
    changed[labels == -100] = 100.0  # unchosen positions cannot move the loss
    torch.testing.assert_close(masked_token_loss(changed, labels), expected)
    zero = masked_token_loss(logits.requires_grad_(), torch.full((3, 5), -100))
    assert zero.item() == 0.0
    zero.backward()


def test_method_step_and_tied_head():
    enc = TextTransformer(vocab_size=40, dim=16, depth=1, heads=2)
    method = MaskedLanguageModel(enc)
    assert method.head.embedding.weight is enc.token_embedding.weight
    ids = torch.randint(5, 40, (8, 10))
    ids[:, 0], ids[:, -1] = 2, 3
    views = MaskedTokenViews(torch.arange(5), 40, mask_id=4, mlm_probability=0.5)(
        ids, torch.Generator().manual_seed(0)
    )
    out = method.training_step(views)
    assert out.loss.ndim == 0 and "mlm_accuracy" in out.logs
    out.loss.backward()
    assert enc.token_embedding.weight.grad is not None


def test_mlm_learns_to_copy_a_fixed_pattern():
    torch.manual_seed(0)
    enc = TextTransformer(vocab_size=20, dim=32, depth=1, heads=2, dropout=0.0)
    method = MaskedLanguageModel(enc)
    opt = torch.optim.Adam(method.parameters(), lr=5e-3)
    ids = torch.tensor([[2, 5, 6, 7, 8, 9, 3]]).repeat(32, 1)  # one sentence: predictable
    views = MaskedTokenViews(torch.arange(5), 20, mask_id=4)
    first = None
    for _ in range(40):
        loss = method.training_step(views(ids)).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
