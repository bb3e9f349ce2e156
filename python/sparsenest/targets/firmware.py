"""Firmware for a compiled model: build it for the MSP430FR5994 (or mspdebug's simulator), run it in
the simulator, compare every result with the golden integer model, check and flash it.

    from sparsenest.targets import firmware
    fw = firmware.build("build/lenet5", image="sim")            # model dir from `sparsenest compile`
    run = firmware.simulate(fw)                                   # every scheduled step, with counts
    firmware.compare_golden(fw, run).raise_on_mismatch()          # bit-exact against golden.predict
    fw = firmware.build("build/lenet5")                           # the chip: ELF, HEX, size report
    firmware.flash_check(fw); firmware.flash(fw)

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

Simulation: mspdebug's ``sim`` driver, non-interactive, breaking on the application's marker functions
(``sn_app_mark``, and ``sn_board_layer_done`` after each layer with ``layers=True``) to read the
instruction and cycle counters around every level switch, inference and layer. Cycle counts over-count
(msp430.CYCLE_NOTE); instruction counts are exact.
"""
from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..board import mclk_hz
from ..paths import PROJECT_ROOT, RUNTIME_DIR
from . import msp430
from ..safe_output import is_tool_dir

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


# ----------------------------------------------------------------------------------------------
# Build

@dataclass
class FirmwareBuild:
    model: ModelDir
    out_dir: Path
    image: str
    kernels: str
    fw: msp430.Firmware | None
    inputs_q: np.ndarray            # int16 [N, input_len] embedded
    labels: np.ndarray | None
    schedule: list[Step]
    max_steps: int
    thresholds: list[int]
    notes: list[str] = field(default_factory=list)

    @property
    def elf(self) -> Path:
        return self.out_dir / "firmware.elf"

    @property
    def hex(self) -> Path:
        return self.out_dir / "firmware.hex"

    @property
    def size_text(self) -> str:
        return msp430.format_size_report(msp430.size_report(self.elf))

    @property
    def regions(self) -> dict:
        return {n: u.used for n, u in msp430.size_report(self.elf).items()}


def _c_array(values, per_line: int = 16) -> str:
    v = [str(int(a)) for a in np.asarray(values).ravel()]
    return ",\n".join("    " + ", ".join(v[i:i + per_line]) for i in range(0, len(v), per_line)) or "    0"


