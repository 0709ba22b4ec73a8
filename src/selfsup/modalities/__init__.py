"""Kinds of data, one file each; the run layer asks them and never branches on them.

Layer: above eval and report (a modality's evaluation suite and report data use both), below
the run and the CLI. `MODALITIES` maps `RunConfig.modality` to the class (base.Modality).
"""

from __future__ import annotations

from selfsup.config import ConfigError, RunConfig
from selfsup.modalities.agent import AgentModality
from selfsup.modalities.audio import AudioModality
from selfsup.modalities.base import Embedded, Modality
from selfsup.modalities.image import ImageModality
from selfsup.modalities.text import TextModality
from selfsup.modalities.timeseries import SeriesModality

MODALITIES: dict[str, type] = {
    "image": ImageModality,
    "text": TextModality,
    "timeseries": SeriesModality,
    "audio": AudioModality,
    "agent": AgentModality,
}

__all__ = ["MODALITIES", "Embedded", "Modality", "create_modality", "modality_class"]


def modality_class(name: str) -> type:
    """The class of modality `name`; ConfigError listing the known ones."""
    if name not in MODALITIES:
        raise ConfigError(f"modality={name!r}: use one of {', '.join(MODALITIES)}")
    return MODALITIES[name]


def create_modality(cfg: RunConfig) -> Modality:
    """The modality of `cfg` (cfg.modality), built from the whole run configuration."""
    return modality_class(cfg.modality)(cfg)
