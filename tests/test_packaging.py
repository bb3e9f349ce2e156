"""The package as pip installs it: every package folder is listed in pyproject.toml, and a non-editable
install (a wheel, no source checkout beside it) finds the C runtime and boards as package data and
builds and runs a model on the host board, bit-identical to the golden model."""
import shutil
import subprocess
import sys
import textwrap
import tomllib

import pytest

from sparsenest import paths

ROOT = paths.REPO_ROOT
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text()) if ROOT else {}

pytestmark = pytest.mark.skipif(ROOT is None, reason="needs the source checkout (pyproject.toml)")


def test_every_package_folder_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "python").parts)
             for p in (ROOT / "python" / "sparsenest").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(found - listed)}"


def test_package_dir_mappings_point_at_the_c_folders():
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert (ROOT / mapping["sparsenest.runtime_c"]).resolve() == paths.RUNTIME_DIR
    assert (ROOT / mapping["sparsenest.boards"]).resolve() == paths.BOARDS_DIR


# Runs in the installed copy: a small random conv net compiled for the host board with explicit
# calibration inputs (no data set), checked against the golden model at every level.
INSTALLED_CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np, torch, torch.nn as nn
    import sparsenest
    from sparsenest import paths
    from sparsenest.bundle import Bundle
    from sparsenest.compiler import golden
    from sparsenest.compiler.build import compile_bundle
    from sparsenest.targets.host import HostSim
    from sparsenest.train.graph import extract_graph, prunable_weight_keys

    site = Path(sys.argv[1]).resolve()
    assert Path(sparsenest.__file__).resolve().is_relative_to(site), sparsenest.__file__
    assert paths.REPO_ROOT is None and paths.RUNTIME_DIR.is_relative_to(site), paths.RUNTIME_DIR
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)).eval()
    graph = extract_graph(net, (1, 8, 8))
    rng = np.random.default_rng(0)
    intro = {k: rng.integers(1, 3, size=tuple(net.state_dict()[k].shape)).astype(np.uint8)
             for k in prunable_weight_keys(graph)}
    levels = [{"level": i, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in ((1, 0.5), (2, 0.0))]
    b = Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "random"},
                          dataset={"name": "none"}, train_config={}, model_spec={"name": "tiny", "kwargs": {}})
    x = rng.uniform(-1, 1, (16, 1, 8, 8)).astype(np.float32)
    info = compile_bundle(b, Path("out"), fmt="csr16", calib=x)
    sim = HostSim(info["out_dir"])
    for level in (1, 2):
        assert sim.set_level(level) == 0
        assert np.array_equal(sim.infer(x), golden.predict(info["qmodel"], x, level)), level
    print("installed copy OK", paths.RUNTIME_DIR)
""")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None, reason="needs gcc and make")
def test_wheel_install_builds_and_runs_c(tmp_path):
    src = tmp_path / "src"   # a copy, so building the wheel writes nothing into the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("python", "runtime_c", "boards"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.o", "*.so"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, text=True, cwd=src)
    wheel = next((tmp_path / "dist").glob("sparsenest-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run([sys.executable, "-c", INSTALLED_CHECK, str(site)], cwd=work, capture_output=True,
                       text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed copy OK" in r.stdout
    # the console script pip installed: `sparsenest` works from the wheel, not only from `pip install -e`
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    r = subprocess.run([str(site / "bin" / "sparsenest"), "--version"], cwd=work, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0 and r.stdout.strip() == f"sparsenest {sparsenest_version()}", r.stdout + r.stderr
    r = subprocess.run([str(site / "bin" / "sparsenest"), "compile", str(work / "missing.nest"), "-o", "x"],
                       cwd=work, capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


def sparsenest_version() -> str:
    return PYPROJECT["project"]["version"]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_venv_stamp_is_by_content_not_file_times(tmp_path):
    """A fresh clone (new file times) with the same files keeps an existing .venv; changed contents reinstall."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt", "requirements-sweep.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    make = ["make", "-C", str(tmp_path), "--no-print-directory"]

    def stamp() -> str:
        return subprocess.run([*make, "-s", "--eval", "print-stamp: ; @echo $(VENV_STAMP)", "print-stamp"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def plan() -> str:   # what `make venv` would run (-n: nothing runs)
        return subprocess.run([*make, "-n", "venv"], capture_output=True, text=True, check=True).stdout

    assert "pip install" in plan()                       # no venv yet
    (tmp_path / stamp()).parent.mkdir()
    (tmp_path / stamp()).touch()
    for name in ("requirements.txt", "pyproject.toml"):  # a clone: every file newer than the stamp
        (tmp_path / name).touch()
    assert "pip install" not in plan()
    with open(tmp_path / "requirements.txt", "a") as f:
        f.write("# changed\n")
    assert "pip install" in plan()
