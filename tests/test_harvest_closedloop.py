"""Closed loop: our MSP430FR5994 simulator, powered by a trace through a capacitor, completes the same
number of inferences as the event-driven harvest model given the costs measured in that simulator
(analysis.harvest_measure, analysis.harvest_closedloop). HAR-Net-small, intermittent build, 47 uF: an
inference needs several power cycles, so resuming, the boot and the lost part of each interrupted
unit all count. `make bench-harvest` runs the same on LeNet-5-small over a longer solar window."""
import numpy as np

from sparsenest import data
from sparsenest.analysis import harvest_closedloop, harvest_measure
from sparsenest.compiler.build import compile_bundle
from sparsenest.energy_store import Capacitor, Trace
from test_intermittent import har_bundle


def test_device_and_event_model_count_the_same_inferences(tmp_path):
    x = data.load("har", "test").subset(101, seed=2).x
    info = compile_bundle(har_bundle(), tmp_path / "m", target="msp430fr5994", build=False, calib=x[:100],
                          intermittent=True, checkpoint="auto")
    costs, detail = harvest_measure.measure(tmp_path / "m", tmp_path / "fw", inputs=x[100:], qmodel=info["qmodel"],
                                            poll_cycles=256)
    units = info["meta"]["intermittent"]["units"]
    assert costs.units == [units] * costs.n_levels
    for lv in costs.levels:     # a measured profile: nondecreasing, ends at the last commit
        assert len(lv.unit_ends) == units and lv.unit_ends == sorted(lv.unit_ends) and lv.unit_ends[-1] > 0.95
    assert costs.level(1).energy_uj < costs.level(3).energy_uj and detail["startup_cycles"] > 0
    assert costs.boot_uj > 0.3                    # reset charge + the measured start-up
    trace = Trace(np.array([0.0, 10.0]), np.array([1e-3, 1e-3]), "const1mW")
    cap = Capacitor(22e-6)                        # ~80 uJ a charge: under a quarter of a level-1 inference
    assert cap.usable_j < 0.5 * costs.level(1).energy_uj * 1e-6
    fb = harvest_closedloop.device_firmware(tmp_path / "m", tmp_path / "loop", level=1)
    r = harvest_closedloop.compare(fb, costs, 1, trace, cap, 3.0)
    assert r["device"] >= 3 and r["device_failures"] >= 3 * r["device"]
    assert abs(r["device"] - r["model"]) <= max(1, 0.05 * r["device"]), r
    assert abs(r["device_failures"] - r["model_brownouts"]) <= max(1, 0.05 * r["device_failures"]), r


def test_device_supply_turns_on_when_the_trace_charges_it_to_v_on():
    """fr5994power's charging (no device code runs: a stand-in halts at once): the supply reaches V_on
    within 0.1 ms of the exact instant, on a step of the trace and on a ramp."""
    from sparsenest.analysis.cost import load_platform
    from sparsenest.targets import fr5994power
    from sparsenest.targets.fr5994sim import Stop

    class Halting:
        platform, regs = load_platform(), [0]

        class counters:
            cycles = 0

        def run(self, until, max_cycles):
            return Stop("halt", 0)

        def energy_j(self, c=None):
            return 0.0

    cap = Capacitor(47e-6)
    e_on = cap.energy(cap.v_on)
    step = Trace(np.array([0.0, 5.0, 5.0, 10.0]), np.array([0.0, 0.0, 8e-3, 8e-3]), "step")
    ramp = Trace(np.array([0.0, 100.0]), np.array([0.0, 1e-3]), "ramp")
    for trace, exact in ((step, 5.0 + e_on / 8e-3), (ramp, np.sqrt(2 * e_on / 1e-5))):
        r = fr5994power.run_intermittent(Halting(), trace=trace, capacitor=cap)
        assert exact <= r.off_time_s <= exact + 1e-4, (trace.name, r.off_time_s, exact)
