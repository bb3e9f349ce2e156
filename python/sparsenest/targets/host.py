"""Drive a host build (libsnmodel.so from compile_bundle) through ctypes.

    sim = HostSim("build/lenet")
    sim.set_level(2)
    logits = sim.infer(x_float)          # int16 [N, classes]; float inputs are quantized here
    sim.counters(), sim.layer_counters(), sim.write_log()
    sim.power_fail_after(100); sim.set_level(3) -> SN_ERR_POWER; sim.reboot() -> sn_init()

Each HostSim loads its own private copy of the library, so two simulators of one build never share
emulated FRAM. It loads only a folder compile_bundle wrote (model_meta.json with the format marker)
whose library has the sha256 recorded there at build time: a build folder from elsewhere, or a
library swapped afterwards, is refused instead of run.
"""
from __future__ import annotations

import ctypes as C
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SN_OK, SN_ERR_LEVEL, SN_ERR_POWER, SN_ERR_STATE = 0, -1, -2, -3
COUNTER_FIELDS = ("macs", "weight_bytes_read", "act_bytes_read", "act_bytes_written", "fram_bytes_written")
REGION_KINDS = {0: "const", 1: "persistent", 2: "sram", 3: "fram_rw"}


class _Counters(C.Structure):
    _fields_ = [(f, C.c_uint32) for f in COUNTER_FIELDS]


class _Info(C.Structure):
    _fields_ = [("n_levels", C.c_uint8), ("level", C.c_uint8), ("switching", C.c_uint8),
                ("input_exp", C.c_int8), ("output_exp", C.c_int8), ("input_len", C.c_uint16),
                ("output_len", C.c_uint16), ("n_layers", C.c_uint16), ("const_bytes", C.c_uint32),
                ("work_bytes", C.c_uint32), ("sram_arena_bytes", C.c_uint32),
                ("fram_arena_bytes", C.c_uint32), ("level_nnz", C.POINTER(C.c_uint32))]


class HostSimError(RuntimeError):
    pass


@dataclass
class WriteRecord:
    region: str       # region name ("?" when the address is in no known region)
    offset: int
    requested: int
    written: int


def _quantize_input(x: np.ndarray, e: int) -> np.ndarray:
    v = np.asarray(x, np.float64) * 2.0 ** e
    return np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5), -32768, 32767).astype(np.int16)


def _build_meta(build_dir: Path) -> dict:
    """model_meta.json of a build compile_bundle wrote (format marker checked), else HostSimError."""
    from sparsenest.compiler.build import BUILD_FORMAT, BUILD_MARKER, is_build_dir
    if not is_build_dir(build_dir):
        raise HostSimError(f"{build_dir} is not a sparsenest build ({BUILD_MARKER} with format "
                           f"{BUILD_FORMAT!r} missing); compile one with sparsenest compile BUNDLE -o DIR")
    return json.loads((build_dir / BUILD_MARKER).read_text())


