"""A time-series run's report: the sections results.json declares (report.sections), the grid of
example series beside their two augmented views, the per-class accuracy bars, and the eval
table with the SVM column x 100.

The run folder is written by hand (no training): config.yaml, results.json, metrics.jsonl and
report_data.npz with the arrays of the series sections' contract (docs/report.md).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from selfsup.cli import main
from selfsup.report import plots
from selfsup.report.html import PAGE_ORDER, SECTIONS, write_report
from tests.report.page import ReportPage, parse_report

SCRIPT = "<script>alert(1)</script>"
SERIES_SECTIONS = ["curves", "health", "series-views", "embedding-map", "per-class"]
EVAL = {
    "raw series": {"svm_acc": 0.8},
    "random init": {"svm_acc": 0.55, "linear_top1": 0.5, "knn_top1": 0.45},
    "ts2vec (trained)": {"svm_acc": 0.9, "linear_top1": 0.88, "knn_top1": 0.85},
}
CLASSES = np.array(["walk", "run", "$x$ sit", "stand", "lie"])


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """report_data.npz of a series run: 3 examples of 4 channels x 50 steps, a view cropped to
    40 steps (NaN-padded to 45) and a view with masked (NaN) steps, 5 classes (the last absent
    from test), a labeled embedding map (trained encoder only: one t-SNE)."""
    rng = np.random.default_rng(seed)
    examples = np.cumsum(rng.normal(size=(3, 4, 50)), axis=2)
    view_a = np.full((3, 4, 45), np.nan)
    view_a[:, :, :40] = examples[:, :, 5:45] * 1.1
    view_b = examples + rng.normal(0, 0.2, examples.shape)
    view_b[:, :, 20:25] = np.nan
    emb_labels = np.repeat(np.arange(5), 6)
    emb = rng.normal(size=(30, 8)) + 3 * emb_labels[:, None]
    return {
        "series_examples": examples.astype(np.float32),
        "series_view_a": view_a.astype(np.float32),
        "series_view_b": view_b.astype(np.float32),
        "series_view_names": np.array(["crop", f"jitter {SCRIPT}"]),
        "per_class_acc": np.array([0.9, 1.0, 0.5, 0.75, np.nan]),
        "per_class_acc_before": np.array([0.4, 0.6, 0.2, 0.5, np.nan]),
        "per_class_support": np.array([10, 4, 2, 8, 0]),
        "per_class_metric": np.array("SVM <RBF> (TS2Vec protocol)"),
        "emb_after": emb.astype(np.float16),
        "emb_labels": emb_labels,
        "classes": CLASSES,
    }


def _series_only() -> dict[str, np.ndarray]:
    """The series sections' arrays without the embedding map's (no t-SNE to run)."""
    return {k: v for k, v in _arrays().items() if not k.startswith("emb_")}


def _run(path: Path, results: dict | None = None, arrays: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text("method: ts2vec\nencoder: series_small\n")
    if results is not None:
        (path / "results.json").write_text(json.dumps(results))
    rows = [
        {"step": s, "loss": 4.0 / s, "lr": 0.01, "emb_std_ratio": 0.8, "eff_rank": 6.0 + s}
        for s in (1, 2, 3)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if arrays is not None:
        np.savez_compressed(path / "report_data.npz", **arrays)
    return path


def _series_results(sections=None) -> dict:
    return {
        "train": {"steps": 3, "seconds": 1.0, "loss": 1.3},
        "eval": EVAL,
        "report": {"sections": list(reversed(SERIES_SECTIONS)) if sections is None else sections},
    }


def parse_report_text(html_part: str) -> list[str]:
    """The non-blank text pieces of a piece of the page."""
    page = ReportPage()
    page.feed(html_part)
    return [t.strip() for t in page.text if t.strip()]


def _section(page: str, sid: str) -> str:
    part = page[page.index(f'<section id="{sid}">') :]
    return part[: part.index("</section>")]


@pytest.fixture(scope="module")
def series_run(tmp_path_factory) -> Path:
    run = _run(tmp_path_factory.mktemp("series") / "run", _series_results(), _arrays())
    with threadpool_limits(1):  # t-SNE's OpenMP threads only spin on a shared, busy machine
        write_report(run)
    return run


def test_series_run_shows_exactly_its_declared_sections_in_page_order(series_run):
    page = parse_report(series_run / "report.html")
    assert page.sections == [
        "summary", "metrics", "curves", "health", "series-views", "embedding-map", "per-class",
        "config", "environment",
    ]  # fmt: skip
    assert page.sections == [s for s in PAGE_ORDER if s in page.sections]
    html_text = (series_run / "report.html").read_text()
    for absent in ("views", "retrieval", "knn", "similarity", "reconstructions", "sts"):
        assert absent not in page.sections
        assert f'href="#{absent}"' not in html_text
    assert "neighbours" not in page.sections
    with_image = {sid for sid, _ in page.images}
    assert with_image == {"curves", "health", "series-views", "embedding-map", "per-class"}
    assert all(src.startswith("data:image/png;base64,") for _, src in page.images)
    for name in ("series_views", "per_class", "embedding_map"):
        assert (series_run / "report" / f"{name}.png").stat().st_size > 1000
    for name in ("views", "retrieval", "sts", "similarity"):
        assert not (series_run / "report" / f"{name}.png").exists()


def test_series_views_section_names_the_views_escaped_and_notes_left_out_channels(series_run):
    page = (series_run / "report.html").read_text()
    section = _section(page, "series-views")
    assert "<script>" not in page
    assert "view 2: jitter &lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "3 example series of 50 steps, 4 channels; view 1: crop" in section
    assert "Only the first 3 of the 4 channels are drawn." in section
    assert "learns to ignore" in section


def test_per_class_section_states_metric_mean_and_absent_class(series_run):
    section = _section((series_run / "report.html").read_text(), "per-class")
    assert "SVM &lt;RBF&gt; (TS2Vec protocol)" in section
    # mean over the 4 classes in the test split, NaN left out: (0.9 + 1 + 0.5 + 0.75) / 4
    assert "on each of 5 classes" in section and "4 classes in the test split: 78.8%" in section
    assert "(random init: 42.5%)" in section
    assert "1 class has no test sample" in section
    assert "Only the first" not in section  # 5 classes: all drawn


def test_eval_table_shows_svm_accuracy_x100(series_run):
    metrics = _section((series_run / "report.html").read_text(), "metrics")
    table = metrics[: metrics.index("</table>")]  # the eval table, before the health table
    text = " ".join(parse_report_text(table))
    assert "SVM top-1 linear top-1 kNN top-1" in text and "svm_acc" not in text
    assert "raw series 80.0% - -" in text
    assert "random init 55.0% 50.0% 45.0%" in text
    assert "ts2vec (trained) 90.0% 88.0% 85.0%" in text
    assert "Every score is shown x 100" not in metrics  # every column has its %


def test_declared_series_sections_without_data_keep_their_missing_note(tmp_path):
    results = {"report": {"sections": ["series-views", "per-class"]}}
    page = parse_report(write_report(_run(tmp_path / "run", results)))
    assert page.sections == [
        "summary", "metrics", "series-views", "per-class", "config", "environment",
    ]  # fmt: skip
    assert page.images == []
    text = " ".join(page.text)
    assert "No example series in this run" in text
    assert "No per-class accuracy in this run" in text
    # the examples without their views: nothing to draw either
    arrays = {"series_examples": _arrays()["series_examples"]}
    part = parse_report(write_report(_run(tmp_path / "part", results, arrays)))
    assert part.images == [] and "No example series in this run" in " ".join(part.text)


def test_run_without_report_sections_shows_no_series_section(tmp_path):
    results = {"train": {"steps": 3}, "eval": EVAL}
    page = parse_report(write_report(_run(tmp_path / "run", results, _series_only())))
    assert page.sections == list(SECTIONS)
    assert not (tmp_path / "run" / "report" / "per_class.png").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("series_examples", np.zeros((3, 50))),  # (E, T): no channel axis
        ("series_view_a", np.zeros((2, 4, 45))),  # E differs from series_examples'
        ("series_view_b", np.zeros((3, 2, 50))),  # C differs
        ("series_view_a", np.zeros((3, 4, 45, 1))),  # 4-D
        ("series_view_b", np.full((3, 4, 50), "x")),  # text, not numbers
        ("series_view_names", np.array(["crop", "jitter", "scale"])),  # not 2 names
        ("per_class_acc", np.full(4, 0.5)),  # 4 accuracies, 5 classes
        ("per_class_acc", np.full((5, 1), 0.5)),  # 2-D
        ("per_class_acc", np.array([90.0, 100.0, 50.0, 75.0, np.nan])),  # percent, not fractions
        ("per_class_acc_before", np.full(6, 0.5)),
        ("per_class_support", np.full(5, 2.5)),  # counts are integers
        ("per_class_metric", np.array(["svm", "knn"])),  # not 0-d
        ("classes", np.arange(5)),  # numbers, not names
    ],
)
def test_series_arrays_breaking_the_contract_name_report_data(tmp_path, name, value):
    arrays = _series_only() | {name: value}
    run = _run(tmp_path / "run", _series_results(["series-views", "per-class"]), arrays)
    with pytest.raises(ValueError, match=rf"report_data\.npz: {name}"):
        write_report(run)


def test_cli_report_of_a_broken_series_file_is_a_clean_error(tmp_path, capsys):
    arrays = _series_only() | {"series_view_a": np.zeros((2, 4, 45))}
    run = _run(tmp_path / "run", _series_results(["series-views"]), arrays)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "report_data.npz" in err and "series_view_a" in err and "Traceback" not in err


def test_series_view_grid_draws_one_channel_and_all_nan_rows_without_names(tmp_path):
    data = {
        "series_examples": np.sin(np.linspace(0, 6, 30))[None, None].repeat(2, 0),
        "series_view_a": np.full((2, 1, 12), np.nan),  # a view with nothing to draw
        "series_view_b": np.linspace(0, 1, 30)[None, None].repeat(2, 0),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plots.series_view_grid(data, tmp_path / "v.png").stat().st_size > 1000
    del data["series_view_b"]
    assert plots.series_view_grid(data, tmp_path / "none.png") is None
    empty = {k: np.zeros((0, 1, 5)) for k in ("series_examples", "series_view_a", "series_view_b")}
    assert plots.series_view_grid(empty, tmp_path / "empty.png") is None


def test_per_class_bars_cap_classes_and_draw_without_names_or_baseline(tmp_path):
    many = {
        "per_class_acc": np.r_[np.linspace(0, 1, 44), np.nan],
        "classes": np.array([f"${i}" for i in range(45)]),  # `$` must not start math mode
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plots.per_class_bars(many, tmp_path / "many.png").stat().st_size > 1000
        bare = {"per_class_acc": np.array([0.5, 0.25])}  # no names, no baseline, no support
        assert plots.per_class_bars(bare, tmp_path / "bare.png").stat().st_size > 1000
    assert plots.per_class_bars({}, tmp_path / "none.png") is None


def test_per_class_section_notes_classes_left_out_of_the_picture(tmp_path):
    arrays = {
        "per_class_acc": np.full(45, 0.5),
        "classes": np.array([f"c{i}" for i in range(45)]),
    }
    run = _run(tmp_path / "run", _series_results(["per-class"]), arrays)
    page = parse_report(write_report(run))
    assert [sid for sid, _ in page.images] == ["per-class"]
    text = " ".join(page.text)
    assert f"Only the first {plots.MAX_CLASSES} of 45 classes are drawn." in text
    assert "has no test sample" not in text
