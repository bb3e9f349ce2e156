"""`sparsenest sweep`: choose nested levels for an energy budget with Ray Tune.

Every trial takes one point of the search space (experiments/space.py: level sparsities, method, mode,
epochs, learning rates, format objective) and

  1. trains the task's nested model (train.loop.train_to_bundle, the task's data set sliced by --train-limit);
  2. compiles it for the host board (one format choice for all levels) and checks that it fits the
     device (the MSP430FR5994 planner, no toolchain needed);
  3. costs every level: one inference's host-board counters per level, fed to the cost model
     (sparsenest.analysis.cost, with a cycle model calibrated on mspdebug samples given by --samples, or the
     UNCALIBRATED fallback table, which the outputs then say); a level switch of the resident build
     writes the 2-byte selector;
  4. scores the levels with the harvest simulation (sparsenest.analysis.harvest) on a trace and capacitor under a
     policy (default: the energy-aware one): by default expected correct inferences = expected accuracy
     x completed inferences, using each level's validation accuracy (the test split is only reported).

Trials report an intermediate score after every joint retraining epoch (the masks are fixed then, so the
costs are final and only the accuracies still move), so ASHA stops trials that lag; the search is Optuna's
TPE through Ray Tune (or random / grid for comparison). Tune checkpoints the experiment in
<out>/ray/sweep: `--resume` continues an interrupted sweep and never reruns a finished trial.

Outputs under <out>: trials/<id>/ (bundle, builds, result.json), front.md / front.json / front.png (the
Pareto front of accuracy vs energy per inference over every level of every finished trial) and
front/<id>.nest (the bundle of each front member's trial).

Ray: local by default, with this machine's cores (--cpus); `--address` or RAY_ADDRESS connects to a
cluster instead, where every node needs this package and the data sets (../shared/data or
$SPARSENEST_DATA) and the output folder must be on storage the nodes share.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from . import pareto
from .space import (SpaceError, covering_points, describe, load_space_file, parse_space, to_tune, trial_choices,
                    trial_levels, with_defaults)

SEARCHES = ("tpe", "random", "grid")
# What a trial maximises, from its harvest simulation (analysis.harvest.HarvestResult).
OBJECTIVES = {"expected_correct": lambda r: r.expected_correct,    # expected accuracy x completed inferences
              "expected_accuracy": lambda r: r.expected_accuracy,
              "completed": lambda r: r.total}
MARKER = "sweep.json"               # written first: the folder is a sweep's, --force may replace it
EXPERIMENT = "sweep"                # Tune's experiment name under <out>/ray
SELECTOR_BYTES = 2                  # a resident level switch writes the 16-bit selector


@dataclass
class SweepSettings:
    task: str = "lenet5"
    model: str | None = None             # another zoo model for the task's data set (e.g. lenet5-small)
    trials: int = 8
    search: str = "tpe"
    asha: bool = True
    trace: str = "solar"
    capacitor_f: float = 0.047
    v_on: float = 3.3
    v_off: float = 1.9
    v_max: float = 3.6
    policy: str = "energy"
    duration_s: float | None = None      # simulate only the trace's first N seconds
    objective: str = "expected_correct"
    train_limit: int | None = None
    test_limit: int | None = None
    val_limit: int | None = None         # about this many validation images (sweep_data.training_pool)
    init: str | None = None              # dense start (.npz of sweep_data.pretrain_dense) every trial prunes
    calib: int = 256                     # Q15 calibration images
    samples: list[str] = field(default_factory=list)   # cycle_samples.json files (make bench-mcu)
    platform: str | None = None
    device: str = "msp430fr5994"
    cpus: int | None = None              # local Ray runtime's CPUs (default: this machine's)
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None
    seed: int = 0
    train_seed: int | None = None        # the trials' training seed (default: seed); fixed, a trial's result
                                         # depends on its config alone and the seed only moves the search
    address: str | None = None

    def check(self) -> None:
        if self.search not in SEARCHES:
            raise SpaceError(f"search {self.search!r} is not one of {', '.join(SEARCHES)}")
        if self.objective not in OBJECTIVES:
            raise SpaceError(f"objective {self.objective!r} is not one of {', '.join(sorted(OBJECTIVES))}")
        if self.trials < 1:
            raise SpaceError(f"trials must be >= 1, got {self.trials}")
        if self.device != "msp430fr5994":
            raise SpaceError(f"device {self.device!r}: only msp430fr5994 has a cost model")
        from ..analysis import harvest
        harvest.parse_policy(self.policy)          # ValueError naming the policy
        harvest.load_trace(self.trace)             # ... or the trace
        harvest.Capacitor(self.capacitor_f, self.v_on, self.v_off, self.v_max)
        if self.init is not None and not Path(self.init).is_file():
            raise SpaceError(f"init {self.init}: no such dense start (.npz of sweep_data.pretrain_dense)")
        for name in ("train_limit", "test_limit", "val_limit"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise SpaceError(f"{name} must be >= 1, got {v}")

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "SweepSettings":
        known = set(cls.__dataclass_fields__)
        bad = sorted(set(d) - known)
        if bad:
            raise SpaceError(f"{where}: unknown [sweep] setting {bad[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**d)


# ============================================================================================ scoring

class Scorer:
    """Costs a compiled model's levels and scores them with the harvest simulation (one per trial)."""

    def __init__(self, s: SweepSettings, cycle_model: dict | None, objective: Callable | None = None):
        from ..analysis import harvest
        from ..analysis.cost import CycleModel, load_platform
        self.s = s
        self.platform = load_platform(s.platform)
        self.cm = CycleModel.from_dict(cycle_model) if cycle_model else CycleModel.fallback_only()
        self.trace = harvest.load_trace(s.trace)
        self.cap = harvest.Capacitor(s.capacitor_f, s.v_on, s.v_off, s.v_max)
        self.objective = objective
        self._runs: dict = {}   # harvest result per cost vector: see score()

    def level_costs(self, build: dict, x1) -> list[dict]:
        """Per level: predicted energy (µJ) and time (µs) of one inference from host-board counters."""
        from .bench.table2 import host_layers
        from ..analysis.cost import predict_inference
        from ..targets.host import HostSim
        sim, meta = HostSim(build["out_dir"]), build["meta"]
        out = []
        for lv in range(1, int(meta["n_levels"]) + 1):
            pred = predict_inference(host_layers(sim, meta, x1, lv), self.platform, self.cm, lea=False)
            out.append({"energy_uj": pred["total"]["energy_uj"], "time_us": pred["total"]["time_us"],
                        "uncalibrated": pred["uncalibrated"], "prediction": pred})
        return out

    def score(self, costs: list[dict], accuracy: list[float], sparsity: list[float]) -> dict:
        """The harvest simulation of these levels. The policies (analysis.harvest) choose levels from the
        stored energy and the levels' costs, never from their accuracies, so the simulation runs once per
        cost vector (a trial's costs are final from its first epoch on) and later calls only re-weight its
        completed inferences by the new accuracies (test_sweep_scoring checks this against a fresh run)."""
        from dataclasses import replace
        from ..analysis import harvest
        from ..analysis.cost import predict_switch
        L = len(costs)
        key = tuple((c["energy_uj"], c["time_us"]) for c in costs)
        if key not in self._runs:
            sw = predict_switch(SELECTOR_BYTES, self.platform, "cpu")
            switch = {"energy_uj": [[0.0 if a == b else sw["energy_uj"] for b in range(L)] for a in range(L)],
                      "time_us": [[0.0 if a == b else sw["time_us"] for b in range(L)] for a in range(L)]}
            hc = harvest.costs_from_predictions([c["prediction"] for c in costs], accuracy, switch=switch,
                                                platform=self.platform, sparsities=sparsity)
            self._runs[key] = harvest.simulate(self.trace, self.cap, hc, harvest.parse_policy(self.s.policy),
                                               t_end=self.s.duration_s, record=False)
        r = replace(self._runs[key], accuracy=[float(a) for a in accuracy])
        value = (self.objective or OBJECTIVES[self.s.objective])(r)
        return {"score": float(value), "expected_accuracy": r.expected_accuracy,
                "expected_correct": r.expected_correct, "completed": r.total, "completed_per_level": r.completed,
                "lost_inferences": r.lost_inferences}


