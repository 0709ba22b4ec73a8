"""A text run's report: the sections results.json declares (report.sections), the STS scatter,
the nearest-neighbour sentences table (every sentence escaped) and the eval table x 100.

The run folder is written by hand (no training): config.yaml, results.json, metrics.jsonl and
report_data.npz with the arrays of the text sections' contract (docs/report.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selfsup.cli import main
from selfsup.report import plots
from selfsup.report.html import PAGE_ORDER, SECTIONS, write_report
from tests.report.page import parse_report

SCRIPT = "<script>alert(1)</script>"
TEXT_SECTIONS = ["curves", "health", "sts", "neighbours", "embedding-map"]
EVAL = {
    "tfidf": {"STS-B raw": 0.69, "SST-2": 0.78},
    "random init": {"STS-B raw": -0.05, "SST-2": 0.55},
    "simcse (trained)": {"STS-B raw": 0.764, "SST-2": 0.812},
}


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """report_data.npz of a text run: STS pairs, neighbour sentences, a labeled embedding map."""
    rng = np.random.default_rng(seed)
    gold = rng.uniform(0, 5, 60)
    labels = np.array(["positive", "negative"])
    q_lab = labels[[0, 1, 0]]
    n_lab = labels[[[0, 1], [1, 1], [0, 0]]]
    emb_labels = np.repeat([0, 1], 15)
    emb = rng.normal(size=(30, 8)) + 3 * emb_labels[:, None]
    return {
        "sts_pred": (gold / 5 + rng.normal(0, 0.1, 60)).astype(np.float32),
        "sts_pred_before": rng.uniform(0.8, 1.0, 60).astype(np.float32),
        "sts_gold": gold.astype(np.float32),
        "sts_name": np.array("sts-test.csv"),
        "nn_query_text": np.array([f"a query with {SCRIPT} in it", "second query", "q3"]),
        "nn_neighbor_text": np.array(
            [["x" * 500, "a & b"], ["near one", "near two"], ["n1", f"'quoted' {SCRIPT}"]]
        ),
        "nn_neighbor_cos": np.array([[0.9, 0.8], [0.7, 0.6], [0.5, 0.4]], dtype=np.float32),
        "nn_query_label": q_lab,
        "nn_neighbor_label": n_lab,
        "emb_after": emb.astype(np.float16),
        "emb_before": rng.normal(size=(30, 8)).astype(np.float16),
        "emb_labels": emb_labels,
        "classes": labels,
    }


def _run(
    path: Path,
    results: dict | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text("method: simcse\nencoder: text_small\n")
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


def _text_results(sections=None) -> dict:
    return {
        "train": {"steps": 3, "seconds": 1.0, "loss": 1.3},
        "eval": EVAL,
        "report": {"sections": list(reversed(TEXT_SECTIONS)) if sections is None else sections},
    }


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    run = _run(tmp_path_factory.mktemp("text") / "run", _text_results(), _arrays())
    write_report(run)
    return run


def test_text_run_shows_exactly_its_declared_sections_in_page_order(text_run):
    page = parse_report(text_run / "report.html")
    # declared in reverse: the page keeps the fixed order
    expected = ["summary", "metrics", *TEXT_SECTIONS, "config", "environment"]
    assert page.sections == [s for s in PAGE_ORDER if s in expected]
    assert page.sections[2:7] == ["curves", "health", "sts", "neighbours", "embedding-map"]
    for absent in ("views", "retrieval", "knn", "similarity", "reconstructions"):
        assert absent not in page.sections
        assert f'href="#{absent}"' not in (text_run / "report.html").read_text()
    with_image = {sid for sid, _ in page.images}
    assert with_image == {"curves", "health", "sts", "embedding-map"}
    assert all(src.startswith("data:image/png;base64,") for _, src in page.images)
    for name in ("sts", "embedding_map"):
        assert (text_run / "report" / f"{name}.png").stat().st_size > 1000
    assert not (text_run / "report" / "views.png").exists()


def test_sts_section_states_spearman_of_both_encoders(text_run):
    text = " ".join(parse_report(text_run / "report.html").text)
    data = _arrays()
    rho = plots.spearman(data["sts_pred"], data["sts_gold"])
    assert rho > 0.8
    assert f"trained encoder: {rho:.3f}" in text and "random init:" in text
    assert "60 pairs, sts-test.csv" in text


def test_neighbours_table_escapes_and_cuts_every_sentence(text_run):
    page = (text_run / "report.html").read_text()
    table = page[page.index('<section id="neighbours">') :]
    table = table[: table.index("</section>")]
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in table
    assert "a &amp; b" in table and "&#x27;quoted&#x27;" in table
    assert ">" + "x" * 199 + "\u2026<" in table  # cut at 200 characters, ellipsis included
    assert table.count('rowspan="2"') == 3  # 3 queries, 2 neighbours each
    assert "0.900" in table and "0.400" in table
    # labels: query 0 (positive) -> positive, negative; 1 (negative) -> negative twice;
    # 2 (positive) -> positive twice
    assert table.count('class="same"') == 5 and table.count('class="diff"') == 1
    assert "label: positive" in table


def test_eval_table_shows_text_scores_x100(text_run):
    text = " ".join(parse_report(text_run / "report.html").text)
    for shown in ("69.0", "78.0", "-5.0", "76.4", "81.2"):
        assert shown in text
    assert "0.69" not in text and "0.764" not in text
    assert "Every score is shown x 100" in text


def test_image_eval_table_prints_as_before(tmp_path):
    results = {
        "eval": {
            "raw pixels": {"knn_top1": 0.9, "linear_top1": 0.955, "recall@1": 0.5},
            "simclr (trained)": {"knn_top5": 1.0, "map@r": 0.25, "finetune_10pct": 0.875},
        }
    }
    text = " ".join(parse_report(write_report(_run(tmp_path / "run", results))).text)
    for shown in ("90.0%", "95.5%", "50.0%", "100.0%", "25.0%", "87.5%"):
        assert shown in text
    assert "Every score is shown x 100" not in text  # all of them have their %


def test_run_without_report_sections_shows_todays_sections(tmp_path):
    """An older run (or an image run written before report.sections): SECTIONS, and no text
    section even when its arrays are there."""
    results = {"train": {"steps": 3}, "eval": {"simclr (trained)": {"knn_top1": 0.5}}}
    arrays = {k: v for k, v in _arrays().items() if not k.startswith("emb_")}
    page = parse_report(write_report(_run(tmp_path / "run", results, arrays)))
    assert page.sections == list(SECTIONS)
    assert not (tmp_path / "run" / "report" / "sts.png").exists()
    empty = parse_report(write_report(_run(tmp_path / "bare")))
    assert empty.sections == list(SECTIONS)


def test_declared_sections_without_data_keep_their_missing_note(tmp_path):
    results = {"report": {"sections": ["sts", "neighbours", "views", "reconstructions"]}}
    page = parse_report(write_report(_run(tmp_path / "run", results)))
    assert page.sections == [
        "summary", "metrics", "sts", "neighbours", "views", "reconstructions", "config",
        "environment",
    ]  # fmt: skip
    assert page.images == []
    text = " ".join(page.text)
    assert "No STS pairs in this run" in text
    assert "No nearest-neighbour sentences in this run" in text
    assert "No reconstructions in this run" in text
    only_fixed = parse_report(write_report(_run(tmp_path / "none", {"report": {"sections": []}})))
    assert only_fixed.sections == ["summary", "metrics", "config", "environment"]


def test_unknown_section_id_is_left_out_with_a_warning(tmp_path):
    run = _run(tmp_path / "run", {"report": {"sections": ["curves", "sounds"]}})
    with pytest.warns(UserWarning, match=r"results\.json.*'sounds'"):
        page = parse_report(write_report(run))
    assert page.sections == ["summary", "metrics", "curves", "config", "environment"]


@pytest.mark.parametrize(
    "report",
    [
        {"sections": "sts"},
        {"sections": ["sts", 3]},
        {"sections": {"sts": True}},
        {"sections": None},
        ["sts"],
    ],
)
def test_bad_report_sections_is_an_error_naming_results_json(tmp_path, capsys, report):
    run = _run(tmp_path / "run", {"report": report})
    with pytest.raises(ValueError, match=r"results\.json"):
        write_report(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("nn_neighbor_cos", np.zeros((3, 3))),  # k differs from nn_neighbor_text's
        ("nn_neighbor_text", np.array(["a", "b", "c"])),  # (Q,) instead of (Q, k)
        ("nn_query_label", np.zeros(3)),  # numbers, not text
        ("sts_gold", np.zeros(59)),  # not one per pair
        ("sts_name", np.array(["a", "b"])),  # not 0-d
    ],
)
def test_text_arrays_breaking_the_contract_name_report_data(tmp_path, name, value):
    arrays = {k: v for k, v in _arrays().items() if not k.startswith("emb_")}
    run = _run(tmp_path / "run", _text_results(["sts", "neighbours"]), arrays | {name: value})
    with pytest.raises(ValueError, match=rf"report_data\.npz: {name}"):
        write_report(run)


def test_sts_scatter_draws_one_panel_without_the_random_init_encoder(tmp_path):
    data = {k: v for k, v in _arrays().items() if k.startswith("sts_")}
    del data["sts_pred_before"], data["sts_name"]
    assert plots.sts_scatter(data, tmp_path / "sts.png").stat().st_size > 1000
    assert plots.sts_scatter({"sts_gold": data["sts_gold"]}, tmp_path / "none.png") is None


def test_spearman_is_a_rank_correlation():
    a = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    assert plots.spearman(a, a**3) == pytest.approx(1.0)  # monotone, nan pair left out
    assert plots.spearman(a, -a) == pytest.approx(-1.0)
    assert np.isnan(plots.spearman(a, np.ones(5)))  # a constant side has no ranking
