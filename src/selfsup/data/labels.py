"""Labels for a flat image folder: from a labels file (CSV `file,label`) or from the file names.

A labels file is UTF-8 CSV (Python's `csv`: a quoted name may hold commas), two columns a row,
an optional header row first (its second column is `label`, any case: `file,label`,
`filename,label`). It may lie anywhere on disk. A name is a path relative to `root`
(`sub/0001.png`, POSIX slashes) or a bare file name (`0001.png`): the relative path is tried
first; a bare name is looked up among the files being labeled, then among every file it may name
(`within`: the images of all splits, see `folder.list_images`). A name is only ever looked up
among files already listed: a labels file cannot make anything outside the folder be read.

A label pattern is a regular expression searched in each file's bare name; its one capturing
group (or the group named `label`) is the label: `^(\\d+)_` labels FSDD's `7_jackson_32.wav` 7.

Classes are the distinct label strings sorted (`class_order`); labels index them.

Errors: anything wrong with a labels file, or files it or a pattern leaves unlabeled, is a
`BadImageError` naming the file (and line) and the fix, with the first 5 names and the exact
count where there are many; a pattern that cannot label anything (invalid, no group) is a
ValueError naming the pattern.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from selfsup.data.folder import BadImageError

SHOWN = 5  # names an error message lists; it gives the count of all
EXAMPLE = "e.g. '^(\\d+)_' labels 7_jackson_32.wav as 7"


def labels_from_csv(
    path: Path, files: list[Path], root: Path, within: list[Path] | None = None
) -> tuple[list[int], list[str]]:
    """(label index per file of `files` (N,), classes) from the labels file `path`.

    root: the folder names are relative to. within: every file the rows may name (default
    `files`; a superset of it): a train/test split's labels file names both splits' files, and
    each split is labeled from it. Classes are those of every row, so both splits share them.
    Errors (BadImageError): a row naming no file of `within`, a file of `files` without a row,
    a bare name shared by two files, two rows giving one file different labels, malformed rows.
    """
    rows = read_rows(path)
    scope = files if within is None else within
    by_file = _assign(path, rows, files, scope, root)
    unlabeled = [f for f in files if f not in by_file]
    if unlabeled:
        raise BadImageError(
            f"{path}: {_count(unlabeled, 'file')} of {root} {_verb(unlabeled, 'has', 'have')} "
            f"no label: {_few(_rel(unlabeled, root))} (add rows 'file,label' for them, or "
            "remove the files)."
        )
    classes = class_order(by_file.values())
    index = {c: i for i, c in enumerate(classes)}
    return [index[by_file[f]] for f in files], classes


def read_rows(path: Path) -> list[tuple[int, str, str]]:
    """The labels file's rows as (line, name, label), blank rows and the header skipped; names
    and labels stripped of surrounding spaces. BadImageError naming file:line for a malformed
    row, a file that is not UTF-8, a folder, or a file without rows."""
    if path.is_dir():
        raise BadImageError(f"{path}: a folder, not a labels file: pass a CSV of lines file,label.")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such labels file (a CSV of lines file,label).")
    rows: list[tuple[int, str, str]] = []
    for k, (line, cells) in enumerate(_records(path)):
        if len(cells) != 2:
            raise BadImageError(
                f"{path}:{line}: {_count(cells, 'column')}, expected 2: file,label "
                f"(got {_shown(','.join(cells))})."
            )
        if k == 0 and cells[1].lower() == "label":
            continue  # the optional header row
        if not all(cells):
            raise BadImageError(f"{path}:{line}: empty file or label; expected file,label.")
        rows.append((line, *cells))
    if not rows:
        raise BadImageError(f"{path}: no rows; expected lines file,label (a header is optional).")
    return rows


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells stripped) of each non-blank CSV record; BadImageError for broken
    quoting (strict: a mangled name would only surface later as a missing file)."""
    # Spreadsheets save UTF-8 with a byte-order mark: it would become part of the first name.
    reader = csv.reader(
        io.StringIO(_utf8_text(path).removeprefix("\ufeff"), newline=""), strict=True
    )
    start = 1  # a quoted name may span lines: the record's first line is the one to name
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield start, [cell.strip() for cell in row]
            start = reader.line_num + 1
    except csv.Error as e:  # an unclosed or stray quote, a field over csv.field_size_limit()
        raise BadImageError(
            f"{path}:{start}: {e}; expected lines file,label (quote a name holding commas or "
            'quotes: "a,b.png",cat).'
        ) from e


