"""`make bench-kernels`: the CPU/MPY32 path of this tree against a baseline git revision (default
`main`), both measured in this run on the chip image in our FR5994 simulator (FRAM wait states, DMA).

Models: full LeNet-5 (its fully connected weights stream from upper FRAM) and LeNet-5-small, each with
seeded weights and magnitude-nested masks at 90 / 75 / 50 % (cycles depend on the masks' sizes, not
their values), compiled with `--format` (default auto: the smallest format per layer). Per model and
level: cycles of one inference now and at the baseline, the ratio baseline / now, and the weight bytes
of both builds (the formats' bytes; the direct convolutions' offset tables are listed apart). Every
simulated inference is checked against the golden model of its own tree.

The baseline is the revision's python/, runtime_c/ and boards/ (`git archive`) in a temporary folder,
run by this interpreter in a subprocess; the current tree is measured the same way, so both go through
one script. Needs a git checkout.

    sparsenest bench kernels [--baseline main] [--models lenet5,lenet5-small] [-o build/bench/kernels]
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

MODELS = ("lenet5", "lenet5-small")
SPARSITIES = (0.9, 0.75, 0.5)

#: Run in a subprocess against one tree (PYTHONPATH): argv = out_dir, model, format. It uses only
#: functions that today's main also has, so a baseline from before this benchmark runs it too.
_MEASURE = r"""
import json, sys
from pathlib import Path
from sparsenest.compiler.build import compile_bundle
from sparsenest.data.calibration import calibration_inputs
from sparsenest.experiments.bench.mcu import measure_chip, seeded_bundle
from sparsenest.targets import firmware
out, model, fmt, sp = Path(sys.argv[1]), sys.argv[2], sys.argv[3], [float(v) for v in sys.argv[4].split(",")]
b = seeded_bundle(model, (1, 28, 28), "mnist", sp)
info = compile_bundle(b, out / "model", target="msp430fr5994", fmt=fmt, build=False, force=True,
                      calib=calibration_inputs)
L = int(b.n_levels)
chip = firmware.build(out / "model", out / "chip", image="fr5994", n_inputs=1,
                      schedule=[firmware.Step(0, lv) for lv in range(1, L + 1)])
per, _ = measure_chip(chip, info["qmodel"])   # raises unless every output equals golden
meta = info["meta"]
print("SN-RESULT " + json.dumps({
    "cycles": {str(lv): d["cycles_total"] for lv, d in per.items()},
    "weight_bytes": sum(lm.get("weight_bytes", 0) for lm in meta["layers"].values()),
    "offset_table_bytes": sum(a["bytes"] for a in meta["arrays"].values() if a["kind"] == "conv_offsets"),
    "layers": {n: [lm.get("format"), lm.get("conv")] for n, lm in meta["layers"].items() if lm.get("format")},
    "lower_fram_bytes": chip.regions.get("LOWER_FRAM", 0)}))
"""


class BenchError(RuntimeError):
    """The baseline cannot be built (no git checkout, unknown revision) or a measurement failed."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def baseline_tree(ref: str, dest: Path) -> str:
    """python/, runtime_c/ and boards/ of revision `ref` extracted into dest; returns its commit."""
    from ...paths import REPO_ROOT
    if REPO_ROOT is None or not (REPO_ROOT / ".git").exists():
        raise BenchError("the baseline is built from git: run from a git checkout of sparsenest")
    rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"],
                         capture_output=True, text=True)
    if rev.returncode != 0:
        raise BenchError(f"baseline revision {ref!r} not found in {REPO_ROOT}; give --baseline a branch or commit")
    commit = rev.stdout.strip()
    tar = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", "--format=tar", commit, "python", "runtime_c",
                          "boards"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(dest, filter="data")
    return commit


def same_simulator(commit: str) -> bool:
    """Whether this tree's simulator (boards/msp430fr5994/sim, its Python driver) equals the baseline's:
    each tree is measured with its own, so the ratios are the kernels' only when they are equal."""
    from ...paths import REPO_ROOT
    return subprocess.run(["git", "-C", str(REPO_ROOT), "diff", "--quiet", commit, "--", "boards/msp430fr5994/sim",
                           "python/sparsenest/targets/fr5994sim.py"]).returncode == 0


