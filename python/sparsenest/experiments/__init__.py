"""Experiments that run many trainings: `sparsenest sweep` (Ray Tune) and Ray fan-out of the tables."""
