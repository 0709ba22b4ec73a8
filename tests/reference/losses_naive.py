"""Naive re-implementations of every loss in selfsup.losses, for tests only.

Written straight from the papers' equations with explicit Python loops over anchors, pairs and
triplets, in float64 `math`; no torch ops beyond converting the inputs to lists. Slow on
purpose: nothing here is shared with the vectorized code under test. Each returns a float.
"""

from __future__ import annotations

import math

Vec = list[float]


# --------------------------------------------------------------------------- vector helpers


def rows(t) -> list[Vec]:
    """A (N, D) tensor as a list of float64 rows."""
    return t.detach().double().tolist()


def dot(u: Vec, v: Vec) -> float:
    return sum(a * b for a, b in zip(u, v, strict=True))


def norm(u: Vec) -> float:
    return math.sqrt(dot(u, u))


def unit(u: Vec) -> Vec:
    n = max(norm(u), 1e-12)
    return [a / n for a in u]


def cos(u: Vec, v: Vec) -> float:
    return dot(unit(u), unit(v))


def euclid(u: Vec, v: Vec, squared: bool = False) -> float:
    s = sum((a - b) ** 2 for a, b in zip(u, v, strict=True))
    return s if squared else math.sqrt(s)


def log_sum_exp(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


# --------------------------------------------------------------------------- InfoNCE family


def nt_xent(z_a, z_b, temperature: float) -> float:
    """SimCLR eq. 1: l(i, j) = -log exp(s_ij/t) / sum_{k != i} exp(s_ik/t), over all 2N anchors."""
    z = [unit(u) for u in rows(z_a) + rows(z_b)]  # cosine similarity
    n2 = len(z)
    n = n2 // 2
    losses = []
    for i in range(n2):
        j = (i + n) % n2
        others = [dot(z[i], z[k]) / temperature for k in range(n2) if k != i]
        losses.append(-dot(z[i], z[j]) / temperature + log_sum_exp(others))
    return mean(losses)


def _info_nce_one_way(q, k, negs, temperature, in_batch):
    losses = []
    for i in range(len(q)):
        pos = dot(q[i], k[i]) / temperature
        cands = [pos]
        if in_batch:
            cands += [dot(q[i], k[j]) / temperature for j in range(len(k)) if j != i]
        cands += [dot(q[i], m) / temperature for m in negs]
        losses.append(-pos + log_sum_exp(cands))
    return mean(losses)


def info_nce(
    query,
    key,
    temperature: float,
    negatives=None,
    in_batch_negatives: bool = True,
    symmetric: bool = False,
    normalize: bool = True,
) -> float:
    q, k = rows(query), rows(key)
    negs = [] if negatives is None else rows(negatives)
    if normalize:
        q, k, negs = [unit(u) for u in q], [unit(u) for u in k], [unit(u) for u in negs]
    loss = _info_nce_one_way(q, k, negs, temperature, in_batch_negatives)
    if symmetric:
        loss = 0.5 * (loss + _info_nce_one_way(k, q, negs, temperature, in_batch_negatives))
    return loss


def dcl(z_a, z_b, temperature: float, sigma: float | None = None) -> float:
    """Yeh et al. 2022: -w_i s(pos)/t + log sum_{k not in {i, pos}} exp(s_ik / t)."""
    z = [unit(u) for u in rows(z_a) + rows(z_b)]
    n2 = len(z)
    n = n2 // 2
    weights = [1.0] * n
    if sigma is not None:
        e = [math.exp(dot(z[i], z[i + n]) / sigma) for i in range(n)]
        weights = [2.0 - x / mean(e) for x in e]
    losses = []
    for i in range(n2):
        j = (i + n) % n2
        negs = [dot(z[i], z[k]) / temperature for k in range(n2) if k not in (i, j)]
        losses.append(-weights[i % n] * dot(z[i], z[j]) / temperature + log_sum_exp(negs))
    return mean(losses)


def supcon(z, labels, temperature: float) -> float:
    """Khosla et al. 2020 eq. 2 (L^sup_out). z: (N, D) or (N, V, D) tensor."""
    zz = z.detach().double()
    if zz.dim() == 2:
        zz = zz[:, None]
    lab = labels.tolist()
    views, view_labels = [], []
    for i in range(zz.shape[0]):
        for v in range(zz.shape[1]):
            views.append(unit(zz[i, v].tolist()))
            view_labels.append(lab[i])
    losses = []
    for i in range(len(views)):
        positives = [p for p in range(len(views)) if p != i and view_labels[p] == view_labels[i]]
        if not positives:
            continue  # excluded from the mean
        denom = log_sum_exp(
            [dot(views[i], views[a]) / temperature for a in range(len(views)) if a != i]
        )
        terms = [dot(views[i], views[p]) / temperature - denom for p in positives]
        losses.append(-sum(terms) / len(positives))
    return mean(losses) if losses else 0.0


# --------------------------------------------------------------------------- logistic losses


def siglip(z_a, z_b, log_scale: float, bias: float) -> float:
    """Zhai et al. 2023 Algorithm 1: -sum_ij log sigmoid(label_ij (t cos_ij + b)) / N."""
    a, b = [unit(u) for u in rows(z_a)], [unit(u) for u in rows(z_b)]
    t = math.exp(log_scale)
    total = 0.0
    for i in range(len(a)):
        for j in range(len(b)):
            label = 1.0 if i == j else -1.0
            total += log_sigmoid(label * (t * dot(a[i], b[j]) + bias))
    return -total / len(a)


def negative_sampling(query, positive, negatives) -> float:
    q, p = rows(query), rows(positive)
    negs = negatives.detach().double()
    losses = []
    for i in range(len(q)):
        per_query = negs[i].tolist() if negs.dim() == 3 else negs.tolist()
        loss = -log_sigmoid(dot(q[i], p[i]))
        for m in per_query:
            loss -= log_sigmoid(-dot(q[i], m))
        losses.append(loss)
    return mean(losses)


# --------------------------------------------------------------------------- metric learning


def _distances(z, squared: bool, normalize: bool) -> list[list[float]]:
    pts = rows(z)
    if normalize:
        pts = [unit(u) for u in pts]
    return [[euclid(u, v, squared) for v in pts] for u in pts]


def triplet_indices(d, lab, miner: str, margin: float) -> list[tuple[int, int, int]]:
    """Mined triplets, from the definitions (see selfsup.losses.mining for the conventions)."""
    n = len(lab)
    out = []
    if miner == "all":
        for a in range(n):
            for p in range(n):
                for q in range(n):
                    if p != a and lab[p] == lab[a] and lab[q] != lab[a]:
                        out.append((a, p, q))
    elif miner == "batch_hard":
        for a in range(n):
            pos = [p for p in range(n) if p != a and lab[p] == lab[a]]
            neg = [q for q in range(n) if lab[q] != lab[a]]
            if pos and neg:
                hp = pos[0]
                for p in pos:
                    if d[a][p] > d[a][hp]:
                        hp = p
                hn = neg[0]
                for q in neg:
                    if d[a][q] < d[a][hn]:
                        hn = q
                out.append((a, hp, hn))
    elif miner == "semi_hard":
        for a in range(n):
            for p in range(n):
                if p == a or lab[p] != lab[a]:
                    continue
                best = None
                for q in range(n):
                    if lab[q] == lab[a]:
                        continue
                    if d[a][p] < d[a][q] < d[a][p] + margin and (
                        best is None or d[a][q] < d[a][best]
                    ):
                        best = q
                if best is not None:
                    out.append((a, p, best))
    else:
        raise ValueError(miner)
    return out


def triplet_margin(
    z,
    labels,
    margin: float = 0.2,
    miner: str = "all",
    squared: bool = False,
    soft: bool = False,
    normalize: bool = True,
    nonzero_mean: bool = False,
) -> float:
    d = _distances(z, squared, normalize)
    trips = triplet_indices(d, labels.tolist(), miner, margin)
    losses = []
    for a, p, q in trips:
        gap = d[a][p] - d[a][q]
        losses.append(softplus(gap) if soft else max(0.0, gap + margin))
    if nonzero_mean:
        losses = [x for x in losses if x > 0]
    return mean(losses) if losses else 0.0


def npair(z, labels, l2_reg: float = 0.02) -> float:
    """Sohn 2016: per class its first two samples form (anchor, positive); softmax over the
    positives of all classes; plus l2_reg * mean squared norm of the used embeddings."""
    pts, lab = rows(z), labels.tolist()
    members: dict[int, list[int]] = {}
    for i, c in enumerate(lab):
        members.setdefault(c, []).append(i)
    pairs = [(m[0], m[1]) for c, m in sorted(members.items()) if len(m) >= 2]
    if not pairs:
        return 0.0
    losses = []
    for a, p in pairs:
        logits = [dot(pts[a], pts[p2]) for _, p2 in pairs]
        losses.append(-dot(pts[a], pts[p]) + log_sum_exp(logits))
    reg = mean([dot(pts[i], pts[i]) for pair in pairs for i in pair])
    return mean(losses) + l2_reg * reg


def margin_contrastive(
    z,
    labels,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    squared: bool = True,
    normalize: bool = False,
) -> float:
    d = _distances(z, False, normalize)
    lab = labels.tolist()
    power = 2 if squared else 1
    losses = []
    for i in range(len(lab)):
        for j in range(len(lab)):
            if i == j:
                continue
            if lab[i] == lab[j]:
                losses.append(max(0.0, d[i][j] - pos_margin) ** power)
            else:
                losses.append(max(0.0, neg_margin - d[i][j]) ** power)
    return mean(losses) if losses else 0.0


# --------------------------------------------------------------------------- non-contrastive


def byol(p, z) -> float:
    return mean([2.0 - 2.0 * cos(u, v) for u, v in zip(rows(p), rows(z), strict=True)])


def negative_cosine(p, z) -> float:
    return mean([-cos(u, v) for u, v in zip(rows(p), rows(z), strict=True)])


def _columns(z) -> list[Vec]:
    r = rows(z)
    return [[r[i][j] for i in range(len(r))] for j in range(len(r[0]))]


def _var(xs: Vec, unbiased: bool) -> float:
    m = mean(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1 if unbiased else len(xs))


def barlow_twins_terms(z_a, z_b, eps: float = 1e-5) -> tuple[float, float]:
    def standardized(z):
        out = []
        for col in _columns(z):
            m, s = mean(col), math.sqrt(_var(col, unbiased=False) + eps)
            out.append([(x - m) / s for x in col])
        return out

    a, b = standardized(z_a), standardized(z_b)
    n = len(a[0])
    on = off = 0.0
    for i in range(len(a)):
        for j in range(len(b)):
            c = dot(a[i], b[j]) / n
            if i == j:
                on += (1.0 - c) ** 2
            else:
                off += c**2
    return on, off


def barlow_twins(z_a, z_b, lambd: float = 0.0051) -> float:
    on, off = barlow_twins_terms(z_a, z_b)
    return on + lambd * off


def vicreg_terms(z_a, z_b) -> tuple[float, float, float]:
    a, b = rows(z_a), rows(z_b)
    inv = mean([(x - y) ** 2 for u, v in zip(a, b, strict=True) for x, y in zip(u, v, strict=True)])

    def variance(z):
        return mean([max(0.0, 1.0 - math.sqrt(_var(c, unbiased=True) + 1e-4)) for c in _columns(z)])

    def covariance(z):
        cols = _columns(z)
        n, d = len(cols[0]), len(cols)
        means = [mean(c) for c in cols]
        total = 0.0
        for i in range(d):
            for j in range(d):
                if i != j:
                    cov = sum(
                        (cols[i][k] - means[i]) * (cols[j][k] - means[j]) for k in range(n)
                    ) / (n - 1)
                    total += cov**2
        return total / d

    return inv, 0.5 * (variance(z_a) + variance(z_b)), covariance(z_a) + covariance(z_b)


def vicreg(z_a, z_b, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0) -> float:
    inv, var, cov = vicreg_terms(z_a, z_b)
    return sim_coeff * inv + std_coeff * var + cov_coeff * cov


def dino(student, teacher, center, student_temp: float = 0.1, teacher_temp: float = 0.04) -> float:
    c = center.detach().double().reshape(-1).tolist()
    terms = []
    for iq, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v == iq:
                continue
            per_sample = []
            for trow, srow in zip(rows(t), rows(s), strict=True):
                tl = [(x - ci) / teacher_temp for x, ci in zip(trow, c, strict=True)]
                t_lse = log_sum_exp(tl)
                sl = [x / student_temp for x in srow]
                s_lse = log_sum_exp(sl)
                per_sample.append(
                    -sum(math.exp(a - t_lse) * (b - s_lse) for a, b in zip(tl, sl, strict=True))
                )
            terms.append(mean(per_sample))
    return mean(terms)


# --------------------------------------------------------------------------- test support


def tolerances(dtype) -> dict[str, float]:
    """rtol/atol for comparing a loss computed in `dtype` with these float64 loops."""
    import torch

    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-12}
    return {"rtol": 1e-5, "atol": 1e-6}
