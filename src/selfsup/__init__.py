"""selfsup: self-supervised representation learning for images, text and more.

`selfsup.load(run_dir)` gives a trained encoder back (`selfsup.trained`); `selfsup.pretrain(cfg)`
runs one job (`selfsup.run`). Both are imported on first use, so `import selfsup` stays light.
"""

from __future__ import annotations

__all__ = ["load", "pretrain", "run_config"]


def __getattr__(name: str):
    if name == "load":
        from selfsup.trained import load

        return load
    if name in ("pretrain", "run_config"):
        import selfsup.run

        return getattr(selfsup.run, name)
    raise AttributeError(f"module 'selfsup' has no attribute {name!r}")
