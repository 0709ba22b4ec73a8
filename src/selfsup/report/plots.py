"""The report's pictures (matplotlib, headless Agg backend). Each function writes one PNG.

Inputs are plain arrays: rows of metrics.jsonl (dicts with "step") or arrays from
`report.snapshot`. A function returns the path it wrote, or None when it has nothing to draw.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; safe in tests and on servers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from selfsup.engine.run_dir import write_atomic  # noqa: E402

DPI = 110
# Which health metrics to draw and what a reader should know about each.
HEALTH_PANELS = (
    ("emb_std_ratio", "std x sqrt(D): 0 = collapsed, 1 = uniform"),
    ("eff_rank", "effective rank (RankMe): dims in use"),
    ("pos_cos", "mean cosine of positive / negative pairs"),
    ("alignment", "alignment (lower: views closer)"),
    ("uniformity", "uniformity (lower: more spread out)"),
    ("emb_norm", "mean norm before normalization (log)"),
)


def _series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(r["step"], r[key]) for r in rows if key in r and r[key] is not None]
    if not pts:
        return np.array([]), np.array([])
    steps, values = zip(*pts, strict=True)
    return np.asarray(steps), np.asarray(values, dtype=float)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    buf = io.BytesIO()  # rendered in memory, then written whole and never through a link
    fig.savefig(buf, dpi=DPI, format="png")
    write_atomic(path, buf.getvalue())
    plt.close(fig)
    return path


def training_curves(rows: list[dict], path: Path) -> Path | None:
    """Loss and learning rate against step, side by side."""
    steps, loss = _series(rows, "loss")
    if not len(steps):
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    a.plot(steps, loss, marker="." if len(steps) < 30 else None)
    a.set(title="training loss", xlabel="step", ylabel="loss")
    lr_steps, lr = _series(rows, "lr")
    b.plot(lr_steps, lr, color="tab:green")
    b.set(title="learning rate", xlabel="step", ylabel="lr")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    return _save(fig, path)


def knn_curve(
    rows: list[dict], path: Path, final: float | None = None, baseline: float | None = None
) -> Path | None:
    """kNN top-1 (%) over training (logged by KNNCallback), with the final full-data kNN of the
    trained (final) and random-init (baseline) encoders as horizontal lines when given."""
    steps, acc = _series(rows, "knn_top1")
    if not len(steps):
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot(steps, 100 * acc, marker="o", label="subset kNN during training")
    if final is not None:
        label = f"trained, full data: {100 * final:.1f}%"
        ax.axhline(100 * final, ls="--", color="gray", label=label)
    if baseline is not None:
        label = f"random init, full data: {100 * baseline:.1f}%"
        ax.axhline(100 * baseline, ls=":", color="tab:red", label=label)
    ax.margins(y=0.25)  # room for the legend below or above the lines
    ax.legend(loc="best", fontsize=8)
    ax.set(title="kNN top-1 during training (small labeled subset)", xlabel="step")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def health_curves(rows: list[dict], path: Path) -> Path | None:
    """One small panel per health metric (HEALTH_PANELS) against step, on a 2 x 3 grid."""
    if not len(_series(rows, "emb_std_ratio")[0]):
        return None
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.6))
    axes = axes.flatten()
    for ax, (key, title) in zip(axes, HEALTH_PANELS, strict=True):
        steps, values = _series(rows, key)
        if not len(steps):  # e.g. a run logged before this metric existed
            ax.set_title(title, fontsize=10)
            ax.text(0.5, 0.5, "not logged in this run", ha="center", transform=ax.transAxes)
            ax.axis("off")
            continue
        if key == "emb_norm":  # log scale: a shrink by 100x must show; exact zeros are floored
            values = np.maximum(values, 1e-8)
        ax.plot(steps, values, label="positive" if key == "pos_cos" else key)
        if key == "pos_cos":
            ax.plot(*_series(rows, "neg_cos"), label="negative")
            ax.legend(fontsize=8)
        if key == "emb_std_ratio":
            ax.set_ylim(0, max(1.05, float(values.max()) * 1.05))
        if key == "emb_norm" and len(values):
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def similarity_histograms(data: dict[str, np.ndarray], path: Path) -> Path | None:
    """Positive vs negative pair cosine similarity, before (random init) and after training."""
    tags = [t for t in ("before", "after") if f"pos_{t}" in data]
    if not tags:
        return None
    titles = {"before": "before training (random init)", "after": "after training"}
    fig, axes = plt.subplots(1, len(tags), figsize=(5.5 * len(tags), 3.4), squeeze=False)
    # One x range for both panels (comparable), from the lowest similarity seen to 1.
    low = min(float(data[f"{k}_{t}"].min()) for k in ("pos", "neg") for t in tags)
    low = max(-1.0, np.floor(low * 10) / 10)
    bins = np.linspace(low, 1, 41)
    for ax, tag in zip(axes[0], tags, strict=True):
        pos, neg = data[f"pos_{tag}"], data[f"neg_{tag}"]
        ax.hist(pos, bins=bins, alpha=0.6, label=f"positive pairs (mean {pos.mean():.2f})")
        ax.hist(neg, bins=bins, alpha=0.6, label=f"negative pairs (mean {neg.mean():.2f})")
        ax.set(title=titles[tag], xlabel="cosine similarity", ylabel="pairs", xlim=(low, 1))
        ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two (N,) arrays over the pairs where both are finite;
    nan when fewer than two such pairs remain or either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _plain(text: str) -> str:
    """Text drawn as is: a `$` from a data file must not start matplotlib's math mode."""
    return text.replace("$", r"\$")


