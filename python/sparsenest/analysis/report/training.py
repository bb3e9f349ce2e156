"""The training budget a bundle records (train_config and prune sections), and the caveat that goes with
any plot or table putting our model beside published numbers."""
from __future__ import annotations

from typing import Mapping

from .provenance import M

#: What the training budget lists, from the bundle's train_config / prune sections: key -> (label, unit).
BUDGET_FIELDS = {"method": ("pruning method", None), "mode": ("training mode", None), "scope": ("scope", None),
                 "epochs_dense": ("dense epochs", "epochs"), "epochs_retrain": ("retraining epochs", "epochs"),
                 "admm_epochs": ("ADMM epochs", "epochs"), "train_samples": ("training samples", "samples"),
                 "batch_size": ("batch size", "samples"), "wall_seconds": ("training wall time", "s"),
                 "dense_val_accuracy": ("dense float accuracy before pruning (validation split)", "fraction")}


def training_budget(b) -> dict:
    """What the bundle records about its training (None = not recorded: older bundles, imported models)."""
    tc, pr = b.manifest.get("train_config") or {}, b.manifest.get("prune") or {}
    items = {}
    for key, (label, unit) in BUDGET_FIELDS.items():
        v = pr.get(key) if key in ("method", "mode", "scope") else tc.get(key)
        items[key] = {"label": label, "value": v} if unit is None else M(v, unit, "bundle", label=label)
    if tc.get("from_bundle"):    # `train --from`: pruning started from trained weights, no dense epochs run
        items["epochs_dense"] = M(0, "epochs", "bundle",
                                  label=f"dense epochs (started from the trained weights of {tc['from_bundle']})")
    src = b.manifest.get("source") or {}
    recorded = any(tc.get(k) is not None for k in ("epochs_dense", "epochs_retrain", "train_samples"))
    return {"recorded": recorded, "items": items, "imported_from": src.get("format"),
            "caveat": budget_caveat(items, recorded)}


def budget_caveat(items: Mapping, recorded: bool) -> str:
    """One line for a figure or table that puts our model beside published numbers."""
    if not recorded:
        return "our training budget: not recorded in the bundle"
    v = {k: (d.get("value") if isinstance(d, Mapping) else d) for k, d in items.items()}
    epochs = " + ".join(f"{v[k]} {what}" for k, what in (("epochs_dense", "dense"), ("epochs_retrain", "retraining"),
                                                         ("admm_epochs", "ADMM")) if v.get(k))
    samples = f" on {v['train_samples']:,} samples" if v.get("train_samples") else ""
    how = ", ".join(str(v[k]) for k in ("method", "mode") if v.get(k))
    return f"our training budget: {epochs or 'epochs not recorded'} epochs{samples}" + (f" ({how})" if how else "")
