"""Checkpoints that survive a kill: written to a temporary file, then renamed.

A full checkpoint (model, optimizer, RNG states, step, config) is a `torch.save` dict of tensors
and plain Python values, loaded back with `weights_only=True` so a crafted pickle cannot run
code. Final encoder weights are safetensors plus a JSON of the registry name and kwargs.
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from selfsup.encoders.registry import (
    is_registered,
    list_adapters,
    list_encoders,
    rebuild_encoder,
)
from selfsup.engine.run_dir import write_atomic

_CKPT = re.compile(r"^checkpoint-(\d+)\.pt$")


def atomic_torch_save(obj: dict, path: Path) -> None:
    """torch.save into a temporary file, fsync, then os.replace (see `write_atomic`): readers
    never see a half-written file, and a symlink at `path` is refused, not followed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: torch.save(obj, f))


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / f"checkpoint-{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of `checkpoint-<step>.pt` files in `run_dir`, oldest first."""
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _CKPT.match(p.name))]
    return sorted(found)


def save_checkpoint(state: dict, run_dir: Path, step: int, keep: int = 2) -> Path:
    """Write `checkpoint-<step>.pt` atomically, then keep it and the newest `keep - 1` older ones.

    Only checkpoints of lower steps are deleted, and only after the new one is on disk: newer
    ones left by a run that diverged (and was resumed from before them) never push it out.
    """
    path = checkpoint_path(run_dir, step)
    atomic_torch_save(state, path)
    older = [p for s, p in list_checkpoints(run_dir) if s < step]
    for old in older[: max(0, len(older) - (keep - 1))]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a full checkpoint with `weights_only=True` (no code from the file is executed)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle.UnpicklingError and friends: say what to do
        raise ValueError(
            f"{path}: not a loadable selfsup checkpoint ({type(e).__name__}: {e}). Only "
            "weights-only checkpoints are loaded; a file that needs arbitrary code is refused."
        ) from e


def nonfinite_tensors(state, prefix: str = "") -> list[str]:
    """Dotted names of the floating tensors in a nested dict/list holding NaN or Inf."""
    if isinstance(state, torch.Tensor):
        bad = state.is_floating_point() and not bool(state.isfinite().all())
        return [prefix or "tensor"] if bad else []
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)
    else:
        return []
    return [
        n for k, v in items for n in nonfinite_tensors(v, f"{prefix}.{k}" if prefix else f"{k}")
    ]


def valid_checkpoints(run_dir: Path) -> Iterator[tuple[dict, Path]]:
    """(state, path) of the checkpoints in `run_dir` that load and hold only finite numbers,
    newest first; each skipped one is named in a warning."""
    for _, path in reversed(list_checkpoints(run_dir)):
        try:
            state = load_checkpoint(path)
        except ValueError as e:  # torn or crafted: say so, then fall back to an older one
            warnings.warn(f"skipping {e}", stacklevel=2)
            continue
        bad = nonfinite_tensors(state)
        if bad:  # saved after training diverged: resuming from it would train on NaN
            names = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
            warnings.warn(
                f"skipping {path}: it holds NaN/Inf values ({names}); using an older checkpoint",
                stacklevel=2,
            )
            continue
        yield state, path


def latest_valid_checkpoint(run_dir: Path) -> tuple[dict, Path] | None:
    """The newest checkpoint in `run_dir` that loads and is finite; None if none does."""
    return next(valid_checkpoints(run_dir), None)


# ViT-G/14 (Zhai et al. 2022), about the largest vision encoder in use, has 1.8e9 parameters.
# An encoder.json asking for more is far likelier a typo or a hostile file than a real encoder,
# and building it would allocate over 8 GB (float32) before any weight is read. Raise this
# module constant to load a larger encoder.
MAX_ENCODER_ELEMENTS = 2_000_000_000

# encoder.json is a name and a few kwargs (under 1 KB); a megabyte is no encoder description.
_MAX_JSON_BYTES = 1_000_000

