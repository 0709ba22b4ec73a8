"""Generate the report of a tiny run (digits, convnet_small width 8, 12 steps) and read it back.

Budget (marked slow): ≈ 25 s CPU in all: the run with its evaluation, fine-tune and two t-SNE
maps ≈ 15 s, regenerating the report ≈ 8 s.
"""

import json
import shutil

import pytest

from selfsup.cli import main
from selfsup.report.html import SECTIONS
from tests.report.page import parse_report
from tests.report.runs import small_run

pytestmark = pytest.mark.slow

PNGS = ("curves", "knn", "health", "similarity", "embedding_map", "retrieval", "views")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    overrides = [
        "encoder_args={width: 8}",
        "train.steps=12",
        "train.batch_size=64",
        "train.log_every=4",
        "eval.every=8",
    ]
    return small_run(tmp_path_factory.mktemp("run"), overrides)


def test_report_has_every_section_with_embedded_pictures(run_dir):
    page = parse_report(run_dir / "report.html")
    assert page.sections == list(SECTIONS)  # no "reconstructions": that is MAE's
    assert not (run_dir / "report" / "reconstructions.png").exists()
    with_image = {s for s, src in page.images}
    assert with_image == set(SECTIONS) - {"summary", "metrics", "config", "environment"}
    assert all(src.startswith("data:image/png;base64,") for _, src in page.images)
    for name in PNGS:
        assert (run_dir / "report" / f"{name}.png").stat().st_size > 1000
    text = " ".join(page.text)
    for expected in ("simclr (trained)", "random init", "kNN top-1", "fine-tune, 10 % labels"):
        assert expected in text


def test_run_logs_health_and_knn_and_saves_what_the_report_needs(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12]
    assert all("eff_rank" in r and "uniformity" in r for r in rows)
    assert [r["step"] for r in rows if "knn_top1" in r] == [8, 12]  # every 8 + the last step
    results = json.loads((run_dir / "results.json").read_text())
    assert "device" in results["environment"]
    assert (run_dir / "report_data.npz").exists()


def test_report_cli_regenerates_from_the_folder_alone(run_dir, capsys):
    (run_dir / "report.html").unlink()
    shutil.rmtree(run_dir / "report")
    assert main(["report", str(run_dir)]) == 0
    assert parse_report(run_dir / "report.html").sections == list(SECTIONS)
    assert main(["report", str(run_dir / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_report_of_a_bare_folder_explains_missing_sections(tmp_path):
    from selfsup.report.html import write_report

    page = parse_report(write_report(tmp_path))
    assert page.sections == list(SECTIONS) and page.images == []
    assert "--eval-every" in " ".join(page.text)
