"""One CLI: every command through `sparsenest`, help on every option with its default, did-you-mean, the
same option names, one-line errors; and your own model (a file) and data (.npz, image folder) end to end."""
import argparse
import json
import textwrap

import numpy as np
import pytest

from sparsenest import __version__, cli, data
from sparsenest.bundle import Bundle

ALL_COMMANDS = ([[c] for c in ("train", "info", "export-onnx", "import", "export-tflite", "analyze", "compile",
                               "simulate", *cli.MODULE_COMMANDS)] + [["bench", b] for b in cli.BENCH_COMMANDS])


def _subparsers(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, f"{path} {name}")
    yield path, parser


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_every_option_has_help(command):
    for path, parser in _subparsers(cli._parser(command), "sparsenest"):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{path}: {action.option_strings or action.dest} has no help"
            if action.dest == "out":
                assert "--output" in action.option_strings, f"{path}: an output option without -o/--output"


def test_help_shows_defaults_and_hides_old_spellings(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "mcu", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and "(default: build/bench/mcu)" in out and "-o PATH, --output PATH" in out
    assert "--out " not in out.replace("--output", "")


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"sparsenest {__version__}"


@pytest.mark.parametrize("argv, expected", [
    (["trian"], "did you mean 'train'?"),
    (["bench", "mcuu"], "did you mean 'mcu'?"),
    (["train", "--model", "lenet", "-o", "x.nest"], "did you mean 'lenet5'"),
    (["train", "--dataset", "mnits", "-o", "x.nest"], "did you mean 'mnist'?"),
    (["train", "--method", "irregula"], "did you mean 'irregular'?"),
    (["compile", "b.nest", "-o", "b", "--target", "msp430"], "did you mean 'msp430fr5994'?"),
])
def test_did_you_mean(argv, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        rc = cli.main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and err.count("\n") == 1, err


def test_old_option_spellings_still_work():
    a = cli._parser(["harvest"]).parse_args(["harvest", "--out", "t"])
    b = cli._parser(["harvest"]).parse_args(["harvest", "-o", "t"])
    assert a.out == b.out == "t"
    assert cli._parser(["simulate"]).parse_args(["simulate", "b", "--limit", "5"]).limit == 5


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run(capsys, monkeypatch):
    """sparsenest ARGS in folder `cwd`, as a user runs it: exit status, stdout, stderr."""
    def call(*argv, cwd):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        try:
            rc = cli.main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
        out, err = capsys.readouterr()
        return Result(rc, out, err)
    return call


def _one_line_error(r):
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    return r.stderr


@pytest.mark.parametrize("argv, expected", [
    (["harvest", "--trace", "onoff"], "--costs FILE is required"),
    (["report", "nowhere"], "nowhere"),
    (["sim", "nowhere"], "nowhere"),
    (["firmware", "build", "nowhere"], "nowhere"),
    (["harvest-intermittent", "--continuous", "nowhere.json", "--intermittent", "nowhere.json"], "nowhere.json"),
    (["bench", "table2", "--variants", "nope", "-o", "t2"], "unknown variant 'nope'"),
    (["train", "--model", "missing.py:Net"], "missing.py is not a file"),
    (["train", "--dataset", "missing.npz"], "missing.npz"),
])
def test_module_commands_fail_in_one_line(argv, expected, tmp_path, run):
    r = run(*argv, cwd=tmp_path)
    assert r.returncode in (1, 2) and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert expected in r.stderr


USER_MODEL = textwrap.dedent("""
    import torch
    import torch.nn as nn


    class Tiny(nn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(4 * 14 * 14, num_classes)

        def forward(self, x):
            return self.fc(torch.flatten(self.pool(torch.relu(self.conv(x))), 1))
""")


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A user's model file and an .npz of 2,000 real MNIST test images (x/y, float32 [N, 1, 28, 28])."""
    d = tmp_path_factory.mktemp("user")
    (d / "tiny.py").write_text(USER_MODEL)
    mnist = data.load("mnist", "test")
    np.savez(d / "digits.npz", x=mnist.x[:2000], y=mnist.y[:2000])
    return d


@pytest.mark.slow
def test_custom_model_and_data_end_to_end(user_files, run):
    """train (tiny budget) -> export-onnx -> compile -> simulate -> report, all from the CLI, on a model
    defined in the user's file and data from an .npz: no zoo, no built-in data set."""
    d = user_files
    r = run("train", "--model", "tiny.py:Tiny", "--dataset", "digits.npz", "--levels", "0.8,0.5",
             "--epochs-dense", "3", "--epochs-retrain", "1", "-o", "tiny.nest", cwd=d)
    assert r.returncode == 0, r.stderr[-2000:]
    b = Bundle.load(d / "tiny.nest")
    assert b.manifest["model"]["name"] == "graph" and b.manifest["model"]["defined_by"] == "tiny.py:Tiny"
    assert b.dataset["name"] == str((d / "digits.npz").resolve()) and b.dataset["num_samples"] == 400
    assert all(lv["float_accuracy"] > 0.6 for lv in b.levels), b.levels   # trained: chance is 10 %
    (d / "tiny.py").unlink()   # nothing after training needs the user's file
    r = run("export-onnx", "tiny.nest", "-o", "onnx", cwd=d)
    assert r.returncode == 0 and sorted(p.name for p in (d / "onnx").iterdir()) == ["level1.onnx", "level2.onnx"]
    assert r.stderr == "", r.stderr   # the export is quiet: no torchvision or FutureWarning lines
    r = run("compile", "tiny.nest", "-o", "build", "--evaluate", cwd=d)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run("simulate", "build", cwd=d)
    assert r.returncode == 0 and "on 400" in r.stdout, r.stdout + r.stderr
    meta = json.loads((d / "build" / "model_meta.json").read_text())
    c_acc = [float(line.split("accuracy ")[1].split("%")[0]) / 100 for line in r.stdout.splitlines()
             if "C model accuracy" in line]
    assert c_acc == pytest.approx([lv["q15_accuracy"] for lv in meta["levels"]], abs=1e-4)   # C == golden
    r = run("report", "build", "-o", "report", "--no-sim", "--no-samples", "--no-html", "--harvest-hours", "1",
            cwd=d)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (d / "report" / "report.md").exists()


def test_simulate_on_a_chip_build_says_how(tmp_path, run):
    build = tmp_path / "chip"
    build.mkdir()
    (build / "model_meta.json").write_text(json.dumps({"format": "sparsenest-build", "target": "msp430fr5994",
                                                       "n_levels": 3, "bundle": {"dataset": {"name": "mnist"}}}))
    err = _one_line_error(run("simulate", build, cwd=tmp_path))
    assert f"sparsenest sim {build}" in err


def test_npz_and_image_folder_data(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "split.npz", x_train=rng.random((20, 3, 8, 8), dtype=np.float32),
             y_train=np.arange(20) % 4, x_test=rng.random((6, 3, 8, 8), dtype=np.float32), y_test=np.arange(6) % 4)
    tr, te = data.load(str(tmp_path / "split.npz"), "train"), data.load(str(tmp_path / "split.npz"), "test")
    assert tr.x.shape == (20, 3, 8, 8) and te.x.shape == (6, 3, 8, 8) and tr.num_classes == 4
    for k, cls in enumerate(("cat", "dog", "eel")):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((6, 7), 40 * k + i, np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    tr, te = data.load(str(tmp_path / "imgs"), "train"), data.load(str(tmp_path / "imgs"), "test")
    assert tr.x.shape[1:] == (1, 6, 7) and len(tr) + len(te) == 15 and tr.classes == ["cat", "dog", "eel"]
    both = np.concatenate([tr.x[:, 0, 0, 0], te.x[:, 0, 0, 0]]) * 255
    labels = np.concatenate([tr.y, te.y])
    assert np.allclose(both // 40, labels)      # each image under its own class
    np.savez(tmp_path / "pickled.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(ValueError, match="without pickle"):
        data.load(str(tmp_path / "pickled.npz"))
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="needs x and y"):
        data.load(str(tmp_path / "bad.npz"))
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "imgs" / "cat" / "big.png")
    with pytest.raises(ValueError, match="one size"):
        data.load(str(tmp_path / "imgs"))


def test_python_api_takes_tensors_and_loaders():
    """train_to_bundle's data: a DataLoader is gathered in order, 20 % held out for testing, and the data is
    loadable by its name afterwards in this process (compile --evaluate, report)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from sparsenest.train.loop import resolve_data
    x, y = torch.randn(50, 1, 4, 4), torch.arange(50) % 5
    train, test = resolve_data(DataLoader(TensorDataset(x, y), batch_size=7))
    assert len(train) == 40 and len(test) == 10 and train.num_classes == 5 and train.input_shape == (1, 4, 4)
    got = np.concatenate([train.x, test.x])
    assert sorted(map(bytes, got.reshape(50, -1))) == sorted(map(bytes, x.numpy().reshape(50, -1)))
    assert data.load(train.name, "test").x.tobytes() == test.x.tobytes()
    train, test = resolve_data((x[:30], y[:30]), test_data=(x[30:], y[30:]))
    assert len(train) == 30 and np.array_equal(test.y, y[30:].numpy())
    with pytest.raises(ValueError, match="integer class labels"):
        resolve_data((x, torch.rand(50)))
