"""`make bench-train`: nested LeNet-5 on MNIST in every training mode, against a dense baseline.

Each run is a fresh subprocess so its wall time and peak memory (ru_maxrss) are its own. Accuracies are
on the full 10k MNIST test set. Prints a table and writes build/bench/train.json.

    sparsenest bench train [--quick] [--modes joint,progressive] [--levels ...]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ...seed import seed_rows

_LENET5 = seed_rows()["lenet5"]   # the seed report's LeNet-5 levels (experiments/seed_table2.toml)
SEED_TABLE2 = {"levels": list(_LENET5.sparsity), "accuracy": list(_LENET5.accuracy)}


def _one_run(args: argparse.Namespace) -> None:
    """Child process: train one configuration, print one JSON line."""
    import numpy as np
    import torch

    from sparsenest import data, models
    from sparsenest.train.nested import TrainConfig, evaluate, train_nested

    torch.manual_seed(0)
    tr, te = data.load("mnist", "train"), data.load("mnist", "test")
    n = args.train_limit or len(tr)
    perm = np.random.default_rng(0).permutation(len(tr))[:n]
    x, y = torch.from_numpy(tr.x[perm]), torch.from_numpy(tr.y[perm])
    xt, yt = torch.from_numpy(te.x), torch.from_numpy(te.y)
    cfg = TrainConfig(epochs_dense=args.epochs_dense, epochs_retrain=args.epochs_retrain, scope=args.scope)
    net = models.create("lenet5")
    t0 = time.time()
    if args.mode == "dense":
        train_nested(net, x, y, sparsities=[0.0], mode="no-retrain", cfg=cfg, log=lambda s: None)
        result = {"levels": [{"sparsity": 0.0, "accuracy": evaluate(net, xt, yt)}]}
    else:
        levels = [float(v) for v in args.levels.split(",")]
        r = train_nested(net, x, y, sparsities=levels, mode=args.mode, cfg=cfg, log=lambda s: None)
        result = {"levels": [{"target": s, "sparsity": r.level_sparsity[i],
                              "accuracy": evaluate(net, xt, yt, r.intro, i + 1)}
                             for i, s in enumerate(levels)]}
    result |= {"mode": args.mode, "wall_s": time.time() - t0,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print("RESULT " + json.dumps(result), flush=True)


def _spawn(mode: str, levels: str, a: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "sparsenest.experiments.bench.train", "--child", "--mode", mode, "--levels", levels,
           "--epochs-dense", str(a.epochs_dense), "--epochs-retrain", str(a.epochs_retrain),
           "--scope", a.scope] + (["--train-limit", str(a.train_limit)] if a.train_limit else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"benchmark run {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def add_arguments(p) -> None:
    from ... import cli_args as arg
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="joint", help=argparse.SUPPRESS)  # the child's one mode
    p.add_argument("--modes", default="no-retrain,progressive,joint", help="training modes to compare")
    p.add_argument("--levels", default="0.9,0.75,0.5", help="level sparsities")
    p.add_argument("--epochs-dense", type=int, default=6, help="epochs of dense training")
    p.add_argument("--epochs-retrain", type=int, default=6, help="epochs of retraining")
    p.add_argument("--scope", default="global", choices=["global", "layer"], help="pruning scope")
    p.add_argument("--train-limit", type=int, default=None, help="training images (default: all)")
    p.add_argument("--quick", action="store_true", help="1 epoch each on 10k images (a smoke run)")
    arg.add_output(p, default="build/bench/train.json", help="output path")


def run(a) -> int:
    if a.child:
        _one_run(a)
        return 0
    if a.quick:
        a.epochs_dense, a.epochs_retrain, a.train_limit = 1, 1, 10000
    seed_levels = ",".join(str(s) for s in SEED_TABLE2["levels"])
    runs = [("dense", "0")] + [(m, a.levels) for m in a.modes.split(",")] + [("joint", seed_levels)]
    results = []
    from tqdm.auto import tqdm
    for mode, levels in tqdm(runs, desc="bench-train", unit="run"):
        results.append(_spawn(mode, levels, a))
    base = results[0]
    print(f"\nLeNet-5 / MNIST, full 10k test set; {a.epochs_dense} dense + {a.epochs_retrain} retrain epochs, "
          f"scope={a.scope}" + (f", {a.train_limit} train images" if a.train_limit else ""))
    print(f"{'mode':<12} {'sparsity / accuracy per level':<48} {'wall s':>7} {'x dense':>8} {'peak MB':>8}")
    for r in results:
        lv = "  ".join(f"{x['sparsity']:.1%}/{x['accuracy']:.2%}" for x in r["levels"])
        print(f"{r['mode']:<12} {lv:<48} {r['wall_s']:7.1f} {r['wall_s'] / base['wall_s']:8.2f} "
              f"{r['peak_rss_mb']:8.0f}")
    seed = "  ".join(f"{s:.1%}/{acc:.2%}" for s, acc in zip(SEED_TABLE2["levels"], SEED_TABLE2["accuracy"]))
    print(f"{'seed Table 2':<12} {seed:<48}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"config": vars(a), "results": results, "seed": SEED_TABLE2}, indent=1))
    print(f"written {a.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench train", argv)

if __name__ == "__main__":
    sys.exit(main())