def _write_app_sources(out: Path, model: ModelDir, inputs_q: np.ndarray, schedule: list[Step],
                       max_steps: int, thresholds: list[int], uart: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "app_config.h"
    cfg.write_text(
        "/* generated by sparsenest.targets.firmware -- do not edit */\n#ifndef SN_APP_CONFIG_H\n"
        "#define SN_APP_CONFIG_H\n"
        f"#define SN_APP_N_INPUTS {len(inputs_q)}\n#define SN_APP_MAX_STEPS {max_steps}\n"
        f"#define SN_APP_UART {int(uart)}\n#endif\n")
    sched = list(schedule) + [Step(0, 1)] * (max_steps - len(schedule))
    rows = ",\n".join(f"    {{{s.input}, {s.level}, {s.energy}u}}" for s in sched)
    th = thresholds or [0]
    data = out / "app_data.c"
    data.write_text(
        "/* generated by sparsenest.targets.firmware -- do not edit: embedded inputs (Q15 at the model's input\n"
        " * exponent), the schedule and the energy thresholds. */\n#include \"sn_app.h\"\n\n"
        f"SN_PERSISTENT int16_t sn_app_inputs[SN_APP_N_INPUTS][SN_MODEL_INPUT_LEN] = {{\n"
        + ",\n".join("  {\n" + _c_array(row) + "\n  }" for row in inputs_q) + "\n};\n\n"
        f"SN_PERSISTENT sn_app_step sn_app_schedule[SN_APP_MAX_STEPS] = {{\n{rows}\n}};\n"
        f"SN_PERSISTENT uint16_t sn_app_n_steps = {len(schedule)};\n\n"
        "const uint16_t sn_app_thresholds[SN_MODEL_N_LEVELS > 1 ? SN_MODEL_N_LEVELS - 1 : 1] = {"
        + ", ".join(f"{t}u" for t in th) + "};\n")
    return [cfg, data]


def firmware_sources(model: ModelDir, kernels: str, app_data: Path) -> list[Path]:
    kdir = KERNEL_DIRS[kernels]
    srcs = [model.path / "model.c", APP_DIR / "app.c", app_data]
    srcs += sorted((RUNTIME_DIR / "src").glob("*.c"))
    for k in model.kernels:
        f = kdir / f"sn_spmv_{k}.c"
        if not f.exists():
            raise FirmwareError(f"no {kernels} kernel for format {k!r} ({f})")
        srcs.append(f)
    return srcs


def default_out_dir(model: ModelDir, image: str, kernels: str) -> Path:
    return model.path / "firmware" / (image if kernels == "mpy32" else f"{image}-{kernels}")


def build(model_dir, out_dir=None, *, image: str = "fr5994", kernels: str = "mpy32", board: str = "msp430fr5994",
          inputs=None, labels=None, n_inputs: int = 4, schedule: Sequence[Step] | None = None,
          max_steps: int | None = None, uart: bool = True, stack_size: int | None = None,
          defines: dict | None = None, link: bool = True) -> FirmwareBuild:
    """Build the firmware of a compiled model directory.

    image: "fr5994" (the chip) or "sim" (mspdebug's simulator: multiplier at 0x0130).
    kernels: "mpy32" (runtime_c/kernels_mpy32) or "ref" (runtime_c/kernels).
    inputs: float inputs (quantized here) or int16 Q15 inputs [N, ...]; default: n_inputs images of
    the model's data set test split. schedule: list of Step; default: default_schedule.
    max_steps: room for this many steps (so the simulator can load longer schedules).
    Raises msp430.RegionOverflowError naming the region when something does not fit."""
    if board not in BOARDS:
        raise FirmwareError(f"unknown board {board!r}; known: {', '.join(BOARDS)}")
    if kernels not in KERNEL_DIRS:
        raise FirmwareError(f"kernels must be one of {sorted(KERNEL_DIRS)}, not {kernels!r}")
    model = model_dir if isinstance(model_dir, ModelDir) else load_model_dir(model_dir)
    if inputs is None:
        inputs, labels = default_inputs(model, n_inputs)
    inputs_q = quantize_inputs(model, inputs)
    if not 1 <= len(inputs_q) <= 255:
        raise FirmwareError("embed between 1 and 255 inputs")
    L = model.n_levels
    sched = list(schedule) if schedule is not None else default_schedule(L, len(inputs_q))
    _check_schedule(sched, L, len(inputs_q))
    max_steps = max(max_steps or 0, len(sched))
    if max_steps > 255:
        raise FirmwareError("at most 255 steps")
    th = energy_thresholds(L)
    out = Path(out_dir) if out_dir is not None else default_out_dir(model, image, kernels)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not is_tool_dir(out, "firmware.json",
                                                                                     FIRMWARE_FORMAT):
        raise FirmwareError(f"{out} is not empty and is not a sparsenest firmware folder (firmware.json with "
                            f"format {FIRMWARE_FORMAT!r}); refusing to write into it. Choose a new or empty folder")
    cfg, data = _write_app_sources(out, model, inputs_q, sched, max_steps, th, uart)
    defs = {"SN_LAYER_HOOK": None}
    if image == "sim":
        defs["SN_UART_LOG_SIZE"] = SIM_UART_LOG
    defs.update(defines or {})
    fb = FirmwareBuild(model, out, image, kernels, None, inputs_q,
                       None if labels is None else np.asarray(labels), sched, max_steps, th)
    (out / "firmware.json").write_text(json.dumps({
        "format": FIRMWARE_FORMAT, "model_dir": str(model.path), "image": image, "kernels": kernels, "board": board,
        "n_inputs": int(len(inputs_q)), "max_steps": max_steps, "thresholds": th,
        "schedule": [asdict(s) for s in sched],
        "labels": None if labels is None else [int(v) for v in np.asarray(labels)]}, indent=1) + "\n")
    if not link:
        return fb
    include = [RUNTIME_DIR / "include", model.path, out, APP_DIR, KERNEL_DIRS[kernels]]
    try:
        fb.fw = msp430.build(firmware_sources(model, kernels, data), out, image=image,
                             include_dirs=include, defines=defs, stack_size=stack_size)
    except msp430.RegionOverflowError as e:
        raise msp430.RegionOverflowError(_overflow_hint(e, model, fb), e.region, e.bytes_over, e.output) from None
    fb.notes += fb.fw.notes
    return fb


def _overflow_hint(e: msp430.RegionOverflowError, model: ModelDir, fb: FirmwareBuild) -> str:
    """The board's message plus what in this firmware takes the space and what to change."""
    text = str(e)
    head, sep, linker = text.partition("\nlinker said:")
    mem = model.meta.get("memory", {})
    hint = []
    if e.region == "LOWER_FRAM":
        hint.append(f"lower FRAM holds the model's constant data ({mem.get('const_bytes', '?')} bytes), its staged "
                    f"working copy ({mem.get('work_bytes', 0)} bytes), the FRAM activation arena "
                    f"({mem.get('fram_arena_bytes', 0)} bytes), code, and the embedded inputs ({len(fb.inputs_q)}: "
                    f"{fb.inputs_q.nbytes} bytes; embed fewer with --inputs)")
        if model.meta.get("target") != "msp430fr5994":
            hint.append(f"the model was compiled for target {model.meta.get('target')!r}: compile it with "
                        f"--target msp430fr5994 so weights that do not fit lower FRAM go to upper FRAM")
        if fb.image == "sim":
            hint.append("the simulator image has no upper FRAM (64 KB flat): a model that needs upper FRAM "
                        "runs on the chip image only")
    elif e.region == "SRAM":
        hint.append("SRAM (lower 4 KB) holds the stack reserve, .bss (the simulator's UART log, "
                    f"{SIM_UART_LOG} bytes, in the sim image) and the upper-FRAM tile buffer")
    msg = head + ("\n  " + "\n  ".join(hint) if hint else "")
    return msg + (sep + linker if sep else "")


def _check_schedule(sched: Sequence[Step], L: int, n_inputs: int) -> None:
    for k, s in enumerate(sched):
        if not 0 <= s.level <= L:
            raise FirmwareError(f"schedule step {k}: level {s.level} outside 0..{L}")
        if not 0 <= s.input < n_inputs:
            raise FirmwareError(f"schedule step {k}: input {s.input} but {n_inputs} inputs are embedded")
        if s.level == 0 and not 0 <= s.energy < ENERGY_NONE:
            raise FirmwareError(f"schedule step {k}: an energy step needs an energy reading")


# ----------------------------------------------------------------------------------------------
# Simulation

@dataclass
class StepRecord:
    step: int
    requested: int            # the step's level field (0: energy)
    level: int                # level the inference ran at
    input: int
    rc_switch: int
    rc_infer: int
    pred: int
    energy: int               # ENERGY_NONE for fixed-level steps
    switch_ticks: int
    infer_ticks: int
    out: np.ndarray           # int16 [output_len]
    switch: msp430.SimCounts | None = None   # sn_set_level (with the marker call)
    infer: msp430.SimCounts | None = None    # sn_infer, input copy to output copy
    layers: list[msp430.SimCounts] | None = None  # per executed layer (layer 0 includes the input copy)


@dataclass
class SimRun:
    header: dict
    records: list[StepRecord]
    uart: str
    instructions: int
    cycles: int
    exit_code: int
    stack_used: int | None
    inputs_q: np.ndarray
    schedule: list[Step]
    cycle_note: str = msp430.CYCLE_NOTE

    def per_level(self) -> dict[int, dict]:
        """Mean instructions and cycles per inference at each level (steps with counts)."""
        out: dict[int, dict] = {}
        for r in self.records:
            if r.infer is None:
                continue
            d = out.setdefault(r.level, {"n": 0, "instructions": 0, "cycles": 0})
            d["n"] += 1
            d["instructions"] += r.infer.instructions
            d["cycles"] += r.infer.cycles
        for d in out.values():
            d["instructions"] /= d["n"]
            d["cycles"] /= d["n"]
        return dict(sorted(out.items()))


_STOP_RE = re.compile(r"\(\s*PC:\s*([0-9a-fA-F]+)\).*?\(R12:\s*([0-9a-fA-F]+)\).*?"
                      r"Instruction count:\s*(\d+)\s*\nMCLK:\s*(\d+)", re.S)


def _sym(e: msp430.ElfFile, name: str) -> msp430.ElfSymbol:
    s = e.symbols.get(name)
    if s is None:
        raise FirmwareError(f"{e.path.name} has no symbol {name}: not a sparsenest application image")
    return s


def simulate(fb: FirmwareBuild | str | os.PathLike, *, inputs=None, schedule: Sequence[Step] | None = None,
             layers: bool = False, timeout_s: float = 300.0, mspdebug: str | None = None) -> SimRun:
    """Run a simulator image (image="sim") from reset to __halt in mspdebug.

    inputs: replace the embedded inputs (float or int16, at most as many as embedded) with load_raw;
    schedule: replace the schedule (at most max_steps steps). layers: also count every layer
    (one breakpoint stop per layer: slower). Returns the parsed results buffer with the
    instruction/cycle counts of every switch and inference."""
    if not isinstance(fb, FirmwareBuild):
        fb = load_build(fb)
    tool = mspdebug or msp430.find_mspdebug()
    e = msp430.read_elf(fb.elf)
    if msp430._image_of(e) != "sim":
        raise FirmwareError(f"{fb.elf} is the chip image; build with image='sim' to simulate")
    model = fb.model
    inputs_q = fb.inputs_q.copy()
    loads: dict[int, bytes] = {}
    if inputs is not None:
        q = quantize_inputs(model, inputs)
        if len(q) > len(inputs_q):
            raise FirmwareError(f"{len(q)} inputs but the image embeds room for {len(inputs_q)}")
        inputs_q[: len(q)] = q
        loads[_sym(e, "sn_app_inputs").value] = q.astype("<i2").tobytes()
    sched = list(fb.schedule)
    if schedule is not None:
        sched = list(schedule)
        if len(sched) > fb.max_steps:
            raise FirmwareError(f"{len(sched)} steps but the image has room for {fb.max_steps} (max_steps)")
        _check_schedule(sched, model.n_levels, len(inputs_q))
        loads[_sym(e, "sn_app_schedule").value] = b"".join(s.pack() for s in sched)
        loads[_sym(e, "sn_app_n_steps").value] = struct.pack("<H", len(sched))
    halt, trap = _sym(e, "__halt"), e.symbols.get("__sn_trap")
    mark = _sym(e, "sn_app_mark")
    hook = e.symbols.get("sn_board_layer_done")
    if layers and hook is None:
        raise FirmwareError("per-layer counts need the layer hook (build with SN_LAYER_HOOK)")
    n_layers = len(model.steps)
    stops = len(sched) * (3 + (n_layers if layers else 0)) + 2
    res = _sym(e, "sn_app_results")
    with tempfile.TemporaryDirectory(prefix="sn-fw-") as tmp:
        tmp = Path(tmp)
        cmds = ["simio add tracer tr", "simio add hwmult mpy", f"prog {msp430.mspdebug_image(fb.elf, tmp)}"]
        for i, (addr, blob) in enumerate(loads.items()):
            f = tmp / f"in{i}.bin"
            f.write_bytes(blob)
            cmds.append(f"load_raw {msp430.mspdebug_path(f)} 0x{addr:x}")
        cmds.append(f"setbreak 0x{halt.value:x} 0")
        if trap is not None:
            cmds.append(f"setbreak 0x{trap.value:x} 1")
        cmds.append(f"setbreak 0x{mark.value:x} 2")
        if layers:
            cmds.append(f"setbreak 0x{hook.value:x} 3")
        cmds += ["run", "simio info tr"] * stops
        saves = {"res": (res.value, res.size)}
        for name in ("__sn_exit_code", "__sn_uart_log_len", "__sn_uart_log"):
            s = e.symbols.get(name)
            if s is not None and s.size:
                saves[name] = (s.value, s.size)
        lim, top = e.symbols.get("__stack_limit"), e.symbols.get("__stack_top")
        if lim and top and top.value > lim.value:
            saves["stack"] = (lim.value, top.value - lim.value)
        for k, (addr, size) in saves.items():
            cmds.append(f"save_raw 0x{addr:x} {size} {msp430.mspdebug_path(tmp / (k + '.bin'))}")
        try:
            proc = subprocess.run([tool, "-n", "-q", "sim", *cmds], capture_output=True, text=True,
                                  timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise msp430.SimError(f"{fb.elf.name} did not finish within {timeout_s:g} s in the simulator "
                                  f"(~15-20 M instructions/s); raise timeout_s") from exc
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise msp430.SimError(f"mspdebug failed (exit {proc.returncode}):\n{log[-3000:]}")
        blobs = {k: (tmp / (k + ".bin")).read_bytes() for k in saves}
    stops_seen = []
    for m in _STOP_RE.finditer(log):
        pc, r12, ins, cyc = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3)), int(m.group(4))
        if trap is not None and pc == trap.value:
            raise msp430.SimError(f"{fb.elf.name} trapped in __sn_unexpected_isr after {ins} instructions")
        stops_seen.append((pc, r12, msp430.SimCounts(ins, cyc)))
        if pc == halt.value:
            break
    if not stops_seen or stops_seen[-1][0] != halt.value:
        raise msp430.SimError(f"{fb.elf.name} did not reach __halt after {len(stops_seen)} stops:\n{log[-2000:]}")
    final = stops_seen[-1][2]
    header, records = parse_results(blobs["res"], model.output_len)
    _attach_counts(records, stops_seen[:-1], mark.value, hook.value if (layers and hook) else None, n_layers)
    exit_code = int.from_bytes(blobs.get("__sn_exit_code", b"\0\0"), "little")
    uart = ""
    if "__sn_uart_log" in blobs:
        n = int.from_bytes(blobs.get("__sn_uart_log_len", b"\0\0"), "little")
        uart = blobs["__sn_uart_log"][:n].decode("latin-1")
    stack_used = None
    if "stack" in blobs:
        blob = blobs["stack"]
        k = 0
        while k + 1 < len(blob) and blob[k] == 0xA5 and blob[k + 1] == 0xA5:
            k += 2
        stack_used = len(blob) - k
    return SimRun(header, records, uart, final.instructions, final.cycles, exit_code, stack_used,
                  inputs_q, sched)


