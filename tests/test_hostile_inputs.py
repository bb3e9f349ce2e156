"""The hostile-input suite: every case of tests/hostile_cases.py gets a clean one-line error and exit
status 2, no traceback, no file changed outside the command's output (a snapshot of the case's folder and
of the shared valid inputs, before and after), and no command or code run (the canary never appears).

`sparsenest` runs in-process through sparsenest.cli.main (captured stdout/stderr, SystemExit); cases
that would hang a regressed reader (FIFOs) run it as a subprocess with a timeout; sn_cli always runs as
a process.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile_cases import CANARY, World, all_cases, make_valid_build, make_valid_bundle

from sparsenest import cli
from sparsenest.cli_args import DEBUG_ENV

CASES = all_cases()


@pytest.fixture(scope="session")
def valid(tmp_path_factory, mnist_train):
    root = tmp_path_factory.mktemp("hostile-valid")
    bundle = make_valid_bundle(root / "valid.nest", mnist_train)
    build = make_valid_build(bundle, root / "valid-build", mnist_train)
    return bundle, build


def snapshot(*roots: Path, skip: Path | None = None) -> dict[str, tuple]:
    """Every entry under roots: kind, mode and, for regular files, size and content hash."""
    snap = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                if skip is not None and (p == skip or skip in p.parents):
                    continue
                st = os.lstat(p)
                entry: tuple = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
                if stat.S_ISREG(st.st_mode):
                    h = hashlib.sha256()
                    with open(p, "rb") as f:
                        for chunk in iter(lambda: f.read(1 << 20), b""):
                            h.update(chunk)
                    entry += (st.st_size, h.hexdigest())
                elif stat.S_ISLNK(st.st_mode):
                    entry += (os.readlink(p),)
                snap[str(p)] = entry
    return snap


def run_sparsenest(argv: list[str], *, as_process: bool, cwd: Path) -> tuple[int, str, str]:
    if as_process:
        env = {k: v for k, v in os.environ.items() if k != DEBUG_ENV}
        r = subprocess.run([sys.executable, "-m", "sparsenest.cli", *argv[1:]], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout, r.stderr
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv[1:])
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case, valid, tmp_path, monkeypatch):
    if case.needs_nonroot and os.geteuid() == 0:
        pytest.skip("permission bits do not stop root")
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    world = World(tmp_path / "world", *valid)
    world.root.mkdir()
    monkeypatch.chdir(world.root)  # injected `touch PWNED` would land here
    argv = case.make(world)
    skip = world.root / case.output if case.output else None
    before = snapshot(world.root, *valid, skip=skip)
    if argv[0] == "sparsenest":
        code, out, err = run_sparsenest(argv, as_process=case.subprocess, cwd=world.root)
    else:
        r = subprocess.run(argv, input=case.stdin(world) if case.stdin else b"", capture_output=True,
                           cwd=world.root, timeout=60)
        code, out, err = r.returncode, "", r.stderr.decode(errors="replace")
    lines = err.strip().splitlines()
    assert "Traceback" not in err + out, err
    assert len(lines) == 1, f"expected one error line, got:\n{err}"
    assert "error:" in lines[0], lines[0]
    assert re.search(case.expect, lines[0], re.I), lines[0]
    assert code == case.code, (code, lines[0])
    assert snapshot(world.root, *valid, skip=skip) == before, "a file outside the output changed"
    assert not (world.root / CANARY).exists() and not list(world.root.rglob(CANARY)), "code ran from data"


def test_valid_inputs_pass_the_same_harness(valid, tmp_path, monkeypatch):
    """The positive control: the unmodified bundle and build work through the same runners."""
    bundle, build = valid
    monkeypatch.chdir(tmp_path)
    code, out, err = run_sparsenest(["sparsenest", "info", str(bundle)], as_process=False, cwd=tmp_path)
    assert code == 0 and "conv1" in out and err == "", err
    code, out, err = run_sparsenest(["sparsenest", "simulate", str(build), "--level", "1", "--limit", "20"],
                                    as_process=False, cwd=tmp_path)
    assert code == 0 and "on 20 mnist test images" in out, err  # the data set came from the build
    meta_len = json.loads((build / "model_meta.json").read_text())["input_len"]
    r = subprocess.run([str(build / "sn_cli"), "-l", "3"], input=bytes(2 * meta_len * 2), capture_output=True)
    assert r.returncode == 0 and len(r.stdout) == 2 * 2 * 10, r.stderr


def test_debug_env_shows_the_traceback(valid, tmp_path, monkeypatch):
    """Developers get the exception itself with SPARSENEST_DEBUG=1."""
    monkeypatch.setenv(DEBUG_ENV, "1")
    from sparsenest.bundle import BundleError
    with pytest.raises(BundleError):
        cli.main(["info", str(tmp_path / "missing.nest")])


def test_planted_cache_files_are_never_trusted(tmp_path, monkeypatch):
    """A derived-data cache file is anyone's to plant: a FIFO must not block the loader, a pickle must
    not run, a link to a device must not be read; each is reported unusable so the loader rebuilds."""
    from hostile_cases import _Payload
    from sparsenest.data import read_cache
    monkeypatch.chdir(tmp_path)
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    obj = np.empty(1, dtype=object)
    obj[0] = _Payload()
    np.savez(tmp_path / "pickled.npz", x=obj)
    (tmp_path / "dev.npz").symlink_to("/dev/zero")
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04 not really")
    for name in ("fifo.npz", "pickled.npz", "dev.npz", "garbage.npz", "absent.npz"):
        assert read_cache(tmp_path / name) is None, name
    assert not (tmp_path / CANARY).exists()
    np.savez(tmp_path / "good.npz", x=np.arange(3))
    assert np.array_equal(read_cache(tmp_path / "good.npz")["x"], np.arange(3))
