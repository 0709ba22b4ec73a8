"""Text data: sentence corpora, scored sentence pairs (STS), labeled sentences -> token tensors.

Readers return plain Python structures (lists of strings, score/label tensors); `text_dataset`
tokenizes them into the in-memory dataset the engine trains on (ids (N, L) long padded with the
tokenizer's pad id). Formats:

  corpus     one sentence a line, plain text or gzip (`.gz`); blank lines skipped
  STS pairs  `stsb`: STS Benchmark tab-separated, `line.split("\\t")[4:7]` = score, s1, s2
             `tsv`: `sentence1<TAB>sentence2<TAB>score`
  pairs      `sentence<TAB>positive[<TAB>hard negative]` for supervised SimCSE
  aligned    K files whose line i describes the same thing (`aligned_pairs`: positive pairs)
  labeled    `sst2`: `<0|1> text`; `trec`: `COARSE:fine question`; `agnews`: CSV with header
             (class index 1-4, title, description); `tsv`: `label<TAB>text` (any label strings)

The shared benchmark copies (`../shared/data/text`, see its README) load with `load_benchmark`.

Every file must be UTF-8: a byte that is not is a `BadTextError` naming the file and line, not a
replacement character (the replaced text would train as something else). A `.gz` that is not
gzip, an empty corpus and an empty pairs file are `BadTextError`s naming the file too.
"""

from __future__ import annotations

import csv
import gzip
import random
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from selfsup.data.memory import InMemoryDataset
from selfsup.data.tokenizer import TextTokenizer


@dataclass
class ScoredPairs:
    """Sentence pairs with a similarity score each (STS): N pairs, scores (N,) float."""

    first: list[str]
    second: list[str]
    scores: torch.Tensor

    def sentences(self) -> list[str]:
        return self.first + self.second


@dataclass
class LabeledText:
    """Sentences with class labels: N texts, labels (N,) long indexing `classes`."""

    texts: list[str]
    labels: torch.Tensor
    classes: list[str]


class BadTextError(ValueError):
    """A text data file that cannot be read; the message names the file (and line) and the fix."""


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def text_lines(path: Path) -> Iterator[str]:
    """The file's lines (newline kept), plain or gzip; not UTF-8, or a broken `.gz` ->
    BadTextError naming the file."""
    try:
        with _open_text(path) as f:
            yield from f
    except UnicodeDecodeError as e:
        raise _not_utf8(path) from e
    except (OSError, EOFError, zlib.error) as e:
        if path.suffix != ".gz":
            raise
        raise BadTextError(
            f"{path}: not a valid gzip file ({type(e).__name__}: {e}). Decompress it again, or "
            "remove the .gz suffix if it is plain text."
        ) from e


def _not_utf8(path: Path) -> BadTextError:
    """The error for a file that is not UTF-8, with the line of its first bad byte (found by
    decoding the whole file again: the streaming decoder's offset is within a chunk)."""
    raw = path.read_bytes()
    raw = gzip.decompress(raw) if path.suffix == ".gz" else raw
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        return BadTextError(
            f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start}). Re-encode it, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name} > fixed && mv fixed {path.name}"
        )
    return BadTextError(f"{path}: not UTF-8. Re-encode it as UTF-8.")


def _files(paths: str | Path | Iterable[str | Path]) -> Iterator[Path]:
    """Expand a file, a directory (its *.txt and *.gz files, recursively, sorted) or a list."""
    if isinstance(paths, str | Path):
        paths = [paths]
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix in (".txt", ".gz"))
        elif p.is_file():
            yield p
        else:
            raise FileNotFoundError(f"no corpus file or directory at {p}")


def read_corpus(
    paths: str | Path | Iterable[str | Path],
    max_lines: int | None = None,
    unique: bool = False,
) -> list[str]:
    """One sentence a line from files / directories, plain or gzip; blank lines skipped.

    unique=True drops repeated sentences (keeping first occurrences in order). No sentence at
    all is a BadTextError naming the files (not a batch-size error later).
    """
    out: list[str] = []
    seen: set[str] = set()
    files = list(_files(paths))
    for path in files:
        for line in text_lines(path):
            line = line.strip()
            if not line or (unique and line in seen):
                continue
            if unique:
                seen.add(line)
            out.append(line)
            if max_lines is not None and len(out) >= max_lines:
                return out
    if not out:
        names = ", ".join(map(str, files)) or f"{paths} (no .txt or .gz files)"
        raise BadTextError(
            f"the corpus {names} has no sentences; give a file with one sentence a line."
        )
    return out


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_sts(path: str | Path, fmt: str = "auto") -> ScoredPairs:
    """Scored pairs; fmt "stsb" (columns 5-7: score, s1, s2), "tsv" (s1, s2, score) or "auto"."""
    first, second, scores = [], [], []
    for line in text_lines(Path(path)):
        cols = line.rstrip("\n").split("\t")
        kind = fmt
        if kind == "auto":
            kind = "stsb" if len(cols) >= 7 and _is_float(cols[4]) else "tsv"
        if kind == "stsb":
            score, a, b = cols[4:7]
        elif kind == "tsv":
            a, b, score = cols[:3]
        else:
            raise ValueError(f"unknown STS format {fmt!r}; use 'stsb', 'tsv' or 'auto'")
        first.append(a.strip())
        second.append(b.strip())
        scores.append(float(score))
    return ScoredPairs(first, second, torch.tensor(scores))


