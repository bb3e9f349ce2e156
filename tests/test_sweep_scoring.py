"""The sweep's scoring shortcut and make bench-sweep's helpers, without Ray."""
from __future__ import annotations

import json

import pytest

from sparsenest.experiments.space import covering_points, grid_size, parse_space
from sparsenest.experiments.sweep import Scorer, SweepSettings, tpe_startup_trials
from sparsenest.experiments import sweep_bench, sweep_data
from sparsenest.experiments.space import SpaceError
from sparsenest.experiments.sweep_bench import SPACE, best_so_far, grid_space, ranks, sign_test, spread


def _costs(energies_uj, times_us):
    return [{"energy_uj": e, "time_us": t, "uncalibrated": False,
             "prediction": {"total": {"energy_uj": e, "time_us": t}, "uncalibrated": False}}
            for e, t in zip(energies_uj, times_us)]


def test_scorer_reuses_the_harvest_run_exactly():
    """A trial's later epochs re-weight one harvest run by their accuracies: that equals a fresh simulation
    only while the policies ignore accuracy, which this checks (on the onoff trace, where the energy-aware
    policy moves between levels)."""
    s = SweepSettings(trace="onoff", duration_s=1800.0)
    costs, sparsity = _costs([400.0, 900.0, 1600.0], [15e3, 30e3, 55e3]), [0.9, 0.7, 0.5]
    cached = Scorer(s, None)
    first = cached.score(costs, [0.5, 0.6, 0.7], sparsity)
    later = cached.score(costs, [0.90, 0.95, 0.99], sparsity)
    fresh = Scorer(s, None).score(costs, [0.90, 0.95, 0.99], sparsity)
    assert later == fresh
    assert sum(c > 0 for c in fresh["completed_per_level"]) >= 2, "the policy should use more than one level"
    assert first["completed_per_level"] == later["completed_per_level"] and first["score"] < later["score"]
    assert later["score"] == pytest.approx(sum(a * c for a, c in zip([0.90, 0.95, 0.99],
                                                                      later["completed_per_level"])))
    # other costs: a simulation of their own
    dearer = cached.score(_costs([800.0, 1800.0, 3200.0], [30e3, 60e3, 110e3]), [0.90, 0.95, 0.99], sparsity)
    assert dearer["completed"] < later["completed"]


@pytest.mark.parametrize("trials", [6, 12, 18])
def test_bench_grid_spends_exactly_the_budget(trials):
    g = parse_space(grid_space(SPACE, trials))
    assert grid_size(g) == trials
    assert len(g["sparsest"]) == trials // 6 and all(0.8 < v < 0.98 for v in g["sparsest"])
    assert g["epochs_retrain"] == 2 and 0.002 < g["lr_retrain"] < 0.05 and len(g["method_format"]) == 6


def test_bench_grid_refuses_a_budget_it_cannot_spend():
    with pytest.raises(ValueError, match="multiple of 6"):
        grid_space(SPACE, 10)


def test_best_so_far_follows_start_order_and_spread():
    results = [{"score": 5.0, "started": 3.0}, {"score": 9.0, "started": 2.0}, {"score": 1.0, "started": 1.0}]
    assert [best_so_far(results, k) for k in (1, 2, 3)] == [1.0, 9.0, 9.0]
    s = spread([1.0, 2.0, 3.0])
    assert (s["mean"], s["std"], s["min"], s["max"]) == (2.0, 1.0, 1.0, 3.0)


def test_tpe_start_up_is_a_quarter_of_the_budget_within_4_to_10_and_covers_the_longest_choice():
    assert [tpe_startup_trials(n) for n in (4, 12, 20, 40, 100)] == [4, 4, 5, 10, 10]
    assert tpe_startup_trials(12, longest_choice=6) == 6 and tpe_startup_trials(3, longest_choice=6) == 3


def test_covering_points_try_every_choice_and_stay_in_range():
    space = parse_space(SPACE)
    pts = covering_points(space, 6, seed=1)
    assert len(pts) == 6 and all(set(p) == {k for k, d in space.items() if not isinstance(d, (int, float, str))}
                                  for p in pts)
    assert {p["method_format"] for p in pts} == set(sweep_bench.PAIRS)   # every pair, not just every half
    for p in pts:
        assert 0.8 <= p["sparsest"] <= 0.98 and 0.002 <= p["lr_retrain"] <= 0.05 and p["epochs_retrain"] in (1, 2)
    assert covering_points(space, 6, seed=1) == pts and covering_points(space, 6, seed=2) != pts


def test_sign_test_and_ranks():
    assert sign_test(5, 0) == 1 / 32 and sign_test(0, 0) == 1.0
    assert sign_test(4, 1) == pytest.approx(6 / 32) and sign_test(2, 3) == pytest.approx(26 / 32)
    assert ranks({"tpe": 9.0, "random": 3.0, "grid": 9.0}) == {"tpe": 1.5, "random": 3.0, "grid": 1.5}


