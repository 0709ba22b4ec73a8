"""The evaluation table printed at the end of a run and by `selfsup evaluate`.

Rows are encoders (the trained one and its baselines), columns the measures; every value is a
fraction (accuracy, recall, a correlation) printed x100. Image columns (and columns beside them,
e.g. the time-series SVM) keep their titles and a percent sign; other modalities' columns (e.g.
"STS-B raw", "SST-2") print under their own names.
"""

from __future__ import annotations

TITLES = {"svm_acc": "SVM top-1"}  # columns other modalities add beside the image ones
IMAGE_COLUMNS = [
    ("knn_top1", "kNN top-1"),
    ("knn_top5", "kNN top-5"),
    ("linear_top1", "linear top-1"),
    ("recall@1", "Recall@1"),
    ("map@r", "MAP@R"),
]


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """rows: name -> {column: value in [0, 1]} -> aligned text, x100, '-' for a missing cell."""
    known = dict(IMAGE_COLUMNS)
    # Columns in the order of the fullest row (a baseline may lack some, e.g. whitened STS).
    keys = [k for r in sorted(rows.values(), key=len, reverse=True) for k in r]
    image = any(k in known for k in keys)  # the image table keeps its fixed columns
    # Beside the image columns only the named extras (the retrieval family stays at Recall@1).
    extra = [(k, TITLES.get(k, k)) for k in dict.fromkeys(keys)
             if k not in known and (k in TITLES or not image)]  # fmt: skip
    cols = [*IMAGE_COLUMNS, *extra] if image else extra
    sign = "%" if image else ""
    widths = [max(14, len(title) + 2) for _, title in cols]
    first = max([22] + [len(name) + 1 for name in rows])
    lines = [
        f"{'':<{first}}" + "".join(f"{t:>{w}}" for (_, t), w in zip(cols, widths, strict=True))
    ]
    for name, r in rows.items():
        cells = "".join(
            f"{100 * r[k]:>{w - len(sign)}.1f}{sign}" if k in r else f"{'-':>{w}}"
            for (k, _), w in zip(cols, widths, strict=True)
        )
        lines.append(f"{name:<{first}}{cells}")
    return "\n".join(lines)