def _utf8_text(path: Path) -> str:
    """The file's text; not UTF-8 -> BadImageError naming the file and line (an error, not a
    replacement character: the name or label would silently differ)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise BadImageError(
            f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start}). Re-encode it, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name} > fixed && mv fixed {path.name}"
        ) from e


def _assign(
    path: Path,
    rows: list[tuple[int, str, str]],
    files: list[Path],
    scope: list[Path],
    root: Path,
) -> dict[Path, str]:
    """{file of `scope`: label} from the rows; BadImageError for names of no file (all counted),
    ambiguous bare names and conflicting rows."""
    by_rel = {f.relative_to(root).as_posix(): f for f in scope}
    own, every = _by_name(files), _by_name(scope)
    label_of: dict[Path, tuple[str, int]] = {}
    missing: dict[str, None] = {}  # ordered set: the first few in file order
    for line, name, label in rows:
        f = _find(path, line, name, by_rel, own, every, root)
        if f is None:
            missing[name] = None
            continue
        old, old_line = label_of.setdefault(f, (label, line))
        if old != label:
            raise BadImageError(
                f"{path}:{line}: {_shown(name)} labeled {_shown(label)}, but line {old_line} "
                f"labeled it {_shown(old)}; keep one label per file."
            )
    if missing:
        names = list(missing)
        raise BadImageError(
            f"{path}: {_count(names, 'name')} {_verb(names, 'is not a file', 'are not files')} "
            f"of {root}: {_few(names)} (check the folder or the names)."
        )
    return {f: label for f, (label, _) in label_of.items()}


def _find(
    path: Path,
    line: int,
    name: str,
    by_rel: dict[str, Path],
    own: dict[str, list[Path]],
    every: dict[str, list[Path]],
    root: Path,
) -> Path | None:
    """The file `name` means, or None. Only a bare name falls back to matching file names: a
    path (`../x.png`, `/etc/x.png`) that is not a relative path of the folder names no file."""
    found = by_rel.get(PurePosixPath(name).as_posix())
    if found is not None or "/" in name:
        return found
    # The files being labeled first: a split's labels file may reuse the other split's names.
    matches = own.get(name) or every.get(name, [])
    if len(matches) > 1:
        shown = ", ".join(_rel(matches[:SHOWN], root))
        raise BadImageError(
            f"{path}:{line}: {_shown(name)} is the name of {len(matches)} files ({shown}); "
            f"write the path relative to {root} instead, e.g. {_rel(matches[:1], root)[0]}."
        )
    return matches[0] if matches else None


def labels_from_pattern(
    pattern: str, files: list[Path], root: Path, within: list[Path] | None = None
) -> tuple[list[int], list[str]]:
    """(label index per file of `files` (N,), classes) from `pattern` searched in each bare
    file name; the label is its one group (or the group named `label`). Classes are the labels
    of `within` (default `files`) too, so that a train and a test split share them.

    A file whose name does not match (or matches with an empty group) -> BadImageError with the
    first few names and the count; an invalid pattern or one without a group -> ValueError."""
    regex, group = compile_pattern(pattern)

    def label(f: Path) -> str | None:
        found = regex.search(f.name)
        return (found.group(group) or None) if found else None

    own = [label(f) for f in files]
    unmatched = [f for f, lab in zip(files, own, strict=True) if lab is None]
    if unmatched:
        raise BadImageError(
            f"label pattern {pattern!r} does not match {_count(unmatched, 'file name')} under "
            f"{root}: {_few(_rel(unmatched, root))} (fix the pattern, {EXAMPLE}, or remove the "
            "files)."
        )
    others = [label(f) for f in within or []]
    classes = class_order(lab for lab in own + others if lab is not None)
    index = {c: i for i, c in enumerate(classes)}
    return [index[lab] for lab in own if lab is not None], classes


def compile_pattern(pattern: str) -> tuple[re.Pattern[str], int | str]:
    """(compiled pattern, the group holding the label); ValueError naming the pattern and the
    fix if it does not compile or has no single label group."""
    try:
        regex = re.compile(pattern)
    except re.error as e:
        raise ValueError(
            f"label pattern {pattern!r} is not a valid regular expression ({e}); {EXAMPLE}."
        ) from e
    if "label" in regex.groupindex:
        return regex, "label"
    if regex.groups != 1:
        raise ValueError(
            f"label pattern {pattern!r} has {regex.groups} capturing groups, expected 1: put "
            f"parentheses around the label part ({EXAMPLE}), or name it (?P<label>...)."
        )
    return regex, 1


def class_order(labels: Iterable[str]) -> list[str]:
    """The distinct labels sorted: as numbers if every one is an integer ("9" before "10"),
    else as strings ("10" before "9"); ties between spellings of one number ("7", "07") by
    string."""
    distinct = set(labels)
    if all(re.fullmatch(r"[+-]?[0-9]+", c) for c in distinct):
        return sorted(distinct, key=lambda c: (int(c), c))
    return sorted(distinct)


def _by_name(files: list[Path]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for f in files:
        out.setdefault(f.name, []).append(f)
    return out


def _rel(files: list[Path], root: Path) -> list[str]:
    return [f.relative_to(root).as_posix() for f in files]


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _verb(items: list, one: str, many: str) -> str:
    return one if len(items) == 1 else many


def _few(names: list[str]) -> str:
    """The first SHOWN names, then '...' if there are more: a message stays one line long."""
    return ", ".join(_shown(n) for n in names[:SHOWN]) + (", ..." if len(names) > SHOWN else "")


def _shown(text: str, limit: int = 80) -> str:
    """`text` for a message: cut to `limit` characters, and escaped if it holds control
    characters (a terminal would act on them)."""
    short = text if len(text) <= limit else text[:limit] + "..."
    return short if short.isprintable() else repr(short)
