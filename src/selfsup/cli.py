"""The command line: `selfsup pretrain | evaluate | embed | report | export`.

selfsup pretrain                                  # SimCLR on the bundled digits (~2 min CPU)
selfsup pretrain --data cifar10 --config configs/cifar10-simclr.yaml
selfsup pretrain --data path/to/folder --set train.epochs=100 --set method_args.temperature=0.2
selfsup evaluate runs/<run> --data cifar10
selfsup embed runs/<run> --data path/to/folder --out emb.npy
selfsup report runs/<run>                         # rewrite runs/<run>/report.html
selfsup export runs/<run> --format torchscript --out encoder.pt
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Shortcuts: flag -> config key (each is the same as --set key=value).
SHORTCUTS = {
    "data": "data",
    "method": "method",
    "encoder": "encoder",
    "modality": "modality",
    "image_size": "image_size",
    "epochs": "train.epochs",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "out": "train.out_dir",
    "overwrite": "train.overwrite",
    "device": "train.device",
    "precision": "train.precision",
    "seed": "train.seed",
    "eval_every": "eval.every",
    "workers": "train.workers",
    "compile": "train.compile",
}


def _add_pretrain(sub) -> None:
    p = sub.add_parser(
        "pretrain",
        help="train an encoder without labels (default: SimCLR on scikit-learn's digits)",
        description="Pretrain an encoder. Settings come from defaults, then --config YAML, "
        "then the flags below, then --set key=value overrides (e.g. --set train.lr=0.1).",
    )
    p.add_argument("--config", help="YAML recipe (see configs/)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, dotted (train.lr=0.1, method_args.temperature=0.2)",
    )
    p.add_argument(
        "--data", help="digits (default, bundled) | cifar10 (torchvision download) | image folder"
    )
    p.add_argument("--method", help="simclr (default) and the other registered methods")
    p.add_argument("--encoder", help="registered encoder name, or timm/<name>")
    p.add_argument("--modality", choices=["image", "text"])
    p.add_argument(
        "--image-size",
        type=int,
        help="resize folder images to this side (with --stream: the training views' side)",
    )
    p.add_argument("--epochs", type=float)
    p.add_argument("--steps", type=int, help="train this many steps (overrides --epochs)")
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--lr", type=float)
    p.add_argument(
        "--out",
        help="run folder (default: a new runs/<method>-<data>-<time>); a folder that already "
        "holds a run is refused unless --resume or --overwrite",
    )
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--seed", type=int)
    p.add_argument(
        "--compile",
        choices=["none", "backbone", "step"],
        help="torch.compile the backbone, or the whole step (method forward + views): for long "
        "runs, it first compiles for 20-60 s (docs/performance.md); mode: --set "
        "train.compile_mode=...",
    )
    p.add_argument("--eval-every", type=int, help="kNN evaluation every N steps during training")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest valid checkpoint (an error if it has none)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,  # absent: leave train.overwrite as the config file has it
        help="start afresh in an --out that holds a run: its run files (checkpoints, metrics, "
        "results, encoder, report) are deleted first",
    )
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="skip unreadable images (counted) instead of failing",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="read the folder file by file (decode + crop in DataLoader workers, the rest of the "
        "views on the device) instead of decoding it into memory; needs --image-size",
    )
    p.add_argument(
        "--workers",
        type=int,
        help="DataLoader workers for --stream (default: 0 on <= 2 cores, else cores - 1, max 8)",
    )
    p.add_argument("--no-eval", action="store_true", help="skip the final kNN / linear evaluation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        help="kNN, linear probe and retrieval of a trained encoder, with the run's own protocol",
        description="Evaluate a run folder or encoder.safetensors on labeled data (frozen "
        "features). Settings come from the run's results.json (eval_protocol), so on the run's "
        "data this reproduces its numbers; the flags below override them (and are printed).",
    )
    p.add_argument("run", help="run folder, or encoder .safetensors (with its .json beside it)")
    p.add_argument(
        "--data", help="digits | cifar10 | labeled image folder (default: the run's data)"
    )
    p.add_argument("--image-size", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--k",
        type=int,
        help="kNN neighbours (default: the run's; 200 on >= 10,000 samples, else 20)",
    )
    p.add_argument("--t", type=float, help="kNN temperature (default: the run's; 0.1, InstDisc)")
    p.add_argument("--batch-size", type=int, help="feature-extraction batch (default: the run's)")
    p.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"], help="default: the run's train.precision"
    )
    p.add_argument("--no-linear", action="store_true", help="kNN (and retrieval) only")


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="write embeddings of a data set to .npy (+ an index .csv)")
    p.add_argument("run", help="run folder, or encoder .safetensors")
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int)
    p.add_argument(
        "--out",
        required=True,
        help="output .npy (.npy is appended when missing; a folder gets embeddings.npy). Row i "
        "is described by row i of <out>.index.csv (columns split, source, label; RFC 4180 "
        "quoting, so any file name round-trips through Python's csv module)",
    )
    p.add_argument("--device", default="auto")


def pretrain_config(args):
    from selfsup.config import load_config

    overrides = []
    for flag, key in SHORTCUTS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    if args.resume:
        overrides.append("train.resume=true")
    if args.skip_bad_files:
        overrides.append("skip_bad_files=true")
    if args.stream:
        overrides.append("stream=true")
    if args.no_eval:
        overrides.append("eval.enabled=false")
    if args.no_progress:
        overrides.append("train.progress=false")
    return load_config(args.config, overrides + args.set, modality=args.modality)


def cmd_pretrain(args) -> int:
    from selfsup.run import pretrain

    pretrain(pretrain_config(args))
    return 0


def _encoder_and_config(run: str):
    """(encoder, run config dict or {}) from a run folder or an encoder .safetensors file."""
    from selfsup.engine.checkpoint import load_encoder
    from selfsup.safe_yaml import read_yaml_file

    path = Path(run)
    weights = path / "encoder.safetensors" if path.is_dir() else path
    if not weights.exists():
        raise FileNotFoundError(
            f"{weights}: not found. Pass a run folder of `selfsup pretrain` (it holds "
            "encoder.safetensors) or the .safetensors file itself."
        )
    cfg_path = weights.parent / "config.yaml"
    cfg = read_yaml_file(cfg_path) if cfg_path.exists() else {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{cfg_path}: expected a mapping of settings; is this a run folder?")
    return load_encoder(weights), cfg


def _data_for(args, cfg: dict):
    from selfsup.data import load_image_data

    spec = args.data or cfg.get("data")
    if not spec:
        raise ValueError("no --data given and the run's config names none")
    size = args.image_size or cfg.get("image_size")
    root = cfg.get("data_root", "~/.cache/selfsup/datasets")
    # The run's own loading settings, so evaluate sees the data pretrain evaluated on.
    kw = {k: cfg[k] for k in ("skip_bad_files", "max_image_pixels") if k in cfg}
    return load_image_data(spec, size, root, **kw)


def _eval_protocol(args, cfg: dict, train):
    """The run's recorded EvalProtocol (results.json), else one from its config.yaml, with the
    flags given to `evaluate` applied; prints where each setting came from."""
    import dataclasses

    from selfsup.eval.protocol import EvalProtocol

    path = _run_file(args.run, "results.json")
    recorded = json.loads(path.read_text()).get("eval_protocol") if path.exists() else None
    ev, tr = cfg.get("eval") or {}, cfg.get("train") or {}
    if recorded is not None and not (args.data and args.data != cfg.get("data")):
        protocol, source = EvalProtocol.from_dict(recorded, f"{path} eval_protocol"), str(path)
    else:  # other data, or a run without a record: its settings, k resolved on this bank
        keys = {"knn_k": "knn_k", "knn_t": "knn_t", "linear": "linear", "batch_size": "batch_size"}
        kw = {f: ev[k] for f, k in keys.items() if k in ev}
        kw |= {k: tr[k] for k in ("precision", "seed") if k in tr}
        protocol, source = EvalProtocol(**kw), "the run's config (no recorded protocol)"
    flags = {"knn_k": args.k, "knn_t": args.t, "batch_size": args.batch_size}
    flags |= {"precision": args.precision, "linear": False if args.no_linear else None}
    flags = {k: v for k, v in flags.items() if v is not None}
    protocol = dataclasses.replace(protocol, **flags).resolve(len(train))
    print(f"evaluation protocol from {source}: {protocol.to_dict()}")
    if flags:
        print(f"overridden by flags: {flags}")
    return protocol


def _run_file(run: str, name: str) -> Path:
    """`name` in the run folder `run` (or beside the .safetensors file `run`)."""
    path = Path(run)
    return (path if path.is_dir() else path.parent) / name


def cmd_evaluate(args) -> int:
    from selfsup.augment import recipes
    from selfsup.engine.loop import resolve_device
    from selfsup.eval.protocol import EvaluationError, evaluate_encoder, label_problem
    from selfsup.run import format_table

    encoder, cfg = _encoder_and_config(args.run)
    train, test = _data_for(args, cfg)
    problem = label_problem(train, test)
    if problem:
        raise EvaluationError(f"{problem}. Pass --data with labeled data of >= 2 classes.")
    protocol = _eval_protocol(args, cfg, train)
    device = resolve_device(args.device)
    view = recipes.eval_view(train.inputs.shape[-1])
    row = evaluate_encoder(
        encoder.to(device), train, test, view, device, protocol=protocol, name=args.run
    )
    print(format_table({"encoder": row}))
    print(json.dumps(row))
    return 0


def embed_paths(out: str) -> tuple[Path, Path]:
    """(embeddings .npy, index .csv) for `embed --out`: a folder (existing, or ending in a
    separator) gets embeddings.npy; a name without .npy gets it appended, as np.save does."""
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        path = path / "embeddings.npy"
    elif path.suffix != ".npy":
        path = path.with_name(path.name + ".npy")
    return path, path.with_name(path.stem + ".index.csv")


def cmd_embed(args) -> int:
    import csv

    import numpy as np

    from selfsup.augment import recipes
    from selfsup.engine.loop import resolve_device
    from selfsup.eval.features import extract_features
    from selfsup.eval.protocol import check_finite

    encoder, cfg = _encoder_and_config(args.run)
    train, test = _data_for(args, cfg)
    device = resolve_device(args.device)
    rows = []
    for ds in [train] + ([test] if test is not None else []):
        view = recipes.eval_view(ds.inputs.shape[-1])
        f = extract_features(encoder.to(device), ds, view, device=device)
        rows.append((ds, check_finite(f, args.run, ds.name or args.data)))
    out, index = embed_paths(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.concatenate([f.numpy() for _, f in rows]))
    with index.open("w", newline="", encoding="utf-8") as fh:  # csv quotes newlines, commas
        w = csv.writer(fh)
        w.writerow(["split", "source", "label"])
        for ds, _ in rows:
            labels = [""] * len(ds) if ds.targets is None else ds.targets.tolist()
            w.writerows(zip([ds.name] * len(ds), ds.sources or range(len(ds)), labels, strict=True))
    print(f"wrote {sum(len(f) for _, f in rows)} embeddings to {out} (rows: {index})")
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="(re)write RUN/report.html and RUN/report/*.png from a run folder",
        description="Write the HTML report of a run from its folder alone (config.yaml, "
        "results.json, metrics.jsonl, report_data.npz).",
    )
    p.add_argument("run", help="run folder of `selfsup pretrain`")


def cmd_report(args) -> int:
    from selfsup.report.html import write_report

    print(f"wrote {write_report(args.run)}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export a run's encoder to TorchScript or ONNX (checked against the original)",
    )
    p.add_argument("run", help="run folder, or encoder .safetensors (with its .json beside it)")
    p.add_argument("--format", choices=["torchscript", "onnx"], default="torchscript")
    p.add_argument("--out", required=True, help="output file (.pt for TorchScript, .onnx)")
    p.add_argument("--image-size", type=int, help="input side (default: the run's data size)")


def cmd_export(args) -> int:
    from selfsup.export import check_export, example_input, export_encoder

    encoder, cfg = _encoder_and_config(args.run)
    size = args.image_size or cfg.get("image_size") or (16 if cfg.get("data") == "digits" else 32)
    try:
        path = export_encoder(encoder, args.format, Path(args.out), size)
    except ImportError as e:  # onnx / onnxscript missing: say what to install
        print(f"selfsup export: error: {e}", file=sys.stderr)
        return 2
    try:
        err = check_export(encoder, example_input(encoder, size), path)
        print(f"wrote {path} (max difference from the encoder: {err:.1e})")
    except ImportError:
        print(f"wrote {path} (not checked: onnxruntime is not installed)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="selfsup", description="Self-supervised representation learning."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_pretrain(sub)
    _add_evaluate(sub)
    _add_embed(sub)
    _add_report(sub)
    _add_export(sub)
    args = parser.parse_args(argv)
    from selfsup.config import ConfigError
    from selfsup.data.folder import BadImageError
    from selfsup.engine.loop import NonFiniteLossError
    from selfsup.eval.health import CollapseError

    commands = {
        "pretrain": cmd_pretrain,
        "evaluate": cmd_evaluate,
        "embed": cmd_embed,
        "report": cmd_report,
        "export": cmd_export,
    }
    try:
        return commands[args.command](args)
    except (
        ConfigError,
        BadImageError,
        NonFiniteLossError,
        CollapseError,
        OSError,  # a missing, unreadable or unwritable path: its message names the path
        ValueError,
    ) as e:
        print(f"selfsup {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Checkpoints are written atomically, so whatever the last one is, it is whole.
        hint = ""
        if args.command == "pretrain":
            out = args.out or "<the run folder printed above>"
            hint = f" To continue, run the same command with --out {out} --resume."
        print(f"selfsup {args.command}: interrupted.{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