def _fit_cycle_model(samples: list[str]) -> tuple[dict | None, str]:
    """A cycle model fitted on mspdebug layer samples (make bench-mcu's cycle_samples.json when none are
    given and it exists, as `sparsenest report` does), or None."""
    from ..analysis.report import DEFAULT_SAMPLES, fit_models, fit_samples, load_samples
    samples = samples or [p for p in DEFAULT_SAMPLES if Path(p).exists()]
    if not samples:
        return None, "UNCALIBRATED fallback cycle table (no --samples given: run `make bench-mcu`)"
    loaded, files = load_samples(samples)
    cm = fit_models(fit_samples(loaded, "mpy32"), "mpy32")
    if cm is None:
        return None, f"UNCALIBRATED fallback cycle table ({', '.join(files)} holds no mpy32 layer samples)"
    return cm.to_dict(), f"calibrated on mspdebug samples ({', '.join(files)}; keys {', '.join(sorted(cm.kernels))})"


# ============================================================================================== trial

def _device_fit(bundle, fmt, out: Path, calib) -> str | None:
    """None when the model (every level, resident) fits the MSP430FR5994, else the planner's reason."""
    from ..compiler.build import compile_bundle
    from ..compiler.codegen import CodegenError
    from ..compiler.planner import PlanError
    try:
        compile_bundle(bundle, out, target="msp430fr5994", fmt=fmt, calib=calib, build=False)
    except (PlanError, CodegenError) as e:
        return str(e).splitlines()[0]
    return None


