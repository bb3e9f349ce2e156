"""Experiments: task recipes, the demo, the benchmarks (bench/), `sparsenest sweep` on Ray Tune and the Ray
fan-out of the tables."""
