"""The README runs as written: every fenced code block of README.md is checked.

python blocks run (in a fresh interpreter, in a temporary folder); sh blocks: every command runs, chained
in README order with small budgets (test_readme_commands_run; NOT_RUN lists the few that cannot, with the
reason), every `sparsenest ...` command is accepted by the real parser, every `make X` names a target of
the Makefile, and nothing else hides in them; `make X` in the prose names a target too.
"""
import argparse
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparsenest import cli, data

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INPUT_SUFFIXES = (".tflite", ".onnx", ".json", ".csv", ".toml", ".npz", ".py")


def blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(README) if kind == lang]


def shell_commands() -> list[str]:
    """Each command of the sh blocks: comments dropped, continuation lines joined."""
    cmds = []
    for body in blocks("sh"):
        text = re.sub(r"\\\n\s*", " ", body)
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                cmds.append(line)
    return cmds


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {t for line in re.findall(r"^([A-Za-z0-9_./%-]+(?:\s+[A-Za-z0-9_./%-]+)*)\s*:(?!=)", text, re.M)
            for t in line.split()}


def test_readme_has_the_blocks_this_test_checks():
    assert len(blocks("python")) >= 1 and len(shell_commands()) >= 20
    assert all(kind in ("python", "sh", "text") for kind, _ in BLOCK.findall(README)), \
        "a README code block needs a language (python, sh or text) so this test knows what to do with it"


@pytest.mark.parametrize("command", shell_commands())
def test_shell_command(command, tmp_path, monkeypatch):
    words = shlex.split(command)
    if words[0] == "make":
        missing = [w for w in words[1:] if "=" not in w and w not in make_targets()]
        assert not missing, f"README runs `{command}`, but the Makefile has no target {missing}"
        return
    assert words[0] == "sparsenest", f"README shell block line is neither sparsenest nor make: {command}"
    monkeypatch.chdir(tmp_path)       # input files named in the command exist (empty) here
    for w in words[1:]:
        if w.endswith(INPUT_SUFFIXES) and not w.startswith("-"):
            (tmp_path / w).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / w).touch()
    try:
        args = cli._parser(words[1:]).parse_args(words[1:])
    except SystemExit as e:
        pytest.fail(f"the parser refuses the README's `{command}` (exit {e.code})")
    assert callable(args.fn)


def test_make_targets_in_prose_exist():
    named = set(re.findall(r"`make ([a-z0-9-]+)", README))
    missing = named - make_targets()
    assert named and not missing, f"README names make targets that do not exist: {missing}"


def test_python_api_example_runs(tmp_path):
    """The README's Python API block, as written, from model to report (about 40 s of CPU)."""
    (code,) = blocks("python")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    accuracies = [float(line.split()[1]) for line in r.stdout.splitlines() if re.fullmatch(r"[123] \S+", line)]
    assert len(accuracies) == 3 and min(accuracies) > 0.5, r.stdout   # a trained model, not chance (10 %)
    assert (tmp_path / "build/api/report/report.md").stat().st_size > 1000


def test_every_command_is_reachable():
    """Every command the Makefile runs goes through `sparsenest` (.venv's entry point)."""
    text = (ROOT / "Makefile").read_text()
    assert not re.search(r"-m sparsenest\.", text), "the Makefile calls a module directly; use $(SN) COMMAND"
    assert isinstance(cli._parser([]), argparse.ArgumentParser)


