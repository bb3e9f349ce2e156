"""Energy-harvesting simulation: conservation, analytic cases, brown-out accounting, policies, traces, CLI."""
import json
import math

import numpy as np
import pytest

from sparsenest.analysis import harvest
from sparsenest.analysis.cost import CycleModel, load_platform, predict_inference
from sparsenest.analysis.harvest import (TRACE_DIR, Capacitor, EnergyAwarePolicy, FixedPolicy, Trace, compare_policies,
                                costs_from_predictions, load_costs, load_trace, make_costs, make_traces,
                                parse_policy, simulate)

# Illustrative LeNet-like nested levels (NOT measured; the report stage plugs in measured costs): the
# MCU draws ~5.66 mW while active at 16 MHz, so each level's time is its energy / 5.66 mW. Sparsest
# first: 90%, 75%, 50% sparse. Switching up copies delta nonzeros (staged), down writes metadata.
LEVELS = [{"energy_uj": 900.0, "time_us": 159_000.0, "accuracy": 0.975, "sparsity": 0.9},
          {"energy_uj": 1500.0, "time_us": 265_000.0, "accuracy": 0.985, "sparsity": 0.75},
          {"energy_uj": 2400.0, "time_us": 424_000.0, "accuracy": 0.990, "sparsity": 0.5}]
SWITCH_UJ = [[0, 20, 30], [1, 0, 12], [1, 1, 0]]
SWITCH_US = [[0, 3500, 5300], [200, 0, 2100], [200, 200, 0]]


@pytest.fixture(scope="module")
def costs():
    return make_costs(LEVELS, SWITCH_UJ, SWITCH_US, source="illustrative (tests/test_harvest.py)")


@pytest.fixture(scope="module")
def cap():
    return Capacitor(0.01, v_on=3.3, v_off=1.9, v_max=3.6)


@pytest.fixture(scope="module")
def solar_runs(costs, cap):
    return compare_policies("solar", cap, costs, print_table=False)


def _assert_balanced(r):
    e = r.energy_j
    assert abs(r.balance_error_j()) <= 1e-9 * e["harvested"] + 1e-12, (r.policy, r.balance_error_j())
    assert all(v >= -1e-12 for v in e.values())


# ------------------------------------------------------------------------------------------- energy

@pytest.mark.parametrize("name", ["constant", "onoff", "solar"])
def test_energy_conservation_on_every_shipped_trace(name, costs, cap, solar_runs):
    """harvested = inference + switch + sleep + boot + lost + unfinished + spilled + stored delta."""
    trace = load_trace(name)
    runs = list(solar_runs.values()) if name == "solar" else [
        simulate(trace, cap, costs, p) for p in (FixedPolicy(3), FixedPolicy(1), EnergyAwarePolicy())]
    for r in runs:
        _assert_balanced(r)
        assert r.energy_j["harvested"] == pytest.approx(trace.energy(), rel=1e-12)
        assert r.on_time_s + r.off_time_s == pytest.approx(trace.end - trace.start)
        # the inference energy is exactly the completed counts times their costs
        assert r.energy_j["inference"] == pytest.approx(
            sum(c * l["energy_uj"] * 1e-6 for c, l in zip(r.completed, LEVELS)), rel=1e-9)


def test_huge_capacitor_constant_power_gives_the_analytic_count():
    """1000 F at 3.5 V holds 6125 J: the store never limits. 1 mW for 3600 s, one level of 2000 uJ /
    0.5 s: exactly 3600 / 0.5 = 7200 inferences (the last ends exactly at the trace end), and the store
    ends at E0 - boot + 3.6 J - 7200 * 2 mJ."""
    trace = load_trace("constant")
    c = make_costs([{"energy_uj": 2000.0, "time_us": 500_000.0, "accuracy": 0.9}], boot_uj=0.306)
    big = Capacitor(1000.0, v_on=3.3, v_off=1.9, v_max=3.6, v_init=3.5)
    r = simulate(trace, big, c, FixedPolicy(1))
    assert r.completed == [7200] and r.lost_inferences == 0 and r.n_brownouts == 0
    e0 = 0.5 * 1000.0 * 3.5 ** 2
    assert r.energy_j["stored_end"] == pytest.approx(e0 - 0.306e-6 + 3.6 - 7200 * 2e-3, rel=1e-12)
    assert r.expected_accuracy == pytest.approx(0.9)
    _assert_balanced(r)


