"""The seed report's Table 2 numbers, stated once as data (experiments/seed_table2.toml) and read here by
the experiment tasks, the report and the benchmarks."""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass

from .paths import PACKAGE_DIR

SEED_TABLE2 = PACKAGE_DIR / "experiments" / "seed_table2.toml"


@dataclass(frozen=True)
class SeedRow:
    """One row block of the seed report's Table 2 (levels sparsest first)."""
    model: str
    dataset: str
    sparsity: tuple[float, ...]
    accuracy: tuple[float, ...]
    latency_s: tuple[float, ...]


@functools.cache
def seed_rows() -> dict[str, SeedRow]:
    """Task key ("lenet5", "harnet", "okgnet", "squeezenext") -> its row block."""
    raw = tomllib.loads(SEED_TABLE2.read_text())
    return {key: SeedRow(t["model"], t["dataset"], tuple(t["sparsity"]), tuple(t["accuracy"]), tuple(t["latency_s"]))
            for key, t in raw.items()}
