"""`sparsenest report`'s command line: options, errors as one line, and the short summary it prints."""
from __future__ import annotations

from typing import Mapping, Sequence

from .calibration_samples import DEFAULT_SAMPLES
from .render import pct as _pct, tag as _t
from .write import build_report

def add_arguments(ap) -> None:
    """`sparsenest report`'s options (the command runs run())."""
    from sparsenest import cli_args as arg
    ap.add_argument("target", help="build directory (model_meta.json), a directory with host/, or a bundle")
    arg.add_output(ap, type=arg.output_dir, help="report directory (default: <build>/report)")
    ap.add_argument("--bundle", default=None, help="the bundle, when the build's recorded path is not found")
    ap.add_argument("--samples", action="append", type=arg.input_file, default=None,
                    help="cycle_samples.json to calibrate on (repeatable; default: "
                         + ", ".join(DEFAULT_SAMPLES) + " when present)")
    ap.add_argument("--no-samples", action="store_true", help="calibrate on this model's simulation only")
    ap.add_argument("--no-sim", action="store_true", help="do not run the model in the MSP430 simulator")
    ap.add_argument("--kernels", default="mpy32,ref", help="kernel back-ends to simulate and predict")
    ap.add_argument("--sim-inputs", type=arg.count, default=2, help="test images per level in the simulator")
    ap.add_argument("--eval", type=_eval_arg, default="test",
                    help="test images for accuracies the build lacks: N or 'test' (default: all)")
    ap.add_argument("--platform", type=arg.input_file, default=None, help="platform TOML (default: msp430fr5994)")
    ap.add_argument("--trace", default="solar", help="harvested-power trace (shipped name or CSV)")
    ap.add_argument("--capacitor", type=arg.positive_float, default=0.047, help="storage capacitor in farads")
    ap.add_argument("--harvest-hours", type=arg.positive_float, default=None, help="simulate only the first N hours")
    ap.add_argument("--format", default="auto", help="format when the target is a bundle")
    ap.add_argument("--no-html", action="store_true", help="write report.md and report.json only")
    ap.add_argument("--force", action="store_true", help="replace an earlier report in the output directory")


def run(a) -> int:
    """`sparsenest report`: the energy and latency report of a compiled model."""
    samples = [] if a.no_samples else a.samples
    bad = [k for k in a.kernels.split(",") if k and k not in ("mpy32", "ref")]
    if bad:
        raise ValueError(f"--kernels: unknown back-end(s) {bad}; choose from mpy32, ref")
    rep = build_report(a.target, a.out, bundle=a.bundle, samples=samples, simulate=not a.no_sim,
                       kernels=[k for k in a.kernels.split(",") if k], sim_inputs=a.sim_inputs,
                       eval_images=a.eval, platform=a.platform, trace=a.trace, capacitor_f=a.capacitor,
                       harvest_hours=a.harvest_hours, fmt=a.format, html=not a.no_html, force=a.force)
    print(summary(rep))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from sparsenest.cli import run_command
    return run_command("report", argv)


def _eval_arg(text: str):
    from sparsenest.cli_args import count
    return text if text == "test" else count(text)


def summary(rep: Mapping) -> str:
    lines = [f"{rep['model']['name']}: {rep['calibration']['label']}"]
    for lv in rep["levels"]:
        c = lv["cpu"]
        lines.append(f"  L{lv['level']} sparsity {_pct(lv['sparsity']['value'])}, Q15 {_pct(lv['q15_accuracy']['value'], 2)}, "
                     f"{c['latency_ms']['value']:.1f} ms / {c['energy_uj']['value']:.0f} µJ [{_t(c['latency_ms'])}], "
                     f"LEA est. {lv['lea_estimate']['energy_uj']['value']:.0f} µJ")
    for v in rep["calibration"]["validation"]:
        if v["error_held_out"] is not None:
            lines.append(f"  {v['kernels']} L{v['level']}: predicted (held out) vs simulated {100 * v['error_held_out']:+.1f} %")
    cp = rep["harvest"]["comparison"]
    lines.append(f"  harvest: energy-aware {cp['extra_vs_densest']:+,} inferences vs fixed densest, "
                 f"{cp['accuracy_cost_vs_densest_pp']:.2f} pp expected accuracy")
    return "\n".join(lines)
