"""`make demo`: the main job on the default model and data set, start to finish.

train a three-level nested LeNet-5 on MNIST -> check each level's ONNX export against onnxruntime ->
analyze index overhead -> compile to C -> simulate every level on the host board -> build the MSP430
firmware -> calibrate the cycle model in the MSP430 simulator -> energy/latency report.
Outputs land in build/demo/ (the report in build/demo/report/report.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _stage(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.time()


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="build/demo")
    p.add_argument("--quick", action="store_true", help="1+1 epochs on 10k images (a smoke run)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()

    from ..bundle import Bundle
    from ..train.nested import TrainConfig
    from ..train.loop import level_table, train_to_bundle
    bundle_path = out / "lenet5.nest"
    t = _stage("1. train a nested LeNet-5 on MNIST (levels 90% / 75% / 50% sparse, joint mode)")
    if bundle_path.exists():
        print(f"reusing {bundle_path} (delete it to retrain)")
        bundle = Bundle.load(bundle_path)
    else:
        cfg = TrainConfig(epochs_dense=1, epochs_retrain=1) if a.quick else TrainConfig()
        bundle = train_to_bundle(bundle_path, cfg=cfg, train_limit=10000 if a.quick else None)
    print(level_table(bundle))
    print(f"[{time.time() - t:.0f} s]")

    t = _stage("2. export every level to ONNX and check it against onnxruntime")
    diffs = check_onnx(bundle, out / "onnx")
    print("max |pytorch - onnxruntime| per level: " + ", ".join(f"{d:.2e}" for d in diffs))
    print(f"[{time.time() - t:.0f} s]")

    from ..compiler import analyze
    t = _stage("3. index overhead per layer and format")
    table = analyze.format_table(analyze.analyze_bundle(bundle))
    (out / "analysis.txt").write_text(table)
    print(table)
    print(f"[{time.time() - t:.0f} s]")

    from ..compiler.build import compile_bundle
    from ..data.calibration import calibration_inputs, evaluation_set
    from ..targets.host import simulate_accuracy
    t = _stage("4. compile to Q15 C (staged switching) and run every level on the host board")
    calib = calibration_inputs(bundle)
    # build/demo is the demo's own: a rerun replaces its builds
    info = compile_bundle(bundle, out / "host", target="host", switching="staged", calib=calib,
                          evaluate=evaluation_set, force=True)
    sim = simulate_accuracy(out / "host", dataset=bundle.dataset["name"])
    print("level  float acc  Q15 golden  C on host board")
    for lv in info["meta"]["levels"]:
        k = lv["level"]
        print(f"{k:>5}  {lv['float_accuracy']:9.2%}  {lv['q15_accuracy']:10.2%}  {sim[k]['accuracy']:15.2%}")
    print(f"[{time.time() - t:.0f} s]")

    from ..targets import firmware, msp430
    t = _stage("5. MSP430FR5994 firmware: compile for the chip, link, size by region, pre-flash checks")
    chip = out / "msp430fr5994"
    compile_bundle(bundle, chip, target="msp430fr5994", switching="resident", calib=calib, force=True)
    fw = firmware.build(chip)
    print(fw.size_text)
    check = msp430.flash_check(fw.elf, raise_on_error=False)
    print(f"ELF {fw.elf}\nHEX {fw.hex}\nflash-check: {'ok' if check.ok else 'FAILED'}; "
          f"image loads and verifies in the simulator: {check.verified_in_sim}")
    print("(full LeNet-5 needs upper FRAM, which the 64 KB simulator lacks: `make sim` runs LeNet-5-small "
          "instruction by instruction and compares it with the golden model)")
    print(f"[{time.time() - t:.0f} s]")

    samples = Path("build/bench/mcu/cycle_samples.json")
    if not samples.exists():
        from .bench import mcu
        t = _stage("6. calibrate the cycle model: LeNet-5-small instruction by instruction in mspdebug")
        mcu.main(["--no-lenet5"])
        print(f"[{time.time() - t:.0f} s]")

    from ..analysis import report
    t = _stage("7. energy and latency report")
    report.main([str(out), "-o", str(out / "report"), "--force"])  # the demo's own folder
    print(f"[{time.time() - t:.0f} s]")

    print(f"\ndemo finished in {time.time() - t_start:.0f} s; outputs in {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
