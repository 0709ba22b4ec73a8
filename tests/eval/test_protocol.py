"""One evaluation protocol for pretrain, `selfsup evaluate`, the kNN curve and report (#19.4)."""

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from selfsup.cli import main
from selfsup.config import RunConfig
from selfsup.data import load_digits
from selfsup.encoders import create_encoder
from selfsup.eval.linear import linear_probe
from selfsup.modalities.image import ImageModality

METRICS = ("knn_top1", "knn_top5", "linear_top1", "recall@1", "map@r")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A real 30-step SimCLR run on digits, evaluated at the end (no fine-tune, no report)."""
    out = tmp_path_factory.mktemp("protocol") / "r"
    argv = ["pretrain", "--steps", "30", "--batch-size", "64", "--out", str(out), "--no-progress"]
    assert main([*argv, "--set", "eval.finetune=false", "--set", "eval.report=false"]) == 0
    return out


def _evaluate(capsys, *argv) -> tuple[dict, str]:
    capsys.readouterr()
    assert main(["evaluate", *argv, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1]), out


def test_evaluate_reproduces_the_runs_numbers_exactly(digits_run, capsys):
    """#19.4: `selfsup evaluate RUN` (no flags) reads the recorded protocol (k=20 on the
    1,258-image digits bank, not a fixed 200) and prints the trained row of results.json."""
    results = json.loads((digits_run / "results.json").read_text())
    row, _ = _evaluate(capsys, str(digits_run))
    trained = results["eval"]["simclr (trained)"]
    assert {m: row.get(m) for m in METRICS} == {m: trained.get(m) for m in METRICS}
    assert results["eval_protocol"]["knn_k"] == 20


def test_evaluate_flags_override_the_protocol_and_are_printed(digits_run, capsys):
    """#19.4: a flag given to evaluate wins over the recorded setting and is printed."""
    row, out = _evaluate(capsys, str(digits_run), "--k", "200", "--no-linear")
    assert "overridden by flags: {'knn_k': 200, 'linear': False}" in out
    assert "'knn_k': 200" in out and "linear_top1" not in row


def test_knn_callback_uses_the_runs_protocol():
    """#19.4: the kNN curve during training votes with the run's k (resolved on the whole
    train bank, as the final evaluation) and t, not a fixed k=200."""
    cfg = RunConfig()
    cfg.eval.every, cfg.eval.knn_t = 10, 0.05
    images = ImageModality(cfg)
    images.train, images.test = load_digits(16)
    cb = images.callbacks(30)[-1]
    assert (cb.protocol.knn_k, cb.protocol.knn_t) == (20, 0.05)
    assert cb.protocol == images.protocol(len(images.train))


def test_image_probe_is_scikit_learns_logistic_regression_with_the_c_grid():
    """#19.4: the image linear probe is the text probe: LogisticRegression, C from a grid."""
    g = np.random.default_rng(0)
    y = g.integers(0, 3, 300)
    x = g.normal(size=(300, 6)) + 2 * np.eye(3, 6)[y]
    scaler = StandardScaler().fit(x[:200])
    ref = LogisticRegression(C=0.01, max_iter=2000, random_state=0).fit(
        scaler.transform(x[:200]), y[:200]
    )
    expected = ref.score(scaler.transform(x[200:]), y[200:])
    got = linear_probe(
        torch.tensor(x[:200]), y[:200], torch.tensor(x[200:]), y[200:], c_grid=(0.01,)
    )
    assert got == expected
    assert linear_probe(x[:12], y[:12], x[200:], y[200:]) > 0.4  # too small to hold out: C=1


def test_each_encoder_is_encoded_once_per_split(monkeypatch, tmp_path):
    """#19.4: evaluation (kNN, linear, retrieval) and the report snapshot share one feature
    pass per encoder and split: 2 encoders x 2 splits = 4 extractions, not 9."""
    import selfsup.eval.protocol as protocol_module
    import selfsup.report.snapshot as snapshot_module

    calls = []
    for module in (protocol_module, snapshot_module):
        real = module.extract_features

        def spy(encoder, data, *args, _real=real, **kwargs):
            calls.append(len(data))
            return _real(encoder, data, *args, **kwargs)

        monkeypatch.setattr(module, "extract_features", spy)
    cfg = RunConfig(image_size=8)
    cfg.train.precision = "fp32"
    cfg.train.out_dir = str(tmp_path)  # finish_report writes report_data.npz there
    cfg.eval.finetune = False
    images = ImageModality(cfg)
    train, test = load_digits(8)
    images.train, images.test = train.subset(torch.arange(300)), test.subset(torch.arange(100))
    enc, rnd = create_encoder("convnet_small", width=4), create_encoder("convnet_small", width=4)
    out = images.evaluate(enc, rnd, lambda *a: None)
    assert set(out["eval"]) == {"raw pixels", "random init", "simclr (trained)"}
    images.report_data(enc, rnd, None, images.views("simclr_views"))
    assert sorted(calls) == [100, 100, 300, 300]


def test_protocol_round_trips_through_json():
    """#19.4: results.json holds the protocol evaluate rebuilds."""
    from selfsup.eval.protocol import EvalProtocol

    p = EvalProtocol(knn_t=0.07, c_grid=(0.1, 1.0), precision="fp32").resolve(50_000)
    back = EvalProtocol.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p and back.knn_k == 200
