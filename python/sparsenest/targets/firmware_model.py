"""A compiled model as the firmware sees it: the build folder (model_meta.json, the quantized model
for golden checks), the level schedule and energy thresholds, and the embedded test inputs."""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..board import mclk_hz
from ..paths import PROJECT_ROOT, RUNTIME_DIR
from . import msp430

KERNEL_DIRS = {"ref": RUNTIME_DIR / "kernels", "mpy32": RUNTIME_DIR / "kernels_mpy32"}
BOARDS = ("msp430fr5994",)
APP_DIR = msp430.BOARD_DIR / "app"
MCLK_HZ = mclk_hz(BOARDS[0])   # boards/<board>/board.toml; compile_sources passes it as SN_MCLK_HZ
ENERGY_FULL = 1000           # energy readings are permille of the store's capacity
ENERGY_NONE = 0xFFFF
APP_MAGIC = 0x4E53
HEADER_FMT = "<HHHHhBBHHI"   # sn_app_header, 20 bytes
RECORD_HEAD_FMT = "<BBBBbbHHHII"  # sn_app_record up to out[], 20 bytes
MARK_SWITCH, MARK_INFER, MARK_DONE = 1, 2, 3
SIM_UART_LOG = 2048
DEFAULT_INPUT_SEED = 7       # test-split subset seed of the embedded inputs


FIRMWARE_FORMAT = "sparsenest-firmware"   # firmware.json's "format": a folder this module wrote

class FirmwareError(RuntimeError):
    """Something about the model directory, the request or the run is wrong; the message says what."""


class GoldenMismatchError(AssertionError):
    """The firmware's outputs differ from the golden integer model."""


# ----------------------------------------------------------------------------------------------
# Compiled model directory

@dataclass
class ModelDir:
    path: Path
    meta: dict

    @property
    def n_levels(self) -> int:
        return int(self.meta["n_levels"])

    @property
    def input_len(self) -> int:
        return int(self.meta["input_len"])

    @property
    def output_len(self) -> int:
        return int(self.meta["output_len"])

    @property
    def switching(self) -> str:
        return self.meta["switching"]

    @property
    def kernels(self) -> list[str]:
        return list(self.meta["kernels"])

    @property
    def steps(self) -> list[str]:
        return list(self.meta["steps"])

    @property
    def input_exp(self) -> int:
        return int(self.meta["quantization"]["input_exp"])

    @property
    def dataset(self) -> str | None:
        return ((self.meta.get("bundle") or {}).get("dataset") or {}).get("name")


def load_model_dir(path: str | os.PathLike) -> ModelDir:
    p = Path(path)
    meta_f = p / "model_meta.json"
    if not meta_f.exists():
        hint = ""
        if p.suffix == ".nest" or (p / "manifest.json").exists():
            hint = (f" ({p} is a bundle: compile it first, e.g. `sparsenest compile {p} -o build/<name> "
                    f"--target msp430fr5994`)")
        raise FirmwareError(f"{p} is not a compiled model directory: {meta_f} is missing{hint}")
    meta = json.loads(meta_f.read_text())
    if meta.get("format") != "sparsenest-build":
        raise FirmwareError(f"{meta_f} is not a sparsenest build description")
    for f in ("model.c", "model.h"):
        if not (p / f).exists():
            raise FirmwareError(f"{p / f} is missing: recompile the model")
    return ModelDir(p, meta)


