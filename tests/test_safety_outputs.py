"""Nothing lost: writers refuse inputs, the current folder, foreign folders and existing files without
--force, and a failing compile leaves an earlier build untouched (issue #11)."""
import json
import os

import pytest
import torch

from sn_compile_helpers import bundle_from, tiny_bundle
from sparsenest import cli, models
from sparsenest.analysis import harvest
from sparsenest.bundle import Bundle
from sparsenest.compiler.build import compile_bundle


@pytest.fixture
def bundle_path(tmp_path):
    return tiny_bundle()[0].save(tmp_path / "tiny.nest")


@pytest.fixture
def calib():
    return tiny_bundle()[1]


def _tree(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def test_compile_needs_force_and_replaces_only_its_own_build(bundle_path, calib, tmp_path):
    out = tmp_path / "build"
    compile_bundle(bundle_path, out, calib=calib, build=False)
    before = _tree(out)
    with pytest.raises(FileExistsError, match="--force"):
        compile_bundle(bundle_path, out, calib=calib, build=False)
    assert _tree(out) == before
    (out / "firmware.stale").write_text("from an earlier build")
    compile_bundle(bundle_path, out, calib=calib, build=False, force=True)
    assert not (out / "firmware.stale").exists() and (out / "model.c").read_bytes() == before["model.c"]
    # a manifest-like marker is not enough: the format must say it is a build
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "model_meta.json").write_text(json.dumps({"format": "not-ours"}))
    (fake / "keep.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a sparsenest build"):
        compile_bundle(bundle_path, fake, calib=calib, build=False, force=True)
    assert (fake / "keep.txt").read_text() == "keep"


def test_failing_compile_leaves_earlier_build_untouched(bundle_path, calib, tmp_path):
    out = tmp_path / "build"
    compile_bundle(bundle_path, out, calib=calib, build=False)
    before = _tree(out)
    with pytest.raises(Exception, match="rows"):  # the rows format cannot hold an irregular mask
        compile_bundle(bundle_path, out, calib=calib, build=False, force=True, fmt="rows")
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "tiny.nest"]   # no temporary left


def test_compile_refuses_cwd_and_outputs_inside_the_input(bundle_path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    for out in (".", str(tmp_path), str(bundle_path), str(bundle_path / "sub"), str(tmp_path.parent)):
        rc = cli.main(["compile", str(bundle_path), "-o", out, "--force"])
        assert rc == 2
        _one_line_error(capsys)
    assert _tree(tmp_path) == before


def test_cli_compile_force(tmp_path, capsys):
    torch.manual_seed(0)
    src = bundle_from(models.create("lenet5-small").eval(), (1, 28, 28), name="lenet5-small").save(tmp_path / "l.nest")
    out = tmp_path / "b"
    args = ["compile", str(src), "-o", str(out), "--calib", "8", "--target", "msp430fr5994"]
    assert cli.main(args) == 0
    capsys.readouterr()
    before = _tree(out)
    assert cli.main(args) == 2
    _one_line_error(capsys, "--force")
    assert _tree(out) == before
    assert cli.main(args + ["--force"]) == 0


def test_bundle_save_replaces_only_bundles(bundle_path, tmp_path, monkeypatch):
    b = Bundle.load(bundle_path)
    lookalike = tmp_path / "look"
    lookalike.mkdir()
    (lookalike / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    (lookalike / "data.bin").write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="not a sparsenest bundle"):
        b.save(lookalike, overwrite=True)
    assert (lookalike / "data.bin").read_bytes() == b"keep"
    monkeypatch.chdir(lookalike)
    with pytest.raises(FileExistsError, match="current folder"):
        b.save(".", overwrite=True)
    b.save(bundle_path, overwrite=True)             # its own kind is replaced when asked
    assert Bundle.load(bundle_path).manifest["format"] == "sparsenest-bundle"


def test_analyze_json_refuses_existing_file_and_input(bundle_path, tmp_path, capsys):
    out = tmp_path / "a.json"
    out.write_text("mine")
    assert cli.main(["analyze", str(bundle_path), "--json", str(out)]) == 2
    _one_line_error(capsys, "--force")
    assert out.read_text() == "mine"
    manifest = bundle_path / "manifest.json"
    before = manifest.read_bytes()
    assert cli.main(["analyze", str(bundle_path), "--json", str(manifest), "--force"]) == 2
    _one_line_error(capsys, "input")
    assert manifest.read_bytes() == before
    assert cli.main(["analyze", str(bundle_path), "--json", str(out), "--force"]) == 0
    assert "layers" in json.loads(out.read_text()) or json.loads(out.read_text())


def test_export_onnx_refuses_input_folder(bundle_path, capsys):
    before = _tree(bundle_path)
    assert cli.main(["export-onnx", str(bundle_path), "-o", str(bundle_path), "--force"]) == 2
    _one_line_error(capsys, "input")
    assert _tree(bundle_path) == before


def test_harvest_writes_beside_its_json_never_to_cwd(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["--trace", "onoff", "--demo", "--policy", "fixed:2", "--duration", "600"]
    assert harvest.main(args) == 0
    assert not (tmp_path / "harvest.png").exists()       # no plot without an output path
    out = tmp_path / "res" / "run.json"
    out.parent.mkdir()
    assert harvest.main(args + ["--json", str(out)]) == 0
    assert out.exists() and (out.parent / "run.png").exists()
    capsys.readouterr()
    before = out.read_bytes()
    assert harvest.main(args + ["--json", str(out)]) == 2       # neither the json nor the plot replaced
    _one_line_error(capsys, "--force")
    assert out.read_bytes() == before
    assert harvest.main(args + ["--json", str(out), "--force"]) == 0
    costs = harvest._example_costs().save(tmp_path / "costs.json")
    before = costs.read_bytes()
    assert harvest.main(["--trace", "onoff", "--costs", str(costs), "--json", str(costs), "--force"]) == 2
    _one_line_error(capsys, "input")
    assert costs.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["costs.json", "res"]
