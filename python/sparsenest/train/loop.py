"""Train a nested model on a data set and write its bundle: the `sparsenest train` command's engine."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import data as datasets
from .. import models
from ..bundle import Bundle
from .graph import extract_graph
from .nested import TrainConfig, evaluate, level_sparsity, train_nested

VAL_FRACTION, VAL_MAX = 0.1, 5000  # held out of training for monitoring; reports use the test split


def validation_split(ds, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(val, train) indices: 10 % of the training split (at most 5,000), whole subjects/speakers when the
    data set has groups, so validation never sees a person the model trained on."""
    rng = np.random.default_rng(seed)
    n_val = min(VAL_MAX, int(VAL_FRACTION * len(ds)))
    if ds.groups is None:
        perm = rng.permutation(len(ds))
        return np.sort(perm[:n_val]), np.sort(perm[n_val:])
    groups, counts = np.unique(ds.groups, return_counts=True)
    sizes = dict(zip(groups, counts))
    chosen, count = [], 0
    for g in rng.permutation(groups):
        if count >= n_val:
            break
        chosen.append(g)
        count += sizes[g]
    is_val = np.isin(ds.groups, chosen)
    return np.flatnonzero(is_val), np.flatnonzero(~is_val)


def train_to_bundle(out: str | Path, *, model: str = "lenet5", dataset: str | None = None,
                    levels=(0.9, 0.75, 0.5), method: str = "irregular", mode: str = "joint",
                    cfg: TrainConfig | None = None, train_limit: int | None = None,
                    test_limit: int | None = None, force: bool = False, log=print, on_epoch=None) -> Bundle:
    """on_epoch(epoch, val_accuracies, bundle_now) is called after each joint retraining epoch (nested.
    train_nested) with each level's validation accuracy; bundle_now() builds the Bundle of the model as it is
    then (its masks are final), e.g. to compile and cost the levels while training goes on."""
    from ..bundle import BUNDLE_MARKER, FORMAT
    from ..safe_output import check_output_dir
    out = Path(out)
    if out.exists() and not force:  # fail before spending minutes on training
        raise FileExistsError(f"{out} already exists; choose another -o path or pass --force to replace it")
    check_output_dir(out, marker=BUNDLE_MARKER, fmt=FORMAT, force=force, what="bundle", kind="sparsenest bundle")
    cfg = cfg or TrainConfig()
    dataset = dataset or models.defaults(model).get("dataset", "mnist")
    t0 = time.time()
    train_set, test_set = datasets.load(dataset, "train"), datasets.load(dataset, "test")
    val_idx, tr_idx = validation_split(train_set, cfg.seed)
    if train_limit:
        tr_idx = tr_idx[:train_limit]
    if test_limit:
        test_set = test_set.subset(test_limit, seed=cfg.seed)
    x_tr, y_tr = torch.from_numpy(train_set.x[tr_idx]), torch.from_numpy(train_set.y[tr_idx])
    x_val, y_val = torch.from_numpy(train_set.x[val_idx]), torch.from_numpy(train_set.y[val_idx])
    x_te, y_te = torch.from_numpy(test_set.x), torch.from_numpy(test_set.y)

    # torch's default seed differs per process: seed the initial weights so a bundle is reproducible
    torch.manual_seed(cfg.seed)
    net = models.create(model, num_classes=train_set.num_classes, in_channels=train_set.input_shape[0])
    graph = extract_graph(net, train_set.input_shape)  # fail early on an unsupported layer
    log(f"training {model} on {dataset} ({len(tr_idx)} train / {len(val_idx)} val / {len(test_set)} test), "
        f"levels {list(levels)}, method {method}, mode {mode}")
    bundle_args = dict(model=model, method=method, mode=mode, cfg=cfg, train_set=train_set, test_set=test_set,
                       graph=graph)
    hook = None
    if on_epoch is not None:
        def hook(epoch, intro, val_acc):
            info = [{"level": lv, "target_sparsity": float(levels[lv - 1]),
                     "sparsity": round(level_sparsity(intro, lv), 6)} for lv in range(1, len(levels) + 1)]
            on_epoch(epoch, val_acc, lambda: nested_bundle(net, intro, levels=info, train_config=cfg.as_dict(),
                                                           **bundle_args))
    res = train_nested(net, x_tr, y_tr, sparsities=levels, method=method, mode=mode, cfg=cfg,
                       x_val=x_val, y_val=y_val, log=log, on_epoch=hook)
    level_info = []
    for lv in range(1, len(levels) + 1):
        acc = evaluate(net, x_te, y_te, res.intro, lv)
        level_info.append({"level": lv, "target_sparsity": float(levels[lv - 1]),
                           "sparsity": round(res.level_sparsity[lv - 1], 6), "float_accuracy": acc})
    elapsed = time.time() - t0
    config = cfg.as_dict() | {"dense_val_accuracy": res.dense_accuracy, "history": res.history,
                              "train_samples": int(len(tr_idx)), "wall_seconds": round(elapsed, 1)}
    bundle = nested_bundle(net, res.intro, levels=level_info, train_config=config, **bundle_args)
    bundle.save(out, overwrite=force)
    return bundle


def nested_bundle(net, intro: dict, *, model: str, method: str, mode: str, cfg: TrainConfig, train_set, test_set,
                  graph: dict, levels: list[dict], train_config: dict) -> Bundle:
    """The Bundle of a nested model `net` (its masks `intro`) trained on train_set, tested on test_set."""
    return Bundle.from_model(
        net, intro, graph=graph, levels=levels,
        prune={"method": method, "mode": mode, "scope": cfg.scope, "method_opts": cfg.method_opts,
               "prune_output_rows": cfg.prune_output_rows},
        dataset=test_set.identity() | {"train_sha256": train_set.sha256},
        train_config=train_config, model_spec={"name": model, "kwargs": {"num_classes": train_set.num_classes,
                                                                         "in_channels": train_set.input_shape[0]}})


def level_table(bundle: Bundle) -> str:
    rows = ["level  target  sparsity  float acc", "-----  ------  --------  ---------"]
    for lv in bundle.levels:
        acc = lv.get("float_accuracy")
        rows.append(f"{lv['level']:>5}  {lv['target_sparsity']:6.1%}  {lv['sparsity']:8.2%}  "
                    f"{'' if acc is None else f'{acc:9.2%}'}")
    return "\n".join(rows)