def parse_results(blob: bytes, out_len: int) -> tuple[dict, list[StepRecord]]:
    keys = ("magic", "version", "n_steps", "n_done", "status", "n_levels", "switching", "out_len",
            "record_bytes", "tick_hz")
    hdr = dict(zip(keys, struct.unpack_from(HEADER_FMT, blob, 0)))
    if hdr["magic"] != APP_MAGIC:
        raise FirmwareError(f"results buffer has no header (magic 0x{hdr['magic']:04x}): main() did not run")
    rec_bytes = struct.calcsize(RECORD_HEAD_FMT) + 2 * out_len
    if hdr["record_bytes"] != rec_bytes or hdr["out_len"] != out_len:
        raise FirmwareError(f"record layout mismatch: firmware {hdr['record_bytes']} bytes, expected {rec_bytes}")
    records = []
    off = struct.calcsize(HEADER_FMT)
    for _ in range(hdr["n_done"]):
        f = struct.unpack_from(RECORD_HEAD_FMT, blob, off)
        out = np.frombuffer(blob, "<i2", out_len, off + struct.calcsize(RECORD_HEAD_FMT)).astype(np.int16)
        records.append(StepRecord(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[9], f[10], out.copy()))
        off += rec_bytes
    return hdr, records


def _attach_counts(records: list[StepRecord], stops, mark_pc: int, hook_pc: int | None, n_layers: int) -> None:
    """Stops come in order: mark(SWITCH), mark(INFER), [hook per layer], mark(DONE) per step."""
    it = iter(stops)
    for r in records:
        try:
            pc, what, c_sw = next(it)
            assert pc == mark_pc and what == MARK_SWITCH
            pc, what, c_in = next(it)
            assert pc == mark_pc and what == MARK_INFER
            layer_marks = []
            while True:
                pc, what, c = next(it)
                if hook_pc is not None and pc == hook_pc:
                    layer_marks.append(c)
                    continue
                assert pc == mark_pc and what == MARK_DONE
                c_done = c
                break
        except (StopIteration, AssertionError):
            raise FirmwareError(f"unexpected sequence of marker stops at step {r.step}") from None
        r.switch = _diff(c_in, c_sw)
        r.infer = _diff(c_done, c_in)
        if hook_pc is not None and len(layer_marks) == n_layers:
            prev, r.layers = c_in, []
            for c in layer_marks:
                r.layers.append(_diff(c, prev))
                prev = c