def run_trial(config: dict, ctx: dict, report: Callable[[dict], None]) -> dict:
    """Train, compile, cost and score one point of the space; `report(metrics)` gets every intermediate
    result and the final one (returned too). Writes <out>/trials/<trial>/result.json last."""
    import torch
    from . import sweep_data, tasks
    from ..compiler.build import compile_bundle
    from ..train.nested import TrainConfig
    from ..train.loop import train_to_bundle
    torch.set_num_threads(1)   # one core per trial: two threads on a shared core run far slower
    s = SweepSettings(**ctx["settings"])
    config = trial_choices(config)
    tdir = Path(ctx["trial_dir"])
    tdir.mkdir(parents=True, exist_ok=True)
    with open(tdir / "starts.log", "a") as f:   # one line per start: a resumed sweep must not add lines here
        f.write(f"{time.time():.3f}\n")
    task = tasks.get(s.task)
    levels = trial_levels(config)
    cfg = TrainConfig(epochs_dense=int(config["epochs_dense"]), epochs_retrain=int(config["epochs_retrain"]),
                      lr=float(config["lr"]), lr_retrain=float(config["lr_retrain"]), scope=config["scope"],
                      batch_size=int(config["batch_size"]), method_opts=dict(task.cfg.method_opts),
                      seed=s.seed if s.train_seed is None else s.train_seed)
    fmt = config["format"]
    scorer = Scorer(s, ctx.get("cycle_model"), ctx.get("objective"))
    # One load for every compile's calibration; operation counts (hence costs) do not depend on the image.
    calib = sweep_data.calibration(task.dataset, s.calib)
    costs: list[dict] = []
    fit: list[str | None] = []

    def score(val_acc: list[float], sparsity: list[float]) -> dict:
        m = scorer.score(costs, val_acc, sparsity)
        return m | {"score": 0.0} if fit[0] is not None else m   # a model the device cannot hold delivers nothing

    def on_epoch(epoch: int, val_acc: list[float], bundle_now) -> None:
        if epoch == cfg.epochs_retrain - 1:
            return   # the final report covers the last epoch
        if not costs:   # the masks are final now: so are the costs and whether the device holds the model
            b = bundle_now()
            costs.extend(scorer.level_costs(compile_bundle(b, tdir / "cost-build", fmt=fmt, calib=calib), calib[:1]))
            fit.append(_device_fit(b, fmt, tdir / "mcu", calib))
        report(score(val_acc, list(levels)) | {"epoch": epoch + 1, "final": False})

    model = s.model or task.model
    if s.init:   # one-shot pruning of the shared dense start (its network object: the bundle records a graph)
        model = sweep_data.dense_start(s.init, model, task.dataset)
    bundle = train_to_bundle(tdir / "model.nest", model=model, levels=levels,
                             dataset=sweep_data.training_pool(task.dataset, s.val_limit),
                             test_data=sweep_data.split(task.dataset, "test"),
                             method=config["method"], mode=config["mode"], cfg=cfg, train_limit=s.train_limit,
                             test_limit=s.test_limit, force=True, log=lambda m: None, on_epoch=on_epoch)
    hist = {h["level"]: h["val_accuracy"] for h in bundle.manifest["train_config"]["history"]
            if h.get("phase") == "final"}
    val_acc = [hist[lv] for lv in range(1, len(levels) + 1)]
    # Q15 test accuracy; the host library is built (gcc) only when no epoch has costed the levels yet.
    build = compile_bundle(bundle, tdir / "build", fmt=fmt, calib=calib,
                           evaluate=sweep_data.evaluation(task.dataset, s.test_limit or None), build=not costs)
    if not costs:
        costs = scorer.level_costs(build, calib[:1])
        fit.append(_device_fit(bundle, fmt, tdir / "mcu", calib))
    metrics = score(val_acc, [float(lv["sparsity"]) for lv in bundle.levels])
    per_level = [{"level": lv["level"], "target_sparsity": lv["target_sparsity"], "sparsity": lv["sparsity"],
                  "accuracy": lv["q15_accuracy"], "float_test_accuracy": lv["float_accuracy"],
                  "val_accuracy": val_acc[i], "n_test": lv.get("n_eval"), "energy_uj": costs[i]["energy_uj"],
                  "time_us": costs[i]["time_us"], "uncalibrated": costs[i]["uncalibrated"]}
                 for i, lv in enumerate(build["meta"]["levels"])]
    result = metrics | {"epoch": cfg.epochs_retrain, "final": True, "config": dict(config),
                        "levels_requested": list(levels), "levels": per_level, "fits_device": fit[0] is None,
                        "device_error": fit[0], "bundle": str(tdir / "model.nest")}
    (tdir / "result.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    report(result)
    return result


def _tune_trial(config: dict, ctx: dict) -> None:
    """Ray Tune's function trainable around run_trial (reports go to tune.report)."""
    from ray import tune
    trial_id = tune.get_context().get_trial_id()
    ctx = dict(ctx, trial_dir=str(Path(ctx["out"]) / "trials" / trial_id))
    keep = ("score", "expected_accuracy", "expected_correct", "completed", "epoch", "final", "fits_device")
    run_trial(config, ctx, lambda m: tune.report({k: m[k] for k in keep if k in m}))


# ============================================================================================== sweep

def _check_out(out: Path, *, force: bool, resume: bool) -> None:
    if resume:
        if not (out / MARKER).exists() or not (out / "ray" / EXPERIMENT).exists():
            raise FileNotFoundError(f"{out} holds no sweep to resume (no {MARKER} or ray/{EXPERIMENT}); "
                                    "start one without --resume")
        return
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} already exists; choose another -o, --resume the sweep there, or "
                                  "pass --force to replace it")
        if not (out / MARKER).exists():
            raise FileExistsError(f"{out} is not a sweep output folder (no {MARKER}); refusing to delete it "
                                  "even with --force")
        shutil.rmtree(out)


