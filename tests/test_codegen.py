"""Generated C: deterministic, sizes equal the formats' byte accounting, readable, portable."""
import filecmp
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sn_compile_helpers import calib_images, lenet_bundle
from sparsenest import data
from sparsenest.compiler import codegen, formats, golden
from sparsenest.compiler.build import compile_bundle
from sparsenest.paths import RUNTIME_DIR, board_dir
from sparsenest.targets.host import SN_ERR_LEVEL, HostSim, simulate_accuracy

MIXED = {"conv1": "bitmap", "conv2": "rel4", "fc1": "csr16", "*": "rel8"}
FILES = ("model.c", "model.h", "model_meta.json")


@pytest.fixture(scope="module")
def saved_bundle(tmp_path_factory):
    return lenet_bundle().save(tmp_path_factory.mktemp("bundle") / "lenet.nest")


@pytest.fixture(scope="module")
def build(saved_bundle, tmp_path_factory):
    return compile_bundle(saved_bundle, tmp_path_factory.mktemp("cg") / "out", fmt=MIXED,
                          switching="staged", calib=calib_images())


def test_deterministic_byte_identical(saved_bundle, build, tmp_path):
    again = compile_bundle(saved_bundle, tmp_path / "again", fmt=MIXED, switching="staged",
                           calib=calib_images(), build=False)
    for f in FILES[:2]:
        assert filecmp.cmp(build["out_dir"] / f, again["out_dir"] / f, shallow=False), f
    # the same metadata, apart from what the host build adds (the library's sha256)
    built = json.loads((build["out_dir"] / "model_meta.json").read_text())
    assert built.pop("host_build")["sha256"]
    assert built == json.loads((again["out_dir"] / "model_meta.json").read_text())
    # recompiling into the previous build directory needs force and gives the same bytes
    before = {f: (again["out_dir"] / f).read_bytes() for f in FILES}
    with pytest.raises(FileExistsError, match="--force"):
        compile_bundle(saved_bundle, again["out_dir"], fmt=MIXED, switching="staged", calib=calib_images(),
                       build=False)
    compile_bundle(saved_bundle, again["out_dir"], fmt=MIXED, switching="staged", calib=calib_images(),
                   build=False, force=True)
    assert before == {f: (again["out_dir"] / f).read_bytes() for f in FILES}


def test_sizes_equal_byte_accounting(build):
    meta, qm = build["meta"], build["qmodel"]
    sim = HostSim(build["out_dir"])
    sizes = sim.region_sizes
    for name, a in meta["arrays"].items():
        if a["bytes"]:
            assert sizes[name] == a["bytes"], f"sizeof({name}) = {sizes[name]}, meta says {a['bytes']}"
    for layer, lm in meta["layers"].items():
        if "format" not in lm:
            continue
        w, it = qm.layers[layer].matrix()
        enc = formats.encode(lm["format"], w, it, qm.n_levels)
        assert enc.bytes_by_part == lm["bytes_by_part"]
        emitted = {n: a for n, a in meta["arrays"].items() if a["layer"] == layer and a["kind"] == "format"}
        assert sum(a["bytes"] for a in emitted.values()) == enc.total_bytes
        for part in ("values", "indices", "metadata"):
            assert sum(a["bytes"] for a in emitted.values() if a["part"] == part) == enc.bytes_by_part[part]
        # the staged working copies mirror the master arrays byte for byte
        for s in meta["staged_arrays"]:
            assert sizes[s["work"]] == sizes[s["master"]]
    info = sim.info()
    assert info["work_bytes"] == sum(a["bytes"] for a in meta["arrays"].values() if a["kind"] == "work")
    assert info["level_nnz"] == meta["level_nnz"]
    assert info["sram_arena_bytes"] <= 4096  # the planner's budget for the FR5994 SRAM arena


def test_comments_and_sections(build):
    c = (build["out_dir"] / "model.c").read_text()
    h = (build["out_dir"] / "model.h").read_text()
    meta = build["meta"]
    for layer, lm in meta["layers"].items():
        assert f"/* ---- {layer}: " in c
        if "nnz" in lm:
            assert " / ".join(f"L{k + 1} {n}" for k, n in enumerate(lm["nnz"])) in c
            assert f"format {lm['format']}" in c
    assert "[1, 28, 28] -> [4, 28, 28]" in c
    assert "round half" in h and "SN_MODEL_INPUT_EXP" in h
    assert "SN_FRAM static const int16_t conv1_values[" in c
    assert "SN_PERSISTENT static int16_t fc1_values_work[" in c
    assert "SN_PERSISTENT static uint16_t sn_level_word" in c
    assert "sn_conv_rel4(&conv2_matrix, conv2_conv_off, level, x, n_pos, x_step, acc, sink)" in c  # direct