class HostSim:
    def __init__(self, build_dir: str | Path):
        self.build_dir = Path(build_dir)
        lib_path = self.build_dir / "libsnmodel.so"
        if not lib_path.exists():
            raise HostSimError(f"{lib_path} not found: compile the bundle for target 'host' first "
                               "(sparsenest compile ... --target host)")
        self.meta = _build_meta(self.build_dir)
        # A private copy: dlopen shares one image per path, and each simulator needs its own FRAM. The
        # copy is what gets hashed and loaded, so the library cannot change between the check and dlopen.
        self._tmp = tempfile.TemporaryDirectory(prefix="snsim")
        private = Path(self._tmp.name) / "libsnmodel.so"
        blob = lib_path.read_bytes()
        want = (self.meta.get("host_build") or {}).get("sha256")
        if not isinstance(want, str) or hashlib.sha256(blob).hexdigest() != want:
            raise HostSimError(f"{lib_path} is not the library this build's model_meta.json records (sha256 "
                               f"{'missing' if not isinstance(want, str) else 'differs'}); refusing to load it. "
                               f"Recompile: sparsenest compile BUNDLE -o {self.build_dir} --force")
        private.write_bytes(blob)
        self.lib = lib = C.CDLL(str(private))
        lib.sn_init.restype = C.c_int
        lib.sn_set_level.argtypes = [C.c_uint8]
        lib.sn_set_level.restype = C.c_int
        lib.sn_get_level.restype = C.c_uint8
        lib.sn_get_held_level.restype = C.c_uint8
        lib.sn_infer.argtypes = [C.c_void_p, C.c_void_p]
        lib.sn_host_infer_batch.argtypes = [C.c_void_p, C.c_void_p, C.c_uint32]
        lib.sn_host_infer_batch.restype = C.c_int
        lib.sn_host_counters.argtypes = [C.POINTER(_Counters)]
        lib.sn_host_layer_counters.argtypes = [C.c_uint16, C.POINTER(_Counters)]
        lib.sn_host_power_fail_after.argtypes = [C.c_int64]
        lib.sn_host_log_len.restype = C.c_uint32
        lib.sn_host_log_entry.argtypes = [C.c_uint32, C.POINTER(C.c_int32), C.POINTER(C.c_uint32),
                                          C.POINTER(C.c_uint32), C.POINTER(C.c_uint32)]
        lib.sn_host_n_regions.restype = C.c_uint16
        lib.sn_host_region.argtypes = [C.c_uint16, C.POINTER(C.c_char_p), C.POINTER(C.c_uint32),
                                       C.POINTER(C.c_uint8)]
        lib.sn_model_info.argtypes = [C.POINTER(_Info)]
        lib.sn_infer_start.argtypes = [C.c_void_p]
        lib.sn_input_buffer.restype = C.c_void_p
        lib.sn_infer_done.argtypes = [C.c_void_p]
        self.regions = []
        for i in range(lib.sn_host_n_regions()):
            name, size, kind = C.c_char_p(), C.c_uint32(), C.c_uint8()
            lib.sn_host_region(i, C.byref(name), C.byref(size), C.byref(kind))
            self.regions.append((name.value.decode(), int(size.value), REGION_KINDS[kind.value]))
        self.region_sizes = {n: s for n, s, _ in self.regions}
        rc = lib.sn_init()
        if rc != SN_OK:
            raise HostSimError(f"sn_init() returned {rc}")

    # -- model -------------------------------------------------------------------------------
    def info(self) -> dict:
        i = _Info()
        self.lib.sn_model_info(C.byref(i))
        d = {f: getattr(i, f) for f, _ in _Info._fields_ if f != "level_nnz"}
        d["level_nnz"] = [int(i.level_nnz[k]) for k in range(i.n_levels)]
        return d

    @property
    def n_levels(self) -> int:
        return int(self.meta["n_levels"])

    @property
    def input_exp(self) -> int:
        return int(self.meta["quantization"]["input_exp"])

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        return _quantize_input(x, self.input_exp)

    def init(self) -> int:
        return int(self.lib.sn_init())

    def set_level(self, level: int, *, check: bool = True) -> int:
        rc = int(self.lib.sn_set_level(int(level)))
        if check and rc not in (SN_OK, SN_ERR_POWER):
            raise HostSimError(f"sn_set_level({level}) returned {rc}")
        return rc

    def get_level(self) -> int:
        return int(self.lib.sn_get_level())

    def held_level(self) -> int:
        """The densest level the staged working copy holds (n_levels when resident, 0: invalid)."""
        return int(self.lib.sn_get_held_level())

    def infer(self, x: np.ndarray) -> np.ndarray:
        """int16 logits [N, out] for a batch: float inputs are quantized with the input exponent,
        int16 inputs are used as they are."""
        x = np.asarray(x)
        xq = x.astype(np.int16) if x.dtype == np.int16 else self.quantize_input(x)
        n = len(xq)
        xq = np.ascontiguousarray(xq.reshape(n, -1))
        if xq.shape[1] != self.meta["input_len"]:
            raise HostSimError(f"input has {xq.shape[1]} values per sample, the model takes "
                               f"{self.meta['input_len']}")
        out = np.zeros((n, self.meta["output_len"]), np.int16)
        rc = self.lib.sn_host_infer_batch(xq.ctypes.data, out.ctypes.data, n)
        if rc != SN_OK:
            raise HostSimError(f"sn_infer returned {rc}")
        return out

    # -- intermittent builds (compile --intermittent) ---------------------------------------------
    def _one_input(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        xq = x.astype(np.int16) if x.dtype == np.int16 else self.quantize_input(x)
        xq = np.ascontiguousarray(xq.reshape(-1))
        if xq.size != self.meta["input_len"]:
            raise HostSimError(f"input has {xq.size} values, the model takes {self.meta['input_len']}")
        return xq

    def infer_start(self, x: np.ndarray, in_place: bool = False) -> int:
        """sn_infer_start on one sample: SN_OK, or SN_ERR_POWER when power failed before it committed.
        in_place: as an application that samples into the input's FRAM home (sn_input_buffer) and
        passes it to sn_infer_start."""
        xq = self._one_input(x)
        if not in_place:
            return int(self.lib.sn_infer_start(xq.ctypes.data))
        home = self.lib.sn_input_buffer()
        if not home:
            raise HostSimError("sn_input_buffer returned NULL: an inference is pending")
        C.memmove(home, xq.ctypes.data, xq.nbytes)
        return int(self.lib.sn_infer_start(home))

    def infer_resume(self) -> int:
        """sn_infer_resume: SN_OK when the inference completed, SN_ERR_POWER when power failed."""
        return int(self.lib.sn_infer_resume())

    def infer_pending(self) -> bool:
        return bool(self.lib.sn_infer_pending())

    def infer_done(self) -> np.ndarray | None:
        """The last inference's logits if it completed, else None."""
        out = np.zeros(self.meta["output_len"], np.int16)
        rc = int(self.lib.sn_infer_done(out.ctypes.data))
        if rc < 0:
            raise HostSimError(f"sn_infer_done returned {rc}: not an intermittent build, or no inference started")
        return out if rc == 1 else None

    # -- counters ------------------------------------------------------------------------------
    def reset_counters(self) -> None:
        self.lib.sn_host_reset_counters()

    def counters(self) -> dict:
        c = _Counters()
        self.lib.sn_host_counters(C.byref(c))
        return {f: int(getattr(c, f)) for f in COUNTER_FIELDS}

    def layer_counters(self) -> dict[str, dict]:
        out = {}
        for i, name in enumerate(self.meta["steps"]):
            c = _Counters()
            self.lib.sn_host_layer_counters(i, C.byref(c))
            out[name] = {f: int(getattr(c, f)) for f in COUNTER_FIELDS}
        return out

    # -- FRAM writes and power -------------------------------------------------------------------
    def write_log(self, clear: bool = False) -> list[WriteRecord]:
        recs = []
        for i in range(self.lib.sn_host_log_len()):
            reg, off, req, wr = C.c_int32(), C.c_uint32(), C.c_uint32(), C.c_uint32()
            self.lib.sn_host_log_entry(i, C.byref(reg), C.byref(off), C.byref(req), C.byref(wr))
            name = self.regions[reg.value][0] if reg.value >= 0 else "?"
            recs.append(WriteRecord(name, int(off.value), int(req.value), int(wr.value)))
        if clear:
            self.clear_write_log()
        return recs

    def clear_write_log(self) -> None:
        self.lib.sn_host_log_clear()

    def power_fail_after(self, nbytes: int) -> None:
        """The next writes reach FRAM until nbytes more bytes are written (whole 16-bit words); then
        power is lost: further writes are dropped and the runtime reports SN_ERR_POWER."""
        self.lib.sn_host_power_fail_after(int(nbytes))

    def power_failed(self) -> bool:
        return bool(self.lib.sn_host_power_failed())

    def reboot(self) -> int:
        """Power returns: SRAM is garbage, FRAM kept; runs sn_init() and returns its status."""
        self.lib.sn_host_power_restore()
        return self.init()

    def reset_device(self) -> None:
        """Reload the image: persistent FRAM (selector, staged working copy) as at load, no failure."""
        self.lib.sn_host_power_restore()
        self.lib.sn_host_reset_persistent()
        self.clear_write_log()
        self.reset_counters()
        self.init()


def simulate_accuracy(build_dir: str | Path, dataset="mnist", level: int | None = None,
                      limit: int | None = None, *, split: str = "test", batch: int = 250,
                      progress: bool = True) -> dict:
    """Accuracy of the C build on a data set (name or sparsenest.data.Dataset), per level (all levels
    when level is None). Returns {level: {"accuracy", "n"}}."""
    from tqdm import tqdm

    if isinstance(dataset, str):
        from sparsenest import data
        dataset = data.load(dataset, split)
    x, y = dataset.x, dataset.y
    if limit is not None:
        x, y = x[:limit], y[:limit]
    sim = HostSim(build_dir)
    levels = [level] if level is not None else list(range(1, sim.n_levels + 1))
    out = {}
    for lv in levels:
        if sim.set_level(lv) != SN_OK:
            raise HostSimError(f"could not switch to level {lv}")
        correct = 0
        bar = tqdm(total=len(y), desc=f"level {lv}", unit="img", disable=not progress, leave=False)
        for i in range(0, len(y), batch):
            logits = sim.infer(x[i:i + batch])
            correct += int((logits.argmax(1) == y[i:i + batch]).sum())
            bar.update(len(logits))
        bar.close()
        out[lv] = {"accuracy": correct / max(len(y), 1), "n": int(len(y))}
    return out
