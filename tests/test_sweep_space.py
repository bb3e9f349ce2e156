"""The search space of `sparsenest sweep` (experiments/space.py), its command-line errors and the Pareto
front / hypervolume (experiments/pareto.py): no Ray needed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sparsenest.experiments import pareto
from sparsenest.experiments.space import (SpaceError, parse_space, to_tune, trial_choices, trial_levels,
                                          with_defaults)
from sparsenest.experiments.tasks import get as get_task

ROOT = Path(__file__).resolve().parents[1]


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
    ({"method_format": ["irregular/csr16", "row/zip"]}, "method_format 'row/zip' is not one of"),
    ({"method_format": ["irregular/csr16"], "method": "row"}, "not both"),
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


def test_method_format_is_one_choice_split_for_the_trial():
    space = parse_space({"method_format": ["irregular/csr16", "row/auto"]})
    full = with_defaults(space, get_task("lenet5"))
    assert "method" not in full and "format" not in full
    assert to_tune(space, "grid")["method_format"] == {"grid_search": ["irregular/csr16", "row/auto"]}
    cfg = trial_choices({"method_format": "row/auto", "lr": 0.1})
    assert cfg == {"method": "row", "format": "auto", "lr": 0.1}
    assert trial_choices({"method": "row", "format": "csr16"}) == {"method": "row", "format": "csr16"}


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


def test_train_hook_reports_each_joint_epoch_with_final_masks(tmp_path):
    """train_to_bundle's on_epoch: one call per joint epoch, a validation accuracy per level, and a bundle
    whose masks are already the final ones (what a sweep trial costs while training goes on)."""
    import numpy as np

    from sparsenest.train.loop import train_to_bundle
    from sparsenest.train.nested import TrainConfig
    calls = []
    b = train_to_bundle(tmp_path / "m.nest", model="lenet5-small", levels=(0.9, 0.5), mode="joint",
                        cfg=TrainConfig(epochs_dense=1, epochs_retrain=2), train_limit=128, test_limit=32,
                        log=lambda m: None, on_epoch=lambda ep, acc, now: calls.append((ep, acc, now())))
    assert [c[0] for c in calls] == [0, 1]
    assert all(len(acc) == 2 and all(0 <= a <= 1 for a in acc) for _, acc, _ in calls)
    mid = calls[0][2]
    assert mid.n_levels == 2 and [lv["sparsity"] for lv in mid.levels] == [lv["sparsity"] for lv in b.levels]
    assert all(np.array_equal(mid.intro[k], b.intro[k]) for k in b.intro)
    final_val = [h["val_accuracy"] for h in b.manifest["train_config"]["history"] if h.get("phase") == "final"]
    assert calls[-1][1] == final_val
