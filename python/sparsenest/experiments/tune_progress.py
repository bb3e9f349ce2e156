"""One line per trial as a sweep runs (Ray Tune's own tables are turned off): a module of its own because
Tune saves callbacks with the experiment and a resumed sweep unpickles them, and because it imports Ray,
which `sparsenest.experiments.sweep` must not do at import time (the CLI works without the extra)."""
from __future__ import annotations

from ray.tune import Callback


class TrialLines(Callback):
    def __init__(self, total: int):
        self.total = total

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        done = sum(t.status == "TERMINATED" for t in trials) + 1
        how = "finished" if r.get("final") else f"stopped early by ASHA after {r.get('training_iteration', 0)} epoch(s)"
        print(f"  trial {trial.trial_id} {how}: score {r.get('score', 0.0):,.1f} ({done}/{self.total})", flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        print(f"  trial {trial.trial_id} failed: see {trial.local_path}", flush=True)