def _diff(b: msp430.SimCounts, a: msp430.SimCounts) -> msp430.SimCounts:
    return msp430.SimCounts(b.instructions - a.instructions, b.cycles - a.cycles)


def load_build(path: str | os.PathLike) -> FirmwareBuild:
    """A FirmwareBuild from a firmware output directory (firmware.json + firmware.elf)."""
    out = Path(path)
    if out.suffix == ".elf":
        out = out.parent
    f = out / "firmware.json"
    if not f.exists():
        raise FirmwareError(f"{out} is not a firmware build directory ({f.name} missing)")
    d = json.loads(f.read_text())
    model = load_model_dir(d["model_dir"])
    inputs_q = _read_embedded_inputs(out / "app_data.c", model.input_len, d["n_inputs"])
    sched = [Step(**s) for s in d["schedule"]]
    labels = None if d.get("labels") is None else np.array(d["labels"])
    return FirmwareBuild(model, out, d["image"], d["kernels"], None, inputs_q, labels, sched,
                         d["max_steps"], d["thresholds"])


def _read_embedded_inputs(app_data: Path, input_len: int, n: int) -> np.ndarray:
    text = app_data.read_text()
    body = text[text.index("sn_app_inputs"):text.index("sn_app_schedule")]
    body = body[body.index("= {") + 3:]
    vals = [int(v) for v in re.findall(r"-?\d+", body)]
    return np.array(vals[: n * input_len], np.int16).reshape(n, input_len)


