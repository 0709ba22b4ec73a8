"""`selfsup pretrain` as a function: data -> encoder -> method -> fit -> evaluation -> run folder.

One path for every kind of data: the run asks the modality (`selfsup.modalities`) for its data,
encoder, views, evaluation and report data, and never branches on which one it is.
The run folder holds config.yaml (resolved), metrics.jsonl/.csv, tensorboard/, checkpoints,
encoder.safetensors (+ .json), the modality's files (text: tokenizer.json) and results.json.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
import yaml

from selfsup import dist
from selfsup.build import METHODS, build_method, build_sampler, check_batch_size
from selfsup.config import RunConfig, load_config
from selfsup.engine import fit
from selfsup.engine.batches import EpochBatches
from selfsup.engine.loop import resolve_device, total_steps
from selfsup.engine.run_dir import claim_run_dir, timestamped_run_dir, write_atomic
from selfsup.eval.health import HealthCallback
from selfsup.modalities import Modality, create_modality, modality_class
from selfsup.report import snapshot
from selfsup.report.environment import environment
from selfsup.report.html import write_report


def run_config(
    path: str | Path | None = None, overrides: list[str] = (), modality: str | None = None
) -> RunConfig:
    """The configuration `selfsup pretrain` resolves: defaults, the modality's defaults, the YAML
    file, then `key=value` overrides (e.g. run_config(None, ["data=corpus.txt"], "text"))."""
    return load_config(path, overrides, modality, lambda name: modality_class(name).defaults)


def default_run_dir(cfg: RunConfig) -> Path:
    """runs/<method>-<data>-<time>; config strings are reduced to one safe path component, so
    a value like "../../x" cannot place the run (or anything it writes) outside runs/."""
    name = Path(cfg.data).name or cfg.data
    return timestamped_run_dir(f"{cfg.method}-{name}")


def write_config(cfg: RunConfig, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def pretrain(cfg: RunConfig, log=print) -> dict:
    """Run one pretraining job described by `cfg`; return the results dict (also saved)."""
    dist.init_from_env()
    if not dist.is_main():  # rank-0-only output; the other ranks still compute everything
        log = lambda *args, **kwargs: None  # noqa: E731
    modality = create_modality(cfg)  # an unknown modality fails before the folder is claimed
    # Claimed once, before anything is written: refuses to overwrite a run or resume nothing.
    out, default = cfg.train.out_dir, default_run_dir(cfg)
    run_dir = claim_run_dir(out, cfg.train.resume, cfg.train.overwrite, default)
    cfg.train.out_dir = str(run_dir)
    log(f"run folder: {run_dir}" + (" (resuming)" if cfg.train.resume else ""))
    modality.load(log)

    torch.manual_seed(cfg.train.seed)
    encoder = modality.encoder()
    random_encoder = copy.deepcopy(encoder)  # the same initialization, never trained
    method = build_method(cfg.method, encoder, cfg.method_args)
    check_batch_size(cfg.method, method, cfg.train.batch_size, dist.world_size())
    views = modality.views(cfg.views or METHODS[cfg.method].views)
    source, train_views = modality.training(views)
    sampler = make_sampler(cfg, source, log)
    if dist.is_main() and not cfg.train.resume:  # a resume keeps the files of its run
        write_config(cfg, run_dir)
        for name, content in modality.run_files().items():
            write_atomic(run_dir / name, content)
    batches = sampler or EpochBatches(len(source), cfg.train.batch_size)
    steps = total_steps(cfg.train, batches.steps_per_epoch)[0]
    callbacks = training_callbacks(cfg) + modality.callbacks(steps)
    result = fit(
        method, source, train_views, cfg.train, callbacks, run_config=cfg.to_dict(),
        sampler=sampler, run_dir=run_dir,
    )  # fmt: skip
    log(
        f"trained {result.steps} steps in {result.wall_time:.0f} s "
        f"({result.samples_per_second:.0f} samples/s) -> {run_dir}"
        + (f" (resumed from step {result.resumed_from})" if result.resumed_from else "")
    )
    results = {"train": {"steps": result.steps, "seconds": result.wall_time, **result.last_metrics}}
    if cfg.eval.enabled:
        results |= modality.evaluate(encoder, random_encoder, log)
    results |= finish_report(cfg, modality, callbacks, encoder, random_encoder, method, views)
    skipped = modality.skipped()
    if skipped:  # repeated at the end so a long run's log does not bury it
        results["data"] = {"skipped_files": skipped}
        log(f"note: skipped {len(skipped)} bad files (--skip-bad-files); see results.json")
    if dist.is_main():
        write_atomic(run_dir / "results.json", json.dumps(results, indent=2))
        if cfg.eval.report:
            log(f"report: {write_report(run_dir)}")
    return results


def make_sampler(cfg: RunConfig, source, log=print):
    """The P x K sampler of a method that trains on labels (label losses need positives in
    every batch); None for the others."""
    if not METHODS[cfg.method].needs_labels:
        return None
    world = dist.world_size()
    sampler = build_sampler(cfg.method_args, getattr(source, "targets", None),
                            cfg.train.batch_size, cfg.train.seed, dist.rank(), world)  # fmt: skip
    log(f"sampler: {sampler.classes_per_batch} classes x {sampler.samples_per_class} per batch")
    return sampler


def training_callbacks(cfg: RunConfig) -> list:
    """Health metrics every log step, for every kind of data (the modality adds its own)."""
    if not cfg.eval.health:
        return []
    return [HealthCallback(stop_on_collapse=cfg.eval.stop_on_collapse)]


def finish_report(
    cfg: RunConfig, modality: Modality, callbacks, encoder, random_encoder, method, views
) -> dict:
    """Environment, collapse status, the report's sections and arrays (report_data.npz)."""
    device = resolve_device(cfg.train.device)
    out: dict = {"environment": environment(device)}
    health = [cb for cb in callbacks if isinstance(cb, HealthCallback)]
    if health and health[0].warned:
        out["collapse"] = health[0].message
    if not cfg.eval.report:
        return out
    out["report"] = {"sections": modality.report_sections(method)}
    data = modality.report_data(encoder, random_encoder, method, views)
    if data and dist.is_main():
        snapshot.save(data, Path(cfg.train.out_dir))
    return out
