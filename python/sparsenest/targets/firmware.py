"""Firmware for a compiled model: build it for the MSP430FR5994 (or mspdebug's simulator), run it in
the simulator, compare every result with the golden integer model, check and flash it.

    from sparsenest.targets import firmware
    fw = firmware.build("build/lenet5", image="sim")            # model dir from `sparsenest compile`
    run = firmware.simulate(fw)                                   # every scheduled step, with counts
    firmware.compare_golden(fw, run).raise_on_mismatch()          # bit-exact against golden.predict
    fw = firmware.build("build/lenet5")                           # the chip: ELF, HEX, size report
    msp430.flash_check(fw.elf); msp430.flash(fw.elf)

    sparsenest firmware build  build/lenet5 [--board msp430fr5994] [--kernels mpy32|ref]
    sparsenest firmware sim    build/lenet5 [--layers] [--inputs 4]
    sparsenest firmware flash-check build/lenet5
    sparsenest firmware flash  build/lenet5

The firmware is the application in boards/msp430fr5994/app (see sn_app.h) + the generated model.c +
runtime_c/src + one kernel per format the model uses, from runtime_c/kernels (reference C, ``--kernels
ref``) or runtime_c/kernels_mpy32 (the same functions on the MPY32 multiply-accumulate registers, the
default) + the board support (sparsenest.targets.msp430). This module writes ``app_config.h`` and
``app_data.c`` (embedded inputs, the schedule, the energy thresholds) next to the ELF.

Output directory: ``<model>/firmware/<image>-<kernels>/`` unless given: ``firmware.elf``, ``firmware.hex``,
``firmware.map``, ``firmware.size.txt`` (bytes per region: lower/upper FRAM, SRAM, LEA RAM) and
``firmware.json`` (what was embedded, for ``sim``/``flash-check`` without rebuilding).

By job: ``firmware_model`` (the compiled model, schedule, inputs), ``firmware_build`` (sources, link,
firmware.json), ``firmware_sim`` (mspdebug runs, golden comparison), ``firmware_kernels`` (the kernel
harness); this module keeps the reports and the command line and re-exports their public names.

Simulation: mspdebug's ``sim`` driver, non-interactive, breaking on the application's marker functions
(``sn_app_mark``, and ``sn_board_layer_done`` after each layer with ``layers=True``) to read the
instruction and cycle counters around every level switch, inference and layer. Cycle counts over-count
(msp430.CYCLE_NOTE); instruction counts are exact.
"""
from __future__ import annotations

import sys
from typing import Sequence

from . import msp430
# The firmware side by job; every public name stays importable from here (sparsenest.targets.firmware).
from .firmware_build import (FirmwareBuild, _check_schedule, build, default_out_dir,  # noqa: F401
                             firmware_sources, load_build)
from .firmware_kernels import KernelCase, KernelRun, build_kernel_harness, run_kernel_harness  # noqa: F401
from .firmware_model import (APP_DIR, BOARDS, DEFAULT_INPUT_SEED, ENERGY_FULL, ENERGY_NONE,  # noqa: F401
                             FIRMWARE_FORMAT, KERNEL_DIRS, MCLK_HZ, FirmwareError, GoldenMismatchError,
                             ModelDir, Step, default_inputs, default_schedule, energy_thresholds,
                             level_for_energy, load_model_dir, load_qmodel, quantize_inputs)
from .firmware_sim import (GoldenReport, SimRun, StepRecord, _attach_counts, compare_golden,  # noqa: F401
                           expected_levels, parse_results, simulate)


# ----------------------------------------------------------------------------------------------
# Reports and command line

def format_run(run: SimRun, *, mclk_hz: int = MCLK_HZ) -> str:
    """Per level: mean instructions and cycles per inference, latency at mclk_hz from the cycles."""
    lines = [f"{'level':>5} {'n':>3} {'instructions':>13} {'cycles*':>12} {'ms @ %d MHz*' % (mclk_hz // 10**6):>14}"]
    for lv, d in run.per_level().items():
        lines.append(f"{lv:>5} {d['n']:>3} {d['instructions']:>13,.0f} {d['cycles']:>12,.0f} "
                     f"{1000 * d['cycles'] / mclk_hz:>14.1f}")
    lines.append("* " + run.cycle_note)
    return "\n".join(lines)


def format_layers(run: SimRun, model: ModelDir) -> str:
    names = model.steps
    by_level: dict[int, StepRecord] = {}
    for r in run.records:
        if r.layers and r.level not in by_level:
            by_level[r.level] = r
    if not by_level:
        return ""
    levels = sorted(by_level)
    lines = [f"{'layer':<12}" + "".join(f"{'L%d instr' % lv:>12}{'cycles*':>11}" for lv in levels)]
    for i, n in enumerate(names):
        lines.append(f"{n:<12}" + "".join(f"{by_level[lv].layers[i].instructions:>12,}{by_level[lv].layers[i].cycles:>11,}"
                                          for lv in levels))
    return "\n".join(lines)


