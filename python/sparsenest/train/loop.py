"""Train a nested model on a data set and write its bundle: the `sparsenest train` command's engine."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import models
from ..bundle import Bundle
from . import block_shapes
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


def train_to_bundle(out: str | Path, *, model="lenet5", dataset=None, test_data=None,
                    levels=(0.9, 0.75, 0.5), method: str = "irregular", mode: str = "joint",
                    cfg: TrainConfig | None = None, train_limit: int | None = None,
                    test_limit: int | None = None, force: bool = False, log=print, on_epoch=None) -> Bundle:
    """Train a nested model and save its bundle at `out`.

    model: a zoo name, `path/to/file.py:ClassName`, or any nn.Module (trained in place).
    dataset: a built-in name, an .npz file or image folder (data/user.py), a Dataset, (x, y) arrays or
    tensors, or a DataLoader; test_data: the same kinds for the test split when `dataset` is arrays or a
    loader (default: 20 % of them, held out). Arrays and loaders are registered under their Dataset name
    ("user-data") so compile_bundle(calib=..., evaluate=...) and the report find them in this process.
    on_epoch(epoch, val_accuracies, bundle_now) is called after each joint retraining epoch (nested.
    train_nested) with each level's validation accuracy; bundle_now() builds the Bundle of the model as it is
    then (its masks are final), e.g. to compile and cost the levels while training goes on."""
    from ..bundle import BUNDLE_MARKER, FORMAT
    from ..safe_output import check_output_dir
    out = Path(out)
    if out.exists() and not force:  # fail before spending minutes on training
        raise FileExistsError(f"{out} already exists; choose another -o path or pass --force to replace it")
    check_output_dir(out, marker=BUNDLE_MARKER, fmt=FORMAT, force=force, what="bundle", kind="sparsenest bundle")
    cfg = cfg or TrainConfig()
    if method == "block":
        block_shapes.check_spec(cfg.method_opts.get("block_shape", block_shapes.DEFAULT_BLOCK_SHAPE))
    if dataset is None:
        dataset = models.defaults(model).get("dataset", "mnist") if isinstance(model, str) and model in \
            models.available() else "mnist"
    t0 = time.time()
    train_set, test_set = resolve_data(dataset, test_data)
    dataset = train_set.name
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
    net, model, model_spec = build_model(model, train_set)
    graph = extract_graph(net, train_set.input_shape)  # fail early on an unsupported layer
    recorded_block_shapes(net, method, cfg)  # and on a bad block_shape
    log(f"training {model} on {dataset} ({len(tr_idx)} train / {len(val_idx)} val / {len(test_set)} test), "
        f"levels {list(levels)}, method {method}, mode {mode}")
    bundle_args = dict(model_spec=model_spec, method=method, mode=mode, cfg=cfg, train_set=train_set,
                       test_set=test_set, graph=graph)
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


def build_model(model, train_set) -> tuple[torch.nn.Module, str, dict]:
    """(network, name for messages, the bundle's model spec) of a zoo name, a `file.py:Class` or a module.
    Anything but a zoo model is recorded as "graph": its bundle rebuilds the network from the layer graph."""
    from ..models import user
    shape_args = {"num_classes": train_set.num_classes, "in_channels": train_set.input_shape[0]}
    if isinstance(model, torch.nn.Module):
        name = type(model).__name__
        return model, name, {"name": "graph", "kwargs": {}, "defined_by": f"{type(model).__module__}.{name}"}
    if user.is_user_model(model):
        return user.create(model, **shape_args), model, {"name": "graph", "kwargs": {}, "defined_by": model}
    if model not in models.available():
        from ..suggest import unknown_name
        raise unknown_name("model", model, models.available() + ["path/to/file.py:ClassName"])
    return models.create(model, **shape_args), model, {"name": model, "kwargs": shape_args}


def resolve_data(dataset, test_data=None):
    """(train, test) Datasets of anything train_to_bundle accepts as `dataset` / `test_data`."""
    from .. import data as datasets
    from ..data import user
    if isinstance(dataset, str):
        return datasets.load(dataset, "train"), datasets.load(dataset, "test")

    def as_dataset(d, split):
        if isinstance(d, datasets.Dataset):
            return d
        if isinstance(d, (tuple, list)) and len(d) == 2:
            return user.from_arrays(d[0], d[1], split=split)
        return user.from_loader(d, split=split)
    train = as_dataset(dataset, "train")
    if test_data is None:  # hold out a fixed 20 % of the user's data for testing
        test_idx, train_idx = user.split_indices(len(train))
        test = datasets.Dataset(train.name, "test", train.x[test_idx], train.y[test_idx], train.num_classes,
                                train.sha256, note=train.note + ", 20 % held out for testing")
        train = datasets.Dataset(train.name, "train", train.x[train_idx], train.y[train_idx], train.num_classes,
                                 train.sha256, note=train.note)
    else:
        test = as_dataset(test_data, "test")
    n_classes = max(train.num_classes, test.num_classes)
    train.num_classes = test.num_classes = n_classes
    if train.input_shape != test.input_shape:
        raise ValueError(f"training inputs are {list(train.input_shape)}, test inputs {list(test.input_shape)}")
    user.register(train.name, train, test)
    return train, test


def nested_bundle(net, intro: dict, *, model_spec: dict, method: str, mode: str, cfg: TrainConfig, train_set,
                  test_set, graph: dict, levels: list[dict], train_config: dict) -> Bundle:
    """The Bundle of a nested model `net` (its masks `intro`) trained on train_set, tested on test_set."""
    shapes = recorded_block_shapes(net, method, cfg)
    return Bundle.from_model(
        net, intro, graph=graph, levels=levels,
        prune={"method": method, "mode": mode, "scope": cfg.scope, "method_opts": cfg.method_opts,
               "prune_output_rows": cfg.prune_output_rows} | ({"block_shapes": shapes} if shapes else {}),
        dataset=test_set.identity() | {"train_sha256": train_set.sha256},
        train_config=train_config, model_spec=model_spec)


def recorded_block_shapes(net, method: str, cfg: TrainConfig) -> dict[str, list[int]]:
    """Weight key -> [rows, cols] of every layer's blocks under `block` pruning ({} for other methods):
    what the bundle records so the compiler's `block` format gets the same shapes
    (block_shapes.bundle_format_opts). BlockShapeError on a bad method_opts block_shape."""
    if method != "block":
        return {}
    from .prune import prunable_weights
    shapes = {k: tuple(w.shape) for k, w in prunable_weights(net).items()}
    return {k: list(o["block_shape"]) for k, o in block_shapes.per_layer_opts(shapes, cfg.method_opts).items()}


def level_table(bundle: Bundle) -> str:
    rows = ["level  target  sparsity  float acc", "-----  ------  --------  ---------"]
    for lv in bundle.levels:
        acc = lv.get("float_accuracy")
        rows.append(f"{lv['level']:>5}  {lv['target_sparsity']:6.1%}  {lv['sparsity']:8.2%}  "
                    f"{'' if acc is None else f'{acc:9.2%}'}")
    return "\n".join(rows)