def read_pairs(path: str | Path) -> list[list[str]]:
    """`sentence<TAB>positive[<TAB>hard negative]` lines -> columns: 2 or 3 lists of N strings."""
    rows = []
    for n, line in enumerate(text_lines(Path(path)), 1):
        cols = [c.strip() for c in line.rstrip("\n").split("\t")]
        if len(cols) not in (2, 3):
            raise ValueError(
                f"{path}:{n}: expected 2 or 3 tab-separated sentences, got {len(cols)}"
            )
        rows.append(cols)
    if not rows:
        raise BadTextError(
            f"the pairs file {path} has no lines; give `sentence<TAB>positive` lines."
        )
    if len({len(r) for r in rows}) > 1:
        raise ValueError(f"{path}: mixed 2- and 3-column lines")
    return [list(col) for col in zip(*rows, strict=True)]


def aligned_pairs(
    paths: Iterable[str | Path], pairs_per_line: int = 2, seed: int = 0
) -> list[list[str]]:
    """Positive pairs from K >= 2 line-aligned files (line i of every file describes the same
    thing, e.g. the 5 captions per image of Multi30k task 2): for every line, `pairs_per_line`
    pairs of two different files drawn at random -> [first, second] columns for `text_dataset`.

    No labels are read: the alignment is the corpus's own structure (several captions of one
    image), as in multi-caption contrastive training.
    """
    columns = []
    for path in paths:
        columns.append([line.strip() for line in text_lines(Path(path))])
    if len(columns) < 2 or len({len(c) for c in columns}) > 1:
        raise ValueError("aligned_pairs needs >= 2 files with the same number of lines")
    rng = random.Random(seed)
    first, second = [], []
    for row in zip(*columns, strict=True):
        for _ in range(pairs_per_line):
            i, j = rng.sample(range(len(row)), 2)
            if row[i] and row[j]:
                first.append(row[i])
                second.append(row[j])
    return [first, second]


TREC_CLASSES = ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
AGNEWS_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]


def _labeled(texts: list[str], names: list[str], classes: list[str] | None) -> LabeledText:
    classes = classes if classes is not None else sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return LabeledText(texts, torch.tensor([index[n] for n in names]), classes)


def read_labeled(
    path: str | Path, fmt: str = "tsv", classes: list[str] | None = None
) -> LabeledText:
    """Labeled sentences; fmt "sst2", "trec", "agnews" or "tsv" (`label<TAB>text`).

    For "tsv" the classes are the sorted distinct labels unless `classes` is given.
    """
    path = Path(path)
    texts, names = [], []
    if fmt == "agnews":
        for idx, title, desc in list(csv.reader(text_lines(path)))[1:]:
            # The AG News dump writes line breaks inside descriptions as a backslash.
            texts.append(f"{title} . {desc}".replace("\\", " "))
            names.append(AGNEWS_CLASSES[int(idx) - 1])
        return _labeled(texts, names, AGNEWS_CLASSES)
    for n, line in enumerate(text_lines(path), 1):
        line = line.strip()
        if not line:
            continue
        sep = "\t" if fmt == "tsv" else " "
        label, _, text = line.partition(sep)
        if not text.strip():
            raise BadTextError(
                f"{path}:{n}: expected a label, {'a tab' if sep == chr(9) else 'a space'} and a "
                f"sentence ({fmt} format), got {line[:80]!r}"
            )
        if fmt == "trec":
            label = label.split(":")[0]
        elif fmt not in ("sst2", "tsv"):
            raise ValueError(f"unknown labeled format {fmt!r}")
        texts.append(text.strip())
        names.append(label)
    default = {"sst2": ["0", "1"], "trec": TREC_CLASSES}.get(fmt)
    return _labeled(texts, names, classes or default)


# Split file names of the shared copies under `<root>/text/` (README of ../shared/data).
_BENCHMARKS = {
    "stsb": {s: f"stsb/sts-{s}.csv" for s in ("train", "dev", "test")},
    "sst2": {s: f"sst2/{s}.txt" for s in ("train", "dev", "test")},
    "trec": {s: f"trec/{s}.txt" for s in ("train", "test")},
    "agnews": {"test": "agnews/test.csv"},
}


def load_benchmark(name: str, split: str, root: str | Path) -> ScoredPairs | LabeledText:
    """A split of a shared benchmark: name in stsb | sst2 | trec | agnews; root holds `text/`."""
    if name not in _BENCHMARKS or split not in _BENCHMARKS[name]:
        known = {n: list(s) for n, s in _BENCHMARKS.items()}
        raise ValueError(f"unknown benchmark split {name}/{split}; known: {known}")
    path = Path(root) / "text" / _BENCHMARKS[name][split]
    if name == "stsb":
        return read_sts(path, fmt="stsb")
    return read_labeled(path, fmt=name)


def text_dataset(
    sentences: list[str] | list[list[str]],
    tokenizer: TextTokenizer,
    labels: torch.Tensor | None = None,
    classes: list[str] | None = None,
    max_length: int | None = None,
    name: str = "",
) -> InMemoryDataset:
    """Tokenize into an `InMemoryDataset` of ids (N, L) long, or (N, K, L) for K columns.

    `sentences` is one list of N strings, or K lists (pairs, triplets) tokenized to a common
    length and stacked on dim 1 so one dataset row carries a sentence and its positive(s).
    """
    if sentences and isinstance(sentences[0], list):
        cols = [tokenizer.encode(col, max_length) for col in sentences]
        length = max(c.shape[1] for c in cols)
        pad = [
            torch.nn.functional.pad(c, (0, length - c.shape[1]), value=tokenizer.pad_id)
            for c in cols
        ]
        ids = torch.stack(pad, dim=1)
    else:
        ids = tokenizer.encode(sentences, max_length)
    return InMemoryDataset(ids, labels, classes, name=name)
