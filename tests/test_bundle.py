"""Bundle round trip and every kind of corruption gives its own clear error."""
import json

import numpy as np
import pytest
import torch

from sparsenest import models
from sparsenest.bundle import Bundle, BundleError
from sparsenest.train.graph import extract_graph, prunable_weight_keys


def _magnitude_intro(w: np.ndarray, sparsities) -> np.ndarray:
    """Nested masks by |w| rank (sparsest first) as an intro array."""
    order = np.argsort(-np.abs(w).ravel(), kind="stable")
    intro = np.zeros(w.size, np.uint8)
    for lv, s in reversed(list(enumerate(sparsities, 1))):
        intro[order[: int(round((1 - s) * w.size))]] = lv
    return intro.reshape(w.shape)


def make_bundle(model_name="lenet5-small", sparsities=(0.9, 0.75, 0.5)):
    torch.manual_seed(0)
    net = models.create(model_name)
    graph = extract_graph(net, (1, 28, 28))
    sd = net.state_dict()
    intro = {k: _magnitude_intro(sd[k].numpy(), sparsities) for k in prunable_weight_keys(graph)}
    levels = [{"level": i + 1, "target_sparsity": s, "sparsity": s, "float_accuracy": None}
              for i, s in enumerate(sparsities)]
    return Bundle.from_model(net, intro, graph=graph, levels=levels, prune={"method": "irregular"},
                             dataset={"name": "mnist"}, train_config={},
                             model_spec={"name": model_name, "kwargs": {}})


@pytest.fixture
def saved(tmp_path):
    return make_bundle().save(tmp_path / "m.nest")


def test_round_trip(saved):
    b = Bundle.load(saved)
    ref = make_bundle()
    assert b.n_levels == 3 and b.graph == ref.graph
    for k, v in ref.arrays.items():
        assert np.array_equal(b.arrays[k], v) and b.arrays[k].dtype == v.dtype
    m1, m3 = b.mask("fc1.weight", 1), b.mask("fc1.weight", 3)
    assert (m1 <= m3).all() and m1.sum() < m3.sum()
    # Shared weights: the same float bits in every level that keeps them.
    l1, l3 = b.level_weights(1)["fc1.weight"], b.level_weights(3)["fc1.weight"]
    assert np.array_equal(l1[m1].view(np.uint32), l3[m1].view(np.uint32))


def test_never_overwrites(saved):
    with pytest.raises(FileExistsError, match="--force"):
        make_bundle().save(saved)
    make_bundle().save(saved, overwrite=True)


def _corrupt(path, how):
    man = json.loads((path / "manifest.json").read_text())
    if how == "manifest-json":
        (path / "manifest.json").write_text("{not json")
    elif how == "version":
        man["version"] = 99
        (path / "manifest.json").write_text(json.dumps(man))
    elif how == "format":
        man["format"] = "something-else"
        (path / "manifest.json").write_text(json.dumps(man))
    elif how == "truncated-npz":
        data = (path / "arrays.npz").read_bytes()
        (path / "arrays.npz").write_bytes(data[: len(data) // 2])
    elif how in ("checksum", "nan", "shape", "mask-weight-mismatch", "dtype"):
        with np.load(path / "arrays.npz") as z:
            arrays = {k: z[k] for k in z.files}
        if how == "checksum":
            arrays["fc1.weight"][0, 0] += 1.0
        elif how == "nan":
            arrays["fc2.bias"][0] = np.nan
        elif how == "shape":
            arrays["fc2.bias"] = arrays["fc2.bias"][:-1]
        elif how == "dtype":
            arrays["fc2.bias"] = arrays["fc2.bias"].astype(np.float64)
        elif how == "mask-weight-mismatch":
            arrays["intro/fc1.weight"] = arrays["intro/fc1.weight"].copy()
            arrays["intro/fc1.weight"][arrays["fc1.weight"] != 0] = 0  # pruned, yet nonzero
        np.savez(path / "arrays.npz", **arrays)
        if how in ("nan", "mask-weight-mismatch"):  # make the index agree so the deeper check is what fires
            for k, a in arrays.items():
                import hashlib
                man["arrays"][k]["sha256"] = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
            (path / "manifest.json").write_text(json.dumps(man))
    elif how == "missing":
        (path / "arrays.npz").unlink()


@pytest.mark.parametrize("how,pattern", [
    ("manifest-json", "not valid JSON"), ("version", "version 99"), ("format", "not a sparsenest"),
    ("truncated-npz", "corrupt"), ("checksum", "checksum"), ("nan", "NaN"),
    ("shape", "fc2.bias"), ("dtype", "float64"), ("mask-weight-mismatch", "masks and weights disagree"),
    ("missing", "missing arrays.npz"),
])
def test_corruption_errors(saved, how, pattern):
    _corrupt(saved, how)
    with pytest.raises(BundleError, match=pattern):
        Bundle.load(saved)


def test_missing_bundle(tmp_path):
    with pytest.raises(BundleError, match="sparsenest train"):
        Bundle.load(tmp_path / "nope.nest")


def test_levels_must_be_sparsest_first():
    b = make_bundle()
    b.manifest["levels"][0]["target_sparsity"] = 0.1
    with pytest.raises(BundleError, match="sparsest first"):
        b.validate()


def test_recorded_sparsity_is_what_the_nesting_arrays_give(saved):
    """from_model records the measured sparsity (targets stay as asked), and a load checks the two agree."""
    b = Bundle.load(saved)
    total = sum(a.size for a in b.intro.values())
    for lv in b.levels:
        kept = sum(int(b.mask(k, lv["level"]).sum()) for k in b.intro)
        assert lv["sparsity"] == round(1 - kept / total, 6)
    assert [lv["target_sparsity"] for lv in b.levels] == [0.9, 0.75, 0.5]
    b.manifest["levels"][0]["sparsity"] = 0.9 if b.levels[0]["sparsity"] != 0.9 else 0.8
    with pytest.raises(BundleError, match="nesting arrays give"):
        b.validate()