def sts_scatter(data: dict[str, np.ndarray], path: Path) -> Path | None:
    """Predicted cosine (`sts_pred`) against gold similarity (`sts_gold`) of STS pairs, with
    Spearman's rho in the title; the random-init encoder's (`sts_pred_before`) in a panel to the
    left when saved. `sts_name` (0-d text), when saved, names the pairs' file in the title."""
    if "sts_pred" not in data or "sts_gold" not in data or len(data["sts_gold"]) < 2:
        return None
    gold = data["sts_gold"].astype(np.float64)
    tags = [t for t in ("sts_pred_before", "sts_pred") if t in data]
    fig, axes = plt.subplots(
        1, len(tags), figsize=(5 * len(tags), 4.2), squeeze=False, sharex=True, sharey=True
    )
    for ax, tag in zip(axes[0], tags, strict=True):
        pred = data[tag].astype(np.float64)
        state = "random init" if tag == "sts_pred_before" else "trained"
        color = "tab:gray" if tag == "sts_pred_before" else "tab:blue"
        ax.scatter(gold, pred, s=6, alpha=0.4, color=color, linewidths=0)
        ax.set_title(f"{state}: Spearman \u03c1 = {spearman(pred, gold):.3f}", fontsize=10)
        ax.set_xlabel("gold similarity (human score)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cosine similarity of the embeddings")
    name = data.get("sts_name")
    title = f"{len(gold)} STS pairs"
    if name is not None and name.ndim == 0:
        text = name[()]
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        title = f"{_plain(text[:80])}: {title}"
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def _map_2d(emb: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, D) -> (N, 2) with UMAP when umap-learn is installed, else scikit-learn's t-SNE."""
    try:
        import umap

        return umap.UMAP(random_state=seed).fit_transform(emb), "UMAP"
    except ImportError:
        from sklearn.manifold import TSNE

        perplexity = min(30.0, max(2.0, (len(emb) - 1) / 3))
        tsne = TSNE(perplexity=perplexity, init="pca", random_state=seed)
        return tsne.fit_transform(emb), "t-SNE"


