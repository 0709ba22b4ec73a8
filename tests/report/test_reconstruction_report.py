"""An MAE run's report has a Reconstructions section (original | masked | reconstruction PNG).

A tiny run: digits at 16x16, vit_micro_cifar (depth 1), a 1-layer decoder, 4 steps, CPU, no
linear probe or fine-tune. The figure's arrays are saved in report_data.npz, so
`selfsup report RUN` redraws it from the folder alone. That a SimCLR report has no such
section is checked in test_report.py (its sections equal SECTIONS exactly).
"""

import shutil

import numpy as np
import pytest

from selfsup.cli import main
from selfsup.report.html import SECTIONS
from tests.report.page import parse_report
from tests.report.runs import small_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mae_run(tmp_path_factory):
    overrides = [
        "method=mae",
        "encoder=vit_micro_cifar",
        "encoder_args={img_size: 16, depth: 1}",
        "method_args={decoder_dim: 32, decoder_depth: 1, decoder_heads: 2}",
        "train.optimizer=adamw",
        "train.lr=1e-3",
        "train.steps=4",
        "train.batch_size=32",
        "eval.linear=false",
        "eval.finetune=false",
    ]
    return small_run(tmp_path_factory.mktemp("mae"), overrides)


def _assert_reconstructions(run_dir) -> None:
    page = parse_report(run_dir / "report.html")
    at = SECTIONS.index("views") + 1
    assert page.sections == [*SECTIONS[:at], "reconstructions", *SECTIONS[at:]]
    srcs = [src for sid, src in page.images if sid == "reconstructions"]
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    assert (run_dir / "report" / "reconstructions.png").stat().st_size > 1000
    assert 'href="#reconstructions"' in (run_dir / "report.html").read_text()


def test_mae_report_has_reconstructions(mae_run):
    _assert_reconstructions(mae_run)
    with np.load(mae_run / "report_data.npz") as data:
        assert data["recon_images"].shape == data["recon_pred"].shape == (8, 3, 16, 16)
        assert data["recon_mask"].shape == (8, 16)  # 4x4 patches of 4 px
        assert data["recon_mask"].sum(1).tolist() == [12] * 8  # mask ratio 0.75


def test_report_cli_redraws_reconstructions_from_the_folder(mae_run):
    (mae_run / "report.html").unlink()
    shutil.rmtree(mae_run / "report")
    assert main(["report", str(mae_run)]) == 0
    _assert_reconstructions(mae_run)
