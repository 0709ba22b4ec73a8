"""Text: sentence corpora -> a tokenizer trained on them -> token ids (N, L) long.

Training data: one sentence a line (a file, a folder of .txt/.gz, plain or gzip), or a `.tsv` of
`sentence<TAB>positive[<TAB>hard negative]` rows (supervised SimCSE: the pair is the view).
Evaluation (`eval.data`, `--eval-data`; `selfsup.data.text_tasks`): STS-B-style scored pairs
(Spearman x100 of cosine, raw and whitened) and labeled sentences (logistic probe), each beside
TF-IDF (Salton & Buckley 1988; fit on the same unlabeled text) and the random-init encoder under
the same post-processing. `data_args` holds the tokenizer settings (`TextDataArgs`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.augment import text_views
from selfsup.config import ConfigError, RunConfig
from selfsup.data.memory import InMemoryDataset
from selfsup.data.text import read_corpus, read_pairs, text_dataset, text_lines
from selfsup.data.text_tasks import ProbeTask, StsTask, read_text_tasks
from selfsup.data.tokenizer import TextTokenizer, load_tokenizer, train_tokenizer
from selfsup.encoders import create_encoder
from selfsup.encoders.text_transformer import encode_sentences, sif_weights
from selfsup.engine.loop import resolve_device
from selfsup.eval.linear import C_GRID, HOLDOUT, linear_probe
from selfsup.eval.protocol import check_finite
from selfsup.eval.sts import cosine_scores, fit_whitening, sts_spearman
from selfsup.eval.table import format_table
from selfsup.eval.tfidf import TfidfBaseline
from selfsup.modalities.base import Embedded, Log, Views

# Sentences the whitening is fit on (Su et al. 2021 fit on the task's own sentences; here a
# seeded sample of the unlabeled training text, never the test pairs).
WHITEN_SENTENCES = 10_000
REPORT_EMBED, REPORT_QUERIES, REPORT_POOL, REPORT_K = 2000, 8, 5000, 5


@dataclass
class TextDataArgs:
    """`data_args` of a text run: the tokenizer (trained on the run's text unless `tokenizer`
    names a tokenizer.json or a folder holding one)."""

    tokenizer: str = ""
    vocab_size: int = 8000  # WordPiece; docs/text.md measured 8k on the 144k-sentence corpus
    tokenizer_kind: str = "wordpiece"  # or "bpe" (GPT-2 / RoBERTa's byte-level BPE)
    max_length: int = 64  # tokens per sentence, [CLS] and [SEP] included


def _data_args(raw: dict) -> TextDataArgs:
    valid = [f.name for f in dataclasses.fields(TextDataArgs)]
    for key in raw:
        if key not in valid:
            raise ConfigError(f"data_args: unknown key {key!r} for text. Valid: {', '.join(valid)}")
    return TextDataArgs(**raw)


class TextModality:
    """Sentences (module docstring)."""

    name: ClassVar[str] = "text"
    # SimCSE (Gao et al. 2021) on a small Transformer trained with AdamW, BERT's weight decay
    # 0.01 (Devlin et al. 2019), lr 1e-3 with 10 % warmup, batch 128, as the text benchmark
    # measured (docs/text.md).
    defaults: ClassVar[dict] = {
        "modality": "text",
        "method": "simcse",
        "encoder": "text_transformer_mini",
        "train": {
            "optimizer": "adamw",
            "lr": 1e-3,
            "weight_decay": 0.01,
            "batch_size": 128,
            "epochs": 1.0,
            "warmup_epochs": 0.1,
            "channels_last": False,
        },
    }

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg, self.args = cfg, _data_args(cfg.data_args)
        self.tokenizer: TextTokenizer | None = None
        self.train: InMemoryDataset | None = None
        self.sentences: list[str] = []  # the unlabeled text: TF-IDF's vocabulary, whitening
        self.tasks: list[StsTask | ProbeTask] = []
        self.features: dict = {}  # tag -> {"sts": (a, b), "probe": (train, test)}

    # ----- the run
    def load(self, log: Log) -> None:
        cfg = self.cfg
        self._refuse_image_settings()
        columns = read_pairs(cfg.data) if cfg.data.endswith(".tsv") else None
        text = [s for col in columns for s in col] if columns else read_corpus(cfg.data)
        self.sentences = list(dict.fromkeys(text))
        a = self.args
        if a.tokenizer:
            self.tokenizer = load_tokenizer(a.tokenizer, a.max_length)
        else:
            self.tokenizer = train_tokenizer(
                self.sentences, a.vocab_size, a.tokenizer_kind, max_length=a.max_length
            )
        self.train = text_dataset(columns or text, self.tokenizer, name=cfg.data)
        if cfg.eval.enabled or cfg.eval.report:
            self.tasks = read_text_tasks(cfg.eval.data)
        tasks = ", ".join(t.name for t in self.tasks) or "none (give --eval-data)"
        log(
            f"data: {cfg.data}: {len(self.train)} rows, vocabulary {self.tokenizer.vocab_size}; "
            f"evaluation: {tasks}"
        )

    def _refuse_image_settings(self) -> None:
        cfg = self.cfg
        if cfg.data in ("digits", "cifar10"):
            raise ConfigError(
                f"--modality text needs --data: a text file with one sentence a line, a folder "
                f"of .txt / .gz files, or a .tsv of sentence pairs (got {cfg.data!r}, an image "
                "set)."
            )
        for key in ("labels", "label_pattern", "image_size", "stream"):
            if getattr(cfg, key):
                raise ConfigError(
                    f"{key} is an image setting; a text run reads labels from the labeled "
                    "files of --eval-data (SST-2 / TREC style, or label<TAB>sentence)."
                )

    def encoder(self) -> nn.Module:
        tok = self.tokenizer
        kwargs = {"vocab_size": tok.vocab_size, "pad_id": tok.pad_id, **self.cfg.encoder_args}
        encoder = create_encoder(self.cfg.encoder, **kwargs)
        if getattr(encoder, "pooling", None) == "weighted":  # SIF weights from this very text
            ids = self.train.inputs.flatten(0, -2)
            encoder.set_token_weights(sif_weights(ids, tok.vocab_size, tok.special_ids))
        return encoder

    def views(self, recipe: str) -> Views:
        """A text recipe (`text_views.RECIPES`) or view names, e.g. "deletion,crop"."""
        if recipe in text_views.RECIPES:
            return text_views.RECIPES[recipe](self.tokenizer)
        names = [n.strip() for n in recipe.split(",")]
        if len(names) >= 2 and all(n in text_views.VIEWS or n == "masking" for n in names):
            tok = self.tokenizer
            return text_views.views_by_name(names, tok.special_ids, tok.vocab_size, tok.mask_id)
        known = ", ".join(text_views.RECIPES)
        raise ConfigError(
            f"views {recipe!r} have no text version. Text recipes: {known}, or view names "
            f"joined by commas from {', '.join([*text_views.VIEWS, 'masking'])} "
            "(--set views=deletion,crop); text methods: simcse, mlm."
        )

    def training(self, views: Views) -> tuple[Any, Views]:
        if self.train.inputs.dim() == 3 and isinstance(views, text_views.MaskedTokenViews):
            raise ConfigError(
                f"{self.cfg.data}: a .tsv of sentence pairs trains a pair method (simcse); "
                "masked-token pretraining reads one sentence a line (a .txt file)."
            )
        return self.train, views

    def callbacks(self, steps: int) -> list:
        return []

    def run_files(self) -> dict[str, str | bytes]:
        return {"tokenizer.json": self.tokenizer.to_json()}

    def _embedder(self, encoder: nn.Module) -> Callable[[list[str]], torch.Tensor]:
        """sentences -> (N, D) float32 features of `encoder` in eval mode, checked finite."""
        encoder.to(resolve_device(self.cfg.train.device))
        batch, length = self.cfg.eval.batch_size, self.args.max_length

        def embed(sentences: list[str]) -> torch.Tensor:
            f = encode_sentences(encoder, self.tokenizer, sentences, batch, length)
            return check_finite(f, "encoder", "sentences")

        return embed

    def _whitening_text(self) -> list[str]:
        text = list(self.sentences)
        random.Random(self.cfg.train.seed).shuffle(text)
        return text[:WHITEN_SENTENCES]

    def _row(self, embed, tag: str) -> dict[str, float]:
        """One encoder's cells: STS raw and whitened, probe accuracy; features kept by tag."""
        row: dict[str, float] = {}
        kept: dict = self.features.setdefault(tag, {})
        white = None
        for task in self.tasks:
            if isinstance(task, StsTask):
                p = task.pairs
                a, b = embed(p.first), embed(p.second)
                kept.setdefault("sts", (a, b))
                row[f"{task.name} raw"] = sts_spearman(a, b, p.scores)
                if white is None and self.sentences:
                    white = fit_whitening(embed(self._whitening_text()))
                if white is not None:
                    row[f"{task.name} whitened"] = sts_spearman(a, b, p.scores, white)
            else:
                f_train, f_test = embed(task.train.texts), embed(task.test.texts)
                kept.setdefault("probe", (f_train, f_test))
                row[task.name] = self._probe(f_train, task.train.labels, f_test, task.test.labels)
        return row

    def _probe(self, train_x, train_y, test_x, test_y) -> float:
        seed = self.cfg.train.seed
        return linear_probe(train_x, train_y, test_x, test_y, C_GRID, HOLDOUT, seed)

    def _tfidf_row(self) -> dict[str, float]:
        tfidf = TfidfBaseline().fit(self.sentences)
        row: dict[str, float] = {}
        for task in self.tasks:
            if isinstance(task, StsTask):
                p = task.pairs
                row[f"{task.name} raw"] = tfidf.sts_spearman(p.first, p.second, p.scores)
            else:
                train, test = task.train, task.test
                row[task.name] = self._probe(
                    tfidf.transform(train.texts),
                    train.labels,
                    tfidf.transform(test.texts),
                    test.labels,
                )
        return row

    def evaluate(self, encoder: nn.Module, random_encoder: nn.Module | None, log: Log) -> dict:
        if not self.tasks:
            log(
                "evaluation skipped: no evaluation sets; give STS pairs or labeled sentences "
                "with --eval-data (e.g. --eval-data stsb/ sst2/)"
            )
            return {}
        rows: dict[str, dict[str, float]] = {}
        if self.cfg.eval.baselines:
            rows["TF-IDF"] = self._tfidf_row()
            if random_encoder is not None:
                rows["random init"] = self._row(self._embedder(random_encoder), "before")
        rows[f"{self.cfg.method} (trained)"] = self._row(self._embedder(encoder), "after")
        log(format_table(rows))
        protocol = {
            "sts": "Spearman of cosine vs gold score; whitened: Su et al. 2021",
            "whitening_sentences": min(WHITEN_SENTENCES, len(self.sentences)),
            "probe": "logistic regression, C picked on a held-out share of train",
            "c_grid": list(C_GRID),
            "holdout": HOLDOUT,
            "seed": self.cfg.train.seed,
        }
        return {"eval_protocol": protocol, "eval": rows}

    def report_sections(self, method: nn.Module) -> list[str]:
        return ["curves", "health", "sts", "neighbours", "embedding-map"]

    def report_data(
        self, encoder: nn.Module, random_encoder: nn.Module | None, method: nn.Module, views: Views
    ) -> dict[str, np.ndarray]:
        """STS scatter (predicted vs gold), nearest-neighbour sentences and the t-SNE map of a
        labeled test set, from the features the evaluation extracted (else extracted here)."""
        if not self.features.get("after"):
            self._row(self._embedder(encoder), "after")
            if random_encoder is not None:
                self._row(self._embedder(random_encoder), "before")
        data: dict[str, np.ndarray] = {}
        sts = next((t for t in self.tasks if isinstance(t, StsTask)), None)
        probe = next((t for t in self.tasks if isinstance(t, ProbeTask)), None)
        for tag, suffix in (("after", ""), ("before", "_before")):
            if sts is not None and "sts" in self.features.get(tag, {}):
                data[f"sts_pred{suffix}"] = cosine_scores(*self.features[tag]["sts"]).numpy()
        if sts is not None:
            data["sts_gold"], data["sts_name"] = sts.pairs.scores.numpy(), np.array(sts.name)
        if probe is not None:
            data |= self._map_data(probe)
        return data | self._neighbours(encoder, probe)

    def _map_data(self, probe: ProbeTask) -> dict[str, np.ndarray]:
        g = torch.Generator().manual_seed(self.cfg.train.seed)
        rows = torch.randperm(len(probe.test.texts), generator=g)[:REPORT_EMBED].sort().values
        data = {
            "emb_labels": probe.test.labels[rows].numpy(),
            "classes": np.array(probe.test.classes),
        }
        for tag in ("after", "before"):
            if "probe" in self.features.get(tag, {}):
                f = self.features[tag]["probe"][1][rows]
                data[f"emb_{tag}"] = f.numpy().astype(np.float16)
        return data

    def _neighbours(self, encoder: nn.Module, probe: ProbeTask | None) -> dict[str, np.ndarray]:
        """A few test sentences and their nearest training sentences by cosine."""
        rng = random.Random(self.cfg.train.seed)
        if probe is not None:
            queries = rng.sample(
                range(len(probe.test.texts)), min(REPORT_QUERIES, len(probe.test.texts))
            )
            pool = rng.sample(
                range(len(probe.train.texts)), min(REPORT_POOL, len(probe.train.texts))
            )
            q_text = [probe.test.texts[i] for i in queries]
            p_text = [probe.train.texts[i] for i in pool]
            names = probe.train.classes
            q_label = [names[int(probe.test.labels[i])] for i in queries]
            p_label = [names[int(probe.train.labels[i])] for i in pool]
        else:
            sample = rng.sample(
                self.sentences, min(REPORT_POOL + REPORT_QUERIES, len(self.sentences))
            )
            q_text, p_text, q_label, p_label = (
                sample[:REPORT_QUERIES],
                sample[REPORT_QUERIES:],
                None,
                None,
            )
        if not q_text or not p_text:
            return {}
        kept = self.features.get("after", {}).get("probe")
        if probe is not None and kept is not None:  # the evaluation embedded them already
            q, p = kept[1][queries], kept[0][pool]
        else:
            embed = self._embedder(encoder)
            q, p = embed(q_text), embed(p_text)
        q, p = F.normalize(q, dim=1), F.normalize(p, dim=1)
        cos, idx = (q @ p.T).topk(min(REPORT_K, len(p_text)), dim=1)
        data = {
            "nn_query_text": np.array(q_text),
            "nn_neighbor_text": np.array([[p_text[j] for j in row] for row in idx.tolist()]),
            "nn_neighbor_cos": cos.numpy(),
        }
        if q_label is not None:
            data["nn_query_label"] = np.array(q_label)
            data["nn_neighbor_label"] = np.array([[p_label[j] for j in r] for r in idx.tolist()])
        return data

    def skipped(self) -> list[str]:
        return []

    # ----- after the run
    def attach(self, run_dir: Path) -> None:
        path = Path(run_dir) / "tokenizer.json"
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: missing; a text run folder holds its tokenizer beside the encoder "
                "(rerun `selfsup pretrain --modality text`, or copy tokenizer.json back)."
            )
        self.tokenizer = load_tokenizer(path, self.args.max_length)

    def preprocess(self, raw: list[str]) -> torch.Tensor:
        """Sentences -> ids (N, L) long, as the run tokenized its training text."""
        if isinstance(raw, str) or not all(isinstance(s, str) for s in raw):
            raise ValueError("encode sentences as a list of strings, e.g. ['a man plays']")
        return self.tokenizer.encode(list(raw), self.args.max_length)

    def evaluate_saved(
        self, encoder: nn.Module, run_dir: Path, data: str | None, options: dict
    ) -> dict[str, float]:
        """The trained row of the run's table on `data` (STS pairs or labeled sentences;
        default: the run's eval.data), whitening fit on the run's training text when readable."""
        self.tasks = read_text_tasks([data] if data else self.cfg.eval.data)
        if not self.tasks:
            raise ValueError("no evaluation data: pass --data with STS pairs or labeled sentences")
        if Path(self.cfg.data).exists():
            self.sentences = list(dict.fromkeys(read_corpus(self.cfg.data)))
        if options.get("device"):
            self.cfg.train.device = options["device"]
        return self._row(self._embedder(encoder), "after")

    def embed(self, encoder: nn.Module, data: str, device: torch.device) -> list[Embedded]:
        """A text file, one sentence a line (blank lines skipped; sources are line numbers)."""
        path = Path(data)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: give a text file with one sentence a line")
        numbered = [(n, s.strip()) for n, s in enumerate(text_lines(path), 1) if s.strip()]
        if not numbered:
            raise ValueError(f"{path}: no sentences (one sentence a line)")
        self.cfg.train.device = str(device)
        f = self._embedder(encoder)([s for _, s in numbered])
        return [Embedded(path.name, f, [str(n) for n, _ in numbered], [""] * len(numbered))]

    def example_input(self, encoder: nn.Module) -> torch.Tensor:
        ids = self.preprocess(["an example sentence", "another one"])
        return ids.to(next(encoder.parameters()).device)
