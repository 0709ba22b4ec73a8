"""AtariARI probes (Anand et al. 2019) of encoders pretrained for a few CPU minutes on
random-policy frames: per game, the mean F1 across categories of ST-DIM / CURL / ATC beside
the random-init encoder and the pixels, next to the paper's Table 2.

    python benchmarks/atari_probe.py --games pong,boxing --collect-steps 20000 --train-steps 1500

Each game is collected once into <out>/<game> (`selfsup collect`, seeded random policy, no
NOOP), then each method is one `selfsup pretrain --modality agent` run on its train episodes
(70 %; val 10 %, test 20 % by episode) with the run's own evaluation: the AtariARI linear probes
(`selfsup.eval.state_probe`). The random-init and pixel rows are the same in every run of a game
(one seed, one split): the first method's run measures them. Frame size: 84 x 84 by default
(the benchmark's are full 210 x 160 frames: --frame-size 0; 7x the encoder cost).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import selfsup
from selfsup.data import atari_ram
from selfsup.data.episodes import MANIFEST, collect

ENV_IDS = {"pong": "ALE/Pong-v5", "boxing": "ALE/Boxing-v5", "breakout": "ALE/Breakout-v5",
           "mspacman": "ALE/MsPacman-v5", "seaquest": "ALE/Seaquest-v5",
           "spaceinvaders": "ALE/SpaceInvaders-v5", "freeway": "ALE/Freeway-v5"}  # fmt: skip


def episodes_of(game: str, args) -> Path:
    folder = args.out / f"{game}-{args.frame_size or 'full'}-{args.collect_steps}"
    if not (folder / MANIFEST).exists():
        t0 = time.perf_counter()
        collect(ENV_IDS[game], args.collect_steps, folder, seed=args.seed,
                frame_size=args.frame_size or None)  # fmt: skip
        print(f"{game}: collected {args.collect_steps} steps in {time.perf_counter() - t0:.0f} s")
    return folder


def pretrain(game: str, method: str, data: Path, args, extra: list[str]) -> tuple[dict, float]:
    run = args.out / f"run-{game}-{method}"
    overrides = [f"data={data}", f"method={method}", f"train.out_dir={run}", "train.overwrite=true",
                 f"train.steps={args.train_steps}", "train.progress=false",
                 f"train.seed={args.seed}", *args.extra, *extra]  # fmt: skip
    cfg = selfsup.run_config(None, overrides, "agent")
    t0 = time.perf_counter()
    results = selfsup.pretrain(cfg, log=lambda *a, **k: None)
    return results, (time.perf_counter() - t0) / 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--games", default="pong,boxing,breakout")
    p.add_argument("--methods", default="stdim,curl,atc")
    p.add_argument("--collect-steps", type=int, default=20000)
    p.add_argument("--train-steps", type=int, default=1500)
    p.add_argument("--frame-size", type=int, default=84, help="0: full 210 x 160 frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/atari_probe"))
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, CPU; frames "
          f"{args.frame_size or '210x160'} grayscale, 1 frame per observation; "
          f"{args.collect_steps} random-policy steps per game, {args.train_steps} training "
          "steps of batch 64")  # fmt: skip
    table: dict[str, dict[str, float]] = {}
    for game in args.games.split(","):
        data = episodes_of(game, args)
        for i, method in enumerate(args.methods.split(",")):
            # The random-init and pixel rows are the same for every method: measured once.
            baselines = [] if i == 0 else ["eval.baselines=false"]
            results, minutes = pretrain(game, method, data, args, baselines)
            rows = results.get("eval", {})
            for name, row in rows.items():
                key = name if name in ("pixels", "random init") else method
                table.setdefault(game, {})[key] = row["f1"]
                table[game][f"{key} (std)"] = row["f1_standardized"]
            table[game][f"{method} minutes"] = minutes
            shown = {k: [round(v["f1"], 3), round(v["f1_standardized"], 3)]
                     for k, v in rows.items()}  # fmt: skip
            print(f"{game} {method}: {json.dumps(shown)} (F1 raw, standardized; {minutes:.1f} min)")
    methods = args.methods.split(",")
    head = ["game", "pixels", "random init", *methods, "paper random-CNN", "paper CPC",
            "paper ST-DIM"]  # fmt: skip
    print("\nmean F1 across categories (AtariARI), test episodes; in brackets: standardized")
    print(" | ".join(head))
    for game, row in table.items():
        paper = atari_ram.PUBLISHED_F1.get(game, {})
        ours = ["pixels", "random init", *methods]
        shown = [f"{row[k]:.3f} ({row[k + ' (std)']:.3f})" if k in row else "-" for k in ours]
        shown += [f"{paper[k]:.2f}" if k in paper else "-" for k in ("random_cnn", "cpc", "st_dim")]
        mins = ", ".join(f"{m} {row.get(f'{m} minutes', 0):.1f} min" for m in methods)
        print(" | ".join([game, *shown]) + f"   ({mins})")


if __name__ == "__main__":
    main()