def _ray_init(s: SweepSettings) -> bool:
    """Start (or join) Ray unless it already runs in this process; True when we started it."""
    import ray
    if ray.is_initialized():
        return False
    address = s.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=s.cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    return True


def tpe_startup_trials(trials: int, longest_choice: int = 1) -> int:
    """Start-up trials before TPE models the space: a quarter of the budget, 4 to 10, and at least one per
    choice of the longest list (space.covering_points), within the budget. With fewer its two densities
    (good / other trials) rest on one or two points and it exploits whatever the first draws hit: make
    bench-sweep's 3 start-up trials of 10 did exactly that. Optuna's default is 10."""
    return min(trials, max(4, longest_choice, min(10, trials // 4)))


def _searcher(s: SweepSettings, space: dict, metric: str = "score"):
    """Optuna's multivariate TPE (one joint density over all parameters: method and format interact, e.g.
    row pruning with format auto may not fit the chip) with the constant liar, so trials that run at the
    same time are not drawn at the same point, after start-up trials that try every choice of every list
    (random start-up trials missed the best method in make bench-sweep, and TPE never tried it then); or
    Tune's random / grid generator."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator
    if s.search == "tpe":
        import optuna
        from ray.tune.search.optuna import OptunaSearch
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        n = tpe_startup_trials(s.trials, max((len(d) for d in space.values() if isinstance(d, list)), default=1))
        sampler = optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=n, multivariate=True, constant_liar=True)
        start = covering_points(space, n, s.seed)
        alg = OptunaSearch(metric=metric, mode="max", sampler=sampler,
                           points_to_evaluate=start if start and start[0] else None)
        return ConcurrencyLimiter(alg, max_concurrent=s.max_concurrent or max(1, int(s.cpus or os.cpu_count())))
    return BasicVariantGenerator(random_state=s.seed, max_concurrent=s.max_concurrent or 0)


def _tuner(s: SweepSettings, space: dict, ctx: dict, out: Path, *, resume: bool, callbacks: list | None):
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")   # Tune's legacy reporter is silent at verbose=0
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    trainable = tune.with_resources(tune.with_parameters(_tune_trial, ctx=ctx), {"cpu": s.cpus_per_trial})
    storage = str((out / "ray").resolve())
    if resume:
        return tune.Tuner.restore(str(Path(storage) / EXPERIMENT), trainable=trainable, resume_unfinished=True,
                                  resume_errored=True)
    epochs = space["epochs_retrain"]
    max_epochs = int(epochs.high if hasattr(epochs, "high") else max(epochs if isinstance(epochs, list)
                                                                      else [epochs]))
    scheduler = (ASHAScheduler(metric="score", mode="max", time_attr="training_iteration",
                               max_t=max(1, max_epochs), grace_period=1, reduction_factor=2)
                 if s.asha else FIFOScheduler())
    from .space import grid_size
    from .tune_progress import TrialLines
    samples = 1 if s.search == "grid" else s.trials
    callbacks = [TrialLines(grid_size(space) if s.search == "grid" else s.trials)] + list(callbacks or [])
    return tune.Tuner(trainable, param_space=to_tune(space, s.search),
                      # reused trial actors import torch and the data once, not once per trial
                      tune_config=tune.TuneConfig(search_alg=_searcher(s, space), scheduler=scheduler,
                                                  num_samples=samples,
                                                  reuse_actors=True),
                      run_config=tune.RunConfig(name=EXPERIMENT, storage_path=storage, verbose=0,
                                                failure_config=tune.FailureConfig(max_failures=0),
                                                callbacks=callbacks))


def _error_line(err) -> str:
    """The last line of a failed trial's traceback (the exception itself)."""
    lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else type(err).__name__


def collect(out: Path) -> dict:
    """Every finished trial's result and the Pareto front over all their levels; writes front.md / .json /
    .png and front/<trial>.nest."""
    results = []
    for p in sorted((out / "trials").glob("*/result.json")):
        r = json.loads(p.read_text())
        r["trial"] = p.parent.name
        results.append(r)
    points = [dict(lv, trial=r["trial"], score=r["score"], config=r["config"], bundle=f"front/{r['trial']}.nest")
              for r in results if r["fits_device"] for lv in r["levels"]]
    front = pareto.pareto_front(points)
    fdir = out / "front"
    if fdir.exists():
        shutil.rmtree(fdir)   # ours: rebuilt from the trials each time
    fdir.mkdir()
    for t in sorted({p["trial"] for p in front}):
        shutil.copytree(out / "trials" / t / "model.nest", fdir / f"{t}.nest")
    return {"results": results, "points": points, "front": front}


def run_sweep(out: str | Path, space: dict, settings: SweepSettings, *, force: bool = False, resume: bool = False,
              objective: Callable | None = None, log=print, callbacks: list | None = None) -> dict:
    """Run (or resume) a sweep into `out`; returns {"results", "points", "front", "best", ...}."""
    settings.check()
    out = Path(out)
    _check_out(out, force=force, resume=resume)
    from . import tasks
    if resume:   # the sweep's own settings and space; only where it runs may change
        saved = json.loads((out / MARKER).read_text())
        settings = SweepSettings(**(saved["settings"] | {k: v for k, v in asdict(settings).items()
                                                         if k in ("address", "cpus")}))
        space = parse_space(saved["space"], str(out / MARKER))
    full = with_defaults(space, tasks.get(settings.task))
    if settings.search == "grid":
        to_tune(full, "grid")   # fails early on a range
    cycle_model, calibration = _fit_cycle_model(settings.samples)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        (out / MARKER).write_text(json.dumps({"settings": asdict(settings), "space": describe(space),
                                              "full_space": describe(full), "calibration": calibration},
                                             indent=1) + "\n")
    ctx = {"settings": asdict(settings), "out": str(out.resolve()), "cycle_model": cycle_model,
           "objective": objective}
    started = _ray_init(settings)
    t0 = time.time()
    try:
        tuner = _tuner(settings, full, ctx, out, resume=resume, callbacks=callbacks)
        grid = tuner.fit()
        errors = [_error_line(r.error) for r in grid if r.error is not None]
    finally:
        if started:
            import ray
            ray.shutdown()
    res = collect(out)
    res.update(wall_s=round(time.time() - t0, 1), errors=errors, calibration=calibration,
               trials_started=len(list((out / "trials").glob("*/starts.log"))),
               best=max(res["results"], key=lambda r: r["score"], default=None))
    write_outputs(out, res, settings)
    log(summary(res, out))
    return res


def write_outputs(out: Path, res: dict, s: SweepSettings) -> None:
    title = (f"Pareto front: {s.task}, {len(res['results'])} finished trials ({s.search}"
             f"{' + ASHA' if s.asha else ''}), trace {s.trace}, C = {s.capacitor_f:g} F, policy {s.policy}; "
             f"energy: {res['calibration']}")
    (out / "front.md").write_text(pareto.format_table(res["front"], title=title) + "\n")
    (out / "front.json").write_text(json.dumps(
        {"title": title, "front": res["front"], "points": res["points"], "best_trial": res["best"],
         "wall_s": res["wall_s"], "errors": res["errors"]}, indent=1, default=float) + "\n")
    pareto.plot(res["points"], res["front"], out / "front.png", title=f"{s.task}: {s.search}")


def summary(res: dict, out: Path) -> str:
    b = res["best"]
    n_done, n_err = len(res["results"]), len(res["errors"])
    lines = [f"{n_done} trials finished, {res['trials_started'] - n_done - n_err} stopped early by ASHA, {n_err} "
             f"failed ({res['wall_s']:.0f} s this run); energy {res['calibration']}"]
    if b:
        lines.append(f"best trial {b['trial']}: score {b['score']:.1f} ({b['completed']} inferences, expected "
                     f"accuracy {b['expected_accuracy']:.4f}), levels {b['levels_requested']}, "
                     f"{b['config']['method']}/{b['config']['mode']}")
    lines += [f"front ({len(res['front'])} levels): " + ", ".join(
        f"{p['trial']} L{p['level']} {100 * p['accuracy']:.2f} % @ {p['energy_uj']:,.0f} µJ" for p in res["front"])]
    lines += [f"error: {e}" for e in res["errors"]]
    lines.append(f"written {out / 'front.md'}, front.json, front.png, front/")
    return "\n".join(lines)


# ================================================================================================ CLI

def add_arguments(p) -> None:
    p.add_argument("--space", default=None, help="search space TOML/JSON ([space] and optional [sweep])")
    p.add_argument("--task", default=None, help="task of sparsenest.experiments.tasks (default lenet5)")
    p.add_argument("--model", default=None, help="another zoo model for the task's data set (default: the task's)")
    from .. import cli_args as arg
    arg.add_output(p, required=True, help="output folder")
    p.add_argument("--trials", type=int, default=None, help="trial budget (default 8)")
    p.add_argument("--search", choices=SEARCHES, default=None, help="tpe (default), random or grid")
    p.add_argument("--no-asha", action="store_true", help="run every trial to the end")
    p.add_argument("--levels", default=None, help="level sets to choose from: 0.9,0.75,0.5;0.95,0.8,0.6")
    p.add_argument("--method", default=None, help="comma-separated choice, e.g. irregular,row")
    p.add_argument("--mode", default=None, help="comma-separated choice of no-retrain,progressive,joint")
    p.add_argument("--epochs-dense", default=None, help="comma-separated choice of epoch counts")
    p.add_argument("--epochs-retrain", default=None, help="comma-separated choice of epoch counts")
    p.add_argument("--format", default=None, help="comma-separated choice of compiler formats (auto, csr16, ...)")
    p.add_argument("--trace", default=None, help="shipped trace name or CSV (default solar)")
    p.add_argument("--capacitor", type=float, default=None, help="farads (default 0.047)")
    p.add_argument("--policy", default=None, help="harvest policy: energy (default), fixed:K, ...")
    p.add_argument("--duration", type=float, default=None, help="simulate only the trace's first N seconds")
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default=None,
                   help="expected_correct (default: expected accuracy x completed inferences), expected_accuracy, "
                        "completed")
    p.add_argument("--train-limit", type=int, default=None, help="training samples per trial")
    p.add_argument("--test-limit", type=int, default=None, help="test samples for the reported accuracies")
    p.add_argument("--samples", action="append", default=None, help="cycle_samples.json to calibrate on")
    p.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray runtime")
    p.add_argument("--seed", type=int, default=None, help="random seed of the search and the trials")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else local)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --out")
    p.add_argument("--force", action="store_true", help="replace an earlier sweep in --out")


def _flag_space(a) -> dict:
    raw = {}
    if a.levels:
        try:
            raw["levels"] = [[float(x) for x in part.split(",")] for part in a.levels.split(";") if part.strip()]
        except ValueError:
            raise SpaceError(f"--levels takes level sets like 0.9,0.75,0.5;0.95,0.8,0.6, not {a.levels!r}") from None
    for key, text in (("method", a.method), ("mode", a.mode), ("format", a.format)):
        if text:
            raw[key] = [x.strip() for x in text.split(",") if x.strip()]
    for key, text in (("epochs_dense", a.epochs_dense), ("epochs_retrain", a.epochs_retrain)):
        if text:
            try:
                raw[key] = [int(x) for x in text.split(",") if x.strip()]
            except ValueError:
                raise SpaceError(f"--{key.replace('_', '-')} takes whole numbers like 1,2,3, not {text!r}") from None
    return raw


def _require_tune() -> None:
    try:
        import optuna  # noqa: F401
        import ray.tune  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"sparsenest sweep needs Ray Tune and Optuna ({e.name} is missing): "
                           "pip install 'sparsenest[sweep]'") from None


def cmd_sweep(a) -> int:
    _require_tune()
    space, file_settings = (load_space_file(a.space) if a.space else ({}, {}))
    space = space | parse_space(_flag_space(a), "command line")
    s = SweepSettings.from_dict(file_settings, a.space or "settings")
    for flag, key in (("task", "task"), ("model", "model"), ("trials", "trials"), ("search", "search"),
                      ("trace", "trace"),
                      ("capacitor", "capacitor_f"), ("policy", "policy"), ("duration", "duration_s"),
                      ("objective", "objective"), ("train_limit", "train_limit"), ("test_limit", "test_limit"),
                      ("samples", "samples"), ("cpus", "cpus"), ("seed", "seed"), ("address", "address")):
        if getattr(a, flag) is not None:
            setattr(s, key, getattr(a, flag))
    if a.no_asha:
        s.asha = False
    res = run_sweep(a.out, space, s, force=a.force, resume=a.resume)
    return 1 if res["errors"] and not res["results"] else 0


run = cmd_sweep  # `sparsenest sweep` (cli.MODULE_COMMANDS)