# Factory kwargs that make it fetch or read weights of its own: timm's `pretrained` downloads
# from the Hugging Face Hub, its `checkpoint_path` torch.loads a pickle. A saved encoder's
# weights are in its safetensors file: save_encoder drops these, load_encoder refuses them.
_WEIGHT_SOURCE_KWARGS = ("pretrained", "checkpoint_path")

_JSON_FORMAT = (
    'save_encoder writes {"encoder": "<registry name>", "kwargs": {<factory arguments>}}; '
    "fix the file or save the encoder again."
)


def state_mismatch(expected: dict, got: dict) -> str | None:
    """What differs between two state_dicts' keys and shapes (counts and the first 3 keys of
    each kind), or None. `got` may come from a file: a value without a shape counts as ()."""
    expected, got = _shapes(expected), _shapes(got)
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    wrong = [f"{k} {got[k]} vs {e}" for k, e in expected.items() if k in got and got[k] != e]
    parts = [
        f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
        for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong))
        if keys
    ]
    return "; ".join(parts) or None


def _shapes(state: dict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}


def _build_on_meta(name: str, kwargs: dict, adapter: str | None, where: Path) -> nn.Module:
    """The encoder `name(**kwargs)` on the meta device: shapes only, no memory, nothing run."""
    try:
        with torch.device("meta"):
            return rebuild_encoder(name, kwargs, adapter)
    except ImportError:  # an optional package (timm, transformers): its own message says what
        raise
    except Exception as e:  # bad kwargs, sizes that overflow: say which file to fix
        raise ValueError(
            f"{where}: cannot build encoder {name!r} with kwargs {str(kwargs)[:200]} "
            f"({type(e).__name__}: {str(e)[:300]}). Fix the encoder name or kwargs."
        ) from e


def encoder_meta(encoder: nn.Module, path: Path) -> dict:
    """encoder.json's content for `encoder`; ValueError if load_encoder could not rebuild it.

    Cheap (the check rebuilds on the meta device): call it before training to fail early.
    """
    name = getattr(encoder, "encoder_name", None)
    if not isinstance(name, str) or not is_registered(name):
        raise ValueError(
            f"{path}: refusing to save a {type(encoder).__name__} with no registry name "
            f"(encoder_name={name!r}): load_encoder rebuilds encoders by name, so the file could "
            "never be loaded. Build the encoder with selfsup.encoders.create_encoder(name, "
            "**kwargs); an adapter must pass the name on (registry.keep_registry_name)."
        )
    kwargs = dict(getattr(encoder, "encoder_kwargs", {}))
    for key in _WEIGHT_SOURCE_KWARGS:  # the weights saved here replace any they named
        kwargs.pop(key, None)
    num_features = getattr(encoder, "num_features", None)
    meta = {"encoder": name, "kwargs": kwargs, "num_features": num_features}
    if getattr(encoder, "encoder_adapter", None) is not None:
        meta["adapter"] = encoder.encoder_adapter
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: the kwargs of encoder {name!r} are not JSON ({e}).") from e
    rebuilt = _build_on_meta(name, kwargs, meta.get("adapter"), path)
    mismatch = state_mismatch(rebuilt.state_dict(), encoder.state_dict())
    if mismatch:
        raise ValueError(
            f"{path}: refusing to save encoder {name!r}: its state_dict is not the one "
            f"create_encoder({name!r}, **{kwargs}) builds ({mismatch}), so it could not be "
            "loaded back. Do not change an encoder's modules after create_encoder."
        )
    return meta


def save_encoder(encoder: nn.Module, path: Path) -> None:
    """Encoder weights as safetensors at `path` and its registry name/kwargs at `path`.json.

    Refuses (ValueError, nothing written) an encoder `load_encoder` could not rebuild: one with
    no registry name, or whose state_dict is not what its name and kwargs build.
    """
    meta = encoder_meta(encoder, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}
    write_atomic(path, save(state))  # whole or not at all, never through a symlink
    write_atomic(path.with_suffix(".json"), json.dumps(meta, indent=2))


