"""The text results table: STS-B, SST-2, TREC, AG News for TF-IDF and encoders trained from scratch.

    python benchmarks/text_table.py --out runs/text-table           # the table in docs/text.md
    python benchmarks/text_table.py --rows tfidf random simcse --simcse-steps 200   # a quick look
    python benchmarks/text_table.py --out runs/text-sif --probe-text --probes SST-2 \
        --probe-c 0.001 0.01 0.1 1 --bag-steps 300 \
        --rows tfidf random:sif4096 captions:sif4096                # the SIF rows (issue #9)

Unlabeled training text, the same for every row (TF-IDF's vocabulary and IDF, the tokenizer,
every encoder, the whitening): the Multi30k and Gutenberg corpora plus every STS-B sentence of
all three splits, without scores (as the TF-IDF baseline of the issue was fit), deduplicated.
Rows (each encoder row names its architecture):
  tfidf        TF-IDF unigrams (selfsup.eval.tfidf), no training
  random:E     encoder E at initialization (dropout off), the floor every method must beat
  mlm:E        BERT masked-token pretraining through selfsup.engine.fit
  simcse:E     unsupervised SimCSE (dropout views, T=0.05) through selfsup.engine.fit
  mlm+simcse:E SimCSE continued from the MLM row's encoder
  captions:E   SimCSE whose positives are two captions of the same image (the line-aligned
               Multi30k task-2 files, 2 pairs per image; in-batch negatives), no labels read
Encoders: tiny, mini (Transformers), bagD (mean of token + position embeddings, no attention),
sifD (a bag of D-dim token embeddings, no positions, SIF-weighted mean pooling: Arora et al.
2017's a / (a + p(w)) with p counted on the training text, as TF-IDF's IDF is).
--probe-text adds every probe-task sentence (SST-2, TREC, AG News; all splits, no labels) to the
unlabeled training text, for TF-IDF and the encoders alike.
Columns: STS-B test Spearman x100 of cosine, raw and after whitening fit on 10,000 training
sentences; logistic-probe accuracy x100 (C = 1 by default: a C grid cost minutes per row here)
on SST-2 (train -> test), TREC (train -> test) and AG News (a stratified 80/20 split of its test
file, seed 0); training minutes (engine wall time).
The machine is shared: minutes are wall time under whatever load there was; step counts are
fixed so that a rerun does the same work.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from functools import partial
from pathlib import Path

import torch

import selfsup.encoders.text_transformer  # noqa: F401  (registers the text encoders)
from selfsup.augment.text_views import MaskedTokenViews, views_by_name
from selfsup.data.memory import InMemoryDataset, stratified_split
from selfsup.data.text import (
    LabeledText,
    aligned_pairs,
    load_benchmark,
    read_corpus,
    text_dataset,
)
from selfsup.data.tokenizer import TextTokenizer, train_tokenizer
from selfsup.encoders.registry import create_encoder
from selfsup.encoders.text_transformer import encode_sentences, sif_weights
from selfsup.engine import TrainConfig, fit
from selfsup.eval.linear import linear_probe
from selfsup.eval.sts import fit_whitening, sts_spearman
from selfsup.eval.tfidf import TfidfBaseline
from selfsup.methods.mlm import MaskedLanguageModel
from selfsup.methods.simcse import SimCSE

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Encoders by short name: registry name + overrides. "bagD" is a registered width with no
# Transformer block: mean-pooled token + position embeddings, a learned bag of words.
ENCODERS = {
    "tiny": ("text_transformer_tiny", {}),
    "mini": ("text_transformer_mini", {}),
    "bag256": ("text_transformer_mini", {"depth": 0}),
    "bag768": ("text_transformer_base", {"depth": 0}),
}
for _d in (768, 2048, 4096):  # SIF-weighted bags of words (no positions, no attention)
    ENCODERS[f"sif{_d}"] = (
        "text_transformer_base",
        {"depth": 0, "dim": _d, "positions": False, "pooling": "weighted"},
    )
CAPTIONS = [f"multi30k-task2-train.{i}.en.gz" for i in range(1, 6)]


def load_tasks(root: Path) -> dict:
    """STS-B splits and the three probe tasks as (train, test) LabeledText pairs."""
    sts = {s: load_benchmark("stsb", s, root) for s in ("train", "dev", "test")}
    ag = load_benchmark("agnews", "test", root)
    ag_ds = InMemoryDataset(torch.arange(len(ag.texts)), ag.labels, ag.classes)
    ag_train, ag_test = stratified_split(ag_ds, 0.2, seed=0)

    def pick(ds: InMemoryDataset) -> LabeledText:
        return LabeledText([ag.texts[i] for i in ds.inputs.tolist()], ds.targets, ag.classes)

    probes = {
        "SST-2": (load_benchmark("sst2", "train", root), load_benchmark("sst2", "test", root)),
        "TREC": (load_benchmark("trec", "train", root), load_benchmark("trec", "test", root)),
        "AG News": (pick(ag_train), pick(ag_test)),
    }
    return {"sts": sts, "probes": probes}


def training_text(root: Path, tasks: dict, probe_text: bool = False) -> list[str]:
    text = read_corpus(root / "text" / "corpus")
    for pairs in tasks["sts"].values():
        text += pairs.sentences()
    if probe_text:  # unlabeled: the sentences only, as TF-IDF's vocabulary and IDF see them
        for train, test in tasks["probes"].values():
            text += train.texts + test.texts
        text += load_benchmark("sst2", "dev", root).texts
    text = list(dict.fromkeys(text))  # deduplicate, keep first occurrences
    random.Random(0).shuffle(text)
    return text


def evaluate(
    embed, tasks: dict, whiten_text: list[str] | None, c_grid: tuple, probes: list[str]
) -> dict:
    """embed: list[str] -> (N, D) features (dense tensor, or sparse for TF-IDF)."""
    test = tasks["sts"]["test"]
    row: dict = {}
    if isinstance(embed, TfidfBaseline):
        row["STS-B raw"] = 100 * embed.sts_spearman(test.first, test.second, test.scores)
        features = embed.transform
    else:
        a, b = embed(test.first), embed(test.second)
        row["STS-B raw"] = 100 * sts_spearman(a, b, test.scores)
        white = fit_whitening(embed(whiten_text))
        row["STS-B whitened"] = 100 * sts_spearman(a, b, test.scores, white)
        features = embed
    for name, (train, task_test) in tasks["probes"].items():
        if name not in probes:
            continue
        acc = linear_probe(
            features(train.texts),
            train.labels,
            features(task_test.texts),
            task_test.labels,
            c_grid=c_grid,
        )
        row[name] = 100 * acc
    return row


def train(method, data: InMemoryDataset, views, args, out: Path, steps: int) -> float:
    """Train through the engine; returns wall minutes."""
    cfg = TrainConfig(
        steps=steps,
        batch_size=args.batch_size,
        optimizer="adamw",
        lr=args.lr,
        weight_decay=0.01,  # BERT's AdamW weight decay
        warmup_steps=max(1, steps // 10),
        precision="bf16",
        channels_last=False,
        out_dir=str(out),
        log_every=max(1, steps // 20),
        checkpoint_every=10**9,  # only the last step
        progress=False,
    )
    return fit(method, data, views, cfg).wall_time / 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding text/")
    p.add_argument("--out", type=Path, default=Path("runs/text-table"))
    p.add_argument(
        "--rows",
        nargs="+",
        default=[
            "tfidf",
            "random:tiny",
            "mlm:tiny",
            "simcse:tiny",
            "mlm+simcse:tiny",
            "random:bag256",
            "simcse:bag256",
        ],
    )
    p.add_argument("--vocab-size", type=int, default=8000)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--temperature", type=float, default=0.05, help="SimCSE's 0.05")
    p.add_argument("--views", nargs=2, default=["identity", "identity"], help="SimCSE views")
    p.add_argument("--mlm-steps", type=int, default=300)
    p.add_argument("--simcse-steps", type=int, default=250)
    p.add_argument("--bag-steps", type=int, default=1000, help="SimCSE steps of bag encoders")
    p.add_argument("--whiten-sentences", type=int, default=10000)
    p.add_argument(
        "--probe-c",
        type=float,
        nargs="+",
        default=[1.0],
        help="logistic-probe C grid (one value: no selection; several: picked on 10%% of train)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--probe-text", action="store_true", help="probe sentences join the text")
    p.add_argument("--probes", nargs="+", default=["SST-2", "TREC", "AG News"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    tasks = load_tasks(args.data)
    text = training_text(args.data, tasks, args.probe_text)
    tok = train_tokenizer(text, args.vocab_size, max_length=args.max_length)
    tok.save(args.out)
    data = text_dataset(text, tok, name="corpus+sts")
    print(f"training text: {len(text)} sentences, vocabulary {tok.vocab_size}", flush=True)

    whiten_text = text[: args.whiten_sentences]
    c_grid = tuple(args.probe_c)
    results: dict = {}
    trained: dict = {}  # row -> (encoder, minutes), so mlm+simcse continues from mlm
    for row in args.rows:
        t0 = time.time()
        if row == "tfidf":
            results[row] = {
                **evaluate(TfidfBaseline().fit(text), tasks, None, c_grid, args.probes),
                "minutes": 0.0,
            }
        else:
            enc, minutes = train_row(row, tok, data, args, trained)
            embed = partial(embed_sentences, enc, tok)
            scores = evaluate(embed, tasks, whiten_text, c_grid, args.probes)
            results[row] = {**scores, "minutes": minutes}
        print(f"{row}: {json.dumps(results[row])} ({time.time() - t0:.0f} s)", flush=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(markdown(results))


def train_row(row: str, tok: TextTokenizer, data, args, trained: dict) -> tuple:
    """(encoder, training minutes) of one row `method:encoder`."""
    method_name, short = row.split(":")
    if method_name == "mlm+simcse":
        mlm_enc, mlm_minutes = trained[f"mlm:{short}"]  # the mlm row must come first
        enc = copy.deepcopy(mlm_enc)
    else:
        name, overrides = ENCODERS[short]
        torch.manual_seed(0)
        enc, mlm_minutes = create_encoder(name, vocab_size=tok.vocab_size, **overrides), 0.0
        if enc.pooling == "weighted":
            enc.set_token_weights(sif_weights(data.inputs, tok.vocab_size, tok.special_ids))
    out = args.out / row.replace(":", "-").replace("+", "-")
    if method_name == "random":
        minutes = 0.0
    elif method_name == "mlm":
        views = MaskedTokenViews(tok.special_ids, tok.vocab_size, tok.mask_id)
        minutes = train(MaskedLanguageModel(enc), data, views, args, out, args.mlm_steps)
    elif method_name in ("simcse", "mlm+simcse"):
        views = views_by_name(args.views, tok.special_ids, tok.vocab_size, tok.mask_id)
        method = SimCSE(enc, args.temperature, pad_id=tok.pad_id)
        minutes = mlm_minutes + train(method, data, views, args, out, simcse_steps(short, args))
    elif method_name == "captions":
        corpus = args.data / "text" / "corpus"
        pairs = text_dataset(aligned_pairs([corpus / f for f in CAPTIONS]), tok, name="captions")
        method = SimCSE(enc, args.temperature, pad_id=tok.pad_id)
        views = views_by_name(["identity"] * 2, tok.special_ids, tok.vocab_size, tok.mask_id)
        minutes = train(method, pairs, views, args, out, simcse_steps(short, args))
    else:
        raise ValueError(
            f"unknown row {row!r}: use tfidf or (random|mlm|simcse|mlm+simcse|captions):E"
        )
    trained[row] = (enc, minutes)
    return enc, minutes


def simcse_steps(short: str, args) -> int:
    return args.bag_steps if short.startswith(("bag", "sif")) else args.simcse_steps


def embed_sentences(enc, tok: TextTokenizer, sentences: list[str]) -> torch.Tensor:
    """(N, D) float32 embeddings; bf16 autocast as in training (2-3x faster on CPU)."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return encode_sentences(enc, tok, sentences)


def markdown(results: dict) -> str:
    cols = ["STS-B raw", "STS-B whitened", "SST-2", "TREC", "AG News", "minutes"]
    lines = ["| row | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for row, r in results.items():
        cells = [f"{r[c]:.1f}" if c in r else "n/a" for c in cols]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
