"""compile_bundle: bundle -> quantized model -> C sources (+ host library), in one call.

    from sparsenest.compiler.build import compile_bundle
    info = compile_bundle("lenet.nest", "build/lenet", target="host", fmt="auto", switching="staged")
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

from ..paths import board_dir
from . import codegen, golden, quantize
from .planner import Target, get_target

HOST_MAKEFILE = board_dir("host") / "Makefile"
BUILD_MARKER = "model_meta.json"
CALIB_IMAGES = 512
CALIB_SEED = 0


class BuildError(RuntimeError):
    """The C build failed (message carries the compiler output)."""


def _load_bundle(bundle):
    from sparsenest.bundle import Bundle
    if isinstance(bundle, (str, os.PathLike)):
        return Bundle.load(bundle)
    return bundle


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir} exists and is not a directory")
        entries = list(out_dir.iterdir())
        if entries:
            meta = out_dir / BUILD_MARKER
            ok = False
            if meta.exists():
                try:
                    ok = json.loads(meta.read_text()).get("format") == "sparsenest-build"
                except (json.JSONDecodeError, OSError):
                    ok = False
            if not ok:
                raise FileExistsError(
                    f"{out_dir} is not empty and is not a previous sparsenest build (no {BUILD_MARKER}); "
                    "refusing to write into it. Choose an empty or new output directory.")


def calibration_images(bundle, calib=None) -> np.ndarray:
    """calib: None (CALIB_IMAGES training images of the bundle's data set, fixed seed), an int (that
    many), or an array of float inputs."""
    if calib is not None and not isinstance(calib, (int, np.integer)):
        return np.asarray(calib, np.float32)
    from sparsenest import data
    n = CALIB_IMAGES if calib is None else int(calib)
    ds = data.load(bundle.dataset["name"], "train")
    return ds.subset(n, seed=CALIB_SEED).x


def evaluate(qm: quantize.QModel, bundle, x: np.ndarray, y: np.ndarray) -> list[dict]:
    """Float and Q15 (golden) accuracy per level on (x, y)."""
    graph, weights, intro, L = quantize._bundle_parts(bundle)
    out = []
    for lv in range(1, L + 1):
        fa = quantize.float_accuracy(graph, weights, intro, lv, x, y)
        qa = golden.accuracy(qm, x, y, lv)
        out.append({"level": lv, "float_accuracy": fa, "q15_accuracy": qa, "n_eval": int(len(y))})
    return out


def build_host(out_dir: str | Path, kernels: list[str] | None = None, *, cc: str = "gcc",
               cflags: str = "-O2") -> Path:
    """gcc the runtime + model + kernels into out_dir/libsnmodel.so and out_dir/sn_cli."""
    out_dir = Path(out_dir).resolve()
    if kernels is None:
        kernels = json.loads((out_dir / BUILD_MARKER).read_text())["kernels"]
    cmd = ["make", "-s", "-f", str(HOST_MAKEFILE), f"MODEL_DIR={out_dir}", f"KERNELS={' '.join(kernels)}",
           f"CC={cc}", f"CFLAGS={cflags}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"host build failed ({' '.join(cmd)}):\n{r.stdout}\n{r.stderr}")
    return out_dir / "libsnmodel.so"


def compile_bundle(bundle, out_dir: str | Path, *, target: str | Target = "host", fmt="auto",
                   format_opts: dict | None = None, switching: str = "resident", calib=None,
                   evaluate_on: str | int | None = None, initial_level: int | None = None,
                   build: bool | None = None, target_overrides: dict | None = None, conv: str = "auto") -> dict:
    """Compile a bundle (path or Bundle) into out_dir.

    target: "host" | "msp430fr5994" | a planner.Target; target_overrides: Target fields to change
    (e.g. {"fram_bytes": 65536}). fmt: "auto", a format name, or {layer: format, "*": default};
    format_opts: {layer: {"block_shape": (2, 2)}}. switching: "resident" | "staged". conv: "auto" (direct
    convolutions where the format has a direct kernel) | "im2col" (codegen module docstring).
    calib: calibration inputs (None: 512 training images, an int: that many, or an array).
    evaluate_on: None (no evaluation), "test" (the whole test split) or an int (that many test images):
    per-level float and Q15 accuracy go into model_meta.json. build: build the host library (default:
    True for the host target). Returns {"out_dir", "meta", "library" (or None), "qmodel"}.
    Refuses to write into a non-empty out_dir that is not a previous sparsenest build."""
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    b = _load_bundle(bundle)
    tgt = get_target(target, **(target_overrides or {}))
    qm = quantize.quantize(b, calibration_images(b, calib))
    extra = {"bundle": {"path": str(getattr(b, "path", "") or ""), "model": b.manifest.get("model"),
                        "dataset": b.dataset}}
    levels = [dict(lv) for lv in b.levels]
    if evaluate_on is not None:
        from sparsenest import data
        ds = data.load(b.dataset["name"], "test")
        if isinstance(evaluate_on, (int, np.integer)):
            ds = ds.subset(int(evaluate_on), seed=0)
        for lv, ev in zip(levels, evaluate(qm, b, ds.x, ds.y)):
            lv.update(ev)
    extra["levels"] = levels
    if out_dir.exists():  # a previous build: replace its generated files only
        for f in ("model.c", "model.h", BUILD_MARKER, "libsnmodel.so", "sn_cli"):
            (out_dir / f).unlink(missing_ok=True)
    meta = codegen.generate(qm, out_dir, target=tgt, fmt=fmt, format_opts=format_opts,
                            switching=switching, initial_level=initial_level, conv=conv,
                            name=(b.manifest.get("model") or {}).get("name", "model"), extra_meta=extra)
    lib = None
    if build is None:
        build = tgt.name == "host"
    if build:
        if shutil.which("make") is None or shutil.which("gcc") is None:
            raise BuildError("building the host library needs make and gcc")
        lib = build_host(out_dir, meta["kernels"])
    return {"out_dir": out_dir, "meta": meta, "library": lib, "qmodel": qm}
