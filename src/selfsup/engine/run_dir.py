"""A run folder: claimed once per run, never overwritten by accident, never written through a link.

`claim_run_dir` decides the folder of a run before anything is written: a fresh run refuses a
folder that already holds a run's files (rotation would otherwise delete the new checkpoints,
whose steps are lower than the old run's), a resume refuses a folder with nothing to resume.
`write_atomic` is the one way files get into a run folder: whole or not at all (tmp file +
os.replace), and never through a symbolic link, so a run folder received from someone else
cannot make selfsup overwrite a file elsewhere.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch

from selfsup import dist

# Names a run writes into its folder (besides checkpoint-<step>.pt).
RUN_FILES = (
    "config.yaml", "metrics.jsonl", "metrics.csv", "results.json", "encoder.safetensors",
    "encoder.json", "tokenizer.json", "report.html", "report", "report_data.npz", "tensorboard",
)  # fmt: skip
_CHECKPOINT = re.compile(r"^checkpoint-\d+\.pt$")
# O_NOFOLLOW: open() fails on a symlink instead of following it (absent on Windows).
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class RunDirError(ValueError):
    """A run folder that cannot be used as asked; the message says what to do instead."""


def run_files(run_dir: Path) -> list[str]:
    """Names in `run_dir` that a run writes (sorted); [] for a missing folder."""
    if not run_dir.is_dir():
        return []
    return sorted(
        p.name for p in run_dir.iterdir() if p.name in RUN_FILES or _CHECKPOINT.match(p.name)
    )


def timestamped_run_dir(name: str) -> Path:
    """runs/<name>-<time>, `name` reduced to one safe path component (no "..", no "/")."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).lstrip(".") or "run"
    return Path("runs") / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"


def unique_dir(base: Path) -> Path:
    """Create and return `base`, or base-2, base-3, ...: mkdir is atomic, so two runs started
    in the same second (or two processes) never share a folder."""
    base.parent.mkdir(parents=True, exist_ok=True)
    path, n = base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def claim_run_dir(out_dir: str, resume: bool, overwrite: bool, default: Path) -> Path:
    """The folder of this run, checked once, before anything is written into it.

    out_dir "" picks (and creates) a new unique folder from `default` (see `unique_dir`). Under
    torchrun rank 0 decides and every rank gets its folder (or its error), so all agree.
    """
    answer: list = [None, None]
    if dist.is_main():
        try:
            answer[0] = str(_decide(out_dir, resume, overwrite, default))
        except RunDirError as e:
            answer[1] = str(e)
    if dist.world_size() > 1:
        torch.distributed.broadcast_object_list(answer, src=0)
    if answer[1] is not None:
        raise RunDirError(answer[1])
    return Path(answer[0])


def _decide(out_dir: str, resume: bool, overwrite: bool, default: Path) -> Path:
    if not out_dir:
        if resume:
            raise RunDirError(
                "resume needs the folder of the run to continue: pass --out <run folder> "
                "(train.out_dir)."
            )
        return unique_dir(default)
    path = Path(out_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise RunDirError(
            f"{path}: is a file, not a folder. --out (train.out_dir) names the run folder: "
            "pass a new folder path, or an existing run folder with --resume."
        )
    if resume:
        _check_resumable(path)
        return path
    present = run_files(path)
    if present and not overwrite:
        raise RunDirError(
            f"{path}: already holds a run ({_listing(present)}); refusing to overwrite it. "
            "Continue it with --resume (train.resume=true), pick another --out folder, or "
            "replace it with --overwrite (train.overwrite=true: deletes that run's files first)."
        )
    for name in present:  # before the new run: rotation must never see the old checkpoints
        _remove(path / name)
    # Created by the first write, not here: the data may still be read from a folder around it.
    return path


def _check_resumable(path: Path) -> None:
    if not path.is_dir():
        raise RunDirError(
            f"{path}: nothing to resume, the folder does not exist. Check --out (a typo?), or "
            "drop --resume to start a new run."
        )
    if not any(_CHECKPOINT.match(p.name) for p in path.iterdir()):
        held = _listing(sorted(p.name for p in path.iterdir())) or "nothing"
        raise RunDirError(
            f"{path}: nothing to resume, the folder holds no checkpoint-*.pt (it holds: {held}). "
            "Check --out, or drop --resume to start a new run in another folder."
        )


def _listing(names: list[str], limit: int = 6) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _remove(path: Path) -> None:
    """Delete a file, a link (never what it points to) or a folder of the old run."""
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def check_no_links(path: Path, within: Path | None = None) -> None:
    """Raise if `path`, or a folder between `within` (default: path's folder) and it, is a
    symbolic link. `within` itself may be one: the user chose it."""
    path = Path(path)
    root = Path(within) if within is not None else path.parent
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise RunDirError(
                f"{current}: is a symbolic link; refusing to write through it (a run folder from "
                "elsewhere could point it at any file you can write). Remove the link, or use "
                "another run folder."
            )


def make_dir(path: Path, within: Path) -> Path:
    """mkdir -p `path` inside run folder `within`, refusing symlinked folders on the way."""
    check_no_links(path, within)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_atomic(
    path: Path,
    data: str | bytes | Callable[[BinaryIO], object],
    within: Path | None = None,
) -> Path:
    """Write `path` whole or not at all and never through a symlink (see `check_no_links`).

    data: text (UTF-8), bytes, or a function that writes into the open binary file (e.g.
    `lambda f: torch.save(obj, f)`, which streams instead of building the bytes in memory).
    The temporary file is created exclusively (O_EXCL) without following links, then renamed
    over `path`; a rename replaces a link itself, never the file it points to.
    """
    path = Path(path)
    check_no_links(path, within)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def append_text(path: Path, text: str, within: Path | None = None) -> None:
    """Append `text` to `path` (created if missing), refusing a symlink at `path`."""
    check_no_links(path, within)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o666)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(text)
