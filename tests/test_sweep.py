"""`sparsenest sweep` (experiments/sweep.py) on a local Ray runtime, its search space and Pareto front, and
the Ray fan-out of the tables. The sweep trains LeNet-5-small on a small MNIST slice (whole pipeline:
train, compile, cost, harvest simulation on the constant trace)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sparsenest.experiments import pareto
from sparsenest.experiments.space import SpaceError, parse_space, to_tune, trial_levels, with_defaults

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from sparsenest.bundle import Bundle  # noqa: E402
from sparsenest.experiments.fanout import run_jobs  # noqa: E402
from sparsenest.experiments.sweep import SweepSettings, run_sweep  # noqa: E402
from sparsenest.experiments.tasks import get as get_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY_SPACE = {"levels": [[0.9, 0.5], [0.8, 0.4]], "epochs_dense": 1, "epochs_retrain": [1, 2],
              "lr": {"min": 0.02, "max": 0.1, "log": True}}


@pytest.fixture(scope="module")
def local_ray():
    """One small Ray runtime for the module (start-up is slow on a loaded 2-core machine)."""
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _settings(**kw) -> SweepSettings:
    return SweepSettings(**({"task": "lenet5", "model": "lenet5-small", "trials": 4, "trace": "constant",
                             "duration_s": 600.0, "train_limit": 256, "test_limit": 64, "calib": 64} | kw))


class _InterruptAfter(tune.Callback):
    """Interrupts the sweep like Ctrl+C would (Tune's SIGUSR1/SIGINT handler) after n trials complete, once:
    Tune saves its callbacks with the experiment, so the resumed run carries this one too."""

    def __init__(self, n: int, fired: Path):
        self.n, self.done, self.fired = n, 0, fired

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.done += 1
        if self.done == self.n and not self.fired.exists():
            self.fired.write_text("interrupted\n")
            os.kill(os.getpid(), signal.SIGUSR1)


def _starts(out: Path) -> dict[str, int]:
    return {p.parent.name: len(p.read_text().split()) for p in (out / "trials").glob("*/starts.log")}


@pytest.mark.slow
def test_interrupted_sweep_resumes_and_writes_front(tmp_path, local_ray):
    out = tmp_path / "sweep"
    first = run_sweep(out, parse_space(TINY_SPACE), _settings(), callbacks=[_InterruptAfter(1, tmp_path / "fired")], log=lambda m: None)
    finished = {r["trial"] for r in first["results"]}
    assert 1 <= len(finished) < 4, "the interrupt should leave trials to do"
    assert all(_starts(out)[t] == 1 for t in finished)

    res = run_sweep(out, {}, SweepSettings(), resume=True, log=lambda m: None)
    starts = _starts(out)
    assert len(starts) == 4, f"4 trials in all, got {starts}"
    assert all(starts[t] == 1 for t in finished), f"finished trials were run again: {starts}"
    assert not res["errors"]
    assert res["results"], "no trial finished"   # ASHA may stop some early, never all
    # the front: non-dominated levels of finished trials, each with its bundle, table, JSON and plot
    front = json.loads((out / "front.json").read_text())["front"]
    assert front and front == res["front"]
    for p in front:
        assert p["energy_uj"] > 0 and 0 <= p["accuracy"] <= 1
        assert not any(q["energy_uj"] <= p["energy_uj"] and q["accuracy"] >= p["accuracy"] and q != p
                       and (q["energy_uj"], q["accuracy"]) != (p["energy_uj"], p["accuracy"])
                       for q in res["points"])
        assert Bundle.load(out / p["bundle"]).n_levels == 2
    assert (out / "front.md").read_text().count("| ") > 0 and (out / "front.png").stat().st_size > 0
    best = res["best"]
    assert best["completed"] > 0 and best["score"] == pytest.approx(best["expected_accuracy"] * best["completed"])


def test_sweep_refuses_existing_output_and_missing_resume(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="--force"):
        run_sweep(tmp_path / "mine", {}, _settings())
    with pytest.raises(FileExistsError, match="not a sweep output"):
        run_sweep(tmp_path / "mine", {}, _settings(), force=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    with pytest.raises(FileNotFoundError, match="no sweep to resume"):
        run_sweep(tmp_path / "none", {}, _settings(), resume=True)


@pytest.mark.parametrize("raw, message", [
    ({"method": "magic"}, "method 'magic' is not one of"),
    ({"sparsity": [0.9]}, "unknown key 'sparsity'"),
    ({"levels": [[0.5, 0.9]]}, "strictly decreasing"),
    ({"levels": [[1.2, 0.5]]}, r"in \[0, 1\)"),
    ({"sparsest": {"min": 0.6, "max": 0.9}, "densest": {"min": 0.5, "max": 0.7}}, "below every sparsest"),
    ({"sparsest": 0.9}, "go together"),
    ({"epochs_retrain": {"min": 3, "max": 1}}, "must be below max"),
    ({"lr": {"min": 0.0, "max": 0.1, "log": True}}, r"outside|log range"),
    ({"epochs_dense": 1.5}, "whole numbers"),
    ({"mode": {"min": 1, "max": 2}}, "is a choice"),
])
def test_bad_search_space_is_one_clear_error(raw, message):
    with pytest.raises(SpaceError, match=message):
        parse_space(raw, "space.toml")


def test_grid_search_refuses_ranges_and_enumerates_lists():
    space = parse_space({"lr": {"min": 0.01, "max": 0.1}})
    with pytest.raises(SpaceError, match="grid search enumerates lists: lr"):
        to_tune(space, "grid")
    grid = to_tune(parse_space({"method": ["irregular", "row"], "epochs_dense": [1, 2, 3]}), "grid")
    assert grid["method"] == {"grid_search": ["irregular", "row"]} and len(grid["epochs_dense"]["grid_search"]) == 3


def test_space_defaults_and_drawn_levels():
    full = with_defaults(parse_space({"sparsest": {"min": 0.8, "max": 0.95}, "densest": 0.5}), get_task("lenet5"))
    assert full["n_levels"] == 3 and full["mode"] == "joint"
    assert trial_levels({"sparsest": 0.9, "densest": 0.5, "n_levels": 3}) == (0.9, 0.7, 0.5)
    assert trial_levels(with_defaults({}, get_task("lenet5"))) == (0.9, 0.75, 0.5)


def test_cli_bad_space_file_one_line_no_traceback(tmp_path):
    bad = tmp_path / "space.toml"
    bad.write_text('[space]\nmethod = ["irregular", "diagonal"]\n')
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "sparsenest.cli", "sweep", "--space", str(bad), "-o", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "diagonal" in lines[0] and str(bad) in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()
    bad.write_text("[space\nmethod = 1\n")
    r = subprocess.run([sys.executable, "-m", "sparsenest.cli", "sweep", "--space", str(bad), "-o", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "not valid TOML" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_pareto_front_and_hypervolume_by_hand():
    pts = [{"energy_uj": 10, "accuracy": 0.90}, {"energy_uj": 20, "accuracy": 0.95},
           {"energy_uj": 15, "accuracy": 0.89},   # dominated by the first
           {"energy_uj": 30, "accuracy": 0.95},   # dominated by the second (same accuracy, more energy)
           {"energy_uj": 40, "accuracy": 0.99}]
    front = pareto.pareto_front(pts)
    assert [(p["energy_uj"], p["accuracy"]) for p in front] == [(10, 0.90), (20, 0.95), (40, 0.99)]
    # reference (50 µJ, 0.80): strips (50-10)*0.10 + (50-20)*0.05 + (50-40)*0.04
    assert pareto.hypervolume(front, 50, 0.80) == pytest.approx(4.0 + 1.5 + 0.4)
    assert pareto.hypervolume(front, 50, 0.80) > pareto.hypervolume(front[:2], 50, 0.80)
    assert pareto.hypervolume(front, 5, 0.80) == 0.0


def test_fanout_runs_jobs_in_order_locally_and_on_ray(local_ray):
    jobs = [({"levels": "0.9,0.5"},), ({"sparsest": 0.8, "densest": 0.2, "n_levels": 4},)]
    local = run_jobs(trial_levels, jobs, use_ray=False)
    assert local == [(0.9, 0.5), (0.8, 0.6, 0.4, 0.2)]
    assert run_jobs(trial_levels, jobs, use_ray=True) == local
