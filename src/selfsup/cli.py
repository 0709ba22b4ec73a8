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
    p.add_argument("--out", help="run folder (default runs/<method>-<data>-<time>)")
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
        "--resume", action="store_true", help="continue from the newest valid checkpoint in --out"
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
        help="kNN (k=200, t=0.1) and linear probe of a trained encoder",
        description="Evaluate a run folder or encoder.safetensors on labeled data "
        "(frozen features).",
    )
    p.add_argument("run", help="run folder, or encoder .safetensors (with its .json beside it)")
    p.add_argument(
        "--data", help="digits | cifar10 | labeled image folder (default: the run's data)"
    )
    p.add_argument("--image-size", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-linear", action="store_true", help="kNN only")


def _add_embed(sub) -> None:
    p = sub.add_parser("embed", help="write embeddings of a data set to .npy (+ an index file)")
    p.add_argument("run", help="run folder, or encoder .safetensors")
    p.add_argument("--data", required=True)
    p.add_argument("--image-size", type=int)
    p.add_argument("--out", required=True, help="output .npy; rows are listed in <out>.index.txt")
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
    import yaml

    from selfsup.engine.checkpoint import load_encoder

    path = Path(run)
    weights = path / "encoder.safetensors" if path.is_dir() else path
    if not weights.exists():
        raise FileNotFoundError(
            f"{weights}: not found. Pass a run folder of `selfsup pretrain` (it holds "
            "encoder.safetensors) or the .safetensors file itself."
        )
    cfg_path = weights.parent / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text()) if cfg_path.exists() else {}
    return load_encoder(weights), cfg


def _data_for(args, cfg: dict):
    from selfsup.data import load_image_data

    spec = args.data or cfg.get("data")
    if not spec:
        raise ValueError("no --data given and the run's config names none")
    size = args.image_size or cfg.get("image_size")
    return load_image_data(spec, size, cfg.get("data_root", "~/.cache/selfsup/datasets"))


def cmd_evaluate(args) -> int:
    from selfsup.augment import recipes
    from selfsup.engine.loop import resolve_device
    from selfsup.eval.protocol import evaluate_encoder
    from selfsup.run import format_table

    encoder, cfg = _encoder_and_config(args.run)
    train, test = _data_for(args, cfg)
    if test is None or not test.has_labels:
        print(f"{args.data}: evaluation needs labeled data with a test split", file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    row = evaluate_encoder(
        encoder.to(device),
        train,
        test,
        recipes.eval_view(train.inputs.shape[-1]),
        device,
        linear=not args.no_linear,
    )
    print(format_table({"encoder": row}))
    print(json.dumps(row))
    return 0


def cmd_embed(args) -> int:
    import numpy as np

    from selfsup.augment import recipes
    from selfsup.engine.loop import resolve_device
    from selfsup.eval.features import extract_features

    encoder, cfg = _encoder_and_config(args.run)
    train, test = _data_for(args, cfg)
    rows = []
    for ds in [train] + ([test] if test is not None else []):
        f = extract_features(
            encoder.to(resolve_device(args.device)),
            ds,
            recipes.eval_view(ds.inputs.shape[-1]),
            device=resolve_device(args.device),
        )
        rows.append((ds, f))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.concatenate([f.numpy() for _, f in rows]))
    index = [
        f"{ds.name}\t{src}\t{'' if ds.targets is None else int(ds.targets[i])}"
        for ds, _ in rows
        for i, src in enumerate(ds.sources or range(len(ds)))
    ]
    out.with_suffix(".index.txt").write_text("split\tsource\tlabel\n" + "\n".join(index) + "\n")
    print(f"wrote {sum(len(f) for _, f in rows)} embeddings to {out}")
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
        FileNotFoundError,
        ValueError,
    ) as e:
        print(f"selfsup {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
