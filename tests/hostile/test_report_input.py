"""A received run folder is data, not code or markup (#15.7, #15.16): everything read from it is
escaped in report.html, and malformed files are messages naming the file."""

from __future__ import annotations

import json

import pytest

from selfsup.cli import main
from selfsup.report.html import write_report

SCRIPT = "<script>alert(1)</script>"


def _run_folder(tmp_path, results: str, config: str = "method: simclr\n"):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(config)
    (run / "results.json").write_text(results)
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 4.0, "lr": 0.1}\n')
    return run


def test_keys_and_values_from_results_json_are_escaped(tmp_path):
    """#15.7: the environment table's keys came from results.json unescaped."""
    results = {
        "train": {"steps": 1, "seconds": 1.0, "loss": 4.0},
        "eval": {SCRIPT: {"knn_top1": 0.5, SCRIPT: SCRIPT}},
        "environment": {SCRIPT: SCRIPT, "torch": "2.x"},
        "collapse": SCRIPT,
    }
    run = _run_folder(tmp_path, json.dumps(results), config=f"method: '{SCRIPT}'\n")
    page = write_report(run).read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize(
    ("results", "words"),
    [
        ("{torn", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"eval": [1]}', "'eval' should be a JSON object"),
    ],
)
def test_malformed_results_json_names_the_file(tmp_path, capsys, results, words):
    """#15.16: a malformed results.json is a message naming it, not a traceback."""
    run = _run_folder(tmp_path, results)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and words in err and "Traceback" not in err


def test_malformed_config_yaml_names_the_file(tmp_path, capsys):
    run = _run_folder(tmp_path, "{}", config="method: [unclosed\n")
    assert main(["report", str(run)]) == 2
    assert "config.yaml" in capsys.readouterr().err


def test_torn_metrics_line_is_left_out_with_a_warning(tmp_path):
    run = _run_folder(tmp_path, "{}")
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "lo')
    with pytest.warns(UserWarning, match="metrics.jsonl, line 2"):
        write_report(run)


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, monkeypatch):
    """#15.16: Ctrl-C ends with exit 130 and the resume command, not a traceback."""
    import selfsup.cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(selfsup.cli, "cmd_pretrain", interrupted)
    assert main(["pretrain", "--out", str(tmp_path / "r")]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and str(tmp_path / "r") in err