# ------------------------------------------------------------------------------------ the commands run
# Every command of the README's sh blocks runs here, as written plus the budget flags it already accepts
# (argparse keeps the last value, so a flag appended wins over the README's). Commands that share files
# form a chain and run in README order in one temporary folder; chains are separate tests, so pytest-xdist
# runs them side by side. RUN maps the start of a README command to (chain, budget flags); NOT_RUN names
# the commands that cannot run here and why. A README command in neither fails
# test_every_readme_command_is_run_or_listed.
TINY_TRAIN = ["--epochs-dense", "1", "--epochs-retrain", "1", "--train-limit", "1000"]
NO_SIM_REPORT = ["--no-sim", "--no-samples", "--harvest-hours", "1"]
SMALL_BUNDLE = "build/lenet5-small.nest"   # the bench commands' default bundle, trained first with TINY_TRAIN
RUN = {
    "sparsenest train --model lenet5 ": ("lenet5", TINY_TRAIN),
    "sparsenest info build/lenet5.nest": ("lenet5", []),
    "sparsenest export-onnx build/lenet5.nest": ("lenet5", []),
    "sparsenest analyze build/lenet5.nest": ("lenet5", []),
    "sparsenest compile build/lenet5.nest -o build/lenet5 ": ("lenet5", ["--calib", "64"]),
    "sparsenest simulate build/lenet5": ("lenet5", ["--test-limit", "300"]),
    "sparsenest compile build/lenet5.nest -o build/lenet5-chip ": ("lenet5", ["--calib", "64"]),
    "sparsenest sim build/lenet5-chip": ("lenet5", ["--inputs", "1"]),
    "sparsenest firmware build build/lenet5-chip": ("lenet5", []),
    "sparsenest report build/lenet5": ("lenet5", NO_SIM_REPORT),
    "sparsenest import kws_ref_model_float32.tflite ": ("kws", []),
    "sparsenest train --from build/kws.nest ": ("kws", TINY_TRAIN),
    "sparsenest export-tflite build/kws3.nest ": ("kws", ["--calib", "32"]),
    "make bench-harvest": ("bench", ["--hours", "1", "--loop-seconds", "0"]),
    "sparsenest harvest --trace solar --costs build/bench/harvest/": ("bench", ["--duration", "3600"]),
    "sparsenest bench mcu": ("bench", ["--inputs", "1", "--formats", "auto", "--no-kernel-samples", "--no-lenet5",
                                       "--no-mspdebug", "--no-objectives"]),
    "sparsenest glue --task rte ": ("glue", ["--train-limit", "32", "--epochs", "0.25", "--retrain-epochs", "0.25",
                                             "--max-len", "32", "--no-analyze", "--no-eval-before-retrain",
                                             "--no-cache"]),
}
NOT_RUN = {
    "make demo": "the whole pipeline at its own budget (2 min on 2 quiet cores); its stages are the commands "
                 "that run here one by one",
    "make test": "this test suite itself",
    "sparsenest sweep --space": "Ray's start-up alone is 15-30 s of CPU, and on a loaded machine its raylet times out; "
                                "tests/test_sweep.py runs run_sweep (what the command calls) on one Ray runtime "
                                "for the module, and test_shell_command checks the command's options",
}
# The README's own-model block is run, command for command (a user's model file and .npz, tiny budget), by
# the test named here; running it twice would cost about 30 s of CPU.
RUN_ELSEWHERE = "tests/test_cli.py::test_custom_model_and_data_end_to_end"
NOT_RUN |= {command: f"run by {RUN_ELSEWHERE}" for command in (
    "sparsenest train --model my_net.py:MyNet", "sparsenest export-onnx build/my.nest", "sparsenest compile build/my.nest",
    "sparsenest simulate build/my", "sparsenest report build/my")}


# What a chain needs before its first command: the files a user brings, the bundle the bench commands train.
def _prepare(chain: str, cwd: Path) -> None:
    if chain == "kws":
        tflite = "kws_ref_model_float32.tflite"
        shutil.copy(data.find_dataset_dir("models/mlperf-tiny", [tflite], "see ../shared/data/README.md") / tflite, cwd)
    elif chain == "bench":   # the bundle `make bench-harvest` / `bench mcu` train when it is missing, small
        _run(["train", "--model", "lenet5-small", "--dataset", "mnist", "--levels", "0.9,0.75,0.5", "-o", SMALL_BUNDLE,
              *TINY_TRAIN], cwd)   # not --recipe: a recipe sets its own (larger) budget