def embedding_map(data: dict[str, np.ndarray], path: Path, seed: int = 0) -> Path | None:
    """2-D map of test embeddings coloured by label, random init beside trained."""
    tags = [t for t in ("before", "after") if f"emb_{t}" in data]
    if not tags or "emb_labels" not in data or len(data["emb_labels"]) < 5:
        return None  # t-SNE needs more points than its perplexity (>= 2)
    labels = data["emb_labels"]
    classes = list(data["classes"]) if "classes" in data else sorted(set(labels.tolist()))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(tags), figsize=(5.5 * len(tags), 5), squeeze=False)
    for ax, tag in zip(axes[0], tags, strict=True):
        xy, how = _map_2d(data[f"emb_{tag}"].astype(np.float32), seed)
        for c in np.unique(labels):
            m, name = labels == c, _plain(str(classes[c]))
            ax.scatter(xy[m, 0], xy[m, 1], s=6, color=cmap(int(c) % cmap.N), label=name)
        state = "random init" if tag == "before" else "trained"
        ax.set_title(f"{how} of test embeddings, {state}")
        ax.set_xticks([]), ax.set_yticks([])
    if len(classes) <= 20:
        axes[0][-1].legend(
            markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5), title="label"
        )
    return _save(fig, path)


def _show(ax, img: np.ndarray, border: str | None = None) -> None:
    """img: (C, H, W) uint8."""
    ax.imshow(img.transpose(1, 2, 0) if img.shape[0] == 3 else img[0], cmap="gray")
    ax.set_xticks([]), ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(border is not None)
        if border:
            side.set_color(border)
            side.set_linewidth(3)


def retrieval_grid(data: dict[str, np.ndarray], path: Path) -> Path | None:
    """Each row: a test query, then its nearest train images (green = same label, red = not)."""
    if "query_images" not in data:
        return None
    q, nb = data["query_images"], data["neighbor_images"]
    ql, nl = data.get("query_labels"), data.get("neighbor_labels")
    classes = list(data["classes"]) if "classes" in data else None
    rows, k = nb.shape[:2]
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.1 * (k + 1), 1.15 * rows), squeeze=False)
    for i in range(rows):
        _show(axes[i, 0], q[i], "black")
        if ql is not None:
            axes[i, 0].set_ylabel(
                classes[ql[i]] if classes else str(ql[i]), rotation=0, labelpad=12
            )
        for j in range(k):
            same = None if ql is None else ("tab:green" if nl[i, j] == ql[i] else "tab:red")
            _show(axes[i, j + 1], nb[i, j], same)
    axes[0, 0].set_title("query", fontsize=9)
    for j in range(k):
        axes[0, j + 1].set_title(f"#{j + 1}", fontsize=9)
    return _save(fig, path)


def view_grid(data: dict[str, np.ndarray], path: Path) -> Path | None:
    """Each row: an image, then random augmented views of it (what the model must ignore)."""
    if "view_images" not in data:
        return None
    grid = data["view_images"]  # (N, 1 + V, 3, s, s)
    n, v = grid.shape[:2]
    fig, axes = plt.subplots(n, v, figsize=(1.1 * v, 1.15 * n), squeeze=False)
    for i in range(n):
        for j in range(v):
            _show(axes[i, j], grid[i, j], "black" if j == 0 else None)
    axes[0, 0].set_title("image", fontsize=9)
    for j in range(1, v):
        axes[0, j].set_title(f"view {j}", fontsize=9)
    return _save(fig, path)


MAX_CHANNELS = 3  # channels of a series drawn (each a line); the others are left out
MAX_CLASSES = 40  # classes of the per-class bars drawn (the first ones, in class order)


def _names(values: np.ndarray | None, n: int, default: list[str]) -> list[str]:
    """`n` strings from a (n,) text array (cut at 60 characters, `$` escaped), else `default`."""
    if values is None or values.shape != (n,):
        return default
    out = []
    for v in values:
        text = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        out.append(_plain(text[:60]))
    return out


