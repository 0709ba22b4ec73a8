"""The README's Python example runs as written (shortened to a few steps) and its two calls after
`fit` agree: the edge a user's own code touches first (#19.1, #19.3)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(b for b in blocks if "fit(" in b)  # the composition example
    assert "epochs=40" in code
    code = code.replace("epochs=40", "steps=3, progress=False")  # the same calls, 3 steps
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102 (our own README)
    assert scope["features"].shape == (len(scope["test"]), scope["encoder"].num_features)
    run_dir = scope["run"].run_dir
    assert (tmp_path / run_dir / "encoder.safetensors").exists()
    printed = capsys.readouterr().out
    assert "knn_top1" in printed
    exec(compile(code, str(README), "exec"), {})  # a second run gets its own folder
    assert len(list((tmp_path / "runs").iterdir())) == 2
