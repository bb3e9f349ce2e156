"""compile_bundle: bundle -> quantized model -> C sources (+ host library), in one call.

    from sparsenest.compiler.build import compile_bundle
    from sparsenest.data.calibration import calibration_inputs, evaluation_set
    info = compile_bundle("lenet.nest", "build/lenet", calib=calibration_inputs, evaluate=evaluation_set,
                          target="host", fmt="auto", switching="staged")
    info["meta"]["levels"]      # per level: float and Q15 accuracy (when evaluated)
    info["library"]             # build/lenet/libsnmodel.so (host target)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..paths import RUNTIME_DIR, board_dir
from . import codegen, golden, lea_codegen, quantize
from .planner import Target, get_target

HOST_DIR = board_dir("host")
BUILD_MARKER = "model_meta.json"
BUILD_FORMAT = "sparsenest-build"   # model_meta.json's "format": what marks a folder as a build of ours
HOST_LIBRARY = "libsnmodel.so"
HOST_DEFS = ["-DSN_COUNTERS", "-DSN_LAYER_HOOK", "-DSN_WRITE_TRACKING"]
HOST_WARN = ["-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"]


class BuildError(RuntimeError):
    """The C build failed (message carries the compiler output)."""


def _load_bundle(bundle):
    from sparsenest.bundle import Bundle
    if isinstance(bundle, (str, os.PathLike)):
        return Bundle.load(bundle)
    return bundle


def _given(arg, bundle):
    """An argument that is the data itself or a callable that makes it from the bundle."""
    return arg(bundle) if callable(arg) else arg


def calibration_array(bundle, calib) -> np.ndarray:
    """The calibration inputs as float32 [N, *input_shape], N >= 1 (else a one-line BuildError)."""
    x = np.asarray(_given(calib, bundle), np.float32)
    shape = tuple(bundle.graph["input"]["shape"])
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or len(x) == 0:
        raise BuildError(f"calib: expected float inputs of shape [N, {', '.join(map(str, shape))}] with N >= 1 "
                         f"for {getattr(bundle, 'path', None) or 'the bundle'}, got shape {list(x.shape)}; pass "
                         "the bundle's training inputs (sparsenest.data.calibration.calibration_inputs)")
    return x


def evaluate_levels(qm: quantize.QModel, bundle, x: np.ndarray, y: np.ndarray) -> list[dict]:
    """Float and Q15 (golden) accuracy per level on (x, y)."""
    graph, weights, intro, L = quantize._bundle_parts(bundle)
    out = []
    for lv in range(1, L + 1):
        fa = quantize.float_accuracy(graph, weights, intro, lv, x, y)
        qa = golden.accuracy(qm, x, y, lv)
        out.append({"level": lv, "float_accuracy": fa, "q15_accuracy": qa, "n_eval": int(len(y))})
    return out


def is_build_dir(path: Path) -> bool:
    """A folder this tool wrote with compile_bundle (its model_meta.json carries the format marker)."""
    from sparsenest.safe_output import is_tool_dir
    return is_tool_dir(Path(path), BUILD_MARKER, BUILD_FORMAT)


def build_host(out_dir: str | Path, kernels: list[str] | None = None, *, cc: str = "gcc",
               cflags: str = "-O2") -> Path:
    """gcc the runtime + model + kernels into out_dir/libsnmodel.so and out_dir/sn_cli, and record the
    library's sha256 in model_meta.json (HostSim loads only a library with that hash).

    gcc runs with argument lists in out_dir (no shell, no make): a path with spaces, quotes or `$(...)`
    is just a path."""
    from sparsenest.data import sha256_file
    from . import formats
    out_dir = Path(out_dir).resolve()
    meta_path = out_dir / BUILD_MARKER
    meta = json.loads(meta_path.read_text())
    if kernels is None:
        kernels = meta["kernels"]
    unknown = [k for k in kernels if k not in formats.FORMATS]
    if unknown:
        raise BuildError(f"{meta_path}: unknown kernel {unknown[0]!r} (known: {', '.join(formats.FORMATS)})")
    srcs = sorted(str(p) for p in (RUNTIME_DIR / "src").glob("*.c")) + [str(HOST_DIR / "sn_host.c"), "model.c"]
    srcs += [str(RUNTIME_DIR / "kernels" / f"sn_spmv_{k}.c") for k in kernels]
    # the LEA engine's ops (empty unless a layer runs on LEA) and our functional model of DSPLib
    srcs += [str(RUNTIME_DIR / "kernels_lea" / "sn_lea_ops.c"), str(RUNTIME_DIR / "kernels_lea" / "dsplib" / "dsplib_host.c")]
    base = [cc, *cflags.split(), *HOST_WARN, *HOST_DEFS, "-I", str(HOST_DIR), "-I", str(RUNTIME_DIR / "include"),
            "-I", str(RUNTIME_DIR / "kernels_lea" / "dsplib"), "-I", "."]
    cmds = [base + ["-shared", "-fPIC", "-o", HOST_LIBRARY, *srcs],
            base + ["-o", "sn_cli", *srcs, str(HOST_DIR / "main.c")]]
    # Both links at once: two cores halve the wait.
    procs = [subprocess.Popen(c, cwd=out_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in cmds]
    for c, p in zip(cmds, procs):
        out, err = p.communicate()
        if p.returncode != 0:
            raise BuildError(f"host build failed ({' '.join(c)}):\n{out}\n{err}")
    lib = out_dir / HOST_LIBRARY
    meta["host_build"] = {"library": HOST_LIBRARY, "sha256": sha256_file(lib), "kernels": list(kernels)}
    meta_path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return lib


def compile_bundle(bundle, out_dir: str | Path, *, calib, target: str | Target = "host", fmt="auto",
                   format_opts: dict | None = None, switching: str = "resident",
                   evaluate=None, initial_level: int | None = None,
                   build: bool | None = None, target_overrides: dict | None = None, conv: str = "auto",
                   intermittent: bool = False, checkpoint: str = "auto", force: bool = False,
                   objective: str | None = None, cycle_model=None, engine: str = "cpu", far=None) -> dict:
    """Compile a bundle (path or Bundle) into out_dir.

    target: "host" | "msp430fr5994" | a planner.Target; target_overrides: Target fields to change
    (e.g. {"fram_bytes": 65536}). fmt: "auto", a format name, or {layer: format, "*": default};
    format_opts: {layer: {"block_shape": (2, 2)}}. switching: "resident" | "staged". conv: "auto" (direct
    convolutions where the format has a direct kernel) | "im2col" (codegen module docstring).
    calib: the calibration inputs (float array [N, *input_shape]) or a callable bundle -> that array
    (sparsenest.data.calibration.calibration_inputs: the bundle's training images). evaluate: None (no
    evaluation), (x, y) or a callable bundle -> (x, y) (data.calibration.evaluation_set): per-level float
    and Q15 accuracy on it go into model_meta.json. This module loads no data set itself.
    engine: "cpu" | "lea" | "auto" (compiler/lea_codegen.py: conv/linear layers on the LEA accelerator).
    intermittent: progress kept in FRAM per unit of work (checkpoint "auto" | "layer" | "row";
    compiler/intermittent.py). objective: with fmt "auto", "time" | "energy" | "bytes" picks each layer's
    format and conv method by the cost model within the target's FRAM budget (compiler/choose.py; the
    choice lands in meta["choice"] and the result's "choice"); None keeps `auto` = smallest per layer.
    cycle_model: a CycleModel for that choice (default: choose.default_cycle_model()). far: weights
    streamed from upper FRAM, None/"auto" | "none" | layer names (codegen.generate). build: build the host library (default: True for the host target). Returns {"out_dir", "meta", "library" (or None), "qmodel"}.
    An existing non-empty out_dir is replaced only with force=True and only when it is a previous build
    (safe_output.check_output_dir). Everything is written to a temporary sibling folder first, so a failing
    compile leaves an earlier build untouched."""
    from sparsenest.safe_output import check_output_dir, replace_dir, temp_sibling
    out_dir = Path(out_dir)
    src = bundle if isinstance(bundle, (str, os.PathLike)) else getattr(bundle, "path", None)
    check_output_dir(out_dir, marker=BUILD_MARKER, fmt=BUILD_FORMAT, inputs=[src], force=force,
                     what="build folder", kind="sparsenest build")
    b = _load_bundle(bundle)
    tgt = get_target(target, **(target_overrides or {}))
    codegen.check_options(switching=switching, conv=conv, checkpoint=checkpoint)
    qm = quantize.quantize(b, calibration_array(b, calib))
    extra = {"bundle": {"path": str(getattr(b, "path", "") or ""), "model": b.manifest.get("model"),
                        "dataset": b.dataset}}
    levels = [dict(lv) for lv in b.levels]
    choice = None
    if objective is not None and fmt == "auto":
        from .choose import choose_for_compile
        choice = choose_for_compile(qm, tgt, objective, cycle_model=cycle_model, format_opts=format_opts,
                                    switching=switching, intermittent=intermittent, checkpoint=checkpoint, conv=conv,
                                    engine=engine)
        fmt = {**choice.formats(), "*": "auto"}
        conv = {**choice.conv_methods(), "*": conv}
        if engine == "auto":   # the chooser put each layer on its engine
            engine = choice.engines()
        extra["choice"] = choice.to_dict()
    lea_codegen.prepare(qm, engine, fmt=fmt, format_opts=format_opts, conv=conv)   # golden follows LEA layers
    if evaluate is not None:
        x, y = _given(evaluate, b)
        for lv, ev in zip(levels, evaluate_levels(qm, b, np.asarray(x, np.float32), np.asarray(y))):
            lv.update(ev)
    extra["levels"] = levels
    if build is None:
        build = tgt.name == "host"
    if build and shutil.which("gcc") is None:
        raise BuildError("building the host library needs gcc (apt-get install gcc)")
    tmp = temp_sibling(out_dir)
    try:
        meta = codegen.generate(qm, tmp, target=tgt, fmt=fmt, format_opts=format_opts,
                                switching=switching, initial_level=initial_level, conv=conv,
                                intermittent=intermittent, checkpoint=checkpoint, engine=engine, far=far,
                                name=(b.manifest.get("model") or {}).get("name", "model"), extra_meta=extra)
        if build:
            build_host(tmp, meta["kernels"])
            meta["host_build"] = json.loads((tmp / BUILD_MARKER).read_text())["host_build"]
        replace_dir(tmp, out_dir, owned=is_build_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    lib = out_dir / HOST_LIBRARY if build else None
    return {"out_dir": out_dir, "meta": meta, "library": lib, "qmodel": qm, "choice": choice}
