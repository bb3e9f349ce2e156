"""The nesting contract, stated once: a weight's `intro` value is the first (sparsest) level that keeps
it, 1..L, or 0 for never kept. Level k therefore keeps exactly the weights with 1 <= intro <= k, and
every level keeps what the sparser ones keep (the bundle, trainer, compiler and C runtime all rely on it).
"""
from __future__ import annotations


def level_mask(intro, level: int):
    """Which weights level `level` keeps: a boolean array (numpy) or tensor (torch) shaped like intro."""
    return (intro >= 1) & (intro <= level)
