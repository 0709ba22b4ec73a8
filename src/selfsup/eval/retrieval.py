"""Retrieval metrics of embeddings: Recall@K and MAP@R with exact nearest neighbours.

Recall@K (as in metric-learning papers, e.g. Song et al. 2016): the fraction of queries with at
least one same-label item among their K nearest gallery items; Recall@1 is
pytorch-metric-learning's "precision_at_1". MAP@R (Musgrave, Belongie & Lim 2020, "A Metric
Learning Reality Check", Sec. 3.2): for a query with R same-label gallery items,
AP@R = 1/R * sum_{i<=R} P(i) * rel(i) over its R nearest neighbours, P(i) the precision at i;
it rewards ranking *all* positives first, where Recall@1 saturates early.

Neighbours are exact: similarities of a chunk of queries against the whole gallery, then a
top-k, so memory stays O(chunk x gallery). `use_faiss=True` searches with a faiss flat
(exact) index instead, when faiss is installed. Queries without any same-label item in the
gallery (R = 0) are left out of every mean, as pytorch-metric-learning does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.data.memory import InMemoryDataset
from selfsup.eval.features import extract_features

try:  # optional: a faster exact search on large galleries; never required
    import faiss  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    faiss = None


def _prepare(x: torch.Tensor, metric: str) -> torch.Tensor:
    x = x.to(torch.promote_types(x.dtype, torch.float32))  # bf16 features: rank in fp32
    return F.normalize(x, dim=1) if metric == "cosine" else x


def _scores(q: torch.Tensor, g: torch.Tensor, metric: str) -> torch.Tensor:
    """(m, D), (M, D) -> (m, M): larger is nearer (cosine, or minus squared Euclidean)."""
    if metric == "cosine":
        return q @ g.T
    return -torch.cdist(q, g).pow(2)


def nearest_neighbors(
    query: torch.Tensor,
    gallery: torch.Tensor,
    k: int,
    metric: str = "cosine",
    exclude_self: bool = False,
    chunk_size: int = 1024,
    use_faiss: bool = False,
    offset: int = 0,
) -> torch.Tensor:
    """Indices (N_q, k) long of each query's k nearest gallery rows, nearest first.

    query: (N_q, D), gallery: (N_g, D); metric "cosine" or "euclidean". exclude_self: query i is
    gallery row offset + i (the same set), never returned as its own neighbour.
    """
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric={metric!r}: use 'cosine' or 'euclidean'")
    q, g = _prepare(query, metric), _prepare(gallery, metric)
    k = min(k, len(g) - int(exclude_self))
    if use_faiss:
        return _faiss_neighbors(q, g, k, metric, exclude_self, offset)
    out = []
    for start in range(0, len(q), chunk_size):
        s = _scores(q[start : start + chunk_size], g, metric)  # (m, N_g)
        if exclude_self:
            rows = torch.arange(len(s), device=s.device)
            s[rows, rows + start + offset] = float("-inf")
        out.append(s.topk(k, dim=1).indices)
    return torch.cat(out) if out else torch.empty(0, k, dtype=torch.long)


def _faiss_neighbors(q, g, k: int, metric: str, exclude_self: bool, offset: int) -> torch.Tensor:
    if faiss is None:
        raise ImportError("use_faiss=True needs the faiss package (pip install faiss-cpu)")
    index = faiss.IndexFlatIP(g.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(g.shape[1])
    index.add(g.cpu().numpy())
    _, idx = index.search(q.cpu().numpy(), k + int(exclude_self))
    idx = torch.from_numpy(idx).long()
    if not exclude_self:
        return idx
    # Drop each query's own row wherever it appears (ties may not put it first).
    own = idx == torch.arange(offset, offset + len(idx))[:, None]
    keep = torch.where(own.any(1, keepdim=True), ~own, torch.arange(k + 1) < k)
    return idx[keep].view(len(idx), k)


def retrieval_metrics(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor | None = None,
    gallery_labels: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
    metric: str = "cosine",
    chunk_size: int = 1024,
    use_faiss: bool = False,
) -> dict[str, float]:
    """{"recall@K" for K in ks, "map@r"} in [0, 1].

    query: (N_q, D), query_labels: (N_q,); gallery: (N_g, D), gallery_labels: (N_g,), or None
    to search the query set itself (leave-one-out: a query never retrieves itself).
    metric: "cosine" (default, embeddings compared by angle) or "euclidean".
    """
    same_set = gallery is None
    if same_set:
        gallery, gallery_labels = query, query_labels
    if gallery_labels is None:
        raise ValueError("gallery_labels are required with a separate gallery")
    query_labels, gallery_labels = query_labels.long().cpu(), gallery_labels.long().cpu()
    # R per query: same-label gallery items, minus the query itself on a shared set.
    classes, counts = gallery_labels.unique(return_counts=True)
    pos = torch.searchsorted(classes, query_labels).clamp_max(len(classes) - 1)
    r = torch.where(classes[pos] == query_labels, counts[pos], 0) - int(same_set)  # (N_q,)
    valid = r > 0
    if not valid.any():
        raise ValueError("no query has a same-label item in the gallery: nothing to retrieve")
    k = max(max(ks), int(r.max()))
    sums = torch.zeros(len(ks) + 1, dtype=torch.float64)  # recall@K..., AP@R summed over queries
    # One chunk of queries at a time: the (chunk, k) hits stay small even when R is large.
    for start in range(0, len(query), chunk_size):
        stop = min(start + chunk_size, len(query))
        nn_idx = nearest_neighbors(
            query[start:stop], gallery, k, metric, same_set, chunk_size, use_faiss, start
        ).cpu()  # (m, k')
        hits = gallery_labels[nn_idx] == query_labels[start:stop, None]
        keep = valid[start:stop]
        hits, r_c = hits[keep], r[start:stop][keep]
        recall = [hits[:, :kk].any(1).double().sum() for kk in ks]
        sums += torch.stack([*recall, _map_at_r(hits, r_c).sum()])
    means = (sums / valid.sum()).tolist()
    out = {f"recall@{kk}": m for kk, m in zip(ks, means, strict=False)}
    out["map@r"] = means[-1]
    return out


def _map_at_r(hits: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """hits: (N, k) bool, nearest first, k >= max(r); r: (N,) -> AP@R per query (N,) float64."""
    rank = torch.arange(1, hits.shape[1] + 1)
    within_r = rank[None, :] <= r[:, None]  # only the first R neighbours count
    rel = hits & within_r
    precision = rel.cumsum(1).double() / rank  # P(i) at every rank i
    return (precision * rel).sum(1) / r.double()


def evaluate_retrieval(
    encoder: nn.Module,
    data: InMemoryDataset,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    precision: str = "bf16",
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Recall@K and MAP@R of `encoder`'s frozen features on labeled `data`, every sample a
    query against all the others (the held-out split as both query and gallery, as
    Musgrave et al. 2020 evaluate)."""
    if data.targets is None:
        raise ValueError(f"{data.name or 'data'}: retrieval evaluation needs labels")
    feats = extract_features(encoder, data, transform, device=device, precision=precision)
    return retrieval_metrics(feats, data.targets, ks=ks)