def _json_problem(meta: object) -> str | None:
    """What is wrong with a parsed encoder.json, or None."""
    if not isinstance(meta, dict):
        return f"expected a JSON object, got {type(meta).__name__}"
    for key, kind, json_kind in (("encoder", str, "string"), ("kwargs", dict, "object")):
        if key not in meta:
            return f"no {key!r} entry"
        if not isinstance(meta[key], kind):
            return f"{key!r} must be a JSON {json_kind}, got {type(meta[key]).__name__}"
    if not is_registered(meta["encoder"]):
        return (
            f"unknown encoder {meta['encoder'][:100]!r} (known: {', '.join(list_encoders())}, "
            "or 'timm/<model name>')"
        )
    adapter = meta.get("adapter")
    if adapter is not None and adapter not in list_adapters():
        return f"unknown adapter {str(adapter)[:100]!r} (known: {', '.join(list_adapters())})"
    return None


def _read_encoder_json(meta_path: Path, weights: Path) -> tuple[str, dict, str | None]:
    """(name, kwargs, adapter) from encoder.json, checked; ValueError naming the file if not."""
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing; it names the encoder for {weights}.")
    if meta_path.stat().st_size > _MAX_JSON_BYTES:
        raise ValueError(f"{meta_path}: {meta_path.stat().st_size:,} bytes. {_JSON_FORMAT}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{meta_path}: not valid JSON ({e}). {_JSON_FORMAT}") from e
    problem = _json_problem(meta)
    if problem:
        raise ValueError(f"{meta_path}: {problem}. {_JSON_FORMAT}")
    fetch = [k for k in _WEIGHT_SOURCE_KWARGS if meta["kwargs"].get(k)]
    if fetch:
        raise ValueError(
            f"{meta_path}: kwargs {', '.join(fetch)} would fetch or read weights from elsewhere; "
            f"load_encoder takes the weights from {weights.name} and fetches nothing. Remove "
            f"{', '.join(repr(k) for k in fetch)} from the kwargs."
        )
    return meta["encoder"], meta["kwargs"], meta.get("adapter")


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError on a pickle or torn file: name it, run nothing
        raise ValueError(
            f"{path}: not a safetensors file ({type(e).__name__}: {e}). Encoder weights are "
            "only read as safetensors; re-export them with selfsup or safetensors.torch.save_file."
        ) from e


def load_encoder(path: Path) -> nn.Module:
    """Rebuild an encoder from `save_encoder`'s safetensors + JSON (no pickle involved).

    The JSON is checked and the encoder it names is measured on the meta device before anything
    is allocated; weights come only from `path`, nothing is downloaded. A bad file of either
    kind is a ValueError naming it.
    """
    path = Path(path)
    meta_path = path.with_suffix(".json")
    name, kwargs, adapter = _read_encoder_json(meta_path, path)
    skeleton = _build_on_meta(name, kwargs, adapter, meta_path)
    count = sum(t.numel() for t in itertools.chain(skeleton.parameters(), skeleton.buffers()))
    if count > MAX_ENCODER_ELEMENTS:
        raise ValueError(
            f"{meta_path}: encoder {name!r} with kwargs {str(kwargs)[:200]} has {count:,} "
            f"parameters and buffers, over the {MAX_ENCODER_ELEMENTS:,} limit "
            "(selfsup.engine.checkpoint.MAX_ENCODER_ELEMENTS); nothing was allocated. Fix the "
            "kwargs, or raise the limit for an encoder that is really this large."
        )
    weights = _read_weights(path)
    mismatch = state_mismatch(skeleton.state_dict(), weights)
    if mismatch:
        raise ValueError(
            f"{path}: the weights do not fit encoder {name!r} of {meta_path.name}: {mismatch}. "
            f"Keep each encoder's .safetensors with the .json save_encoder wrote next to it."
        )
    encoder = rebuild_encoder(name, kwargs, adapter)
    encoder.load_state_dict(weights)
    return encoder
