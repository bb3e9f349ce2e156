"""The C reference kernels and the MPY32 back-end against the Python encoders: one gcc harness (-Werror)
per back-end runs every (format, case, level) and prints acc and the counters; acc must equal
acc0 + decode(level) @ x exactly, the counters must equal EncodedLayer.kernel_counts(level) (macs
include rel8/rel4 padding entries, which the kernels multiply), and a staged copy (random bytes beyond
the active level's segments) must give the same acc."""
import shutil
import subprocess

import numpy as np
import pytest

from sparsenest.compiler.formats import FORMATS, encode
from sparsenest.paths import RUNTIME_DIR, board_dir

# Kernel back-ends with the same functions: the reference kernels, and the MPY32 ones (on the host their
# portable path: plain C multiplies through the same loop structure).
BACKENDS = ("kernels", "kernels_mpy32")
KERNELS = {b: [RUNTIME_DIR / b / f"sn_spmv_{f}.c" for f in FORMATS] for b in BACKENDS}
C_TYPES = {np.dtype(np.int16): "int16_t", np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t"}


def _intro(rng, shape, L, density):
    kept = rng.random(shape) < density
    return np.where(kept, rng.integers(1, L + 1, shape), 0).astype(np.uint8)


def _cases(rng):
    """(name, fmt, w_q, intro, L, opts): small, but every code path (u16 counts, padding, partial
    blocks, several levels, empty levels and rows)."""
    out = []
    for i, (shape, L, dens) in enumerate([((5, 37), 3, 0.3), ((3, 700), 2, 0.02), ((4, 300), 1, 0.9),
                                          ((6, 20), 4, 0.0), ((1, 1), 1, 1.0), ((7, 64), 3, 0.6)]):
        w = rng.integers(-32768, 32768, shape).astype(np.int16)
        intro = _intro(rng, shape, L, dens)
        if shape[1] > 600:
            intro[0] = 0
            intro[0, -1] = L  # a gap over 255: rel8 padding
        for fmt in ("csr16", "rel8", "rel4", "bitmap", "hbitmap"):
            out.append((f"u{i}_{fmt}", fmt, w, intro, L, {}))
    w = rng.integers(-32768, 32768, (6, 11)).astype(np.int16)
    out.append(("d0", "dense", w, _intro(rng, (6, 11), 1, 0.5), 3, {}))
    for i, (grid, bs, shape, L) in enumerate([((3, 4), (2, 3), (5, 11), 3), ((2, 2), (4, 4), (8, 8), 2),
                                              ((40, 2), (1, 200), (40, 301), 2)]):
        blv = _intro(rng, grid, L, 0.7)
        intro = np.ascontiguousarray(np.repeat(np.repeat(blv, bs[0], 0), bs[1], 1)[:shape[0], :shape[1]])
        w = rng.integers(-32768, 32768, shape).astype(np.int16)
        out.append((f"b{i}", "block", w, intro, L, {"block_shape": bs}))
    for i, (shape, L) in enumerate([((9, 13), 3), ((400, 3), 2)]):
        w = rng.integers(-32768, 32768, shape).astype(np.int16)
        out.append((f"r{i}", "rows", w, np.repeat(_intro(rng, (shape[0], 1), L, 0.8), shape[1], 1), L, {}))
        w = np.ascontiguousarray(w.T)
        out.append((f"c{i}", "cols", w, np.repeat(_intro(rng, (1, shape[0]), L, 0.8), shape[1], 0), L, {}))
    for i, (f, ch, k, L, npat) in enumerate([(4, 5, (3, 3), 3, 4), (3, 200, (2, 2), 2, 3), (2, 3, (5, 5), 1, 2)]):
        table = rng.random((npat, k[0] * k[1])) < 0.4
        table[:, -1] = True
        pid = rng.integers(0, npat, (f, ch))
        intro = (table[pid] * _intro(rng, (f, ch), L, 0.8)[..., None]).reshape(f, -1).astype(np.uint8)
        w = rng.integers(-32768, 32768, intro.shape).astype(np.int16)
        out.append((f"p{i}", "pattern", w, intro, L, {"kernel_size": k}))
    return out


def _c_array(name, arr):
    data = arr if arr.size else np.zeros(1, arr.dtype)  # C has no zero-length arrays
    body = ", ".join(str(int(v)) for v in data)
    return f"static const {C_TYPES[arr.dtype]} {name}[{data.size}] = {{{body}}};"


def _staged(e, level, rng):
    """Arrays of a staged copy at `level`: bytes beyond the level's segments are random."""
    arrays = dict(e.arrays)
    for name, seg in e.segments.items():
        raw = np.frombuffer(e.arrays[name].tobytes(), np.uint8).copy()
        keep = np.zeros(len(raw), bool)
        for r in range(seg.shape[0]):
            keep[seg[r, 0]:seg[r, level]] = True
        raw[~keep] = rng.integers(0, 256, int((~keep).sum()), dtype=np.uint8)
        arrays[name] = raw.view(e.arrays[name].dtype)
    return arrays


def _emit_matrix(prefix, e, arrays):
    lines = [_c_array(f"{prefix}_{n}", a) for n, a in arrays.items()]
    fields = ", ".join(f".{f} = {v}" if isinstance(v, int) else f".{f} = {prefix}_{v}" for f, v in e.c_fields)
    lines.append(f"static const {e.c_struct} {prefix} = {{{fields}}};")
    return lines


@pytest.fixture(scope="module", params=BACKENDS)
def harness(request, tmp_path_factory):
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed")
    rng = np.random.default_rng(7)
    src = ["#include <stdio.h>", "#include <string.h>", '#include "sn_counters.h"',
           '#include "sn_formats.h"', "sn_counter_set sn_counters;"]
    runs, expected = [], {}
    for name, fmt, w, intro, L, opts in _cases(rng):
        e = encode(fmt, w, intro, L, **opts)
        src += _emit_matrix(name, e, e.arrays)
        x = rng.integers(-64, 65, e.cols).astype(np.int16)
        acc0 = rng.integers(-1000, 1000, e.rows).astype(np.int32)
        src += [_c_array(f"{name}_x", x),
                f"static const int32_t {name}_acc0[{e.rows}] = {{{', '.join(map(str, acc0))}}};"]
        for level in range(0, L + 2):  # 0 computes nothing, L + 1 is clamped to L
            eff = min(level, L)
            want = acc0.astype(np.int64) + e.decode(eff).astype(np.int64) @ x.astype(np.int64)
            expected[(name, level, "plain")] = (fmt, want, e.kernel_counts(eff))
            runs.append((name, level, "plain", name, e))
            if 1 <= level <= L:
                staged = f"{name}_s{level}"
                src += _emit_matrix(staged, e, _staged(e, level, rng))
                expected[(name, level, "staged")] = (fmt, want, e.kernel_counts(eff))
                runs.append((name, level, "staged", staged, e))
    src += ["static int32_t acc[4096];",
            "static void report(const char *name, int level, const char *kind, uint16_t rows)",
            "{", "    uint16_t r;",
            '    printf("%s %d %s %lu %lu", name, level, kind, (unsigned long)sn_counters.macs,'
            " (unsigned long)sn_counters.weight_bytes_read);",
            '    for (r = 0; r < rows; r++) printf(" %ld", (long)acc[r]);', '    printf("\\n");', "}",
            "int main(void)", "{"]
    for name, level, kind, var, e in runs:
        src += [f"    memset(&sn_counters, 0, sizeof sn_counters);",
                f"    memcpy(acc, {name}_acc0, sizeof {name}_acc0);",
                f"    sn_spmv_{e.format}(&{var}, {level}, {name}_x, acc);",
                f'    report("{name}", {level}, "{kind}", {e.rows});']
    src += ["    return 0;", "}"]
    d = tmp_path_factory.mktemp("spmv")
    (d / "harness.c").write_text("\n".join(src) + "\n")
    cmd = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-DSN_COUNTERS",
           f"-I{RUNTIME_DIR / 'include'}", f"-I{board_dir('host')}", str(d / "harness.c"),
           *map(str, KERNELS[request.param]), "-o", str(d / "h")]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    out = subprocess.run([str(d / "h")], check=True, capture_output=True, text=True).stdout
    got = {}
    for line in out.splitlines():
        name, level, kind, macs, nbytes, *acc = line.split()
        got[(name, int(level), kind)] = (np.array(acc, np.int64), {"macs": int(macs),
                                                                   "weight_bytes_read": int(nbytes)})
    return expected, got