def _plan(command: str) -> tuple[str, list[str]] | None:
    hits = [key for key in RUN if command.startswith(key)]
    assert len(hits) <= 1, f"README command `{command}` matches several RUN entries: {hits}"
    return RUN[hits[0]] if hits else None


def _argv(command: str) -> list[str]:
    """The sparsenest arguments of a README command; `make X` runs the sparsenest line of X's recipe."""
    words = shlex.split(command)
    if words[0] == "make":
        (target,) = words[1:]
        recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
        lines = [ln.strip() for ln in recipe.group(1).splitlines() if ln.strip().startswith("$(SN)")]
        assert len(lines) == 1, f"make {target} should run one sparsenest command: {lines}"
        words = shlex.split(lines[0].replace("$(SN)", "sparsenest"))
    assert words[0] == "sparsenest", command
    return words[1:]


def _run(argv: list[str], cwd: Path) -> None:
    """`sparsenest ARGV` in folder cwd, in this process (one interpreter start for the chain)."""
    old, t0, cpu0 = os.getcwd(), time.perf_counter(), _cpu_seconds()
    os.chdir(cwd)
    try:
        rc = cli.main(argv)
    except SystemExit as e:   # argparse refusals
        rc = e.code
    finally:
        os.chdir(old)
    # what each command cost (pytest -rP shows it): the budgets above are chosen from these lines
    print(f"{time.perf_counter() - t0:6.1f} s wall {_cpu_seconds() - cpu0:6.1f} s CPU  sparsenest {shlex.join(argv)}")
    assert rc in (0, None), f"`sparsenest {shlex.join(argv)}` exited {rc}"


def _cpu_seconds() -> float:
    """User + system time of this process and its finished children (gcc, clang, Ray's workers)."""
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))


def _listed(command: str) -> bool:
    return any(command == key or command.startswith(key + " ") for key in NOT_RUN)


def test_every_readme_command_is_run_or_listed():
    missing = [c for c in shell_commands() if _plan(c) is None and not _listed(c)]
    assert not missing, ("README commands neither run by this test nor listed in NOT_RUN with a reason "
                         f"(tests/test_readme.py): {missing}")
    stale = [k for k in [*RUN, *NOT_RUN] if not any(c.startswith(k) or c == k for c in shell_commands())]
    assert not stale, f"RUN / NOT_RUN entries that match no README command any more: {stale}"
    file, name = RUN_ELSEWHERE.split("::")
    assert f"def {name}(" in (ROOT / file).read_text(), f"{RUN_ELSEWHERE} is gone: run those commands here"


def _run_chain(chain: str, tmp_path: Path) -> None:
    """The chain's README commands, in README order, each with its budget flags, exit 0."""
    _prepare(chain, tmp_path)
    ran = []
    for command in shell_commands():
        plan = _plan(command)
        if plan and plan[0] == chain:
            _run(_argv(command) + plan[1], tmp_path)
            ran.append(command)
    assert ran


# One class per chain: pytest-xdist's --dist loadscope keeps a module's functions on one worker but
# schedules each class on its own, so the chains run side by side.
@pytest.mark.slow
class TestLenet5Chain:
    def test_readme_commands_run(self, tmp_path):
        _run_chain("lenet5", tmp_path)


@pytest.mark.slow
class TestKwsChain:
    def test_readme_commands_run(self, tmp_path):
        _run_chain("kws", tmp_path)


@pytest.mark.slow
class TestBenchChain:
    def test_readme_commands_run(self, tmp_path):
        _run_chain("bench", tmp_path)


@pytest.mark.slow
class TestGlueChain:
    def test_readme_commands_run(self, tmp_path):
        _run_chain("glue", tmp_path)


def test_every_chain_has_its_test():
    assert {chain for chain, _ in RUN.values()} == {"lenet5", "kws", "bench", "glue"}