def series_view_grid(data: dict[str, np.ndarray], path: Path) -> Path | None:
    """Each row: an example series (`series_examples` (E, C, T)), then the two augmented views
    the training recipe made of it (`series_view_a` (E, C, La), `series_view_b` (E, C, Lb)),
    each channel a line (the first MAX_CHANNELS). NaN steps (padding of a shorter crop, missing
    values) are not drawn. `series_view_names` (2,) text, when saved, titles the view columns."""
    keys = ("series_examples", "series_view_a", "series_view_b")
    if not all(k in data for k in keys):
        return None
    cols = [np.asarray(data[k], dtype=np.float64) for k in keys]
    e, c = cols[0].shape[:2]
    if not e or not c:
        return None
    names = _names(data.get("series_view_names"), 2, ["", ""])
    titles = ["original"] + [f"view {i}: {n}" if n else f"view {i}" for i, n in enumerate(names, 1)]
    span = max(2, *(a.shape[2] for a in cols))  # one x range: a shorter crop looks shorter
    fig, axes = plt.subplots(e, 3, figsize=(11, 0.6 + 1.5 * e), squeeze=False, sharex=True)
    for i in range(e):
        for j, series in enumerate(cols):
            ax, steps = axes[i, j], np.arange(series.shape[2])
            for ch in range(min(c, MAX_CHANNELS)):
                ax.plot(steps, series[i, ch], lw=1, color=f"C{ch}", label=f"channel {ch + 1}")
            ax.set_xlim(0, span - 1)
            ax.locator_params(nbins=4)  # few ticks: small panels, and labels cost drawing time
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        axes[i, 0].set_ylabel(f"#{i + 1}", rotation=0, labelpad=14)
    for j, title in enumerate(titles):
        axes[0, j].set_title(title, fontsize=9)
    for j in range(3):
        axes[-1, j].set_xlabel("time step", fontsize=8)
    if c > 1:
        axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _save(fig, path)


def per_class_bars(data: dict[str, np.ndarray], path: Path) -> Path | None:
    """Horizontal bars of the trained encoder's accuracy per class (`per_class_acc` (K,), in
    [0, 1], NaN = class absent from test: "n/a"), with the random-init encoder's
    (`per_class_acc_before`) as a second, grey bar when saved. Class names from `classes`,
    test samples per class from `per_class_support`, the classifier from `per_class_metric`
    (0-d text) in the title. At most MAX_CLASSES classes (the first ones) are drawn."""
    if "per_class_acc" not in data or not len(data["per_class_acc"]):
        return None
    k = len(data["per_class_acc"])
    shown = min(k, MAX_CLASSES)
    names = _names(data.get("classes"), k, [f"class {i}" for i in range(k)])
    support = data.get("per_class_support")
    if support is not None and support.shape == (k,):
        names = [f"{n} (n={int(s)})" for n, s in zip(names, support, strict=True)]
    bars = [("trained", "tab:blue", data["per_class_acc"])]
    if "per_class_acc_before" in data:
        bars.insert(0, ("random init", "tab:gray", data["per_class_acc_before"]))
    height = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + (0.18 + 0.12 * len(bars)) * shown))
    y = np.arange(shown)
    for b, (label, color, acc) in enumerate(bars):
        pos = y - 0.4 + height * (b + 0.5)
        values = 100 * np.asarray(acc[:shown], dtype=np.float64)
        absent = np.isnan(values)
        ax.barh(pos, np.where(absent, 0, values), height=height, color=color, label=label)
        for p, v, gone in zip(pos, values, absent, strict=True):
            text, x = ("n/a", 1) if gone else (f"{v:.0f}%", v + 1)
            ax.text(x, p, text, va="center", fontsize=7, color="dimgray" if gone else "black")
    ax.set_yticks(y, names[:shown], fontsize=8)
    ax.set_ylim(shown - 0.5, -0.5)  # class 0 at the top, no margin
    ax.set_xlim(0, 112)
    ax.set_xlabel("test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    metric = data.get("per_class_metric")
    title = "per-class accuracy"
    if metric is not None and metric.ndim == 0:
        text = metric[()]
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        title += f", {_plain(text[:60])}"
    if shown < k:
        title += f" (first {shown} of {k} classes)"
    ax.set_title(title, fontsize=10)
    if len(bars) > 1:
        ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(1, 0))
    return _save(fig, path)