# ----------------------------------------------------------------------------------------------
# Golden comparison

@dataclass
class GoldenReport:
    compared: int
    mismatches: list[str]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def raise_on_mismatch(self) -> None:
        if self.mismatches:
            raise GoldenMismatchError(f"{len(self.mismatches)} of {self.compared} steps differ from the "
                                      f"golden model:\n  " + "\n  ".join(self.mismatches[:20]))


def expected_levels(schedule: Sequence[Step], n_levels: int, thresholds: Sequence[int]) -> list[int]:
    return [s.level if s.level else level_for_energy(s.energy, thresholds) for s in schedule]


def compare_golden(fb: FirmwareBuild, run: SimRun, qmodel=None) -> GoldenReport:
    """Every record's logits against golden.predict at the level it ran at, the level against the
    schedule (and energy policy), the return codes against SN_OK."""
    from ..compiler import golden
    qm = qmodel if qmodel is not None else load_qmodel(fb.model)
    want_levels = expected_levels(run.schedule, fb.model.n_levels, fb.thresholds)
    bad = []
    if run.header["n_done"] != len(run.schedule):
        bad.append(f"{run.header['n_done']} of {len(run.schedule)} steps recorded")
    cache: dict[tuple[int, int], np.ndarray] = {}
    for r in run.records:
        if r.rc_switch or r.rc_infer:
            bad.append(f"step {r.step}: return codes switch {r.rc_switch} infer {r.rc_infer}")
            continue
        if r.level != want_levels[r.step]:
            bad.append(f"step {r.step}: ran at level {r.level}, scheduled {want_levels[r.step]}")
        key = (r.input, r.level)
        if key not in cache:
            x = run.inputs_q[r.input:r.input + 1].reshape(1, *fb.model.meta["input_shape"])
            cache[key] = golden.predict(qm, x, r.level, quantized_input=True)[0]
        g = cache[key]
        if not np.array_equal(r.out, g):
            n = int((r.out != g).sum())
            bad.append(f"step {r.step} (input {r.input}, level {r.level}): {n} of {len(g)} outputs differ: "
                       f"firmware {r.out.tolist()} golden {g.tolist()}")
        elif r.pred != int(np.argmax(g)):
            bad.append(f"step {r.step}: argmax {r.pred} but golden {int(np.argmax(g))}")
    return GoldenReport(len(run.records), bad)


