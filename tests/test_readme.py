"""The README runs as written: every fenced code block of README.md is checked.

python blocks run (in a fresh interpreter, in a temporary folder); sh blocks: every `sparsenest ...`
command is accepted by the real parser (its argument types run: numbers, ranges, paths), every `make X`
names a target of the Makefile, and nothing else hides in them; `make X` in the prose names a target too.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sparsenest import cli

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
