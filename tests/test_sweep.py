"""`sparsenest sweep` (experiments/sweep.py) on a local Ray runtime, and the Ray fan-out of the tables.
The sweep trains LeNet-5-small on a small MNIST slice (whole pipeline:
train, compile, cost, harvest simulation on the constant trace)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from sparsenest.experiments.space import parse_space, trial_levels

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from sparsenest.bundle import Bundle  # noqa: E402
from sparsenest.experiments.fanout import run_jobs  # noqa: E402
from sparsenest.experiments.sweep import SweepSettings, run_sweep  # noqa: E402

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
    first = run_sweep(out, parse_space(TINY_SPACE), _settings(), callbacks=[_InterruptAfter(1, tmp_path / "fired")],
                      log=lambda m: None)
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


def test_fanout_runs_jobs_in_order_locally_and_on_ray(local_ray):
    jobs = [({"levels": "0.9,0.5"},), ({"sparsest": 0.8, "densest": 0.2, "n_levels": 4},)]
    local = run_jobs(trial_levels, jobs, use_ray=False)
    assert local == [(0.9, 0.5), (0.8, 0.6, 0.4, 0.2)]
    assert run_jobs(trial_levels, jobs, use_ray=True) == local
