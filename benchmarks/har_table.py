"""UCI HAR (6 activities, subject-disjoint split): linear probe of the frozen encoder, trained
without labels, beside the random-init encoder, the raw series and the same encoder trained with
labels (the supervised ceiling).

    python benchmarks/har_table.py --data "/tmp/ts/UCI HAR Dataset" --out runs/har
    python benchmarks/har_table.py --data ... --steps 2000 --supervised-epochs 20

The self-supervised row is one `selfsup pretrain --modality timeseries` run (TS2Vec by default)
on the train subjects' windows without their labels; every row is then scored the same way: the
logistic probe (selfsup.eval.linear, C picked on 10 % of train) on frozen max-pooled features,
train subjects -> test subjects. The supervised row trains the same architecture from the same
initialization with cross-entropy through a linear head (AdamW lr 1e-3, batch 64, no
augmentation), then is probed frozen like the others (its own head's accuracy is printed too).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import selfsup
from selfsup.encoders import create_encoder
from selfsup.eval.features import extract_features
from selfsup.eval.linear import linear_probe


def pretrain(args) -> tuple[dict, float]:
    overrides = [f"data={args.data}", f"train.out_dir={args.out / 'ssl'}", "train.overwrite=true",
                 f"train.steps={args.steps}", "train.progress=false", "eval.svm=false",
                 "eval.report=false", f"encoder={args.encoder}", *args.extra]  # fmt: skip
    cfg = selfsup.run_config(None, overrides, "timeseries")
    t0 = time.perf_counter()
    results = selfsup.pretrain(cfg, log=print)
    return results, (time.perf_counter() - t0) / 60


def supervised(args, train, test) -> tuple[nn.Module, float, float]:
    """The encoder trained with the labels from the random init the run started from."""
    torch.manual_seed(0)  # the run's seed: the same initialization as its random-init row
    encoder = create_encoder(args.encoder, in_chans=train.inputs.shape[1])
    head = nn.Linear(encoder.num_features, train.num_classes)
    model = nn.Sequential(encoder, head)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    model.train()
    for _ in range(args.supervised_epochs):
        for idx in torch.randperm(len(train), generator=g).split(64):
            loss = F.cross_entropy(model(train.inputs[idx]), train.targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    minutes = (time.perf_counter() - t0) / 60
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x) for x in test.inputs.split(512)])
    head_acc = (logits.argmax(1) == test.targets).float().mean().item()
    return encoder, head_acc, minutes


def probe(encoder: nn.Module, train, test) -> float:
    f_train = extract_features(encoder, train, None, precision="fp32")
    f_test = extract_features(encoder, test, None, precision="fp32")
    return linear_probe(f_train, train.targets, f_test, test.targets)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="the 'UCI HAR Dataset' folder")
    p.add_argument("--out", type=Path, default=Path("runs/har"))
    p.add_argument("--encoder", default="ts2vec_encoder")
    p.add_argument("--steps", type=int, default=600, help="TS2Vec's 600 for sets > 100k values")
    p.add_argument("--supervised-epochs", type=int, default=10)
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    results, ssl_minutes = pretrain(args)
    rows = {k: v["linear_top1"] for k, v in results["eval"].items()}
    model = selfsup.load(args.out / "ssl")
    train, test = model.modality.data_splits(None, {})
    encoder, head_acc, sup_minutes = supervised(args, train, test)
    rows["supervised (same encoder, labels)"] = probe(encoder, train, test)
    table = {
        "linear probe": rows,
        "supervised head accuracy": head_acc,
        "minutes": {"self-supervised run (train + eval)": ssl_minutes, "supervised": sup_minutes},
        "steps": results["train"]["steps"],
    }
    print(json.dumps(table, indent=1))
    (args.out / "har.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
