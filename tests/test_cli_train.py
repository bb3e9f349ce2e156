"""`sparsenest train / info / export-onnx` end to end on a real MNIST slice."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from sparsenest import cli, data
from sparsenest.bundle import Bundle
from sparsenest.interop.onnx_export import rebuild_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "small.nest"
    rc = cli.main(["train", "--model", "lenet5-small", "--levels", "0.5,0.8", "--train-limit", "2000",
                   "--epochs-dense", "4", "--epochs-retrain", "1", "-o", str(out)])
    assert rc == 0
    return out


def test_train_writes_valid_bundle(trained, capsys):
    b = Bundle.load(trained)
    assert [lv["target_sparsity"] for lv in b.levels] == [0.8, 0.5]  # sorted sparsest first
    assert all(lv["float_accuracy"] > 0.5 for lv in b.levels)
    assert b.dataset["name"] == "mnist" and b.dataset["num_samples"] == 10000
    assert cli.main(["info", str(trained)]) == 0
    assert "fc1.weight" in capsys.readouterr().out


def test_train_refuses_to_overwrite(trained, capsys):
    before = (trained / "arrays.npz").read_bytes()
    rc = cli.main(["train", "--model", "lenet5-small", "--train-limit", "100", "-o", str(trained)])
    assert rc == 2 and "--force" in capsys.readouterr().err
    assert (trained / "arrays.npz").read_bytes() == before


def test_onnx_export_matches_onnxruntime(trained, tmp_path):
    b = Bundle.load(trained)
    assert cli.main(["export-onnx", str(trained), "-o", str(tmp_path)]) == 0
    x = data.load("mnist", "test").x[:64]
    for lv in (1, 2):
        ref = rebuild_model(b, lv)(torch.from_numpy(x)).detach().numpy()
        got = ort.InferenceSession(str(tmp_path / f"level{lv}.onnx")).run(None, {"input": x})[0]
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
        # the level's zeros are really in the exported graph: levels differ
    l1 = ort.InferenceSession(str(tmp_path / "level1.onnx")).run(None, {"input": x})[0]
    l2 = ort.InferenceSession(str(tmp_path / "level2.onnx")).run(None, {"input": x})[0]
    assert not np.allclose(l1, l2)
