"""Free Spoken Digit Dataset: digit and speaker accuracy of frozen clip embeddings, on the README
split (speakers in both train and test) and leave-one-speaker-out (the digit in a voice never
heard), for the trained encoder, its random initialization and log-mel statistics.

    python benchmarks/fsdd_table.py --data /tmp/fsdd/fsdd/recordings --steps 300

Pretraining is one `selfsup pretrain --modality audio` run on every clip without labels (BYOL-A
by default, 8 kHz, 1 s crops). Every row is scored the same way: the logistic probe of
selfsup.eval.linear (standardized features, C picked on 10 % of train) on the embedding of each
clip's centre second (log-mel statistics: mean and std of each of the 40 bands over the clip's
frames, the issue's calibration). Leave-one-speaker-out: train on five speakers, test on the
sixth, mean (and range) over the six.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import selfsup
from selfsup.data.audio import fsdd_labels, fsdd_split, load_audio_folder
from selfsup.eval.features import extract_features
from selfsup.eval.linear import linear_probe
from selfsup.modalities.audio import logmel_statistics


def pretrain(args) -> tuple[selfsup.trained.Trained, float]:
    overrides = [f"data={args.data}", f"train.out_dir={args.out}", "train.overwrite=true",
                 f"train.steps={args.steps}", "train.progress=false", "eval.enabled=false",
                 "eval.report=false", "data_args={sample_rate: 8000}", *args.extra]  # fmt: skip
    cfg = selfsup.run_config(None, overrides, "audio")
    t0 = time.perf_counter()
    selfsup.pretrain(cfg, log=print)
    return selfsup.load(args.out), (time.perf_counter() - t0) / 60


def scores(features: torch.Tensor, sources: list[str]) -> dict[str, float]:
    """Digit and speaker accuracy on the README split; digit accuracy leave-one-speaker-out."""
    digits, _ = fsdd_labels(sources, "digit")
    speakers, names = fsdd_labels(sources, "speaker")
    train, test = fsdd_split(sources)
    out = {
        "digit, README split": linear_probe(features[train], digits[train], features[test],
                                            digits[test]),
        "speaker, README split": linear_probe(features[train], speakers[train],
                                              features[test], speakers[test]),
    }  # fmt: skip
    held = []
    for s in range(len(names)):
        tr, te = speakers != s, speakers == s
        held.append(linear_probe(features[tr], digits[tr], features[te], digits[te]))
    out["digit, leave-one-speaker-out"] = sum(held) / len(held)
    out["(per held-out speaker)"] = [round(h, 3) for h in held]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="fsdd/recordings")
    p.add_argument("--out", type=Path, default=Path("runs/fsdd"))
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    model, minutes = pretrain(args)
    clips = load_audio_folder(args.data, 8000)
    modality, view = model.modality, model.modality.eval_transform()
    torch.manual_seed(model.config.train.seed)  # the run's initialization, never trained
    random_init = modality.encoder().eval()
    rows = {
        "log-mel statistics": logmel_statistics(modality.frontend, clips),
        "random init": extract_features(random_init, clips, view, precision="fp32"),
        f"{model.config.method} (trained)": extract_features(model.encoder, clips, view,
                                                             precision="fp32"),
    }  # fmt: skip
    table = {name: scores(f, clips.sources) for name, f in rows.items()}
    table["pretraining minutes"] = minutes
    print(json.dumps(table, indent=1))
    (args.out / "fsdd.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
