"""`selfsup pretrain` as a function: data -> encoder -> method -> fit -> evaluation -> run folder.

The run folder holds config.yaml (resolved), metrics.jsonl/.csv, tensorboard/, checkpoints,
encoder.safetensors (+ .json) and results.json.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import torch
import yaml

from selfsup import dist
from selfsup.augment import recipes
from selfsup.augment.split import split_views
from selfsup.build import (
    METHODS,
    build_method,
    build_sampler,
    build_views,
    check_batch_size,
)
from selfsup.config import ConfigError, RunConfig
from selfsup.data import InMemoryDataset, load_image_data
from selfsup.data.folder import folder_splits
from selfsup.data.memory import split_indices
from selfsup.data.stream import ImageFiles
from selfsup.encoders import create_encoder
from selfsup.engine import fit
from selfsup.engine.batches import EpochBatches
from selfsup.engine.loop import resolve_device, total_steps
from selfsup.engine.run_dir import claim_run_dir, timestamped_run_dir, write_atomic
from selfsup.eval.finetune import few_label_finetune
from selfsup.eval.health import HealthCallback
from selfsup.eval.knn_callback import KNNCallback, small_subset
from selfsup.eval.protocol import (
    EvalProtocol,
    encoder_features,
    evaluate_features,
    label_problem,
    raw_pixel_features,
)
from selfsup.report import snapshot
from selfsup.report.environment import environment
from selfsup.report.html import write_report
from selfsup.report.reconstructions import reconstruction_data


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
    # Claimed once, before anything is written: refuses to overwrite a run or resume nothing.
    out, default = cfg.train.out_dir, default_run_dir(cfg)
    run_dir = claim_run_dir(out, cfg.train.resume, cfg.train.overwrite, default)
    cfg.train.out_dir = str(run_dir)
    log(f"run folder: {run_dir}" + (" (resuming)" if cfg.train.resume else ""))
    if cfg.modality == "text":
        return pretrain_text(cfg, run_dir, log)
    if cfg.modality != "image":
        raise ConfigError(f"modality={cfg.modality!r}: use image or text")
    files, train, test, size = load_run_images(cfg, log)

    torch.manual_seed(cfg.train.seed)
    encoder = create_encoder(cfg.encoder, **cfg.encoder_args)
    random_encoder = copy.deepcopy(encoder)  # the same initialization, never trained
    method = build_method(cfg.method, encoder, cfg.method_args)
    check_batch_size(cfg.method, method, cfg.train.batch_size, dist.world_size())
    views = build_views(cfg.method, cfg.views, size)
    source = files if files is not None else train
    train_views = views
    if files is not None:  # crops in the workers, the rest of the recipe on the device
        files.transform, train_views = split_views(views)
    sampler = None
    if METHODS[cfg.method].needs_labels:  # label losses need positives: P x K batches
        sampler = build_sampler(
            cfg.method_args,
            source.targets,
            cfg.train.batch_size,
            cfg.train.seed,
            dist.rank(),
            dist.world_size(),
        )
        log(f"sampler: {sampler.classes_per_batch} classes x {sampler.samples_per_class} per batch")
    if dist.is_main() and not cfg.train.resume:  # a resume keeps the config.yaml of its run
        write_config(cfg, run_dir)
    batches = sampler or EpochBatches(len(source), cfg.train.batch_size)
    steps = total_steps(cfg.train, batches.steps_per_epoch)[0]
    callbacks = training_callbacks(cfg, train, test, size, steps) if train is not None else []
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
    features: dict = {}  # encoder tag -> (train, test) features: the report reuses them
    if cfg.eval.enabled and test is not None and test.has_labels:
        results |= evaluate_run(cfg, encoder, random_encoder, train, test, size, log, features)
    elif cfg.eval.enabled:
        log("evaluation skipped: the data has no labels (a flat folder) or no test split")
    results |= finish_report(
        cfg, callbacks, encoder, random_encoder, train, test, views, method, features
    )
    if "eval" in results and cfg.eval.finetune:
        results["eval"][f"{cfg.method} (trained)"] |= finetune_run(cfg, encoder, train, test, log)
    skipped = (train.skipped if train is not None else []) + (files.skipped if files else [])
    if skipped:  # repeated at the end so a long run's log does not bury it
        results["data"] = {"skipped_files": skipped}
        log(f"note: skipped {len(skipped)} bad files (--skip-bad-files); see results.json")
    if dist.is_main():
        write_atomic(run_dir / "results.json", json.dumps(results, indent=2))
        if cfg.eval.report:
            log(f"report: {write_report(run_dir)}")
    return results


def load_run_images(cfg: RunConfig, log=print):
    """(files to stream or None, train, test, view size): train and test in memory (None when
    streaming without evaluation); with stream=true a bounded subset of each split."""
    files, test_files = stream_files(cfg) if cfg.stream else (None, None)
    train = test = None
    if files is None:
        train, test = load_image_data(
            cfg.data,
            cfg.image_size,
            cfg.data_root,
            cfg.skip_bad_files,
            max_image_pixels=cfg.max_image_pixels,
        )
    elif needs_eval_data(cfg):  # at most eval.stream_images per split, at the view size
        limit = cfg.eval.stream_images
        train = files.decode(cfg.image_size, limit)
        test = None if test_files is None else test_files.decode(cfg.image_size, limit)
    if train is not None:
        shape = tuple(train.inputs.shape)
        log(f"data: {train.name} {shape}" + (f", test {len(test)}" if test else ""))
    if files is not None:
        log(f"streaming {len(files)} files from {cfg.data} with {cfg.train.loader_workers} workers")
    if train is not None and train.skipped:
        log(
            f"skipped {len(train.skipped)} unreadable files (--skip-bad-files): {train.skipped[:5]}"
        )
    size = cfg.image_size if train is None else train.inputs.shape[-1]
    return files, train, test, size


def stream_files(cfg: RunConfig) -> tuple[ImageFiles, ImageFiles | None]:
    """(train, test or None) splits of the folder `cfg.data` as ImageFiles: root/train and
    root/test (or val) as `load_image_splits` finds them; a labeled folder without a test split
    is split 80/20 as `load_image_data` splits it."""
    root = Path(cfg.data)
    if cfg.data in ("digits", "cifar10") or not root.is_dir():
        raise ConfigError(
            f"stream=true reads an image folder, but data={cfg.data!r} is not one: pass a folder "
            "(digits and cifar10 fit in memory: drop --stream)."
        )
    if cfg.image_size is None:
        raise ConfigError(
            "stream=true needs image_size (the side of the training views), e.g. --image-size 224"
        )
    kw = {
        "seed": cfg.train.seed,
        "skip_bad_files": cfg.skip_bad_files,
        "max_image_pixels": cfg.max_image_pixels,
    }
    train, test = folder_splits(root, lambda d: ImageFiles.from_folder(d, **kw))
    if test is not None or train.targets is None:
        return train, test
    # The split `load_image_data` makes for evaluation (80/20, seed 0): never train on test images.
    train_rows, test_rows = split_indices(len(train), train.targets, 0.2, seed=0)
    return train.subset(train_rows, f"{train.name}-train"), train.subset(
        test_rows, f"{train.name}-test"
    )


def needs_eval_data(cfg: RunConfig) -> bool:
    """Whether the run evaluates (or reports on) images held in memory at the view size."""
    return cfg.eval.enabled or cfg.eval.report or cfg.eval.every > 0


def training_callbacks(cfg: RunConfig, train, test, size: int, steps: int) -> list:
    """Health metrics every log step; kNN on a small labeled subset every `eval.every` steps."""
    callbacks: list = []
    if cfg.eval.health:
        callbacks.append(HealthCallback(stop_on_collapse=cfg.eval.stop_on_collapse))
    if cfg.eval.every > 0 and test is not None and test.has_labels and train.has_labels:
        n = cfg.eval.every_samples
        callbacks.append(
            KNNCallback(
                small_subset(train, n, cfg.train.seed),
                small_subset(test, n // 2, cfg.train.seed),
                recipes.eval_view(size),
                cfg.eval.every,
                resolve_device(cfg.train.device),
                eval_protocol(cfg, train),  # k resolved on the whole bank, as at the end
                total_steps=steps,
            )
        )
    return callbacks


def finish_report(
    cfg, callbacks, encoder, random_encoder, train, test, views, method=None, features=None
) -> dict:
    """Environment, collapse status and the report's arrays (report_data.npz) of this run.

    features: {"after"/"before": (train, test) features} of `evaluate_run`, not extracted again.

    A method with `reconstruct` (MAE) adds its reconstructions of 8 fixed test images (train
    images without a test split) under a seeded mask, drawn by the report.
    """
    device = resolve_device(cfg.train.device)
    out: dict = {"environment": environment(device)}
    health = [cb for cb in callbacks if isinstance(cb, HealthCallback)]
    if health and health[0].warned:
        out["collapse"] = health[0].message
    data: dict = {}
    if cfg.eval.enabled and cfg.eval.report and test is not None and cfg.modality == "image":
        data = snapshot.collect(
            encoder,
            random_encoder,
            train,
            test,
            views,
            recipes.eval_view(train.inputs.shape[-1]),
            device,
            cfg.train.precision,
            seed=cfg.train.seed,
            features=features,
        )
    if cfg.eval.report and cfg.modality == "image" and hasattr(method, "reconstruct"):
        images = (test if test is not None else train).inputs
        view = recipes.eval_view(train.inputs.shape[-1])
        data |= reconstruction_data(method, images, view, seed=cfg.train.seed)
    if data and dist.is_main():
        snapshot.save(data, Path(cfg.train.out_dir))
    return out


def finetune_run(cfg: RunConfig, encoder, train, test, log) -> dict[str, float]:
    """Few-label fine-tuning (1 % and 10 % of the train labels) of a copy of `encoder`."""
    t0 = time.perf_counter()
    view = recipes.eval_view(train.inputs.shape[-1])
    device = resolve_device(cfg.train.device)
    rows = few_label_finetune(
        encoder,
        train,
        test,
        view,
        device=device,
        precision=cfg.train.precision,
        seed=cfg.train.seed,
    )
    cells = ", ".join(f"{k} {100 * v:.1f}%" for k, v in rows.items())
    log(f"few-label fine-tune: {cells} ({time.perf_counter() - t0:.0f} s)")
    return rows


def evaluate_run(
    cfg: RunConfig,
    encoder: torch.nn.Module,
    random_encoder: torch.nn.Module | None,
    train: InMemoryDataset,
    test: InMemoryDataset,
    size: int,
    log=print,
    features: dict | None = None,
) -> dict:
    """{"eval_protocol": settings, "eval": rows}: kNN, linear probe and retrieval of the trained
    encoder and (baselines) random init and raw pixels; {} and a note when labels cannot tell.

    Each encoder's train and test features are extracted once; `features`, when given, receives
    them as {"before"/"after": (train (N, D), test (M, D))} for the report.
    """
    problem = label_problem(train, test)
    if problem:
        log(f"evaluation skipped: {problem}")
        return {}
    protocol = eval_protocol(cfg, train)
    device, transform = resolve_device(cfg.train.device), recipes.eval_view(size)
    features = {} if features is None else features
    # Training left the weights channels_last; `selfsup evaluate` loads them contiguous. The two
    # layouts take different conv kernels (7e-8 apart with AVX2 fp32), enough to move a
    # retrieval tie: evaluate in the layout a loaded encoder has, so both give the same digits.
    encoder.to(memory_format=torch.contiguous_format)
    encoders = [("after", f"{cfg.method} (trained)", encoder)]
    rows: dict[str, dict[str, float]] = {}
    if cfg.eval.baselines:
        raw = raw_pixel_features(train), raw_pixel_features(test)
        rows["raw pixels"] = evaluate_features(*_labeled(raw, train, test), protocol)
        if random_encoder is not None:
            encoders.insert(0, ("before", "random init", random_encoder))
    for tag, name, enc in encoders:
        where = f"{name} of {cfg.train.out_dir}"
        enc.to(device)
        features[tag] = tuple(
            encoder_features(enc, d, transform, protocol, device, where) for d in (train, test)
        )
        rows[name] = evaluate_features(*_labeled(features[tag], train, test), protocol)
    log(format_table(rows))
    if cfg.data == "digits" and cfg.eval.baselines:
        log(
            "note: on digits raw pixels are a strong baseline (8x8 centred strokes; kNN on pixels "
            "≈97 %). The point of the default run is the gain over the random-init encoder."
        )
    return {"eval_protocol": protocol.to_dict(), "eval": rows}


def _labeled(feats: tuple, train: InMemoryDataset, test: InMemoryDataset) -> tuple:
    """(train features, train labels, test features, test labels) for `evaluate_features`."""
    return feats[0], train.targets, feats[1], test.targets


def eval_protocol(cfg: RunConfig, bank: InMemoryDataset) -> EvalProtocol:
    """The run's evaluation settings (eval.knn_k / knn_t / linear / batch_size, train.precision
    and seed), kNN k resolved on the size of the labeled bank `bank` (`knn_k`)."""
    return EvalProtocol(
        knn_k=cfg.eval.knn_k,
        knn_t=cfg.eval.knn_t,
        linear=cfg.eval.linear,
        seed=cfg.train.seed,
        batch_size=cfg.eval.batch_size,
        precision=cfg.train.precision,
    ).resolve(len(bank))


def format_table(rows: dict[str, dict[str, float]]) -> str:
    cols = [("knn_top1", "kNN top-1"), ("knn_top5", "kNN top-5"), ("linear_top1", "linear top-1")]
    cols += [("recall@1", "Recall@1"), ("map@r", "MAP@R")]
    lines = [f"{'':<22}" + "".join(f"{title:>14}" for _, title in cols)]
    for name, r in rows.items():
        cells = "".join(f"{100 * r[k]:>13.1f}%" if k in r else f"{'-':>14}" for k, _ in cols)
        lines.append(f"{name:<22}{cells}")
    return "\n".join(lines)


def pretrain_text(cfg: RunConfig, run_dir: Path, log=print) -> dict:
    """MLM or SimCSE on a line-per-sentence corpus (or a .tsv of pairs for supervised SimCSE).

    method_args go to `build_text_run` (tokenizer_path, vocab_size, max_length, pooling,
    temperature, view_names). The tokenizer is saved in the run folder beside the encoder;
    `selfsup.encoders.text_transformer.encode_sentences` embeds new sentences with both.
    """
    from selfsup.build import _check_kwargs
    from selfsup.methods.simcse import build_text_run

    _check_kwargs(build_text_run, cfg.method_args, f"method_args for text {cfg.method}")
    if cfg.method == "simcse" and cfg.train.batch_size < 2:  # before the tokenizer is trained
        raise ConfigError(
            f"train.batch_size={cfg.train.batch_size}: SimCSE's negatives are the other "
            "sentences of the batch; use >= 2 (the paper: 64 unsupervised, 512 supervised)."
        )
    kwargs = {k: v for k, v in cfg.method_args.items() if k != "encoder"}
    if "view_names" in kwargs:
        kwargs["view_names"] = tuple(kwargs["view_names"])
    run = build_text_run(
        cfg.method, cfg.data, encoder=cfg.encoder, encoder_kwargs=cfg.encoder_args, **kwargs
    )
    log(f"data: {cfg.data}: {len(run.train)} sentences, vocabulary {run.tokenizer.vocab_size}")
    if dist.is_main() and not cfg.train.resume:  # a resume keeps the files of its run
        write_config(cfg, run_dir)
        write_atomic(run_dir / "tokenizer.json", run.tokenizer.to_json())
    result = fit(
        run.method, run.train, run.views, cfg.train, run_config=cfg.to_dict(), run_dir=run_dir
    )
    log(f"trained {result.steps} steps in {result.wall_time:.0f} s -> {run_dir}")
    log(
        "evaluate sentence embeddings (STS-B, SST-2, TREC, AG News, TF-IDF beside): "
        "python benchmarks/text_table.py; see docs/text.md"
    )
    results = {"train": {"steps": result.steps, "seconds": result.wall_time, **result.last_metrics}}
    if dist.is_main():
        write_atomic(run_dir / "results.json", json.dumps(results, indent=2))
    return results
