"""Independent jobs of `make table1` / `make table2`, in this process or as Ray tasks.

Without Ray (the default on one machine) the jobs run one after another here, exactly as a plain loop.
With `--ray` or RAY_ADDRESS set, each job is a Ray task: on a cluster (RAY_ADDRESS=ray://head:10001 or
auto) the full-budget protocols fan out over its nodes, which need this package, the data sets and a
shared output folder; `--ray` alone starts a local Ray runtime on this machine's cores.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence


def wanted(flag: bool = False) -> bool:
    """Run on Ray: --ray given, or RAY_ADDRESS set."""
    return bool(flag or os.environ.get("RAY_ADDRESS"))


def run_jobs(fn: Callable, jobs: Sequence[tuple], *, use_ray: bool, cpus_per_job: float = 1.0,
             progress: Callable[[Sequence], Sequence] | None = None) -> list:
    """[fn(*job) for job in jobs]; with use_ray, as Ray tasks (fn must be a module-level function, its
    arguments picklable) whose results come back in job order. A job's exception is raised here."""
    if not use_ray:
        return [fn(*job) for job in (progress(jobs) if progress else jobs)]
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray / RAY_ADDRESS needs Ray: pip install 'sparsenest[sweep]'") from None
    started = not ray.is_initialized()
    if started:   # ray.init() joins RAY_ADDRESS when it is set, else starts a local runtime
        ray.init(include_dashboard=False)
    try:
        remote = ray.remote(num_cpus=cpus_per_job)(fn)
        return ray.get([remote.remote(*job) for job in jobs])
    finally:
        if started:
            ray.shutdown()
