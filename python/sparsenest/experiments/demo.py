"""`make demo` / `sparsenest demo`: the main job on the default model and data set, start to finish.

train a three-level nested LeNet-5 on MNIST -> check each level's ONNX export against onnxruntime ->
analyze index overhead -> compile to C -> simulate every level on the host board -> build the MSP430
firmware -> calibrate the cycle model in the MSP430 simulator -> energy/latency report.
Every output lands in build/demo/ (-o; the report in build/demo/report/report.md); each stage's time is
printed. The default budget trains LeNet-5 for 2+2 epochs on 20,000 images (recipe lenet5-demo);
--full trains the full-size recipe (lenet5: 6+6 epochs on all 55,000 training images).
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (gcc, clang, mspdebug): on a shared machine
    the wall time says little, the CPU time what the demo costs."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Stages:
    """Numbered stages, each timed (wall and CPU); the table at the end says where the minutes went."""

    def __init__(self):
        self.times: list[tuple[str, float, float]] = []
        self._title, self._t0, self._c0 = None, 0.0, 0.0

    def start(self, title: str) -> None:
        self.stop()
        self._title, self._t0, self._c0 = f"{len(self.times) + 1}. {title}", time.time(), _cpu_s()
        print(f"\n=== {self._title} ===", flush=True)

    def stop(self) -> None:
        if self._title is not None:
            dt, dc = time.time() - self._t0, _cpu_s() - self._c0
            self.times.append((self._title, dt, dc))
            print(f"[{dt:.0f} s, {dc:.0f} s CPU]", flush=True)
            self._title = None

    def table(self) -> str:
        self.stop()
        width = max(len(t) for t, _, _ in self.times)
        return "\n".join(f"  {t:<{width}}  {dt:6.0f} s  {dc:6.0f} s CPU" for t, dt, dc in self.times)


def _run(argv: list[str]) -> None:
    """A sparsenest command as part of the demo; its failure stops the demo."""
    from ..cli import main
    if main(argv) != 0:
        raise RuntimeError(f"`sparsenest {' '.join(argv)}` failed (see above)")


def check_onnx(bundle, out_dir: Path, n: int = 256) -> list[float]:
    """Each level's ONNX export vs the PyTorch model on real test images: max |difference|."""
    import onnxruntime as ort
    import torch

    from .. import data
    from ..interop.onnx_export import export_level, rebuild_model
    x = data.load(bundle.dataset["name"], "test").x[:n]
    diffs = []
    for lv in range(1, bundle.n_levels + 1):
        path = export_level(bundle, lv, out_dir / f"level{lv}.onnx")
        ref = rebuild_model(bundle, lv)(torch.from_numpy(x)).detach().numpy()
        got = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
        diffs.append(float(np.abs(ref - got).max()))
    return diffs


def add_arguments(p) -> None:
    from .. import cli_args as arg
    arg.add_output(p, default="build/demo", help="folder for every output of the demo")
    p.add_argument("--full", action="store_true",
                   help="full-size LeNet-5 training (6+6 epochs on all 55,000 training images) instead of the "
                        "5-minute budget (2+2 epochs on 20,000)")
    p.add_argument("--quick", action="store_true", help="1+1 epochs on 10,000 images (a smoke run)")


def run(a) -> int:
    from ..bundle import Bundle
    from ..train.loop import level_table
    from .recipes import RECIPES, ensure_bundle, train_recipe
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start, st = time.time(), Stages()
    recipe = "lenet5" if a.full else "lenet5-demo"
    bundle_path = out / "lenet5.nest"
    st.start(f"train a nested LeNet-5 on MNIST: {RECIPES[recipe].describe()}")
    if bundle_path.exists():
        print(f"reusing {bundle_path} (delete it to retrain)")
        bundle = Bundle.load(bundle_path)
    elif a.quick:
        from ..train.loop import train_to_bundle
        from ..train.nested import TrainConfig
        bundle = train_to_bundle(bundle_path, cfg=TrainConfig(epochs_dense=1, epochs_retrain=1), train_limit=10000)
    else:
        bundle = train_recipe(recipe, bundle_path)
    print(level_table(bundle))

    st.start("export every level to ONNX and check it against onnxruntime")
    diffs = check_onnx(bundle, out / "onnx")
    print("max |pytorch - onnxruntime| per level: " + ", ".join(f"{d:.2e}" for d in diffs))

    from ..compiler import analyze
    st.start("index overhead per layer and format")
    table = analyze.format_table(analyze.analyze_bundle(bundle))
    (out / "analysis.txt").write_text(table)
    print(table)

    from ..compiler.build import compile_bundle
    from ..data.calibration import calibration_inputs, evaluation_set
    from ..targets.host import simulate_accuracy
    st.start("compile to Q15 C (staged switching) and run every level on the host board")
    calib = calibration_inputs(bundle)
    # build/demo is the demo's own: a rerun replaces its builds
    info = compile_bundle(bundle, out / "host", target="host", switching="staged", calib=calib,
                          evaluate=evaluation_set, force=True)
    sim = simulate_accuracy(out / "host", dataset=bundle.dataset["name"])
    print("level  float acc  Q15 golden  C on host board")
    for lv in info["meta"]["levels"]:
        k = lv["level"]
        print(f"{k:>5}  {lv['float_accuracy']:9.2%}  {lv['q15_accuracy']:10.2%}  {sim[k]['accuracy']:15.2%}")

    from ..targets import firmware, msp430
    st.start("MSP430FR5994 firmware: compile for the chip, link, size by region, pre-flash checks")
    chip = out / "msp430fr5994"
    compile_bundle(bundle, chip, target="msp430fr5994", switching="resident", calib=calib, force=True)
    fw = firmware.build(chip)
    print(fw.size_text)
    check = msp430.flash_check(fw.elf, raise_on_error=False)
    print(f"ELF {fw.elf}\nHEX {fw.hex}\nflash-check: {'ok' if check.ok else 'FAILED'}; "
          f"image loads and verifies in the simulator: {check.verified_in_sim}")

    samples = out / "bench-mcu" / "cycle_samples.json"
    if samples.exists():
        print(f"\nreusing the cycle samples {samples}")
    else:
        small = out / "lenet5-small.nest"
        st.start("calibrate the cycle model: LeNet-5-small's chip image in our FR5994 simulator")
        ensure_bundle(small, "lenet5-small")
        _run(["bench", "mcu", "--bundle", str(small), "-o", str(out / "bench-mcu"), "--formats", "auto",
              "--no-lenet5", "--no-mspdebug", "--no-objectives"])

    st.start("energy and latency report")
    _run(["report", str(out), "-o", str(out / "report"), "--samples", str(samples), "--force"])

    st.stop()
    print(f"\ndemo finished in {time.time() - t_start:.0f} s ({_cpu_s():.0f} s CPU); outputs in {out.resolve()}; "
          "time per stage:")
    print(st.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..cli import run_command
    return run_command("demo", argv)


if __name__ == "__main__":
    sys.exit(main())