def _compile_objects(cc_args: list[str], out_dir: Path, kernels: list[str], board: str, tmp: Path):
    srcs = [out_dir / "model.c", *sorted((RUNTIME_DIR / "src").glob("*.c")),
            *[RUNTIME_DIR / "kernels" / f"sn_spmv_{k}.c" for k in kernels]]
    for i, s in enumerate(srcs):
        r = subprocess.run([*cc_args, "-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-Werror", f"-I{board_dir(board)}", f"-I{RUNTIME_DIR / 'include'}",
                            f"-I{out_dir}", "-c", str(s), "-o", str(tmp / f"{i}.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{s}:\n{r.stderr}"


def test_generated_c_compiles_without_warnings(build, tmp_path):
    _compile_objects(["gcc"], build["out_dir"], build["meta"]["kernels"], "host", tmp_path)


@pytest.mark.skipif(shutil.which("clang-19") is None, reason="clang-19 (MSP430 target) not installed")
def test_generated_c_compiles_for_msp430(build, tmp_path):
    """The same sources with the MSP430 board's section macros, 16-bit int, -Werror."""
    _compile_objects(["clang-19", "--target=msp430", "-mmcu=msp430fr5994"], build["out_dir"],
                     build["meta"]["kernels"], "msp430fr5994", tmp_path)


def test_cli_matches_library(build, tmp_path):
    x = data.load("mnist", "test").x[:5]
    sim = HostSim(build["out_dir"])
    xq = sim.quantize_input(x)
    r = subprocess.run([str(build["out_dir"] / "sn_cli"), "-l", "2", "-c"], input=xq.tobytes(),
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    sim.set_level(2)
    assert np.array_equal(np.frombuffer(r.stdout, np.int16).reshape(5, -1), sim.infer(xq))
    assert b"macs=" in r.stderr


def test_simulate_accuracy_equals_golden(build):
    test = data.load("mnist", "test")
    res = simulate_accuracy(build["out_dir"], test, limit=300, progress=False)
    for lv, r in res.items():
        assert r["n"] == 300
        assert r["accuracy"] == golden.accuracy(build["qmodel"], test.x[:300], test.y[:300], lv)


def test_runtime_rejects_bad_level(build):
    sim = HostSim(build["out_dir"])
    for bad in (0, sim.n_levels + 1):
        assert sim.set_level(bad, check=False) == SN_ERR_LEVEL


def test_refuses_foreign_non_empty_out_dir(saved_bundle, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(FileExistsError, match="not a sparsenest build"):
            compile_bundle(saved_bundle, d, calib=calib_images(), build=False, force=force)
    assert (d / "notes.txt").read_text() == "keep me"


def test_bad_switching_option(saved_bundle, tmp_path):
    with pytest.raises(codegen.CodegenError, match="switching"):
        compile_bundle(saved_bundle, tmp_path / "x", switching="lazy", calib=calib_images(), build=False)


def test_direct_and_im2col_convs_same_bytes_same_outputs(saved_bundle, tmp_path):
    """conv="auto" runs the csr16 convolutions direct (indices = input offsets); conv="im2col" copies
    patches. Same weight bytes, same outputs; the CLI flag and a bad value."""
    from sparsenest import cli
    direct = compile_bundle(saved_bundle, tmp_path / "d", fmt="csr16", calib=calib_images())
    assert cli.main(["compile", str(saved_bundle), "-o", str(tmp_path / "i"), "--format", "csr16",
                     "--conv", "im2col", "--calib", "256"]) == 0
    im2col = {"out_dir": tmp_path / "i", "meta": json.loads((tmp_path / "i" / "model_meta.json").read_text())}
    for name in ("conv1", "conv2"):
        assert direct["meta"]["layers"][name]["conv"] == "direct" and direct["meta"]["layers"][name]["chunk"] > 0
        assert im2col["meta"]["layers"][name]["conv"] == "im2col"
        assert direct["meta"]["layers"][name]["bytes_by_part"] == im2col["meta"]["layers"][name]["bytes_by_part"]
    x = data.load("mnist", "test").subset(64, seed=2).x
    a, b = HostSim(direct["out_dir"]), HostSim(im2col["out_dir"])
    for level in (1, 2, 3):
        a.set_level(level)
        b.set_level(level)
        assert np.array_equal(a.infer(x), b.infer(x))
    with pytest.raises(codegen.CodegenError, match="conv must be one of"):
        compile_bundle(saved_bundle, tmp_path / "x", conv="winograd", calib=calib_images(), build=False)