def measure_tree(tree: Path, out: Path, model: str, fmt: str) -> dict:
    """_MEASURE on `tree` (a folder with python/, runtime_c/, boards/)."""
    env = dict(os.environ, PYTHONPATH=str(tree / "python"))
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(out), model, fmt, ",".join(map(str, SPARSITIES))],
                          capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SN-RESULT ")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        why = next((ln for ln in err if "Error:" in ln), err[-1])   # the exception's line, not the linker's tail
        raise BenchError(f"measuring {model} with the tree in {tree} failed: {why}")
    return json.loads(lines[-1][len("SN-RESULT "):])


def add_arguments(p) -> None:
    from ... import cli_args as arg
    arg.add_output(p, default="build/bench/kernels", help="output folder (results.json, the builds)")
    p.add_argument("--baseline", default="main", help="git revision to compare with (default main)")
    p.add_argument("--models", default=",".join(MODELS), help="zoo models, comma-separated")
    p.add_argument("--format", default="auto", help="compile --format for both trees")


def run(a) -> int:
    from ...paths import REPO_ROOT
    t0 = time.time()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    models = [m for m in a.models.split(",") if m]
    res = {"baseline": a.baseline, "format": a.format, "sparsities": list(SPARSITIES), "models": {}}
    with tempfile.TemporaryDirectory(prefix="sn-bench-kernels-") as tmp:
        res["baseline_commit"] = baseline_tree(a.baseline, Path(tmp))
        res["same_simulator"] = same_simulator(res["baseline_commit"])
        for m in models:
            _log(f"bench kernels: {m} now ...")
            now = measure_tree(REPO_ROOT, out / m / "now", m, a.format)
            _log(f"bench kernels: {m} at {a.baseline} ({res['baseline_commit'][:10]}) ...")
            try:
                base = measure_tree(Path(tmp), out / m / "baseline", m, a.format)
            except BenchError as e:   # e.g. the baseline's image does not fit: this tree's figures still count
                _log(f"bench kernels: {e}")
                res["models"][m] = {"now": now, "baseline": {"error": str(e)}, "ratio": {}}
                continue
            res["models"][m] = {"now": now, "baseline": base,
                                "ratio": {lv: base["cycles"][lv] / now["cycles"][lv] for lv in now["cycles"]}}
    res["wall_s"] = round(time.time() - t0, 1)
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    print(format_report(res))
    return 0


def format_report(r: dict) -> str:
    lines = [f"CPU/MPY32 path, chip image in our FR5994 simulator (cycles incl. FRAM wait states and DMA), "
             f"--format {r['format']}, seeded weights, magnitude-nested {' / '.join(f'{s:.0%}' for s in r['sparsities'])}; "
             f"baseline {r['baseline']} ({r['baseline_commit'][:10]}) built in the same run"]
    if not r["same_simulator"]:
        lines.append("WARNING: the simulator differs from the baseline's: the ratios mix simulator changes")
    for m, d in r["models"].items():
        now, base = d["now"], d["baseline"]
        if "error" in base:
            lines.append(f"\n{m}: weight bytes now {now['weight_bytes']} (+{now['offset_table_bytes']} offset tables); "
                         f"the baseline failed: {base['error']}")
            lines += [f"  L{lv}    now {c:>14,.0f} cycles" for lv, c in now["cycles"].items()]
            continue
        lines.append(f"\n{m}: weight bytes now {now['weight_bytes']} (+{now['offset_table_bytes']} offset tables), "
                     f"baseline {base['weight_bytes']} (+{base['offset_table_bytes']})")
        lines.append("  level  baseline cycles     now cycles   baseline/now")
        for lv in now["cycles"]:
            lines.append(f"  L{lv}    {base['cycles'][lv]:>15,.0f} {now['cycles'][lv]:>14,.0f}   {d['ratio'][lv]:>8.2f}x")
        conv = ", ".join(f"{n} {f}/{c}" for n, (f, c) in now["layers"].items() if c)
        conv_b = ", ".join(f"{n} {f}/{c}" for n, (f, c) in base["layers"].items() if c)
        lines.append(f"  convolutions now: {conv}; baseline: {conv_b}")
    lines.append(f"\n({r['wall_s']:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ...cli import run_command
    return run_command("bench kernels", argv)


if __name__ == "__main__":
    raise SystemExit(main())
