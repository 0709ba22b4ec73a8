"""Bad encoder files: load_encoder answers a ValueError naming the file, and allocates, runs and
downloads nothing first (#15.6 encoder.json, #15.16 the safetensors weights).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from selfsup.encoders import create_encoder
from selfsup.engine.checkpoint import load_encoder, save_encoder


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A good convnet_small(width=4) encoder.safetensors (+ encoder.json) in tmp_path."""
    path = tmp_path / "encoder.safetensors"
    save_encoder(create_encoder("convnet_small", width=4), path)
    return path


def _raises_naming(path: Path, file: Path, match: str = "") -> str:
    with pytest.raises(ValueError, match=match) as err:
        load_encoder(path)
    assert str(file) in str(err.value), f"the message does not name {file}: {err.value}"
    return str(err.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('["convnet_small", {}]', "expected a JSON object"),
        ('{"kwargs": {}}', "no 'encoder' entry"),
        ('{"encoder": "convnet_small"}', "no 'kwargs' entry"),
        ('{"encoder": 5, "kwargs": {}}', "'encoder' must be a JSON string"),
        ('{"encoder": "convnet_small", "kwargs": [4]}', "'kwargs' must be a JSON object"),
        ('{"encoder": "TimmViT", "kwargs": {}}', "unknown encoder 'TimmViT'"),
        ('{"encoder": "convnet_small", "kwargs": {}, "adapter": "x"}', "unknown adapter"),
        ('{"encoder": "convnet_small", "kwargs": {"widht": 4}}', "cannot build encoder"),
        ('{"encoder": "convnet_small", "kwargs": {"width": "4"}}', "cannot build encoder"),
    ],
)
def test_bad_encoder_json(saved: Path, text: str, match: str) -> None:
    """#15.6: malformed encoder.json -> ValueError naming it (was KeyError / TypeError /
    JSONDecodeError without the file, or create_encoder's error)."""
    meta = saved.with_suffix(".json")
    meta.write_text(text)
    _raises_naming(saved, meta, match)


def test_encoder_json_not_utf8_or_huge(saved: Path) -> None:
    """#15.6: binary junk or a multi-megabyte encoder.json is refused, not parsed."""
    meta = saved.with_suffix(".json")
    meta.write_bytes(b"\xff\xfe\x00garbage")
    _raises_naming(saved, meta, "not valid JSON")
    meta.write_text(json.dumps({"encoder": "convnet_small", "kwargs": {"x": "a" * 2_000_000}}))
    _raises_naming(saved, meta, "bytes")


@pytest.mark.parametrize(
    "kwargs", [{"pretrained": True}, {"checkpoint_path": "/tmp/model.pth"}], ids=str
)
def test_kwargs_that_fetch_weights_are_refused(saved: Path, kwargs: dict, monkeypatch) -> None:
    """#15.6: `pretrained: true` would download (and checkpoint_path torch.load a pickle);
    refused before anything is built."""
    import selfsup.engine.checkpoint as checkpoint

    def no_build(*args, **kw):
        raise AssertionError("load_encoder built an encoder from a refused encoder.json")

    monkeypatch.setattr(checkpoint, "rebuild_encoder", no_build)
    meta = saved.with_suffix(".json")
    meta.write_text(json.dumps({"encoder": "timm/resnet10t", "kwargs": kwargs}))
    message = _raises_naming(saved, meta, "fetches nothing")
    assert next(iter(kwargs)) in message


_HUGE = """
import resource, sys
from pathlib import Path
from selfsup.engine.checkpoint import load_encoder

# Importing torch maps ~3.5 GB of address space here: the limit is 2 GiB above what is mapped.
mapped = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1])
limit = mapped * 1024 + (2 << 30)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
for meta in sys.argv[1:]:
    weights = Path(meta).with_suffix(".safetensors")
    try:
        load_encoder(weights)
        print("LOADED", meta)
    except ValueError as e:
        print("VALUEERROR", str(e).replace(chr(10), " "))
"""


def test_huge_encoder_json_is_refused_before_allocation(saved: Path, tmp_path: Path) -> None:
    """#15.6: width 1e9 (size overflow) and width 3000 (3.4e9 parameters, 13.6 GB) are refused
    with a ValueError naming the JSON, under a 2 GiB memory limit: nothing is allocated."""
    cases = []
    for width in (10**9, 3000):
        meta = tmp_path / f"w{width}" / "encoder.json"
        meta.parent.mkdir()
        meta.with_suffix(".safetensors").write_bytes(saved.read_bytes())
        meta.write_text(json.dumps({"encoder": "convnet_small", "kwargs": {"width": width}}))
        cases.append(str(meta))
    script = textwrap.dedent(_HUGE)
    run = subprocess.run(
        [sys.executable, "-c", script, *cases], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("VALUEERROR") for line in lines), run.stdout
    for line, meta in zip(lines, cases, strict=True):
        assert meta in line
    assert "cannot build encoder" in lines[0] and "overflow" in lines[0]
    count = re.search(r"has ([\d,]+) parameters and buffers, over the ([\d,]+) limit", lines[1])
    assert count and int(count[1].replace(",", "")) > 3.4e9 > int(count[2].replace(",", ""))


def test_weights_with_missing_and_extra_keys(saved: Path) -> None:
    """#15.16: missing / unexpected keys -> ValueError naming the weights, the keys and counts
    (was load_state_dict's RuntimeError)."""
    state = create_encoder("convnet_small", width=4).state_dict()
    del state["layers.0.0.weight"], state["layers.1.1.bias"]
    state["head.weight"] = torch.zeros(2)
    save_file(state, str(saved))
    message = _raises_naming(saved, saved, "2 missing")
    assert "layers.0.0.weight" in message and "1 unexpected (head.weight)" in message


def test_weights_with_wrong_shapes(saved: Path) -> None:
    """#15.16: weights of another width -> ValueError with the count of wrong shapes."""
    save_file(create_encoder("convnet_small", width=8).state_dict(), str(saved))
    message = _raises_naming(saved, saved, "wrong shape")
    assert "layers.0.0.weight (8, 3, 3, 3) vs (4, 3, 3, 3)" in message
    assert "20 wrong shape" in message  # 4 x (conv weight; BN weight, bias, mean, var)


@pytest.mark.parametrize("kind", ["torn", "pickle"])
def test_torn_or_pickled_weights(saved: Path, kind: str) -> None:
    """#15.16: a truncated file or a torch.save pickle under the name is refused, not run."""
    if kind == "torn":
        saved.write_bytes(saved.read_bytes()[:200])
    else:
        torch.save(create_encoder("convnet_small", width=4).state_dict(), saved)
    _raises_naming(saved, saved, "not a safetensors file")
