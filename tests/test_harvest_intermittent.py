"""The harvest model with intermittent execution: a brown-out keeps the committed units of work and
the inference resumes after the next boot (analysis/harvest_sim.py `units`), what a brown-out loses
(unit_ends), the resuming policy, and the comparison table (analysis/harvest_intermittent.py)."""
import numpy as np
import pytest

from sparsenest.analysis import harvest, harvest_intermittent as hi
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


def test_measured_unit_profile_sets_what_a_brownout_loses():
    """With constant power every power cycle draws the same energy, so where the unit commits fall
    decides what each brown-out loses: equal units and a measured profile give different counts, and
    a profile of equal fractions gives exactly the equal-units result. A unit dearer than what one
    charge delivers never commits: that inference never completes."""
    trace = Trace(np.array([0.0, 60.0]), np.array([1e-3, 1e-3]), "const1mW")
    base = {"energy_uj": 683.5, "time_us": 120_147.0, "accuracy": 0.9, "units": 16}
    equal = make_costs([base])
    same = make_costs([{**base, "unit_ends": [(i + 1) / 16 for i in range(16)]}])
    skewed, stuck = (make_costs([{**base, "unit_ends": [f + (1 - f) * (i + 1) / 16 for i in range(16)]}])
                     for f in (0.05, 0.3))    # first unit 0.11 / 0.34 of 683 uJ; a charge gives ~0.3
    r = {k: simulate(trace, Capacitor(47e-6), c, FixedPolicy(1), record=False)
         for k, c in (("equal", equal), ("same", same), ("skewed", skewed))}
    assert simulate(trace, Capacitor(47e-6), stuck, FixedPolicy(1), record=False).total == 0
    assert r["equal"].completed == r["same"].completed and r["equal"].energy_j == r["same"].energy_j
    assert (r["equal"].total, r["skewed"].total) == (72, 82)     # 4 vs 3.5 power cycles per inference
    for x in r.values():
        assert abs(x.balance_error_j()) < 1e-9 and x.total > 0
    assert harvest.unit_bounds(skewed, [16])[0][:2] == [0.0, pytest.approx(0.05 + 0.95 / 16)]


def test_costs_units_schema():
    lv = {"energy_uj": 10.0, "time_us": 100.0, "accuracy": 0.5}
    assert make_costs([lv]).units is None
    assert make_costs([{**lv, "units": 3, "unit_ends": [0.2, 0.2, 1.0]}]).units == [3]
    for bad, msg in (([{**lv, "units": 2}, lv], "every level"), ([{**lv, "units": 0}], "units"),
                     ([{**lv, "units": 2, "unit_ends": [0.5]}], "unit_ends"),
                     ([{**lv, "units": 2, "unit_ends": [0.6, 0.5]}], "unit_ends"),
                     ([{**lv, "unit_ends": [1.0]}], "unit_ends")):
        with pytest.raises(ValueError, match=msg):
            make_costs(bad)
    c = make_costs([{**lv, "units": 2, "unit_ends": [0.5, 1.0]}])
    assert make_costs(c.to_dict()["levels"]).levels == c.levels       # the JSON form keeps both


def test_resuming_policy_runs_sparsest_instead_of_sleeping():
    costs = make_costs(LEVELS)
    cap = Capacitor(47e-6)
    cont, res = harvest.parse_policy("energy"), harvest.parse_policy("energy+resume")
    assert isinstance(res, harvest.ResumingEnergyPolicy) and res.name == "energy+resume:auto"
    cont.prepare(costs, cap)
    res.prepare(costs, cap)
    # 47 uF cannot hold one inference: the continuous policy sleeps, the resuming one runs level 1
    assert cont.decide(cap.v_on, 2) == harvest.SLEEP and res.decide(cap.v_on, 2) == 1
    trace = Trace(np.array([0.0, 1800.0]), np.array([1e-3, 1e-3]), "const1mW")
    r = simulate(trace, cap, costs, res, record=False, units=UNITS)
    assert r.total > 100 and r.sleep_time_s == 0


def test_table_and_plot(tmp_path):
    cont = make_costs(LEVELS)
    inter = make_costs([{**lv, "energy_uj": lv["energy_uj"] * 1.1, "units": 43} for lv in LEVELS])
    rows = hi.compare(cont, inter, traces=("onoff",), caps_uf=(47, 1000), t_end=1200.0)
    assert len(rows) == 2 * 3 * 2 and all(abs(r["balance_error_j"]) < 1e-9 for r in rows)
    by = {(r["capacitor_uf"], r["policy"], r["mode"]): r for r in rows}
    # 8 mW on, nothing off: each brown-out loses a whole inference continuous, one unit intermittent
    c, i = by[(47, "fixed-densest", "continuous")], by[(47, "fixed-densest", "intermittent")]
    assert c["brownouts"] > 0 and i["lost_mj"] < 0.1 * c["lost_mj"]
    assert by[(47, "energy-aware", "intermittent")]["per_hour"] > by[(47, "energy-aware", "continuous")]["per_hour"]
    paths = hi.write(rows, cont, inter, tmp_path)
    assert "per hour" in paths["md"].read_text() and paths["png"].stat().st_size > 10_000
    with pytest.raises(ValueError, match="continuous build"):
        hi.compare(inter, cont)


def test_cli_runs_an_intermittent_build_across_power_cycles(tmp_path, capsys):
    path = tmp_path / "costs.json"
    make_costs([{**lv, "units": 43} for lv in LEVELS]).save(path)
    assert harvest.main(["--costs", str(path), "--trace", "constant", "--capacitor", "47e-6",
                         "--policy", "compare", "--duration", "600"]) == 0
    out = capsys.readouterr().out
    assert "energy+resume:auto" in out and "resumes after a brown-out" in out
    assert harvest.main(["--costs", str(path), "--trace", "constant", "--capacitor", "47e-6",
                         "--policy", "fixed:1", "--duration", "600", "--no-resume"]) == 0
    out = capsys.readouterr().out
    assert "inferences completed 0 " in out and "--no-resume" in out


def test_trace_window():
    t = harvest.shipped_trace("solar")
    w = t.window(7 * 3600.0 + 30, 7 * 3600.0 + 150)
    assert w.start == 0 and w.end == 120 and w.energy() == pytest.approx(t.energy(7 * 3600.0 + 30, 7 * 3600.0 + 150))
    with pytest.raises(ValueError, match="window"):
        t.window(-1, 10)
