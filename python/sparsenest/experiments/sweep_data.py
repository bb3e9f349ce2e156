"""What a sweep's trials train from: the data set loaded once per worker process, and an optional shared
dense start.

Ray Tune reuses its trial actors, so a process runs many trials; loading MNIST from its files took about
5 s per load on the shared machine and a trial loaded it four times (training, test, calibration and
evaluation slices). Here each (data set, split) is read once per process.

A dense start (`pretrain_dense`) is one dense model trained once before the sweep and saved as plain
arrays (.npz, read back without pickle); trials that name it (`SweepSettings.init`) skip dense training,
prune it one-shot into their levels and only fine-tune: the trial then costs a fraction of a from-scratch
one, which is what lets a search comparison afford 30+ trials per sweep.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=8)
def split(name: str, which: str):
    """The data set's split (a data.Dataset), read once per process."""
    from ..data import load
    return load(name, which)


def training_pool(name: str, val_limit: int | None):
    """The training split handed to train_to_bundle. train.loop holds out 10 % of it for validation (at
    most 5,000 images, which a trial evaluates once per level and epoch); val_limit keeps that to about
    val_limit images by handing over a fixed slice of 10 x val_limit images."""
    ds = split(name, "train")
    return ds if not val_limit else ds.subset(10 * int(val_limit), seed=0)


@lru_cache(maxsize=8)
def calibration(name: str, n: int) -> np.ndarray:
    from ..data.calibration import calibration_inputs
    return calibration_inputs(name, n)


@lru_cache(maxsize=8)
def evaluation(name: str, n: int | None):
    from ..data.calibration import evaluation_set
    return evaluation_set(name, n)


def _net(model: str, dataset: str):
    from .. import models
    ds = split(dataset, "train")
    return models.create(model, num_classes=ds.num_classes, in_channels=ds.input_shape[0])


def pretrain_dense(path: str | Path, *, model: str, dataset: str, epochs: int, train_limit: int | None,
                   lr: float, batch_size: int, seed: int = 0, log=print) -> dict:
    """Train the dense `model` on `dataset` (its first train_limit training images after the validation
    hold-out, as train_to_bundle takes them) and save its parameters as .npz at `path`. Returns
    {"val_accuracy", "train_images"}."""
    import torch
    from ..train.loop import validation_split
    from ..train.nested import TrainConfig, train_nested
    torch.set_num_threads(1)   # as a trial does: two threads on a shared core run far slower
    ds = split(dataset, "train")
    val_idx, tr_idx = validation_split(ds, seed)
    tr_idx = tr_idx[:train_limit] if train_limit else tr_idx
    torch.manual_seed(seed)
    net = _net(model, dataset)
    cfg = TrainConfig(epochs_dense=epochs, epochs_retrain=0, lr=lr, batch_size=batch_size, seed=seed)
    res = train_nested(net, torch.from_numpy(ds.x[tr_idx]), torch.from_numpy(ds.y[tr_idx]), sparsities=[0.0],
                       method="irregular", mode="no-retrain", cfg=cfg, x_val=torch.from_numpy(ds.x[val_idx[:2000]]),
                       y_val=torch.from_numpy(ds.y[val_idx[:2000]]), log=lambda m: None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{k: v.detach().numpy() for k, v in net.state_dict().items()})
    log(f"dense start {path}: {model} on {len(tr_idx)} {dataset} images, {epochs} epoch(s), "
        f"val accuracy {res.dense_accuracy:.4f}")
    return {"val_accuracy": float(res.dense_accuracy), "train_images": int(len(tr_idx))}


def dense_start(path: str | Path, model: str, dataset: str):
    """A fresh `model` network holding the weights pretrain_dense saved at `path`."""
    import torch
    with np.load(path, allow_pickle=False) as z:
        state = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    net = _net(model, dataset)
    net.load_state_dict(state)
    return net
