"""One HTML report per run: `report.html` (images embedded, readable offline) + `report/*.png`.

Reads only the run folder: config.yaml, results.json, metrics.jsonl, report_data.npz.
Sections (ids): summary, metrics, curves, knn, health, similarity, embedding-map, retrieval,
views, config, environment. A section with nothing to show says why and how to get it.
Optional sections appear only in runs that have them: reconstructions (MAE: original | masked |
reconstruction of a few test images, placed after views).
"""

from __future__ import annotations

import base64
import html
import json
import re
import warnings
from pathlib import Path

import yaml

from selfsup.engine.run_dir import make_dir, write_atomic
from selfsup.report import plots, snapshot
from selfsup.report.reconstructions import reconstruction_figure
from selfsup.safe_yaml import YAMLFileError, read_yaml_file

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
# Shown only when the run has the picture (masked image modeling); omitted otherwise.
OPTIONAL_SECTIONS = ("reconstructions",)
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


def _fmt(key: str, value) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return html.escape(str(value))
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
}


def _title(key: str) -> str:
    if key in _TITLES:
        return _TITLES[key]
    return re.sub(r"^recall@", "Recall@", key)


def _table(rows: dict[str, dict], first: str = "") -> str:
    """rows: name -> {column: value} as an HTML table (missing cells '-')."""
    cols = list(dict.fromkeys(k for r in rows.values() for k in r))
    head = "".join(f"<th>{html.escape(_title(c))}</th>" for c in [first, *cols])
    body = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        + "".join(f'<td class="num">{_fmt(c, r[c]) if c in r else "-"}</td>' for c in cols)
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
    out = _table(evals) if evals else '<p class="note">No evaluation (data without labels, '
    out += "" if evals else "fewer than two classes, or --no-eval).</p>"
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


def _knn_lines(results: dict) -> tuple[float | None, float | None]:
    """(trained, random init) final kNN top-1 from results.json, None where absent."""
    evals = results.get("eval") or {}
    trained = [r for name, r in evals.items() if name.endswith("(trained)")]
    return (
        trained[0].get("knn_top1") if trained else None,
        evals.get("random init", {}).get("knn_top1"),
    )


def _pictures(run_dir: Path, rows: list[dict], data: dict, knn) -> dict[str, Path | None]:
    d = run_dir / "report"
    make_dir(d, within=run_dir)  # a symlinked report/ would send the PNGs elsewhere
    return {
        "curves": plots.training_curves(rows, d / "curves.png"),
        "knn": plots.knn_curve(rows, d / "knn.png", *knn),
        "health": plots.health_curves(rows, d / "health.png"),
        "similarity": plots.similarity_histograms(data, d / "similarity.png"),
        "embedding-map": plots.embedding_map(data, d / "embedding_map.png"),
        "retrieval": plots.retrieval_grid(data, d / "retrieval.png"),
        "views": plots.view_grid(data, d / "views.png"),
        "reconstructions": reconstruction_figure(data, d / "reconstructions.png"),
    }


# (title, what it shows, what to do when it is missing) per picture section.
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
    "embedding-map": (
        "Map of test embeddings",
        "A 2-D projection of test-set representations, coloured by the label the model "
        "never saw; clusters by colour mean the classes are separable.",
        "No labeled test embeddings in this run.",
    ),
    "retrieval": (
        "Nearest neighbours",
        "Each row: a test image (black frame), then its nearest training images by cosine "
        "similarity of the trained representation; green frame = same label, red = different.",
        "No retrieval examples in this run.",
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
        "",
    ),
}


def _shown(pics: dict[str, Path | None]) -> list[str]:
    """Section ids in page order: SECTIONS, with each optional section that has its picture
    inserted after "views"."""
    extra = [s for s in OPTIONAL_SECTIONS if pics.get(s) is not None]
    at = SECTIONS.index("views") + 1
    return [*SECTIONS[:at], *extra, *SECTIONS[at:]]


def write_report(run_dir: str | Path) -> Path:
    """Write `<run_dir>/report.html` and `<run_dir>/report/*.png` from the run folder alone."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: not a run folder (expected `selfsup pretrain --out`)")
    cfg = _read_config(run_dir / "config.yaml")
    results = _read_json(run_dir / "results.json")
    for key in ("train", "eval", "environment"):
        if not isinstance(results.get(key) or {}, dict):
            raise ValueError(f"{run_dir / 'results.json'}: {key!r} should be a JSON object")
    rows = _read_rows(run_dir / "metrics.jsonl")
    data = snapshot.load(run_dir)
    pics = _pictures(run_dir, rows, data, _knn_lines(results))
    shown = _shown(pics)
    parts = [
        _section(
            "summary",
            "Summary",
            "What ran, for how long.",
            _summary(run_dir, cfg, results, _last_health(rows)),
        ),
        _section(
            "metrics",
            "Final metrics",
            "Frozen-encoder kNN and linear probe on the test split (raw pixels and the "
            "untrained encoder as baselines), few-label fine-tuning, retrieval when measured.",
            _metrics(results, rows),
        ),
    ]
    for sid, (title, intro, missing) in _TEXT.items():
        if sid in shown:
            parts.append(_section(sid, title, intro, _image(pics[sid], title, missing)))
    env = results.get("environment") or {}
    parts.append(
        _section(
            "config",
            "Resolved configuration",
            "Every setting of the run (config.yaml).",
            f"<pre>{html.escape(yaml.safe_dump(cfg, sort_keys=False))}</pre>",
        )
    )
    parts.append(
        _section(
            "environment",
            "Environment",
            "Versions and device the run used.",
            _facts(env) if env else '<p class="note">Not recorded in results.json.</p>',
        )
    )
    nav = "".join(f'<a href="#{s}">{s}</a>' for s in shown)
    title = f"selfsup report: {html.escape(run_dir.name)}"
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_CSS}</style></head><body><h1>{title}</h1><nav>{nav}</nav>"
        + "".join(parts)
        + "</body></html>"
    )
    out = run_dir / "report.html"
    write_atomic(out, page)  # never through a symlink planted at report.html
    return out