# ----------------------------------------------------------------------------------------------
# Kernel harness: one format kernel on small matrices, in the simulator (bit-exactness of the
# MPY32 back-end against the reference kernels, and per-call cycle samples for the cost model)

@dataclass
class KernelCase:
    name: str
    enc: object               # formats.EncodedLayer
    x: np.ndarray             # int16 [cols]
    acc0: np.ndarray          # int32 [rows]

    def expected(self, level: int) -> np.ndarray:
        """acc0 + W_level @ x, wrapped to int32 like the C kernels."""
        w = self.enc.decode(level).astype(np.int64)
        v = self.acc0.astype(np.int64) + w @ self.x.astype(np.int64)
        return ((v + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)


@dataclass
class KernelRun:
    case: str
    format: str
    level: int
    acc: np.ndarray
    counts: msp430.SimCounts | None


def _c_type(dt) -> str:
    from ..compiler.codegen import C_TYPES
    return C_TYPES[np.dtype(dt)]


def build_kernel_harness(cases: Sequence[KernelCase], out_dir, *, kernels: str = "mpy32",
                         image: str = "sim") -> FirmwareBuild:
    """A firmware that calls sn_spmv_<format> of every case at every level 0..L and stores the
    accumulators in kh_out (int32), with h_mark() around every call."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["/* generated by sparsenest.targets.firmware (kernel harness) -- do not edit */",
             "#include <stdint.h>", '#include "sn_board.h"', '#include "sn_formats.h"',
             "void *memcpy(void *, const void *, unsigned);",
             "__attribute__((noinline, used)) void kh_mark(uint16_t k) { __asm__ volatile(\"\" : : \"r\"(k) : \"memory\"); }"]
    total = 0
    body = []
    fmts = sorted({c.enc.format for c in cases})
    for i, c in enumerate(cases):
        e = c.enc
        p = f"kc{i}"
        for an, a in e.arrays.items():
            vals = ", ".join(str(int(v)) for v in a.ravel()) or "0"
            lines.append(f"static const {_c_type(a.dtype)} {p}_{an}[{max(a.size, 1)}] = {{{vals}}};")
        fields = ", ".join(f".{f} = (const void *){p}_{v}" if isinstance(v, str) else f".{f} = {int(v)}"
                           for f, v in e.c_fields)
        lines.append(f"static const {e.c_struct} {p} = {{{fields}}};")
        lines.append(f"SN_PERSISTENT int16_t {p}_x[{len(c.x)}] = {{{', '.join(str(int(v)) for v in c.x)}}};")
        lines.append(f"static const int32_t {p}_acc0[{len(c.acc0)}] = {{{', '.join(str(int(v)) + 'L' for v in c.acc0)}}};")
        for lv in range(0, e.n_levels + 1):
            body.append(f"    memcpy(kh_acc, {p}_acc0, sizeof {p}_acc0);\n    kh_mark(1);\n"
                        f"    {e.c_kernel}(&{p}, {lv}, {p}_x, kh_acc);\n    kh_mark(2);\n"
                        f"    memcpy(kh_out + {total}, kh_acc, sizeof {p}_acc0);")
            total += e.rows
    rows_max = max(c.enc.rows for c in cases)
    lines.append(f"int32_t kh_acc[{rows_max}];")
    lines.append(f"SN_FRAM_NOINIT int32_t kh_out[{total}];")
    lines.append("int main(void) {\n" + "\n".join(body) + "\n    return 0;\n}\n")
    src = out / "kernel_harness.c"
    src.write_text("\n".join(lines) + "\n")
    kdir = KERNEL_DIRS[kernels]
    srcs = [src] + [kdir / f"sn_spmv_{f}.c" for f in fmts]
    fw = msp430.build(srcs, out, image=image, include_dirs=[RUNTIME_DIR / "include", kdir], name="firmware")
    (out / "harness.json").write_text(json.dumps({"cases": [c.name for c in cases]}) + "\n")
    return FirmwareBuild(ModelDir(out, {}), out, image, kernels, fw, np.zeros((0, 0), np.int16), None, [], 0, [])


def run_kernel_harness(fb: FirmwareBuild, cases: Sequence[KernelCase], *, timeout_s: float = 120.0,
                       mspdebug: str | None = None) -> list[KernelRun]:
    tool = mspdebug or msp430.find_mspdebug()
    e = msp430.read_elf(fb.elf)
    halt, mark, out = _sym(e, "__halt"), _sym(e, "kh_mark"), _sym(e, "kh_out")
    trap = e.symbols.get("__sn_trap")
    n_calls = sum(c.enc.n_levels + 1 for c in cases)
    with tempfile.TemporaryDirectory(prefix="sn-kh-") as tmp:
        f = Path(tmp) / "out.bin"
        cmds = ["simio add tracer tr", "simio add hwmult mpy", f"prog {msp430.mspdebug_image(fb.elf, tmp)}",
                f"setbreak 0x{halt.value:x} 0", f"setbreak 0x{mark.value:x} 2"]
        if trap is not None:
            cmds.append(f"setbreak 0x{trap.value:x} 1")
        cmds += ["run", "simio info tr"] * (2 * n_calls + 1)
        cmds.append(f"save_raw 0x{out.value:x} {out.size} {msp430.mspdebug_path(f)}")
        proc = subprocess.run([tool, "-n", "-q", "sim", *cmds], capture_output=True, text=True, timeout=timeout_s)
        log = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise msp430.SimError(f"mspdebug failed (exit {proc.returncode}):\n{log[-3000:]}")
        blob = f.read_bytes()
    stops = [(int(m.group(1), 16), msp430.SimCounts(int(m.group(3)), int(m.group(4))))
             for m in _STOP_RE.finditer(log)]
    if trap is not None and any(pc == trap.value for pc, _ in stops):
        raise msp430.SimError("kernel harness trapped")
    marks = [c for pc, c in stops if pc == mark.value]
    if len(marks) != 2 * n_calls:
        raise msp430.SimError(f"kernel harness: {len(marks)} marker stops, expected {2 * n_calls}")
    accs = np.frombuffer(blob, "<i4")
    runs, k, off = [], 0, 0
    for c in cases:
        for lv in range(c.enc.n_levels + 1):
            a, b = marks[2 * k], marks[2 * k + 1]
            runs.append(KernelRun(c.name, c.enc.format, lv, accs[off:off + c.enc.rows].astype(np.int32),
                                  _diff(b, a)))
            k += 1
            off += c.enc.rows
    return runs


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
