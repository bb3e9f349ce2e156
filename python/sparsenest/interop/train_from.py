"""`sparsenest train --from NAME.nest`: nested levels of an existing (e.g. imported) bundle's network.

The network is rebuilt from the bundle's graph (interop.torch_net.GraphNet), pruned into nested levels
with any method and mode, and fine-tuned on the data set's train split where one is given (`joint`,
`progressive`, `gradual-kd`: train/gradual.py); `no-retrain` only derives the masks, so it needs no
training data. Every level and the source (dense) network are evaluated on the same test split.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..bundle import Bundle
from ..train.nested import TrainConfig, evaluate, train_nested
from .torch_net import GraphNet


def train_from_bundle(src: str | Path, out: str | Path, *, dataset: str | None = None,
                      levels=(0.7, 0.5, 0.3), method: str = "irregular", mode: str = "joint",
                      cfg: TrainConfig | None = None, gradual=None, train_limit: int | None = None, force: bool = False,
                      log=print) -> Bundle:
    from .. import data as datasets
    from ..train.loop import validation_split
    out = Path(out)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; choose another -o path or pass --force to replace it")
    cfg = cfg or TrainConfig()
    source = Bundle.load(src)
    dataset = dataset or source.dataset.get("name")
    if not dataset:
        raise ValueError(f"{src} records no data set; pass --dataset NAME (the data the model expects)")
    if mode != "no-retrain" and cfg.epochs_retrain <= 0:
        raise ValueError(f"mode {mode} fine-tunes: --epochs-retrain must be > 0 (or use --mode no-retrain)")
    t0 = time.time()
    train_set, test_set = datasets.load(dataset, "train"), datasets.load(dataset, "test")
    if list(train_set.input_shape) != list(source.graph["input"]["shape"]):
        raise ValueError(f"{dataset} inputs are {list(train_set.input_shape)}, the model of {src} expects "
                         f"{source.graph['input']['shape']}")
    val_idx, tr_idx = validation_split(train_set, cfg.seed)
    if train_limit:
        tr_idx = tr_idx[:train_limit]
    x_tr, y_tr = torch.from_numpy(train_set.x[tr_idx]), torch.from_numpy(train_set.y[tr_idx])
    x_val, y_val = torch.from_numpy(train_set.x[val_idx]), torch.from_numpy(train_set.y[val_idx])
    x_te, y_te = torch.from_numpy(test_set.x), torch.from_numpy(test_set.y)

    torch.manual_seed(cfg.seed)
    net = GraphNet(source.graph, source.weights)
    dense_test = evaluate(net, x_te, y_te)
    log(f"{src}: dense test accuracy {dense_test:.4f} on {len(y_te)} {dataset} test samples; pruning to "
        f"{list(levels)} ({method}, {mode}) on {len(tr_idx)} train / {len(val_idx)} val samples")
    if mode == "gradual-kd":  # gradual nested pruning, distilled from the source network
        from ..train.gradual import GradualConfig, sensitive_layers, train_gradual
        if method != "irregular":
            raise ValueError(f"mode gradual-kd prunes irregularly; --method {method} is not supported with it")
        gcfg = gradual or GradualConfig(epochs=cfg.epochs_retrain, seed=cfg.seed,
                                        dense_scale=sensitive_layers(source.graph))
        allowed = {k: torch.from_numpy(np.asarray(v) >= 1) for k, v in source.intro.items()}
        res = train_gradual(net, GraphNet(source.graph, source.weights), x_tr, y_tr, sparsities=levels, cfg=gcfg,
                            x_val=x_val, y_val=y_val, allowed=allowed, log=log)
        cfg = replace(cfg, epochs_retrain=gcfg.epochs, lr_retrain=gcfg.lr, scope="per-layer")
        extra = {"gradual": gcfg.as_dict()}
    else:
        res = train_nested(net, x_tr, y_tr, sparsities=levels, method=method, mode=mode, cfg=cfg,
                           x_val=x_val, y_val=y_val, pretrained=True, log=log)
        extra = {}
    level_info = []
    for lv in range(1, len(levels) + 1):
        level_info.append({"level": lv, "target_sparsity": float(levels[lv - 1]),
                           "sparsity": round(res.level_sparsity[lv - 1], 6),
                           "float_accuracy": evaluate(net, x_te, y_te, res.intro, lv)})
    config = cfg.as_dict() | extra | {"from_bundle": str(src), "dense_test_accuracy": dense_test,
                              "history": res.history, "train_samples": int(len(tr_idx)),
                              "wall_seconds": round(time.time() - t0, 1)}
    b = Bundle.from_model(net, res.intro, graph=source.graph, levels=level_info,
                          prune={"method": method, "mode": mode, "scope": cfg.scope,
                                 "method_opts": cfg.method_opts},
                          dataset=test_set.identity() | {"train_sha256": train_set.sha256},
                          train_config=config, model_spec={"name": "graph", "kwargs": {}})
    if "source" in source.manifest:
        b.manifest["source"] = source.manifest["source"]
    b.save(out, overwrite=force)
    return b
