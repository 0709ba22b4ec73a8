"""The run configuration: typed dataclasses, filled from YAML (safe_load) and `--set` overrides.

Unknown keys and wrong types are errors that name the nearest valid key or the expected type.
Only the CLI layer reads this; components take typed arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfsup.engine.config import TrainConfig
from selfsup.safe_yaml import YAMLFileError, parse_yaml, read_yaml_file


@dataclass
class EvalConfig:
    """Evaluation after pretraining (and during it, every `every` steps when > 0)."""

    enabled: bool = True
    # None: 200 (InstDisc, Wu et al. 2018) for a bank of >= 10,000 samples, else 20: on the
    # 1,258-image digits bank 200 neighbours span 1.6 classes (kNN 91.8 % at k=200 vs 98.0 % at 20).
    knn_k: int | None = None
    knn_t: float = 0.1  # InstDisc
    linear: bool = True
    # Time series: the TS2Vec protocol's RBF SVM (C by 5-fold CV: minutes on >= 5,000 series).
    svm: bool = True
    baselines: bool = True  # also evaluate the random-init encoder and raw pixels
    every: int = 0  # steps between kNN evaluations during training (0: only at the end)
    every_samples: int = 2000  # labeled train images in the kNN bank during training (+ half test)
    batch_size: int = 512
    finetune: bool = True  # few-label fine-tune on 1 % and 10 % of labels (SimCLR's protocol)
    health: bool = True  # log emb_std, eff_rank, alignment, uniformity, pos/neg cos (eval.health)
    stop_on_collapse: bool = False  # raise instead of warning when the health metrics collapse
    report: bool = True  # write report.html (+ PNGs) into the run folder at the end
    # Evaluation sets a modality reads besides its training data: for text, STS pairs and
    # labeled sentence files or folders (selfsup.data.text_tasks), e.g. [stsb/, sst2/].
    data: list[str] = field(default_factory=list)
    # With stream=true: evaluate on at most this many images of each split (a class-stratified
    # subset, decoded into memory at the view size), so a folder too large for memory stays so.
    stream_images: int = 50_000

    def __post_init__(self) -> None:
        for name in ("batch_size", "stream_images", "every_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: use >= 1")
        if self.knn_k is not None and self.knn_k < 1:
            raise ValueError(f"knn_k={self.knn_k}: use >= 1 neighbour (or null for the default)")
        if not self.knn_t > 0:
            raise ValueError(f"knn_t={self.knn_t}: the kNN temperature must be > 0 (0.1)")
        if self.every < 0:
            raise ValueError(f"every={self.every}: use 0 (only at the end) or a step count")


@dataclass
class RunConfig:
    """Everything one `selfsup pretrain` run needs. Defaults: SimCLR on the bundled digits."""

    method: str = "simclr"
    modality: str = "image"  # a name of selfsup.modalities.MODALITIES: image | text
    data: str = "digits"  # digits | cifar10 | path to an image folder (or a text file)
    # The modality's own loading settings (text: tokenizer, vocab_size, tokenizer_kind,
    # max_length; selfsup.modalities.text.TextDataArgs). Images take none.
    data_args: dict = field(default_factory=dict)
    # Labels of a flat folder for evaluation: a CSV of `file,label` rows, or a regular
    # expression whose group is the label in each file name (e.g. "^(\\d+)_").
    labels: str = ""
    label_pattern: str = ""
    image_size: int | None = None  # resize folder images to this side; digits default 16
    data_root: str = "~/.cache/selfsup/datasets"  # where torchvision downloads cifar10
    skip_bad_files: bool = False
    # Images claiming more pixels are refused before decoding (a few-hundred-byte file can claim
    # 20000x20000); PIL's decompression-bomb limit, Image.MAX_IMAGE_PIXELS (~0.25 GB as RGB).
    max_image_pixels: int = 89_478_485
    # Read a folder file by file in `train.workers` DataLoader workers (decode + crop there, the
    # rest of the views on the device) instead of decoding it into memory; needs image_size.
    stream: bool = False
    encoder: str = "convnet_small"
    encoder_args: dict = field(default_factory=dict)
    views: str = ""  # view recipe; "" picks the method's paper recipe
    method_args: dict = field(default_factory=dict)  # the method's hyper-parameters, e.g.
    # {temperature: 0.2, proj_dim: 128}; each builder in build.py lists its own with defaults
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            epochs=40, batch_size=256, lr=0.3, warmup_epochs=2, weight_decay=5e-4, log_every=10
        )
    )
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size={self.image_size}: use a side of >= 1 pixel, e.g. 32")
        if self.max_image_pixels < 1:
            raise ValueError(f"max_image_pixels={self.max_image_pixels}: use >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A configuration mistake; the message says what to change."""


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a YAML value to the annotated type `tp`, or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} is not a valid {tp}")
    if origin is list:
        if not isinstance(value, list):
            value = [value]  # one path for a list of paths: `--set eval.data=stsb/`
        return [_coerce(v, typing.get_args(tp)[0], key) for v in value]
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list like [0.9, 0.999], got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, typing.get_args(tp), strict=False))
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp is dict and isinstance(value, dict):
        return copy.deepcopy(value)
    if (
        isinstance(tp, type)
        and isinstance(value, tp)
        and not (tp is int and isinstance(value, bool))
    ):
        return value
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _unknown(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key.split(".")[-1], valid, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown key {key!r}{where}.{hint} Valid keys: {', '.join(valid)}")


def apply(obj: Any, values: dict, prefix: str = "", where: str = "") -> Any:
    """Set fields of dataclass `obj` from a nested dict, checking names and types."""
    hints = _hints(type(obj))
    valid = [f.name for f in dataclasses.fields(obj)]
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in hints:
            raise _unknown(full, valid, where)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{full}: expected a mapping of {', '.join(_hints(type(current)))}"
                )
            apply(current, value, f"{full}.", where)
        elif isinstance(current, dict) and isinstance(value, dict):
            # Key by key: `--set method_args.a=1 --set method_args.b=2` keeps both, and a YAML
            # file's method_args keep the keys that an override does not name.
            setattr(obj, key, merge_dicts(current, _coerce(value, hints[key], full)))
        else:
            setattr(obj, key, _coerce(value, hints[key], full))
    if hasattr(obj, "__post_init__"):
        try:
            obj.__post_init__()
        except ValueError as e:
            raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {e}{where}") from e
    return obj


