"""One HTML report per run: `report.html` (images embedded, readable offline) + `report/*.png`.

Reads only the run folder: config.yaml, results.json, metrics.jsonl, report_data.npz. It never
looks at the run's modality: the run declares its sections in results.json,
`"report": {"sections": [ids]}` (the kind of data decides), and the page shows exactly those
plus summary, metrics, config and environment, in the fixed order of PAGE_ORDER:
summary, metrics, curves, knn, health, similarity, sts, neighbours, series-views, embedding-map,
per-class, state-probe, retrieval, views, reconstructions, config, environment. A section with
nothing to show says why and how to get it.

A run without `report.sections` (older runs) gets SECTIONS: summary, metrics, curves, knn,
health, similarity, embedding-map, retrieval, views, config, environment, and reconstructions
(MAE: original | masked | reconstruction of a few test images, after views) only when its
picture can be drawn.

Text runs: sts (predicted cosine vs gold similarity of STS pairs, Spearman rho) and neighbours
(a table of each query sentence's nearest sentences, every text escaped).

Time-series runs: series-views (example series beside the two augmented views the recipe made of
each, channels as lines) and per-class (the trained encoder's test accuracy per class as bars,
the random-init encoder's beside it).

Agent runs: state-probe (a table of each probed game-state variable's F1 for every evaluated
row: pixels, random init, the trained encoder; the published figures of the game beside them).
Every section's arrays in report_data.npz follow the
contract of docs/report.md (`_check_arrays`); a received file that breaks it is an error naming
report_data.npz and the array.
"""

from __future__ import annotations

import base64
import html
import json
import re
import warnings
from pathlib import Path

import numpy as np
import yaml

from selfsup.engine.run_dir import make_dir, write_atomic
from selfsup.report import plots, snapshot
from selfsup.report.reconstructions import reconstruction_figure
from selfsup.safe_yaml import YAMLFileError, read_yaml_file