def test_cases_cover_wide_tables_and_padding():
    cases = {name: encode(fmt, w, intro, L, **opts) for name, fmt, w, intro, L, opts in
             _cases(np.random.default_rng(7))}
    wide = {e.format for e in cases.values() for n in ("counts", "row_nnz", "row_values")
            if n in e.arrays and e.arrays[n].dtype == np.uint16}
    assert wide >= {"csr16", "rel8", "rel4", "bitmap", "rows", "cols", "pattern"}
    for fmt in ("rel8", "rel4"):
        assert any(e.kernel_counts(e.n_levels)["macs"] > e.nnz(e.n_levels) for e in cases.values()
                   if e.format == fmt)
    assert any(e.format == "block" and e.cols % e.opts["block_shape"][1] for e in cases.values())


@pytest.mark.parametrize("fmt", FORMATS)
def test_kernel_matches_decode_and_counts(harness, fmt):
    expected, got = harness
    keys = [k for k, v in expected.items() if v[0] == fmt]
    assert len(keys) >= 6
    for key in keys:
        _, want_acc, want_counts = expected[key]
        got_acc, got_counts = got[key]
        assert np.array_equal(got_acc, want_acc), key
        assert got_counts == want_counts, key


def test_kernels_compile_for_msp430(tmp_path):
    """16-bit int target: the kernels build warning-free with clang's MSP430 back-end."""
    clang = shutil.which("clang-19")
    if clang is None:
        pytest.skip("clang-19 (MSP430 target) not installed")
    cmd = [clang, "--target=msp430", "-mmcu=msp430fr5994", "-std=c99", "-O2", "-Wall", "-Wextra",
           "-Wconversion", "-Werror", f"-I{RUNTIME_DIR / 'include'}", "-c", *map(str, KERNELS["kernels"])]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tmp_path)
