"""The time-series table: TS2Vec protocol accuracy on UCR / UEA sets, ours beside the published one.

    python benchmarks/ucr_table.py --data /tmp/ts --out runs/ucr-table      # every set below
    python benchmarks/ucr_table.py --data /tmp/ts --sets ECG200 GunPoint    # a few

`--data` is where ../shared/data/timeseries.tar.gz was unpacked (it holds UCR/ and UEA/). Each set
is one `selfsup pretrain --modality timeseries` run through the one run path (TS2Vec: the dilated
convolutional encoder, crops with contextual consistency, the hierarchical loss; batch 8, AdamW
lr 1e-3, 200 iterations, or 600 when the train split holds more than 100,000 values, as TS2Vec's
train.py), trained on the train split only, evaluated with the RBF SVM of the TS2Vec protocol.
Columns: ours (trained), the random-init encoder and the raw series under the same SVM, TS2Vec's
published accuracy (timeseries-anchors.csv), training minutes and evaluation minutes (the SVM's
5-fold C search dominates on the larger sets). Machine and load are printed with the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import selfsup
from selfsup.modalities import create_modality

ANCHORS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "timeseries-anchors.csv"
SETS = [
    "ECG200", "GunPoint", "ItalyPowerDemand", "ArrowHead", "ECG5000", "OSULeaf", "ACSF1",
    "PickupGestureWiimoteZ", "PLAID", "FordA", "ElectricDevices", "Crop", "BasicMotions",
    "JapaneseVowels",
]  # fmt: skip


def anchors() -> dict[str, dict[str, str]]:
    with ANCHORS.open() as f:
        return {row["dataset"]: row for row in csv.DictReader(f)}


def folder(root: Path, name: str, archive: str) -> Path:
    return root / archive / name


def run_set(root: Path, name: str, archive: str, out: Path, seed: int, extra: list[str]) -> dict:
    """One pretraining run on `name`; its table row."""
    data = folder(root, name, archive)
    overrides = [
        f"data={data}",
        f"train.out_dir={out / name}",
        "train.overwrite=true",
        f"train.seed={seed}",
        "train.progress=false",
        "eval.report=false",
        *extra,
    ]
    cfg = selfsup.run_config(None, overrides, "timeseries")
    probe = create_modality(cfg)
    probe.load(lambda *a: None)
    values = probe.train.inputs[~probe.train.inputs.isnan()].numel()
    if values > 100_000 and not any(o.startswith("train.steps") for o in extra):
        cfg.train.steps = 600  # TS2Vec's rule for larger sets
    t0 = time.perf_counter()
    results = selfsup.pretrain(cfg, log=lambda *a: None)
    total = (time.perf_counter() - t0) / 60
    rows, train_min = results["eval"], results["train"]["seconds"] / 60
    trained = next(v for k, v in rows.items() if k.endswith("(trained)"))
    return {
        "ours": trained["svm_acc"],
        "random init": rows.get("random init", {}).get("svm_acc"),
        "raw series": rows.get("raw series", {}).get("svm_acc"),
        "train min": train_min,
        "eval min": total - train_min,
        "steps": results["train"]["steps"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder holding UCR/ and UEA/")
    p.add_argument("--out", type=Path, default=Path("runs/ucr-table"))
    p.add_argument("--sets", nargs="+", default=SETS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="config overrides for every run, e.g. --set encoder=gru")  # fmt: skip
    args = p.parse_args()
    published = anchors()
    table = {}
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}", flush=True)
    for name in args.sets:
        archive = published.get(name, {}).get("archive", "UCR")
        row = run_set(args.data, name, archive, args.out, args.seed, args.extra)
        row["TS2Vec (paper)"] = float(published[name]["ts2vec"]) if name in published else None
        table[name] = row
        print(name, json.dumps(row), flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.json").write_text(json.dumps(table, indent=1))
    print(markdown(table))


def markdown(table: dict) -> str:
    cols = ["ours", "TS2Vec (paper)", "raw series", "random init", "train min", "eval min"]
    lines = ["| set | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in table.items():
        cells = []
        for c in cols:
            v = row.get(c)
            cells.append("-" if v is None else f"{v:.1f}" if "min" in c else f"{v:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
