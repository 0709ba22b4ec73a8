"""Evaluation sets of a text run, read the way they ship: STS pairs and labeled sentences.

`read_text_tasks(paths)` takes files or folders (`eval.data`, `--eval-data`):
  - a folder whose files are named sts-*.csv (the STS Benchmark) or a file of scored pairs
    (`read_sts` formats) -> an STS task on its test file (or the only file);
  - a folder with train.* and test.* labeled files (SST-2, TREC) -> a probe task, train -> test;
  - a folder with one labeled file (or test.* alone), or a labeled file (AG News' test.csv, a
    `label<TAB>text` file) -> a probe task on a stratified 80/20 split (seed 0).
Labeled formats are recognized from the first line (`sniff_labeled_format`). Task names are the
benchmarks' own (STS-B, SST-2, TREC, AG News) for their folder names, else the file or folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from selfsup.data.memory import split_indices
from selfsup.data.text import (
    BadTextError,
    LabeledText,
    ScoredPairs,
    read_labeled,
    read_sts,
    text_lines,
)

TEXT_SUFFIXES = (".txt", ".csv", ".tsv", ".gz")
NAMES = {"stsb": "STS-B", "sst2": "SST-2", "trec": "TREC", "agnews": "AG News"}


@dataclass
class StsTask:
    """Scored sentence pairs: Spearman of cosine vs score (SentEval's STS protocol)."""

    name: str
    pairs: ScoredPairs
    source: str


@dataclass
class ProbeTask:
    """Labeled sentences: a logistic probe on frozen features, train -> test."""

    name: str
    train: LabeledText
    test: LabeledText
    source: str


def _first_line(path: Path) -> str:
    return next((line for line in text_lines(path) if line.strip()), "")


def sniff_labeled_format(path: Path) -> str:
    """ "tsv" (`label<TAB>text`), "agnews" (.csv: class index, title, description, a header),
    "trec" (`COARSE:fine text`) or "sst2" (`label text`) from the file's first line."""
    line = _first_line(path)
    if not line:
        raise BadTextError(f"{path}: empty; give one labeled sentence a line")
    if "\t" in line:
        return "tsv"
    if path.suffix == ".csv":
        return "agnews"
    head = line.split(" ", 1)[0]
    return "trec" if re.fullmatch(r"[A-Z]+:\S+", head) else "sst2"


def is_sts_file(path: Path) -> bool:
    """Whether the first line is a scored pair (STS Benchmark columns, or s1<TAB>s2<TAB>score)."""
    cols = _first_line(path).rstrip("\n").split("\t")

    def number(s: str) -> bool:
        try:
            float(s)
        except ValueError:
            return False
        return True

    return (len(cols) >= 7 and number(cols[4])) or (len(cols) == 3 and number(cols[2]))


def _split(data: LabeledText, seed: int = 0) -> tuple[LabeledText, LabeledText]:
    """Stratified 80/20 train/test of one labeled file (seed 0, as image folders are split)."""
    train_rows, test_rows = split_indices(len(data.texts), data.labels, 0.2, seed=seed)

    def pick(rows: torch.Tensor) -> LabeledText:
        return LabeledText([data.texts[i] for i in rows.tolist()], data.labels[rows], data.classes)

    return pick(train_rows), pick(test_rows)


def _labeled(path: Path) -> LabeledText:
    return read_labeled(path, sniff_labeled_format(path))


def _task_name(path: Path) -> str:
    stem = path.name if path.is_dir() else path.name.split(".")[0]
    return NAMES.get(stem.lower(), stem)


def _read_folder(folder: Path) -> StsTask | ProbeTask:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in TEXT_SUFFIXES)
    if not files:
        raise BadTextError(
            f"{folder}: no evaluation files ({', '.join(TEXT_SUFFIXES)}); give a folder with "
            "train/test labeled files, STS pairs, or the files themselves."
        )
    by_stem = {p.name.split(".")[0].lower(): p for p in files}
    sts = [p for p in files if p.name.lower().startswith("sts")]
    if sts:
        test = next((p for p in sts if "test" in p.name.lower()), sts[0])
        return StsTask(_task_name(folder), read_sts(test), str(test))
    if "train" in by_stem and "test" in by_stem:
        train, test = by_stem["train"], by_stem["test"]
        return ProbeTask(_task_name(folder), _labeled(train), _labeled(test), str(folder))
    only = by_stem.get("test") or (files[0] if len(files) == 1 else None)
    if only is not None:  # one labeled file (AG News ships its test split alone)
        return ProbeTask(_task_name(folder), *_split(_labeled(only)), str(only))
    raise BadTextError(
        f"{folder}: {len(files)} files but no train.* and test.* pair; name them train.txt and "
        "test.txt, or pass one labeled file (it is split 80/20)."
    )


def read_text_task(path: str | Path) -> StsTask | ProbeTask:
    """One evaluation task from a file or folder (module docstring)."""
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such evaluation file or folder")
    if is_sts_file(path):
        return StsTask(_task_name(path), read_sts(path), str(path))
    return ProbeTask(_task_name(path), *_split(_labeled(path)), str(path))


def read_text_tasks(paths: list[str]) -> list[StsTask | ProbeTask]:
    """Every task of `paths`; two with the same name get their source appended."""
    tasks = [read_text_task(p) for p in paths]
    names = [t.name for t in tasks]
    for t in tasks:
        if names.count(t.name) > 1:
            t.name = f"{t.name} ({t.source})"
    return tasks
