"""compile_bundle only compiles: the caller hands it calibration (and evaluation) inputs."""
from __future__ import annotations

import numpy as np
import pytest

from sn_compile_helpers import tiny_bundle
import sparsenest.data as data
from sparsenest.compiler.build import BuildError, compile_bundle


def _no_data_sets(*a, **k):
    raise AssertionError("compile_bundle loaded a data set")


def test_compiles_and_evaluates_on_given_arrays_without_loading_data(tmp_path, monkeypatch):
    b, x = tiny_bundle()
    monkeypatch.setattr(data, "load", _no_data_sets)
    y = np.arange(len(x)) % 4
    meta = compile_bundle(b, tmp_path / "out", calib=x, evaluate=(x, y), build=False)["meta"]
    assert [lv["n_eval"] for lv in meta["levels"]] == [len(x)] * b.n_levels
    assert all(0.0 <= lv["q15_accuracy"] <= 1.0 for lv in meta["levels"])


def test_callables_get_the_bundle(tmp_path, monkeypatch):
    b, x = tiny_bundle()
    monkeypatch.setattr(data, "load", _no_data_sets)
    seen = []
    info = compile_bundle(b, tmp_path / "out", calib=lambda bb: seen.append(bb) or x, build=False,
                          evaluate=lambda bb: seen.append(bb) or (x[:5], np.zeros(5, np.int64)))
    assert seen == [b, b] and info["meta"]["levels"][0]["n_eval"] == 5


@pytest.mark.parametrize("bad", [np.zeros((0, 8), np.float32), np.zeros((4, 9), np.float32), np.zeros(8)])
def test_calibration_of_the_wrong_shape_is_one_line_error(tmp_path, bad):
    b, _ = tiny_bundle()
    with pytest.raises(BuildError, match=r"calib: expected float inputs of shape \[N, 8\]") as e:
        compile_bundle(b, tmp_path / "out", calib=bad, build=False)
    assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


def test_calibration_defaults_are_a_fixed_slice_of_the_bundles_data_set(tmp_path):
    from pathlib import Path
    from sparsenest.data.calibration import calibration_inputs, evaluation_set
    a, b = calibration_inputs("mnist", 8), calibration_inputs("mnist", 8)
    assert a.shape == (8, 1, 28, 28) and np.array_equal(a, b)
    x, y = evaluation_set("mnist", 5)
    assert x.shape == (5, 1, 28, 28) and y.shape == (5,)
    with pytest.raises(TypeError, match="loaded Bundle"):
        evaluation_set(Path(tmp_path / "b.nest"))