def test_brownout_accounting_constant_power_matches_closed_form(costs, cap):
    """P_h = 1 mW < P_load = 2400 uJ / 0.424 s: charge to V_on, run until V_off, lose the partial
    inference, recharge. Counts and lost energy from the closed form, cycle by cycle."""
    T, ph = 900.0, 1e-3
    trace = Trace(np.array([0.0, T]), np.array([ph, ph]), "const1mW")
    lv = LEVELS[2]
    ek, tk = lv["energy_uj"] * 1e-6, lv["time_us"] * 1e-6
    pl = ek / tk
    e_on, e_off, boot = cap.energy(cap.v_on), cap.energy(cap.v_off), costs.boot_uj * 1e-6
    t, e, done, lost, lost_e = 0.0, 0.0, 0, 0, 0.0
    while True:
        t += (e_on - e) / ph
        if t > T:
            break
        e = e_on - boot
        drain = (pl - ph) * tk
        n = math.floor((e - e_off) / drain)
        if t + n * tk > T:
            done += math.floor((T - t) / tk)
            break
        done += n
        t += n * tk
        e -= n * drain
        tau = (e - e_off) / (pl - ph)
        if t + tau > T:
            break
        t += tau
        lost += 1
        lost_e += pl * tau
        e = e_off
    r = simulate(trace, cap, costs, FixedPolicy(3))
    assert lost >= 10
    assert r.completed == [0, 0, done]
    assert r.lost_inferences == lost == r.n_brownouts
    assert r.energy_j["lost"] == pytest.approx(lost_e, rel=1e-9)
    _assert_balanced(r)


def test_brownout_accounting_on_the_onoff_trace(costs, cap):
    """Shipped on/off trace: 8 mW for 300 s of every 600 s. In each period the device boots when V
    reaches V_on, runs level 3 back to back (the store saturates at V_max since 8 mW > 5.66 mW), and
    when the power stops it drains from V_max to V_off at P_load: one brown-out per period, losing the
    inference in progress. Closed form per period."""
    trace = load_trace("onoff")
    p_on = 8e-3
    lv = LEVELS[2]
    ek, tk = lv["energy_uj"] * 1e-6, lv["time_us"] * 1e-6
    pl = ek / tk
    e_on, e_off, e_max = cap.energy(cap.v_on), cap.energy(cap.v_off), cap.energy(cap.v_max)
    done, lost_e = 0, 0.0
    for c in range(6):
        s = 600.0 * c
        t_on = s + (e_on - (0.0 if c == 0 else e_off)) / p_on
        t_b = s + 300.0 + (e_max - e_off) / pl
        n = math.floor((t_b - t_on) / tk)
        done += n
        lost_e += pl * ((t_b - t_on) - n * tk)
    r = simulate(trace, cap, costs, FixedPolicy(3))
    assert r.completed == [0, 0, done]
    assert r.lost_inferences == r.n_brownouts == r.n_boots == 6
    assert r.energy_j["lost"] == pytest.approx(lost_e, rel=1e-6)
    assert 0 < r.energy_j["lost"] / 6 < ek                    # each loss is a partial inference
    assert r.energy_j["spilled"] > 0
    _assert_balanced(r)
    # the guard-only policy never loses an inference on the same trace
    g = simulate(trace, cap, costs, FixedPolicy(3, guard=True))
    assert g.lost_inferences == 0 and g.energy_j["lost"] == 0


def test_energy_aware_beats_densest_on_solar(solar_runs):
    """Illustrative LeNet-like costs on the 24 h solar trace with a 10 mF store: the energy-aware policy
    runs the dense level when the store is near V_max (harvest exceeds spending) and sparse levels when
    energy is scarce, so it completes far more inferences than fixed-densest at a small accuracy cost,
    and never browns out mid-inference."""
    dense, sparse = solar_runs["fixed:3"], solar_runs["fixed:1"]
    aware, guarded = solar_runs["energy:auto"], solar_runs["fixed:3+guard"]
    assert aware.total > 1.3 * dense.total
    assert dense.expected_accuracy - aware.expected_accuracy < 0.015
    assert aware.expected_correct > dense.expected_correct
    assert aware.lost_inferences == 0 and dense.lost_inferences > 0
    assert aware.completed[2] > 0 and aware.completed[0] > 0 and aware.n_switches > 0
    assert sparse.total > aware.total                       # the sparsest level alone is the count ceiling
    assert guarded.total >= dense.total                     # avoiding brown-outs alone helps a little
    table = harvest.format_comparison(solar_runs)
    assert "energy:auto" in table and "E[acc]" in table


# ---------------------------------------------------------------------------------------- policies