def _fake_sweep(d, scores: list[float], search: str, seed: int):
    """A finished sweep's files as run_sweep leaves them (sweep.json, front.json, trials/*/result.json)."""
    d.mkdir(parents=True)
    settings = {"train_limit": 512, "val_limit": 300, "test_limit": 300, "search": search, "seed": seed,
                "duration_s": 43200.0, "trace": "solar", "capacitor_f": 0.047, "policy": "energy"}
    (d / "sweep.json").write_text(json.dumps({"settings": settings,
                                              "calibration": "UNCALIBRATED fallback cycle table"}))
    (d / "front.json").write_text(json.dumps({"wall_s": 10.0}))
    for i, sc in enumerate(scores):
        t = d / "trials" / f"t{i}"
        (t / "model.nest").mkdir(parents=True)
        (t / "starts.log").write_text(f"{100.0 + i}\n")
        lv = {"level": 1, "sparsity": 0.9, "accuracy": 0.5 + sc / 1000, "energy_uj": 1000.0 - sc, "time_us": 1e4}
        (t / "result.json").write_text(json.dumps({"score": sc, "fits_device": True, "levels": [lv],
                                                   "config": {"method": "row", "format": "csr16"},
                                                   "levels_requested": [0.9], "completed": 1,
                                                   "expected_accuracy": 0.5}))


def test_bench_collect_reports_spread_over_seeds(tmp_path, capsys):
    for seed, (rnd, tpe) in enumerate([([10, 30], [20, 40]), ([50, 20], [45, 10])]):
        _fake_sweep(tmp_path / "random" / f"seed{seed}", rnd, "random", seed)
        _fake_sweep(tmp_path / "tpe" / f"seed{seed}", tpe, "tpe", seed)
    _fake_sweep(tmp_path / "tpe" / "seed2", [99], "tpe", 2)   # random has no seed 2: left out of the comparison
    _fake_sweep(tmp_path / "grid" / "seed0", [35, 5], "grid", 0)   # deterministic: stands for every seed
    assert sweep_bench.main(["--collect", "--out", str(tmp_path), "--searches", "grid,random,tpe", "--seeds", "3",
                             "--trials", "6"]) == 0
    s = json.loads((tmp_path / "bench.json").read_text())
    assert s["seeds"] == [0, 1]
    assert s["searches"]["random"]["best_score"]["values"] == [30, 50]
    assert s["searches"]["tpe"]["best_score"]["mean"] == 42.5
    assert s["searches"]["tpe"]["best_score_half_budget"]["values"] == [40, 45]   # first 3 trials to start
    assert s["searches"]["grid"]["best_score"]["values"] == [35, 35]
    assert s["comparison"]["tpe_vs"]["random"] == {"wins": 1, "losses": 1, "ties": 0, "sign_test_p": 0.75}
    assert s["comparison"]["tpe_vs"]["grid"] == {"wins": 2, "losses": 0, "ties": 0, "sign_test_p": 0.25}
    assert s["comparison"]["mean_rank"] == {"grid": 2.5, "random": 2.0, "tpe": 1.5}
    assert "TPE's best score beats random's in 1 of 2 seeds" in (tmp_path / "bench.md").read_text()
    capsys.readouterr()
    # a finished benchmark of these seeds is not rerun by accident (more seeds would be added)
    assert sweep_bench.main(["--out", str(tmp_path), "--searches", "grid,random,tpe", "--seeds", "2",
                             "--trials", "6"]) == 2
    assert "finished benchmark of these seeds" in capsys.readouterr().err
    assert sweep_bench.main(["--collect", "--out", str(tmp_path / "none"), "--searches", "tpe"]) == 2   # one line, no traceback


def test_dense_start_round_trips_without_pickle(tmp_path):
    """pretrain_dense saves plain arrays; dense_start rebuilds the same network from them; a sweep naming a
    missing start is refused before anything runs."""
    import numpy as np
    import torch
    path = tmp_path / "dense.npz"
    info = sweep_data.pretrain_dense(path, model="lenet5-small", dataset="mnist", epochs=1, train_limit=64,
                                     lr=0.05, batch_size=32, log=lambda m: None)
    assert info["train_images"] == 64 and 0.0 <= info["val_accuracy"] <= 1.0
    with np.load(path, allow_pickle=False) as z:
        saved = {k: z[k] for k in z.files}
    net = sweep_data.dense_start(path, "lenet5-small", "mnist")
    state = net.state_dict()
    assert set(state) == set(saved) and all(torch.equal(state[k], torch.from_numpy(saved[k])) for k in saved)
    assert len(sweep_data.training_pool("mnist", 30)) == 300   # 10 % of it is held out for validation
    with pytest.raises(SpaceError, match="no such dense start"):
        SweepSettings(init=str(tmp_path / "none.npz")).check()
