"""The command line: `selfsup pretrain | evaluate | embed | report | export | collect`.

selfsup pretrain                                  # SimCLR on the bundled digits (~2 min CPU)
selfsup pretrain --data cifar10 --config configs/cifar10-simclr.yaml
selfsup pretrain --data path/to/folder --set train.epochs=100 --set method_args.temperature=0.2
selfsup evaluate runs/<run> --data cifar10
selfsup pretrain --modality text --data corpus.txt --eval-data stsb/ sst2/
selfsup evaluate runs/<text run> --data sst2/
selfsup embed runs/<run> --data path/to/folder --out emb.npy
selfsup report runs/<run>                         # rewrite runs/<run>/report.html
selfsup export runs/<run> --format torchscript --out encoder.pt
selfsup collect --env ALE/Pong-v5 --steps 20000 --out frames/pong   # an agent's episodes
selfsup pretrain --modality agent --data frames/pong --method stdim
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
    "labels": "labels",
    "label_pattern": "label_pattern",
    "eval_data": "eval.data",
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
        "--data",
        help="digits (default, bundled) | cifar10 (torchvision download) | image folder | "
        "text: a file with one sentence a line, a folder of them, or a .tsv of pairs",
    )
    p.add_argument("--method", help="simclr (default) and the other registered methods")
    p.add_argument("--encoder", help="registered encoder name, or timm/<name>")
    p.add_argument(
        "--modality",
        help="image (default) | text | timeseries | audio: the kind of data (docs/modalities.md)",
    )
    p.add_argument(
        "--labels",
        help="labels of a flat image folder, for evaluation: a CSV of file,label rows",
    )
    p.add_argument(
        "--label-pattern",
        help="labels from the file names: a regular expression whose group is the label, "
        "e.g. '^(\\d+)_' for 7_jackson_32.wav",
    )
    p.add_argument(
        "--eval-data",
        nargs="+",
        help="text: STS pairs and labeled sentence files or folders to evaluate on (e.g. stsb/ "
        "sst2/ trec/); a labeled file alone is split 80/20",
    )
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
        "views on the device) instead of decoding it into memory; images: needs --image-size; "
        "audio: each file's centre data_args.stream_seconds",
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
        "--data",
        help="images: digits | cifar10 | labeled folder; text: STS pairs or labeled sentences "
        "(file or folder). Default: the run's data (text: its --eval-data)",
    )
    p.add_argument("--labels", help="images: a CSV of file,label rows for a flat folder")
    p.add_argument("--label-pattern", help="images: a regular expression whose group is the label")
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
    p.add_argument(
        "--data",
        required=True,
        help="images: digits | cifar10 | image folder; text: a file, one sentence a line",
    )
    p.add_argument("--image-size", type=int)
    p.add_argument(
        "--out",
        required=True,
        help="output .npy (.npy is appended when missing; a folder gets embeddings.npy). Row i "
        "is described by row i of <out>.index.csv (columns split, source (file, or line number "
        "of a text file), label; RFC 4180 "
        "quoting, so any file name round-trips through Python's csv module)",
    )
    p.add_argument("--device", default="auto")


def pretrain_config(args):
    from selfsup.run import run_config

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
    return run_config(args.config, overrides + args.set, modality=args.modality)


def cmd_pretrain(args) -> int:
    from selfsup.run import pretrain

    pretrain(pretrain_config(args))
    return 0


def cmd_evaluate(args) -> int:
    from selfsup.eval.table import format_table
    from selfsup.trained import load

    model = load(args.run)
    options = {
        "knn_k": args.k, "knn_t": args.t, "batch_size": args.batch_size,
        "precision": args.precision, "linear": False if args.no_linear else None,
        "image_size": args.image_size, "labels": args.labels,
        "label_pattern": args.label_pattern, "device": args.device, "name": args.run,
    }  # fmt: skip
    row = model.modality.evaluate_saved(model.encoder, model.run_dir, args.data, options)
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

    from selfsup.engine.loop import resolve_device
    from selfsup.trained import load

    model = load(args.run)
    splits = model.modality.embed(model.encoder, args.data, resolve_device(args.device))
    out, index = embed_paths(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.concatenate([s.features.numpy() for s in splits]))
    with index.open("w", newline="", encoding="utf-8") as fh:  # csv quotes newlines, commas
        w = csv.writer(fh)
        w.writerow(["split", "source", "label"])
        for s in splits:
            w.writerows(zip([s.name] * len(s.sources), s.sources, s.labels, strict=True))
    print(f"wrote {sum(len(s.sources) for s in splits)} embeddings to {out} (rows: {index})")
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
    from selfsup.export import check_export, export_encoder
    from selfsup.trained import load

    model = load(args.run)
    if args.image_size:
        model.modality.size = args.image_size
    encoder = model.encoder.float().cpu().eval()
    example = model.modality.example_input(encoder)
    try:
        path = export_encoder(encoder, args.format, Path(args.out), example=example)
    except ImportError as e:  # onnx / onnxscript missing: say what to install
        print(f"selfsup export: error: {e}", file=sys.stderr)
        return 2
    try:
        err = check_export(encoder, example, path)
        print(f"wrote {path} (max difference from the encoder: {err:.1e})")
    except ImportError:
        print(f"wrote {path} (not checked: onnxruntime is not installed)")
    return 0


def _add_collect(sub) -> None:
    p = sub.add_parser(
        "collect",
        help="run a Gymnasium / ALE environment with a random policy and write its episodes "
        "(frames, actions, rewards, RAM) for --modality agent",
        description="Collect observation sequences: uint8 frames, actions, rewards, episode "
        "ends and the console RAM (the AtariARI state labels), as .npz shards with an "
        "episodes.json manifest. The policy is uniform over the actions except NOOP, as "
        "AtariARI's random agent; ALE's ROMs ship with ale-py, so this works offline.",
    )
    p.add_argument("--env", required=True, help="environment id, e.g. ALE/Pong-v5")
    p.add_argument("--steps", type=int, required=True, help="agent steps to record")
    p.add_argument("--out", required=True, help="new (or empty) folder for the episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--frame-size",
        type=int,
        help="side of square resized frames (84: DQN's); default: full 210 x 160 frames, "
        "the AtariARI protocol's",
    )
    p.add_argument("--colour", action="store_true", help="RGB frames (default: grayscale)")
    p.add_argument("--frame-skip", type=int, default=4, help="frames per agent step (4)")


def cmd_collect(args) -> int:
    from selfsup.data.episodes import collect, read_episodes

    path = collect(args.env, args.steps, args.out, seed=args.seed, frame_size=args.frame_size,
                   colour=args.colour, frame_skip=args.frame_skip)  # fmt: skip
    eps = read_episodes(path.parent)
    ends = int(eps.terminated.sum() + eps.truncated.sum())
    print(f"wrote {len(eps)} steps ({ends} episode ends) of {args.env}, frames "
          f"{tuple(eps.frames.shape[1:])} uint8 -> {path.parent}")  # fmt: skip
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
    _add_collect(sub)
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
        "collect": cmd_collect,
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