def test_policies_parse_and_decide(costs, cap):
    assert parse_policy("fixed:2").fixed_level == 2
    assert parse_policy("fixed:3+guard").guard
    p = parse_policy("energy:2.0,2.5,3.0", hysteresis_v=0.1)
    p.prepare(costs, cap)
    assert p.decide(3.05, 1) == 2          # going up to 3 needs 3.0 + 0.1
    assert p.decide(3.15, 1) == 3
    assert p.decide(3.05, 3) == 3          # staying needs only the threshold
    assert p.decide(2.3, 3) == 1
    assert p.decide(1.95, 1) == 0          # sleep
    auto = parse_policy("energy")
    auto.prepare(costs, cap)
    assert auto.thresholds_v == sorted(auto.thresholds_v) and auto.thresholds_v[-1] < cap.v_max
    for bad in ("fixed:x", "greedy", "energy:a,b"):
        with pytest.raises(ValueError):
            parse_policy(bad)
    with pytest.raises(ValueError, match="3 thresholds"):
        parse_policy("energy:2.0,2.5").prepare(costs, cap)


# ---------------------------------------------------------------------------------- costs and traces

def test_costs_json_round_trip_and_errors(tmp_path, costs):
    path = costs.save(tmp_path / "costs.json")
    back = load_costs(path)
    assert back.to_dict() == costs.to_dict()
    d = json.loads(path.read_text())
    del d["levels"][1]["accuracy"]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="level 2 has no 'accuracy'"):
        load_costs(path)
    with pytest.raises(ValueError, match="3x3 matrix"):
        make_costs(LEVELS, [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="listed 1..L in order"):
        make_costs([{**LEVELS[0], "level": 2}])


def test_costs_from_cost_model_predictions():
    p = load_platform()
    preds = [predict_inference([{"name": "fc", "kernel_key": "linear/csr16",
                                 "counts": {"macs": m, "weight_bytes_read": 4 * m, "act_bytes_read": 2 * m,
                                            "act_bytes_written": 20, "fram_bytes_written": 0, "calls": 1}}],
                               p, CycleModel.fallback_only()) for m in (10_000, 20_000, 40_000)]
    c = costs_from_predictions(preds, [0.97, 0.98, 0.99], platform=p)
    assert [l.energy_uj for l in c.levels] == sorted(l.energy_uj for l in c.levels)
    assert "UNCALIBRATED" in c.source
    assert c.sleep_power_uw == pytest.approx(1.5) and c.boot_uj == pytest.approx(0.306)


def test_shipped_traces_regenerate_bit_identically(tmp_path):
    for path in make_traces(tmp_path):
        assert path.read_bytes() == (TRACE_DIR / path.name).read_bytes(), path.name
    readme = (TRACE_DIR / "README.md").read_text()
    assert all(n in readme for n in ("constant.csv", "onoff.csv", "solar.csv", "--make-traces"))


def test_trace_interpolation_steps_and_validation(tmp_path):
    t = load_trace("onoff")
    assert t.power(150.0) == pytest.approx(8e-3) and t.power(450.0) == 0.0
    assert t.energy() == pytest.approx(6 * 300 * 8e-3)
    ramp = Trace(np.array([0.0, 10.0]), np.array([0.0, 2.0]))
    assert ramp.energy() == pytest.approx(10.0) and ramp.energy(0, 5) == pytest.approx(2.5)
    bad = tmp_path / "bad.csv"
    bad.write_text("time,power\n0,1\n")
    with pytest.raises(ValueError, match="header"):
        load_trace(bad)
    bad.write_text("time_s,power_w\n0,1\n5,-1\n")
    with pytest.raises(ValueError, match="negative"):
        load_trace(bad)
    bad.write_text("time_s,power_w\n5,1\n0,1\n")
    with pytest.raises(ValueError, match="decreases"):
        load_trace(bad)


# -------------------------------------------------------------------------------------- plot and CLI

def test_plot_and_cli(tmp_path, costs, capsys):
    r = simulate("onoff", Capacitor(0.01), costs, EnergyAwarePolicy(), t_end=900)
    png = harvest.plot(r, tmp_path / "run.png", load_trace("onoff"))
    assert png.stat().st_size > 10_000
    cpath = costs.save(tmp_path / "costs.json")
    rc = harvest.main(["--trace", "onoff", "--costs", str(cpath), "--capacitor", "0.01", "--policy", "fixed:2",
                       "--duration", "900", "--plot", str(tmp_path / "h.png"), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "inferences completed" in out and (tmp_path / "h.png").exists()
    assert json.loads((tmp_path / "r.json").read_text())["fixed:2"]["completed"][1] > 0
    rc = harvest.main(["--trace", "onoff", "--demo", "--policy", "compare", "--duration", "600",
                       "--plot", ""])
    out = capsys.readouterr().out
    assert rc == 0 and "fixed:3+guard" in out and "illustrative" in out
    assert harvest.main(["--trace", "onoff"]) == 2     # no costs: one line, no traceback
    assert "--costs FILE is required" in capsys.readouterr().err
