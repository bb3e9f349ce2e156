"""`sparsenest bench lea`'s parts that need no simulator: the seeded nested block masks of every task
(kernel rows of the convolutions, nested levels at the seed report's sparsities) and the report of a run
in which a build did not fit the chip."""
from __future__ import annotations

import numpy as np
import pytest

from sparsenest.experiments.bench import lea
from sparsenest.seed import seed_rows


@pytest.mark.parametrize("task", ["harnet", "okgnet"])
def test_seeded_masks_prune_kernel_rows_nested_at_the_seed_sparsities(task):
    sp = seed_rows()[task].sparsity
    b = lea.seeded_block_bundle(sp, task)
    assert b.dataset["name"] == {"harnet": "har", "okgnet": "speech_commands"}[task]
    intro = {k: np.asarray(v) for k, v in b.intro.items()}
    for key, it in intro.items():
        if it.ndim >= 3:        # a convolution: every kernel row is one block, one intro level
            rows = it.reshape(-1, it.shape[-1])
            assert np.all(rows.min(axis=1) == rows.max(axis=1)), key
        for lv, s in enumerate(sp, 1):   # each layer at each level's sparsity, to within one block
            kept = float(((it >= 1) & (it <= lv)).mean())
            block = np.prod(lea.seeded_block("", it.shape)) / it.size
            assert abs((1 - kept) - s) <= block + 1e-9, (key, lv)


def test_report_names_a_build_that_did_not_fit_and_keeps_the_other():
    level = {"cycles": 1.6e6, "ms": 100.0, "energy_uj": 900.0, "lea_cycles": 1e6, "dma_cycles": 1e4,
             "lea_calls": 700, "lea_ops": 2e5, "lea_bound_cycles": 1e6, "ratio_to_bound": 1.6,
             "layers": {"c1": {"kind": "lea conv", "cycles": 1.6e6, "lea_cycles": 1e6, "dma_cycles": 1e4,
                               "wait_cycles": 0, "cpu_cycles": 5.9e5, "lea_calls": 700}}}
    r = {"task": "harnet", "weights": "seeded", "seed": {"sparsity": [0.24], "latency_s": [0.66]},
         "builds": {"cpu": {"engine": "cpu", "error": "lower FRAM overflowed by 12 bytes"},
                    "lea": {"engine": "lea", "per_level": {"1": level}, "sparsities": [0.24],
                            "layer_engines": ["  c1: lea"]}}}
    text = lea.format_report(r)
    assert "cpu        not built: lower FRAM overflowed by 12 bytes" in text
    assert "target 5x below the seed report's latency at every level: met" in text   # 100 ms <= 132 ms
    level["ms"] = 140.0
    assert "NOT met at level(s) 1" in lea.format_report(r)