def load_qmodel(model: ModelDir | str | os.PathLike, bundle=None):
    """The QModel the model directory was generated from, rebuilt from its bundle with the exponents
    recorded in model_meta.json (so it does not depend on the calibration images). bundle: a Bundle
    or path; default: the path recorded at compile time."""
    from ..bundle import Bundle
    from ..compiler import quantize
    m = model if isinstance(model, ModelDir) else load_model_dir(model)
    if bundle is None:
        bpath = (m.meta.get("bundle") or {}).get("path")
        if not bpath:
            raise FirmwareError(f"{m.path}/model_meta.json records no bundle path; pass the bundle")
        p = Path(bpath)
        if not p.is_absolute() and not p.exists():
            p = PROJECT_ROOT / p
        if not p.exists():
            raise FirmwareError(f"bundle {bpath} recorded in {m.path}/model_meta.json is not there; "
                                f"pass the bundle (--bundle)")
        bundle = p
    b = Bundle.load(bundle) if isinstance(bundle, (str, os.PathLike)) else bundle
    graph, weights, intro, L = quantize._bundle_parts(b)
    q = m.meta["quantization"]
    exps = {k: int(v) for k, v in q["activation_exps"].items()}
    layers = {}
    for n in graph["nodes"]:
        if n["op"] not in quantize.MATMUL_OPS:
            continue
        name = n["name"]
        lq = q["layers"][name]
        e_w, e_x = int(lq["e_w"]), exps[n["inputs"][0]]
        w = weights[n["weight"]].astype(np.float64)
        it = intro[n["weight"]]
        w_q = quantize.to_q(np.where(it >= 1, w, 0.0), e_w)
        b_f = weights[n["bias"]].astype(np.float64) if n.get("bias") else np.zeros(w.shape[0])
        bias_q = quantize.to_q(b_f, e_w + e_x, bits=32)
        layers[name] = quantize.QLayer(name, n["op"], n["weight"], w_q, it.copy(), e_w, bias_q,
                                       int(lq["shift"]))
    qm = quantize.QModel(graph, L, exps, layers, q.get("calibration", {}))
    nnz = [sum(int(ql.mask(lv).sum()) for ql in layers.values()) for lv in range(1, L + 1)]
    if nnz != list(m.meta["level_nnz"]):
        raise FirmwareError(f"the bundle does not match {m.path}: weights per level {nnz} vs "
                            f"{m.meta['level_nnz']} in model_meta.json")
    if "lea" in m.meta.get("engine", []):   # layers on the LEA engine: the golden model follows them
        from ..compiler import lea_codegen
        lea_codegen.restore(qm, m.meta)
    return qm


# ----------------------------------------------------------------------------------------------
# Schedule, inputs, thresholds

@dataclass(frozen=True)
class Step:
    input: int
    level: int = 0            # 1..L, or 0: from the energy reading
    energy: int = ENERGY_NONE

    def pack(self) -> bytes:
        return struct.pack("<BBH", self.input, self.level, self.energy & 0xFFFF)


def energy_thresholds(n_levels: int) -> list[int]:
    """Ascending readings at which the next level starts: evenly spaced over 0..ENERGY_FULL."""
    return [round(ENERGY_FULL * k / n_levels) for k in range(1, n_levels)]


def level_for_energy(energy: int, thresholds: Sequence[int]) -> int:
    return 1 + sum(1 for t in thresholds if energy >= t)


def default_schedule(n_levels: int, n_inputs: int) -> list[Step]:
    """Every input at every level, sparsest first; then switches down and up across levels (one input
    each); then energy-driven steps that visit every level."""
    steps = [Step(i, lv) for lv in range(1, n_levels + 1) for i in range(n_inputs)]
    if n_levels > 1:
        hops = [n_levels, 1, n_levels] + ([2, n_levels - 1] if n_levels > 2 else [])
        steps += [Step(k % n_inputs, lv) for k, lv in enumerate(hops)]
        th = energy_thresholds(n_levels)
        readings = [ENERGY_FULL] + [t - 1 for t in reversed(th)] + [th[0]]
        steps += [Step(k % n_inputs, 0, e) for k, e in enumerate(readings)]
    return steps


def default_inputs(model: ModelDir, n: int, *, seed: int = DEFAULT_INPUT_SEED, offset: int = 0):
    """(float inputs, labels): n images of the model's data set test split, from a fixed shuffled
    order starting at `offset`, preferring distinct labels (so a few inputs exercise several classes)."""
    from .. import data
    name = model.dataset
    if not name or name == "random":
        raise FirmwareError(f"{model.path}: no data set recorded for the model; pass inputs")
    ds = data.load(name, "test")
    order = np.random.default_rng(seed).permutation(len(ds.y))[offset:]
    picked, seen = [], set()
    for i in order[: 50 * n]:
        if int(ds.y[i]) not in seen:
            picked.append(i)
            seen.add(int(ds.y[i]))
        if len(picked) == n:
            break
    for i in order:
        if len(picked) == n:
            break
        if i not in picked:
            picked.append(i)
    idx = np.array(picked[:n])
    return ds.x[idx], ds.y[idx]


def quantize_inputs(model: ModelDir, x: np.ndarray) -> np.ndarray:
    from ..compiler.quantize import to_q
    x = np.asarray(x)
    if x.dtype == np.int16:
        q = x
    else:
        q = to_q(x, model.input_exp).astype(np.int16)
    q = q.reshape(len(q), -1)
    if q.shape[1] != model.input_len:
        raise FirmwareError(f"inputs have {q.shape[1]} values each; the model takes {model.input_len}")
    return q