def merge_dicts(base: dict, update: dict) -> dict:
    """A copy of `base` with `update` merged in, nested mappings merged key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merge_dicts(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict:
    """'train.lr=0.1' -> {'train': {'lr': 0.1}} (the value is parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. --set train.lr=0.1")
    try:
        value = parse_yaml(raw, f"--set {text}") if raw else ""
    except YAMLFileError as e:
        raise ConfigError(str(e)) from e
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def _named_modality(modality: str | None, data: dict, overrides: list[str]) -> str:
    """The run's modality: the flag, else the last --set, else the YAML file's, else image."""
    for text in reversed(overrides):
        value = parse_override(text).get("modality")
        if value is not None:
            return str(value)
    return modality or str(data.get("modality") or "image")


def load_config(
    path: str | Path | None = None,
    overrides: list[str] = (),
    modality: str | None = None,
    defaults_for=None,
) -> RunConfig:
    """Defaults, the modality's defaults (`defaults_for(name) -> dict`, e.g. text's AdamW
    recipe), the YAML file (safe_load), then overrides."""
    cfg = RunConfig()
    data: dict = {}
    if path is not None:
        p = Path(path)
        try:  # bounded safe_load: Python tags and alias bombs are refused, never constructed
            data = read_yaml_file(p) or {}
        except YAMLFileError as e:
            raise ConfigError(str(e)) from e
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: expected a mapping of keys at the top level")
    name = _named_modality(modality, data, list(overrides))
    if defaults_for is not None:
        apply(cfg, copy.deepcopy(defaults_for(name)))
    cfg.modality = name
    if path is not None:
        apply(cfg, data, where=f" in {p}")
    for text in overrides:
        apply(cfg, parse_override(text), where=f" (from --set {text})")
    return cfg
