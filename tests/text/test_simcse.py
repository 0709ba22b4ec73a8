import torch
import torch.nn.functional as F

from selfsup.augment.text_views import TextViews
from selfsup.encoders.text_transformer import TextTransformer
from selfsup.losses.functional import info_nce
from selfsup.methods.simcse import SimCSE


def make_ids(n: int = 6, length: int = 9, seed: int = 0) -> torch.Tensor:
    ids = torch.randint(5, 50, (n, length), generator=torch.Generator().manual_seed(seed))
    ids[:, 0], ids[:, -1] = 2, 3
    ids[0, 5:] = 0
    ids[0, 4] = 3
    return ids


def test_unsupervised_loss_is_info_nce_on_dropout_views():
    enc = TextTransformer(vocab_size=50, dim=32, depth=2, heads=2)
    method = SimCSE(enc, temperature=0.05)
    views = TextViews(torch.arange(5))(make_ids())
    torch.manual_seed(0)
    out = method.training_step(views)
    torch.manual_seed(0)  # same dropout masks: one forward over both views
    h = enc(torch.cat(views))
    z1, z2 = F.normalize(h, dim=-1).chunk(2)
    assert not torch.allclose(z1, z2)  # the views differ only by dropout
    torch.testing.assert_close(out.loss, info_nce(z1, z2, temperature=0.05))
    # ... which is Gao et al.'s eq. 4 written out: -log softmax_j(cos(h_i, h_j+) / T)[i]
    loop = torch.stack(
        [
            -torch.log_softmax(torch.stack([z1[i] @ z2[j] for j in range(6)]) / 0.05, 0)[i]
            for i in range(6)
        ]
    ).mean()
    torch.testing.assert_close(out.loss, loop)


def test_supervised_with_hard_negatives_matches_loop():
    enc = TextTransformer(vocab_size=50, dim=32, depth=1, heads=2, dropout=0.0)
    method = SimCSE(enc, temperature=0.05)
    a, p, n = make_ids(seed=0), make_ids(seed=1)[:, :7], make_ids(seed=2)
    out = method.training_step([a, p, n])
    za, zp, zn = (F.normalize(enc(x), dim=-1) for x in (a, p, n))
    terms = []
    for i in range(6):  # Gao et al. eq. 5: positives and every hard negative in the denominator
        logits = torch.cat([za[i] @ zp.T, za[i] @ zn.T]) / 0.05
        terms.append(-torch.log_softmax(logits, 0)[i])
    torch.testing.assert_close(out.loss, torch.stack(terms).mean(), atol=1e-5, rtol=1e-5)
    out.loss.backward()


def test_encode_is_backbone_without_projector():
    enc = TextTransformer(vocab_size=50, dim=16, depth=1, heads=2).eval()
    method = SimCSE(enc, projector=torch.nn.Linear(16, 8)).eval()
    ids = make_ids()
    torch.testing.assert_close(method.encode(ids), enc(ids))
    assert method.training_step([ids, ids]).z[0].shape == (6, 8)