def _common_args(p):
    from .. import cli_args as arg
    p.add_argument("model", help="compiled model directory (sparsenest compile ... -o DIR)")
    p.add_argument("--board", default="msp430fr5994", choices=BOARDS, help="board folder under boards/")
    p.add_argument("--kernels", default="mpy32", choices=sorted(KERNEL_DIRS),
                   help="MPY32 multiply-accumulate kernels or the reference C kernels")
    p.add_argument("--inputs", type=arg.count, default=4, help="test images to embed")
    arg.add_output(p, help="output directory (default MODEL/firmware/IMAGE[-ref])")


def add_arguments(ap) -> None:
    """`sparsenest firmware {build,sim,flash-check,flash,size}`'s options (the command runs run())."""
    from .. import cli_args as arg
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="ELF + Intel HEX + size report by region (chip image by default)")
    _common_args(b)
    b.add_argument("--image", default="fr5994", choices=sorted(msp430.IMAGES),
                   help="fr5994: the chip image; sim: the 64 KB mspdebug simulator image")
    s = sub.add_parser("sim", help="build the simulator image, run it in mspdebug, compare with golden")
    _common_args(s)
    s.add_argument("--batches", type=arg.count, default=1,
                   help="runs with other test images loaded into the same image (load_raw)")
    s.add_argument("--layers", action="store_true", help="per-layer instruction/cycle counts")
    s.add_argument("--bundle", default=None, help="bundle for the golden model (default: the one recorded)")
    s.add_argument("--no-golden", action="store_true", help="skip the golden comparison")
    s.add_argument("--timeout", type=arg.positive_float, default=300.0, help="seconds per mspdebug run")
    for name, text in (("flash-check", "pre-flash checks of the chip image (no board needed)"),
                       ("flash", "program a LaunchPad (mspdebug tilib; see the message for the BSL way)"),
                       ("size", "bytes per memory region")):
        p = sub.add_parser(name, help=text)
        _common_args(p)


def run(a) -> int:
    """`sparsenest firmware ACTION MODEL`: build, simulate in mspdebug, check or flash a compiled model."""
    try:
        target = load_model_dir(a.model).meta.get("target")
        if target != "msp430fr5994":  # before a link that would only report overflowing regions
            raise FirmwareError(f"{a.model} was compiled for target {target!r}; compile the bundle for the chip: "
                                f"sparsenest compile BUNDLE -o DIR --target msp430fr5994")
        if a.cmd == "build":
            fb = build(a.model, a.out, image=a.image, kernels=a.kernels, board=a.board, n_inputs=a.inputs)
            print(f"ELF {fb.elf}\nHEX {fb.hex}\nsize report {fb.out_dir / 'firmware.size.txt'}")
            print(fb.size_text)
            for n in fb.notes:
                print(f"note: {n}")
        elif a.cmd == "sim":
            return _cmd_sim(a)
        elif a.cmd in ("flash-check", "flash", "size"):
            fb = build(a.model, a.out, image="fr5994", kernels=a.kernels, board=a.board, n_inputs=a.inputs)
            if a.cmd == "size":
                print(fb.size_text)
            elif a.cmd == "flash-check":
                rep = msp430.flash_check(fb.elf, raise_on_error=False)
                print(rep)
                for seg in rep.segments:
                    print(f"  segment 0x{seg[0]:05X} {seg[1]:>6} bytes  {', '.join(seg[2])}")
                print(f"  loads and verifies in the simulator: {rep.verified_in_sim}")
                return 0 if rep.ok else 1
            else:
                print(msp430.flash(fb.elf))
    except (FirmwareError, msp430.ToolchainError, msp430.BuildError, msp430.SimError, msp430.FlashError,
            GoldenMismatchError) as e:  # a build or run that failed (exit 1), not a bad argument (exit 2)
        from ..cli_args import one_line
        print(f"sparsenest firmware {a.cmd}: error: {one_line(e)}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("firmware", argv)


def _cmd_sim(a) -> int:
    model = load_model_dir(a.model)
    fb = build(model, a.out, image="sim", kernels=a.kernels, board=a.board, n_inputs=a.inputs)
    print(f"simulator image {fb.elf} ({a.kernels} kernels)")
    print(fb.size_text)
    qm = None if a.no_golden else load_qmodel(model, a.bundle)
    status = 0
    for k in range(a.batches):
        inputs = None
        if k:
            x, _ = default_inputs(model, len(fb.inputs_q), offset=1000 * k)
            inputs = x
        run = simulate(fb, inputs=inputs, layers=a.layers, timeout_s=a.timeout)
        print(f"\nrun {k + 1}/{a.batches}: {len(run.records)} steps, exit code {run.exit_code}, "
              f"stack used {run.stack_used} bytes, {run.instructions:,} instructions in all")
        print(format_run(run))
        if a.layers:
            print(format_layers(run, model))
        if qm is not None:
            rep = compare_golden(fb, run, qm)
            if rep.ok:
                print(f"golden: all {rep.compared} steps bit-identical (every level, after every switch)")
            else:
                status = 1
                print(f"golden: {len(rep.mismatches)} of {rep.compared} steps DIFFER")
                for m in rep.mismatches[:10]:
                    print(f"  {m}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())

