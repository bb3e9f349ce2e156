"""What the memory planner promises, checked twice: in Python (check_lowered/check_plan reject negative or
inconsistent shapes, buffers outside their arena, live buffers that overlap) and in C (the generated host
model built with AddressSanitizer/UBSan runs every level without touching a byte outside its arenas, and
equals the golden model, so no two live buffers share bytes)."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest
from sn_compile_helpers import random_bundle

from sparsenest.compiler import golden, quantize
from sparsenest.compiler.build import build_host, compile_bundle
from sparsenest.compiler.planner import (Lowered, PlanBoundsError, Step, check_lowered,
                                         check_plan, get_target, plan_memory)


def _chain(shape_mid=(4, 3)) -> Lowered:
    """x[8] -> relu-like step a[4*3] -> step b[5]: the smallest lowering with a live overlap to plan."""
    steps = [Step("a", "linear", {}, ["x"], "a", scratch={"acc": 48}),
             Step("b", "linear", {}, ["a"], "b", scratch={"acc": 20})]
    return Lowered(steps, {"x": 8, "a": int(np.prod(shape_mid)), "b": 5},
                   {"x": [8], "a": list(shape_mid), "b": [5]}, {"x": "x", "a": "a", "b": "b"}, "x", "b")


def test_valid_lowering_plans_inside_its_arena():
    low = _chain()
    plan = plan_memory(low, get_target("host"))
    assert plan.sram_bytes <= get_target("host").sram_arena_budget
    for t, p in plan.tensors.items():
        assert p.offset + p.nbytes <= plan.sram_bytes and p.nbytes >= 2 * low.tensors[t]


@pytest.mark.parametrize("mutate, pattern", [
    (lambda low: low.tensors.__setitem__("a", -12), "elements but shape"),
    (lambda low: low.shapes.__setitem__("a", [4, -3]), "elements but shape"),
    (lambda low: low.shapes.__setitem__("a", [5, 3]), "elements but shape"),
    (lambda low: setattr(low.steps[0], "inputs", ["b"]), "before any step writes it"),
    (lambda low: low.steps[1].scratch.__setitem__("acc", -4), "scratch sizes must be positive"),
])
def test_inconsistent_lowering_is_refused(mutate, pattern):
    low = _chain()
    mutate(low)
    with pytest.raises(PlanBoundsError, match=pattern):
        check_lowered(low)
    with pytest.raises(PlanBoundsError, match=pattern):  # the planner's entry checks before placing
        plan_memory(low, get_target("host"))


@pytest.mark.parametrize("how, pattern", [
    ("past-end", "not inside"), ("negative", "not inside"), ("too-small", "smaller than"),
    ("overlap", "overlap"), ("unaligned", "not inside"),
])
def test_bad_placement_is_refused(how, pattern):
    low = _chain()
    plan = plan_memory(low, get_target("host"))
    p = plan.tensors["a"]
    if how == "past-end":
        plan.tensors["a"] = replace(p, offset=plan.sram_bytes)
    elif how == "negative":
        plan.tensors["a"] = replace(p, offset=-4)
    elif how == "too-small":
        plan.tensors["a"] = replace(p, nbytes=4)
    elif how == "unaligned":
        plan.tensors["a"] = replace(p, offset=p.offset + 2)
    else:  # b written at step 2 while a (its input) is still live: same bytes
        plan.tensors["b"] = replace(plan.tensors["b"], offset=p.offset)
    with pytest.raises(PlanBoundsError, match=pattern):
        check_plan(low, plan)


def test_sram_arena_over_budget_is_refused():
    low = _chain()
    plan = plan_memory(low, get_target("host"))
    tight = replace(plan.target, sram_bytes=plan.target.stack_reserve + 16)
    plan.target = tight
    with pytest.raises(PlanBoundsError, match="exceeds the budget"):
        check_plan(low, plan)


def _asan_works(tmp_path) -> bool:
    src = tmp_path / "probe.c"
    src.write_text("int main(void) { return 0; }\n")
    r = subprocess.run(["gcc", "-fsanitize=address,undefined", str(src), "-o", str(tmp_path / "probe")],
                       capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="needs gcc and make")
@pytest.mark.parametrize("kind, sram_bytes", [("conv2d", None), ("conv1d", 4096 + 512)])
def test_generated_c_stays_inside_its_arenas_under_asan(tmp_path, kind, sram_bytes):
    """sram_bytes=4608 leaves a 512-byte SRAM arena: activations spill to the FRAM arena, so both arenas'
    placements are exercised. ASan aborts on the first byte outside an arena (they are static arrays)."""
    if not _asan_works(tmp_path):
        pytest.skip("gcc cannot build with -fsanitize=address,undefined here")
    bundle, x = random_bundle(kind)
    out = tmp_path / "build"
    # a direct convolution's 1 KB accumulator does not fit the 512-byte arena: that case runs im2col
    info = compile_bundle(bundle, out, calib=x[:100], build=False, conv="im2col" if sram_bytes else "auto",
                          target_overrides={"sram_bytes": sram_bytes} if sram_bytes else None)
    if sram_bytes:
        assert info["meta"]["memory"]["fram_arena_bytes"] > 0, "the case should spill to FRAM"
    build_host(out, info["meta"]["kernels"],
               cflags="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all")
    qm = info["qmodel"]
    xq = quantize.to_q(x[:40], qm.input_exp)
    for lv in range(1, bundle.n_levels + 1):
        r = subprocess.run([str(out / "sn_cli"), "-l", str(lv)], input=xq.tobytes(), capture_output=True,
                           env={"ASAN_OPTIONS": "detect_leaks=0", "PATH": "/usr/bin:/bin"}, timeout=120)
        assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
        got = np.frombuffer(r.stdout, np.int16).reshape(len(xq), -1)
        assert np.array_equal(got, golden.predict(qm, xq, lv)), f"level {lv} differs from the golden model"