# The page order of every section a report can have, whatever the run declares.
PAGE_ORDER = (
    "summary",
    "metrics",
    "curves",
    "knn",
    "health",
    "similarity",
    "sts",
    "neighbours",
    "series-views",
    "embedding-map",
    "per-class",
    "state-probe",
    "retrieval",
    "views",
    "reconstructions",
    "config",
    "environment",
)
# In every report; the others are declared by the run (results.json report.sections).
ALWAYS = ("summary", "metrics", "config", "environment")
# The sections of a run that declares none (written before report.sections existed).
SECTIONS = (
    "summary",
    "metrics",
    "curves",
    "knn",
    "health",
    "similarity",
    "embedding-map",
    "retrieval",
    "views",
    "config",
    "environment",
)
# Without report.sections: shown only when the run has the picture (masked image modeling).
OPTIONAL_SECTIONS = ("reconstructions",)
NN_TEXT_CHARS = 200  # longer sentences of the neighbours table are cut, with an ellipsis
# Metric names shown as percentages (accuracies, recalls, mAP are fractions in [0, 1]).
_PERCENT = re.compile(r"top\d|pct|recall|map|acc", re.IGNORECASE)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.3em .7em}
th{background:#f4f4f4;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #eee} pre{background:#f7f7f7;padding:1em;overflow:auto}
.note{color:#555;font-size:.93em} .warn{color:#a40;font-weight:600}
nav a{margin-right:.8em}
table.nn td{vertical-align:top} table.nn td.same{border:3px solid #2a2}
table.nn td.diff{border:3px solid #c22} .label{color:#666;font-size:.85em}
"""


def _read_json(path: Path) -> dict:
    """A JSON object from `path` ({} when absent); anything else is an error naming the file."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e}); rerun the evaluation to rewrite it") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_rows(path: Path) -> list[dict]:
    """metrics.jsonl rows; a torn or foreign line is left out with a warning naming it."""
    if not path.exists():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            row = "torn"
        if row is not None and not (isinstance(row, dict) and isinstance(row.get("step"), int)):
            warnings.warn(f"{path}, line {number}: not a metrics row; left out", stacklevel=2)
        elif row is not None:
            rows.append({k: v for k, v in row.items() if _is_number(v) or k == "step"})
    return rows


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_config(path: Path) -> dict:
    """The run's config.yaml ({} when absent), read with the bounded safe loader."""
    if not path.exists():
        return {}
    try:
        cfg = read_yaml_file(path)
    except YAMLFileError as e:
        raise ValueError(str(e)) from e
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(cfg).__name__}")
    return cfg


def _fmt(key: str, value, fractions: bool = False) -> str:
    """One table cell. fractions: the value is a score stored as a fraction (the eval table),
    shown x 100 when in [-1, 1]: with % for accuracies and recalls (_PERCENT), without for other
    scores (e.g. a Spearman correlation). Otherwise only _PERCENT keys in [0, 1] are x 100."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
    if fractions and -1 <= value <= 1:
        return f"{100 * value:.1f}" + ("%" if _PERCENT.search(key) else "")
    if _PERCENT.search(key) and 0 <= value <= 1:
        return f"{100 * value:.1f}%"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# Column titles a reader knows; other keys are shown as they are.
_TITLES = {
    "knn_top1": "kNN top-1",
    "knn_top5": "kNN top-5",
    "linear_top1": "linear top-1",
    "finetune_1pct": "fine-tune, 1 % labels",
    "finetune_10pct": "fine-tune, 10 % labels",
    "map@r": "MAP@R",
    "emb_std_ratio": "std x sqrt(D)",
    "eff_rank": "effective rank",
    "svm_acc": "SVM top-1",
}


def _title(key: str) -> str:
    if key in _TITLES:
        return _TITLES[key]
    return re.sub(r"^recall@", "Recall@", key)


def _table(rows: dict[str, dict], first: str = "", fractions: bool = False) -> str:
    """rows: name -> {column: value} as an HTML table (missing cells '-'); fractions: see _fmt."""
    cols = list(dict.fromkeys(k for r in rows.values() for k in r))
    head = "".join(f"<th>{html.escape(_title(c))}</th>" for c in [first, *cols])
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(
            f'<td class="num">{_fmt(c, r[c], fractions) if c in r else "-"}</td>' for c in cols
        )
        + "</tr>"
        for name, r in rows.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(path: Path | None, alt: str, missing: str) -> str:
    if path is None:
        return f'<p class="note">{missing}</p>'
    b64 = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}">'


def _section(sid: str, title: str, intro: str, content: str) -> str:
    return f'<section id="{sid}"><h2>{title}</h2><p class="note">{intro}</p>{content}</section>'


def _last_health(rows: list[dict]) -> dict | None:
    return next((r for r in reversed(rows) if "emb_std_ratio" in r), None)


def _summary(run_dir: Path, cfg: dict, results: dict, last_health: dict | None) -> str:
    train = results.get("train", {})
    facts = {
        "run folder": str(run_dir),
        "method": cfg.get("method", "?"),
        "encoder": cfg.get("encoder", "?"),
        "data": cfg.get("data", "?"),
        "steps": train.get("steps", "?"),
        "training time (s)": f"{train['seconds']:.0f}" if "seconds" in train else "?",
        "final loss": f"{train['loss']:.4f}" if "loss" in train else "?",
    }
    warn = ""
    if results.get("collapse"):
        facts["collapse check"] = "WARNING (below)"
        warn = f'<p class="warn">Collapse warning: {html.escape(results["collapse"])}</p>'
    elif last_health:
        facts["collapse check"] = (
            f"no sign of collapse at step {last_health['step']} (std x sqrt(D) "
            f"{last_health['emb_std_ratio']:.2f}, effective rank {last_health['eff_rank']:.1f})"
        )
    return _facts(facts) + warn


def _facts(facts: dict) -> str:
    """A two-column table of name / value text."""
    # Keys too: the environment table's come from results.json, which a received run controls.
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in facts.items()
    )
    return f"<table>{rows}</table>"


def _metrics(results: dict, rows: list[dict]) -> str:
    evals = results.get("eval") or {}
    out = _table(evals, fractions=True) if evals else '<p class="note">No evaluation (data '
    out += "" if evals else "without labels, fewer than two classes, or --no-eval).</p>"
    if _plain_scores(evals):
        out += (
            '<p class="note">Every score is shown x 100 (results.json stores fractions); '
            "% marks accuracies and recalls, the others are e.g. correlations.</p>"
        )
    protocol = results.get("eval_protocol")
    if evals and isinstance(protocol, dict):  # the settings `selfsup evaluate RUN` reuses
        out += "<p>Evaluation protocol (results.json eval_protocol):</p>"
        out += _table({"settings": protocol})
    last = _last_health(rows)
    if last:
        keys = [k for k, _ in plots.HEALTH_PANELS] + ["neg_cos"]
        out += "<p>Health at the last log step:</p>" + _table(
            {f"step {last['step']}": {k: last[k] for k in keys if k in last}}
        )
    return out


def _plain_scores(evals: dict) -> bool:
    """Whether the eval table has a score shown x 100 without % (e.g. "STS-B raw")."""
    return any(
        not _PERCENT.search(k) and _is_number(v) and -1 <= v <= 1
        for row in evals.values()
        if isinstance(row, dict)
        for k, v in row.items()
    )


def _knn_lines(results: dict) -> tuple[float | None, float | None]:
    """(trained, random init) final kNN top-1 from results.json, None where absent."""
    evals = results.get("eval") or {}
    trained = [r for name, r in evals.items() if name.endswith("(trained)")]
    return (
        trained[0].get("knn_top1") if trained else None,
        evals.get("random init", {}).get("knn_top1"),
    )


def _pictures(
    run_dir: Path, rows: list[dict], data: dict, knn, wanted: set[str]
) -> dict[str, Path | None]:
    """The PNG of each picture section in `wanted` (None: nothing to draw)."""
    d = run_dir / "report"
    make_dir(d, within=run_dir)  # a symlinked report/ would send the PNGs elsewhere
    draw = {
        "curves": lambda: plots.training_curves(rows, d / "curves.png"),
        "knn": lambda: plots.knn_curve(rows, d / "knn.png", *knn),
        "health": lambda: plots.health_curves(rows, d / "health.png"),
        "similarity": lambda: plots.similarity_histograms(data, d / "similarity.png"),
        "sts": lambda: plots.sts_scatter(data, d / "sts.png"),
        "series-views": lambda: plots.series_view_grid(data, d / "series_views.png"),
        "embedding-map": lambda: plots.embedding_map(data, d / "embedding_map.png"),
        "per-class": lambda: plots.per_class_bars(data, d / "per_class.png"),
        "retrieval": lambda: plots.retrieval_grid(data, d / "retrieval.png"),
        "views": lambda: plots.view_grid(data, d / "views.png"),
        "reconstructions": lambda: reconstruction_figure(data, d / "reconstructions.png"),
    }
    return {sid: picture() for sid, picture in draw.items() if sid in wanted}


def _declared(results: dict, path: Path) -> set[str] | None:
    """The section ids results.json's report.sections declares (None when it declares none).
    Unknown ids are left out with a warning; anything but a list of strings is an error."""
    report = results.get("report") or {}
    if "sections" not in report:
        return None
    ids = report["sections"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(
            f"{path}: 'report.sections' should be a list of section ids (strings), "
            f"got {json.dumps(ids)[:80]}"
        )
    unknown = [i for i in ids if i not in PAGE_ORDER]
    if unknown:
        shown = ", ".join(repr(i[:40]) for i in unknown[:5])
        warnings.warn(
            f"{path}: report.sections names unknown sections ({shown}); left out. "
            f"Known: {', '.join(PAGE_ORDER)}",
            stacklevel=3,
        )
    return {i for i in ids if i in PAGE_ORDER}


def _text(value, limit: int = NN_TEXT_CHARS) -> str:
    """A string of a text array, cut at `limit` characters (ellipsis) and escaped."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return html.escape(text)


_KINDS = {"US": "text", "fiu": "numbers", "iu": "integers"}  # dtype kinds -> their name


def _check_arrays(data: dict, path: Path) -> None:
    """The arrays of the text (sts_*, nn_*) and time-series (series_*, per_class_*) sections
    have the kinds and shapes of the contract (docs/report.md); a received report_data.npz that
    breaks it is an error naming the file and the array."""

    def need(name: str, kinds: str, shape: tuple[int | None, ...]) -> None:
        if name not in data:
            return
        a = data[name]
        ok = a.dtype.kind in kinds and a.ndim == len(shape)
        if not ok or any(n is not None and n != m for n, m in zip(shape, a.shape, strict=True)):
            want = "x".join("N" if n is None else str(n) for n in shape) or "0-d"
            raise ValueError(
                f"{path}: {name} should be a {want} array of {_KINDS[kinds]}, "
                f"got {a.dtype} {a.shape}"
            )

    def size(name: str, ndim: int, axis: int) -> int | None:
        """The length of `name` along `axis` when it is there with `ndim` dimensions."""
        a = data.get(name)
        return a.shape[axis] if a is not None and a.ndim == ndim else None

    if "sts_pred" in data:
        n = (len(data["sts_pred"]) if data["sts_pred"].ndim == 1 else None,)
        for name in ("sts_pred", "sts_gold", "sts_pred_before"):
            need(name, "fiu", n)
        need("sts_name", "US", ())
    if "nn_query_text" in data:
        need("nn_query_text", "US", (None,))
        q = len(data["nn_query_text"])
        texts = data.get("nn_neighbor_text")
        k = texts.shape[1] if texts is not None and texts.ndim == 2 else None
        need("nn_neighbor_text", "US", (q, k))
        need("nn_neighbor_cos", "fiu", (q, k))
        need("nn_query_label", "US", (q,))
        need("nn_neighbor_label", "US", (q, k))
    # series-views: (E, C, T) examples, (E, C, La) and (E, C, Lb) views, E and C shared
    e, c = size("series_examples", 3, 0), size("series_examples", 3, 1)
    need("series_examples", "fiu", (e, c, None))
    need("series_view_a", "fiu", (e, c, None))
    need("series_view_b", "fiu", (e, c, None))
    need("series_view_names", "US", (2,))
    # per-class: (K,) accuracies, K = len(classes) when the class names are there
    if "per_class_acc" in data:
        k = size("classes", 1, 0) or size("per_class_acc", 1, 0)
        need("per_class_acc", "fiu", (k,))
        need("classes", "US", (k,))
        need("per_class_acc_before", "fiu", (k,))
        need("per_class_support", "iu", (k,))
        need("per_class_metric", "US", ())
        for name in ("per_class_acc", "per_class_acc_before"):
            acc = data[name].astype(np.float64) if name in data else np.zeros(0)
            if np.any(~np.isnan(acc) & ((acc < 0) | (acc > 1))):
                raise ValueError(
                    f"{path}: {name} should hold fractions in [0, 1] (NaN for a class absent "
                    f"from test), got values from {np.nanmin(acc):.4g} to {np.nanmax(acc):.4g}"
                )
    # state-probe: (R, V) F1 of R rows on V variables; published (P,) names and figures
    if "probe_f1" in data:
        r, v = size("probe_rows", 1, 0), size("probe_variables", 1, 0)
        need("probe_rows", "US", (None,))
        need("probe_variables", "US", (None,))
        need("probe_f1", "fiu", (r, v))
        p = size("probe_published_names", 1, 0)
        need("probe_published_names", "US", (None,))
        need("probe_published_f1", "fiu", (p,))


def _sts(data: dict, picture: Path | None, missing: str) -> str:
    """The scatter of predicted vs gold similarity, with its Spearman rho as text too."""
    out = _image(picture, "Predicted vs gold similarity", missing)
    if picture is None:
        return out
    rho = plots.spearman(data["sts_pred"], data["sts_gold"])
    line = f"Spearman rho of the trained encoder: {rho:.3f}"
    if "sts_pred_before" in data:
        before = plots.spearman(data["sts_pred_before"], data["sts_gold"])
        line += f"; random init: {before:.3f}"
    line += f" ({len(data['sts_gold'])} pairs"
    name = data.get("sts_name")
    line += f", {_text(name[()], 80)})" if name is not None else ")"
    return f"<p>{line}.</p>{out}"


def _neighbours(data: dict, missing: str) -> str:
    """Each query sentence (rowspan) with its nearest sentences, their cosine and, when labels
    were saved, a green (same label) or red (different) frame."""
    if not all(f"nn_{n}" in data for n in ("query_text", "neighbor_text", "neighbor_cos")):
        return f'<p class="note">{missing}</p>'
    queries, texts, cos = data["nn_query_text"], data["nn_neighbor_text"], data["nn_neighbor_cos"]
    q_lab, n_lab = data.get("nn_query_label"), data.get("nn_neighbor_label")
    labeled = q_lab is not None and n_lab is not None
    k = texts.shape[1]
    if not len(queries) or not k:
        return f'<p class="note">{missing}</p>'

    def label(value) -> str:
        return f'<br><span class="label">label: {_text(value, 60)}</span>' if labeled else ""

    body = []
    for i, query in enumerate(queries):
        for j in range(k):
            mark = ""
            if labeled:
                mark = ' class="same"' if n_lab[i, j] == q_lab[i] else ' class="diff"'
            first = (
                f'<td rowspan="{k}">{_text(query)}{label(q_lab[i] if labeled else "")}</td>'
                if j == 0
                else ""
            )
            body.append(
                f'<tr>{first}<td class="num">{j + 1}</td>'
                f'<td class="num">{float(cos[i, j]):.3f}</td>'
                f"<td{mark}>{_text(texts[i, j])}{label(n_lab[i, j] if labeled else '')}</td></tr>"
            )
    head = "<tr><th>query</th><th>#</th><th>cosine</th><th>nearest sentence</th></tr>"
    return f'<table class="nn">{head}{"".join(body)}</table>'


def _series_views(data: dict, picture: Path | None, missing: str) -> str:
    """The grid of example series and their two views, with the view recipes' names and a note
    when channels were left out."""
    out = _image(picture, "Example series and their views", missing)
    if picture is None:
        return out
    e, c, t = data["series_examples"].shape
    line = f"{e} example series of {t} steps, {c} channel{'s' if c != 1 else ''}"
    names = data.get("series_view_names")
    if names is not None:
        line += f"; view 1: {_text(names[0], 80)}, view 2: {_text(names[1], 80)}"
    notes = f"<p>{line}.</p>"
    if c > plots.MAX_CHANNELS:
        notes += (
            f'<p class="note">Only the first {plots.MAX_CHANNELS} of the {c} channels are '
            "drawn.</p>"
        )
    return notes + out


def _state_probe(data: dict, missing: str) -> str:
    """The table of per-variable probe F1, one column per evaluated row, the mean over
    variables below, and the paper's per-game figures when saved."""
    if not all(f"probe_{n}" in data for n in ("rows", "variables", "f1")):
        return f'<p class="note">{missing}</p>'
    rows, names, f1 = data["probe_rows"], data["probe_variables"], data["probe_f1"]
    head = "<tr><th>variable</th>" + "".join(f"<th>{_text(r, 40)}</th>" for r in rows) + "</tr>"

    def cells(values) -> str:
        return "".join(f'<td class="num">{float(x):.3f}</td>' for x in values)

    body = [f"<tr><td>{_text(n, 60)}</td>{cells(f1[:, j])}</tr>" for j, n in enumerate(names)]
    body.append(f"<tr><th>mean over variables</th>{cells(np.nanmean(f1, axis=1))}</tr>")
    out = f'<table class="nn">{head}{"".join(body)}</table>'
    if "probe_published_names" in data and "probe_published_f1" in data:
        pairs = zip(data["probe_published_names"], data["probe_published_f1"], strict=True)
        shown = ", ".join(f"{_text(n, 30)} {float(v):.2f}" for n, v in pairs)
        out += (
            f"<p>Published F1 for this game (Anand et al. 2019, Table 2, averaged across "
            f"categories, random-agent frames): {shown}.</p>"
        )
    return out


def _per_class(data: dict, picture: Path | None, missing: str) -> str:
    """The per-class bars, with the classifier, the mean over the classes present and notes on
    absent classes and classes left out of the picture."""
    out = _image(picture, "Per-class accuracy", missing)
    if picture is None:
        return out
    acc = data["per_class_acc"].astype(np.float64)
    k, present = len(acc), int(np.isfinite(acc).sum())
    metric = data.get("per_class_metric")
    line = f"Test accuracy of the trained encoder on each of {k} classes"
    line += f", {_text(metric[()], 80)}" if metric is not None else ""
    if present:
        line += f"; mean over the {present} classes in the test split: {np.nanmean(acc):.1%}"
    if "per_class_acc_before" in data and np.isfinite(data["per_class_acc_before"]).any():
        line += f" (random init: {np.nanmean(data['per_class_acc_before']):.1%})"
    notes = f"<p>{line}.</p>"
    if present < k:
        notes += (
            f'<p class="note">{k - present} class{"es have" if k - present > 1 else " has"} '
            'no test sample: "n/a".</p>'
        )
    if k > plots.MAX_CLASSES:
        notes += f'<p class="note">Only the first {plots.MAX_CLASSES} of {k} classes are drawn.</p>'
    return notes + out


# (title, what it shows, what to do when it is missing) per section between metrics and config.
_TEXT = {
    "curves": (
        "Loss and learning rate",
        "The training loss should fall quickly and then flatten; the learning rate is the "
        "warm-up + cosine schedule the loop applied.",
        "metrics.jsonl has no loss rows.",
    ),
    "knn": (
        "kNN accuracy during training",
        "Weighted kNN top-1 (k and t of the evaluation protocol) on a small labeled subset, "
        "measured every "
        "eval.every steps: a rising curve means the representation is learning classes "
        "it never saw labels for.",
        "Not recorded: pass --eval-every N (or eval.every) to measure it during training.",
    ),
    "health": (
        "Health of the embeddings during training",
        "From each log step's projections. Collapse shows as std x sqrt(D) falling towards 0, "
        "the effective rank towards 1, positive and negative cosines both nearing 1, or the "
        "norm shrinking towards 0 (a collapse to the zero vector).",
        "Not recorded: eval.health was off or the method returns no pair of embeddings.",
    ),
    "similarity": (
        "Positive vs negative pairs",
        "Cosine similarity of the encoder's representations for two views of the same "
        "test image (positive) and of two different images (negative). Training should pull "
        "the positives to the right and keep the negatives apart.",
        "No report data (report_data.npz) in this run.",
    ),
    "sts": (
        "Predicted vs gold similarity",
        "Each point is a sentence pair of a semantic textual similarity (STS) test set: the "
        "human similarity score against the cosine similarity of the trained encoder's "
        "embeddings of the two sentences (beside it the random-init encoder's, when saved). "
        "Spearman's rank correlation (rho) is the STS score: 1 means the encoder ranks the "
        "pairs exactly as people do.",
        "No STS pairs in this run (report_data.npz has no sts_pred and sts_gold).",
    ),
    "series-views": (
        "Example series and their views",
        "Each row: a series from the data (original), then the two augmented views the "
        "training recipe made of it, each channel a line (gaps are padding of a shorter crop or "
        "missing steps). The model is trained to map both views to the same place: whatever "
        "differs between them (the crop, jitter, scaling, masked steps) is what it learns to "
        "ignore.",
        "No example series in this run (report_data.npz has no series_examples, series_view_a "
        "and series_view_b).",
    ),
    "embedding-map": (
        "Map of test embeddings",
        "A 2-D projection of the representations of test samples, coloured by the label the "
        "model never saw during training; clusters by colour mean the classes are separable.",
        "No labeled test embeddings in this run.",
    ),
    "per-class": (
        "Per-class accuracy",
        "The frozen trained encoder's test accuracy on each class, as the evaluation measured "
        "it (beside it, in grey, the random-init encoder's when saved): which classes the "
        "representation separates and which it confuses. (n=...) after a class name is its "
        'number of test samples, when saved; "n/a" marks a class with no test sample.',
        "No per-class accuracy in this run (report_data.npz has no per_class_acc).",
    ),
    "state-probe": (
        "Game-state probes",
        "A linear probe per game-state variable (read from the console RAM, the AtariARI "
        "protocol) on frozen features, scored by weighted F1 on test episodes: which parts of "
        "the state the representation holds, against the pixels and the untrained encoder. "
        "The metrics table gives the benchmark's figure: the mean within each category, then "
        "across categories.",
        "No probe results in this run (report_data.npz has no probe_f1).",
    ),
    "retrieval": (
        "Nearest neighbours",
        "Each row: a test image (black frame), then its nearest training images by cosine "
        "similarity of the trained representation; green frame = same label, red = different.",
        "No retrieval examples in this run.",
    ),
    "neighbours": (
        "Nearest-neighbour sentences",
        "Each query: a test sentence and the sentences nearest to it by cosine similarity of "
        "the trained encoder's embeddings, nearest first (long sentences are cut). When the "
        "sentences have labels, a green frame marks a neighbour with the query's label and a "
        "red frame a different one.",
        "No nearest-neighbour sentences in this run (report_data.npz has no nn_query_text, "
        "nn_neighbor_text and nn_neighbor_cos).",
    ),
    "views": (
        "Augmented views",
        "Each row: an image, then random views from the training recipe. The model is "
        "trained to map all of them to the same place: this is what it learns to ignore.",
        "The views are not image pipelines (e.g. text), so there is nothing to draw.",
    ),
    "reconstructions": (
        "Reconstructions",
        "Masked image modeling: each row is a test image, the same image with the hidden "
        "patches in grey (a fixed, seeded mask), and the trained model's prediction of the "
        "hidden patches with the visible ones pasted back. Blurry but well-placed shapes and "
        "colours are typical of a short run; uniform grey means nothing was learned.",
        "No reconstructions in this run (report_data.npz has no recon_* arrays).",
    ),
}


def _shown(pics: dict[str, Path | None], declared: set[str] | None) -> list[str]:
    """Section ids in page order (PAGE_ORDER): the declared ones and ALWAYS; without a
    declaration SECTIONS, and each optional section whose picture could be drawn."""
    if declared is not None:
        return [s for s in PAGE_ORDER if s in ALWAYS or s in declared]
    extra = {s for s in OPTIONAL_SECTIONS if pics.get(s) is not None}
    return [s for s in PAGE_ORDER if s in SECTIONS or s in extra]


def write_report(run_dir: str | Path) -> Path:
    """Write `<run_dir>/report.html` and `<run_dir>/report/*.png` from the run folder alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a run folder (expected `selfsup pretrain --out`)")
    cfg = _read_config(run_dir / "config.yaml")
    results = _read_json(run_dir / "results.json")
    where = run_dir / "results.json"
    for key in ("train", "eval", "environment", "report"):
        if not isinstance(results.get(key) or {}, dict):
            raise ValueError(f"{where}: {key!r} should be a JSON object")
    if not all(isinstance(row, dict) for row in (results.get("eval") or {}).values()):
        raise ValueError(f"{where}: each row of 'eval' should be a JSON object")
    declared = _declared(results, where)
    rows = _read_rows(run_dir / "metrics.jsonl")
    data = snapshot.load(run_dir)
    _check_arrays(data, run_dir / snapshot.FILE)
    wanted = set(SECTIONS) | set(OPTIONAL_SECTIONS) if declared is None else declared
    pics = _pictures(run_dir, rows, data, _knn_lines(results), wanted)
    shown = _shown(pics, declared)
    parts = {
        "summary": _section(
            "summary",
            "Summary",
            "What ran, for how long.",
            _summary(run_dir, cfg, results, _last_health(rows)),
        ),
        "metrics": _section(
            "metrics",
            "Final metrics",
            "The frozen encoder evaluated on held-out data beside baselines (the raw input, "
            "e.g. pixels, TF-IDF or raw series, and the untrained encoder): kNN, linear probe or "
            "SVM, few-label fine-tuning, retrieval or similarity correlations, as the run "
            "measured them.",
            _metrics(results, rows),
        ),
    }
    for sid, (title, intro, missing) in _TEXT.items():
        if sid not in shown:
            continue
        if sid == "neighbours":
            content = _neighbours(data, missing)
        elif sid == "sts":
            content = _sts(data, pics[sid], missing)
        elif sid == "series-views":
            content = _series_views(data, pics[sid], missing)
        elif sid == "per-class":
            content = _per_class(data, pics[sid], missing)
        elif sid == "state-probe":
            content = _state_probe(data, missing)
        else:
            content = _image(pics[sid], title, missing)
        parts[sid] = _section(sid, title, intro, content)
    env = results.get("environment") or {}
    parts["config"] = _section(
        "config",
        "Resolved configuration",
        "Every setting of the run (config.yaml).",
        f"<pre>{html.escape(yaml.safe_dump(cfg, sort_keys=False))}</pre>",
    )
    parts["environment"] = _section(
        "environment",
        "Environment",
        "Versions and device the run used.",
        _facts(env) if env else '<p class="note">Not recorded in results.json.</p>',
    )
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in shown)
    title = f"selfsup report: {html.escape(run_dir.name)}"
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1><nav>{nav}</nav>"
        + "".join(parts[s] for s in shown)
        + "</body></html>"
    )
    out = run_dir / "report.html"
    write_atomic(out, page)  # never through a symlink planted at report.html
    return out
