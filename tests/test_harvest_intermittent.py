"""The harvest model with intermittent execution: a brown-out keeps the committed units of work and
the inference resumes after the next boot (analysis/harvest.py `units`), and the comparison table
built from simulator-measured costs (analysis/harvest_intermittent.py)."""
import numpy as np
import pytest

from sparsenest.analysis import harvest_intermittent as hi
from sparsenest.analysis.harvest import Capacitor, FixedPolicy, Trace, make_costs, simulate

LEVELS = [{"energy_uj": 900.0, "time_us": 159_000.0, "accuracy": 0.97},
          {"energy_uj": 2400.0, "time_us": 424_000.0, "accuracy": 0.99}]
UNITS = [43, 43]


def test_small_capacitor_completes_only_with_intermittent_execution():
    """47 uF holds ~171 uJ between V_on and V_off, a fifth of the sparsest inference: the continuous
    device never completes one; the intermittent one does, spanning several power cycles. The energy
    balance holds, only the interrupted unit's energy is lost per brown-out, and the committed
    inference energy is the completed inferences plus the part of the one still running."""
    costs = make_costs(LEVELS)
    trace = Trace(np.array([0.0, 1800.0]), np.array([1e-3, 1e-3]), "const1mW")
    cap = Capacitor(47e-6)
    assert cap.usable_j < 0.25 * LEVELS[0]["energy_uj"] * 1e-6
    cont = simulate(trace, cap, costs, FixedPolicy(1), record=False)
    inter = simulate(trace, cap, costs, FixedPolicy(1), record=False, units=UNITS)
    assert cont.total == 0 and cont.n_brownouts > 100
    assert inter.total > 100 and inter.n_brownouts >= 4 * inter.total
    for r in (cont, inter):
        assert abs(r.balance_error_j()) < 1e-9
    unit_j = LEVELS[0]["energy_uj"] * 1e-6 / UNITS[0]
    assert inter.energy_j["lost"] <= inter.n_brownouts * unit_j * (1 + 1e-9)
    frac = inter.energy_j["inference"] / (LEVELS[0]["energy_uj"] * 1e-6) - inter.total
    assert -1e-9 <= frac < 1


def test_large_capacitor_same_as_continuous():
    """When no brown-out hits an inference, intermittent bookkeeping changes nothing."""
    costs = make_costs(LEVELS)
    trace = Trace(np.array([0.0, 600.0]), np.array([20e-3, 20e-3]), "const20mW")
    cap = Capacitor(1e-3, v_init=3.3)
    a = simulate(trace, cap, costs, FixedPolicy(2), record=False)
    b = simulate(trace, cap, costs, FixedPolicy(2), record=False, units=UNITS)
    assert a.n_brownouts == 0 and a.completed == b.completed and a.energy_j == b.energy_j


def test_costs_from_bench_and_table():
    bench = {"models": {"m": {"variants": [
        {"variant": "continuous", "intermittent": None,
         "per_level": {"1": {"cycles": 3.9e6, "fram_bytes_written": 6272},
                       "2": {"cycles": 5.6e6, "fram_bytes_written": 6272}}},
        {"variant": "auto", "intermittent": {"units": 43},
         "per_level": {"1": {"cycles": 4.2e6, "fram_bytes_written": 11662},
                       "2": {"cycles": 6.0e6, "fram_bytes_written": 11664}}}]}}}
    cont, u0 = hi.costs_from_bench(bench, "m", "continuous", [0.9, 0.95])
    inter, units = hi.costs_from_bench(bench, "m", "auto", [0.9, 0.95])
    assert u0 is None and units == [43, 43]
    assert inter.level(1).energy_uj > cont.level(1).energy_uj and cont.level(2).accuracy == 0.95
    rows = hi.compare(cont, inter, units, traces=("onoff",), caps_uf=(47, 1000), t_end=1200.0)
    assert len(rows) == 2 * 3 * 2 and all(abs(r["balance_error_j"]) < 1e-9 for r in rows)
    by = {(r["capacitor_uf"], r["policy"], r["mode"]): r for r in rows}
    # 8 mW on, nothing off: each brown-out loses a whole inference continuous, one unit intermittent
    c, i = by[(47, "fixed-densest", "continuous")], by[(47, "fixed-densest", "intermittent")]
    assert c["brownouts"] == i["brownouts"] > 0 and i["lost_mj"] < 0.1 * c["lost_mj"]
    assert "per hour" in hi.format_rows(rows)
    with pytest.raises(ValueError, match="no variant"):
        hi.costs_from_bench(bench, "m", "row")
