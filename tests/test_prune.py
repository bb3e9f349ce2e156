"""Pruning masks: sparsity targets, declared structure, nesting, constraints, hard pruning under optimizers."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsenest.train import prune

SHAPES = {"linear": (12, 10), "conv1d": (6, 4, 3), "conv2d": (8, 4, 3, 3)}
STRUCTURED = {"row": {}, "column": {}, "block": {"block_shape": (2, 3)}}
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def weight(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def zeros(mask):
    return int((~mask).sum())


def unit_size(shape, method, opts):
    rows, cols = shape[0], int(np.prod(shape[1:]))
    return {"row": cols, "column": rows, "block": int(np.prod(opts.get("block_shape", (1, 1))))}[method]


# ------------------------------------------------------------------------------------------------
# Sparsity and structure of single masks


@FAST
@given(shape=st.sampled_from(list(SHAPES.values()) + [(1, 7), (33, 5)]),
       sparsity=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_irregular_hits_sparsity_exactly_and_removes_smallest(shape, sparsity, seed):
    w = weight(shape, seed)
    m = prune.irregular(w, sparsity)
    assert m.dtype == torch.bool and m.shape == w.shape
    assert zeros(m) == round(sparsity * w.numel())
    if m.any() and (~m).any():
        assert w.abs()[m].min() >= w.abs()[~m].max()


def test_irregular_ties_are_deterministic():
    w = torch.ones(4, 5)
    m = prune.irregular(w, 0.5)
    assert torch.equal(m, prune.irregular(w.clone(), 0.5))
    assert m.reshape(-1)[:10].all() and not m.reshape(-1)[10:].any()  # lower index kept on ties


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("method", STRUCTURED)
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.75, 0.9, 1.0])
def test_structured_within_one_unit(shape, method, sparsity):
    opts = STRUCTURED[method]
    w = weight(shape)
    m = getattr(prune, method)(w, sparsity, **opts)
    assert m.shape == w.shape and m.dtype == torch.bool
    assert abs(zeros(m) - sparsity * w.numel()) <= unit_size(shape, method, opts)
    assert prune.check_structure(m, method, **opts)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("method", ["row", "column"])
def test_row_column_remove_smallest_norms(shape, method):
    w = weight(shape, 3)
    m = getattr(prune, method)(w, 0.5)
    w2, m2 = w.reshape(shape[0], -1), m.reshape(shape[0], -1)
    dim = 1 if method == "row" else 0
    norms, kept = w2.norm(dim=dim), m2.all(dim=dim)
    assert norms[kept].min() >= norms[~kept].max()


def test_block_edges_are_partial_and_strongest_blocks_kept():
    w = torch.zeros(5, 7)
    w[4, 6] = 10.0  # alone in the 1x1 corner block of a (2, 3) tiling
    w[0:2, 0:3] = 1.0
    m = prune.block(w, 1 - 7 / 35, block_shape=(2, 3))
    assert m[4, 6] and m[0:2, 0:3].all() and m.sum() == 7


def test_check_structure_rejects_wrong_structure():
    w = weight((8, 6), 1)
    irr = prune.irregular(w, 0.5)
    assert prune.check_structure(irr, "irregular")
    for method, opts in STRUCTURED.items():
        assert not prune.check_structure(irr, method, **opts)
    rows = prune.row(w, 0.5)
    assert prune.check_structure(rows, "row") and not prune.check_structure(rows, "column")
    assert prune.check_structure(rows, "block", block_shape=(1, 6))
    assert not prune.check_structure(rows, "block", block_shape=(2, 2))  # rows 0..7 pruned unevenly
    assert not prune.check_structure(rows.float(), "row")
    with pytest.raises(ValueError, match="unknown pruning method"):
        prune.check_structure(rows, "diagonal")


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_sparsity_is_rejected(bad):
    with pytest.raises(ValueError, match="sparsity"):
        prune.irregular(weight((4, 4)), bad)


# ------------------------------------------------------------------------------------------------
# PCONV patterns


def test_pattern_kernels_keep_one_pattern_and_hit_sparsity():
    w = weight((16, 8, 3, 3), 5)
    for s in (5 / 9, 0.6, 0.75, 0.9):
        m = prune.pattern(w, s, n=4, num_patterns=6)
        table, ids = prune.pattern_assignment(m)
        assert table.shape[1] == 4 and len(table) <= 6
        counts = m.reshape(128, 9).sum(1)
        assert set(counts.tolist()) <= {0, 4}
        assert abs(zeros(m) - s * w.numel()) <= 4  # within one kernel
        assert prune.check_structure(m, "pattern", n=4, num_patterns=6)
        assert not prune.check_structure(m, "pattern", n=3)


def test_pattern_choice_maximises_kept_norm_and_connectivity_removes_weakest():
    w = weight((6, 5, 3, 3), 7)
    table = [[0, 1, 2, 4], [4, 6, 7, 8], [1, 3, 4, 5], [0, 2, 6, 8]]
    m = prune.pattern(w, 0.8, patterns=table)
    assert prune.check_structure(m, "pattern", patterns=table)
    wk, mk = w.reshape(30, 9), m.reshape(30, 9)
    best = torch.stack([wk[:, t].square().sum(1) for t in table], 1).max(1).values
    kept = mk.any(1)
    assert torch.allclose(wk.square().mul(mk).sum(1)[kept], best[kept])
    assert best[kept].min() >= best[~kept].max()


def test_pattern_assignment_round_trips():
    w = weight((4, 3, 3, 3), 2)
    m = prune.pattern(w, 0.7)
    table, ids = prune.pattern_assignment(m)
    assert ids.shape == (4, 3) and ids.dtype == np.int64 and table.dtype == np.int64
    rebuilt = np.zeros((12, 9), bool)
    for k, pid in enumerate(ids.reshape(-1)):
        if pid >= 0:
            rebuilt[k, table[pid]] = True
    assert np.array_equal(rebuilt.reshape(m.shape), m.numpy())
    assert (ids == -1).sum() == (~m.reshape(12, 9).any(1)).sum()
    with pytest.raises(ValueError, match="not a pattern mask"):
        prune.pattern_assignment(prune.irregular(w, 0.7))


def test_pattern_errors_are_clear():
    with pytest.raises(ValueError, match="Conv2d"):
        prune.pattern(weight((8, 9)), 0.8)
    with pytest.raises(ValueError, match="Conv2d"):
        prune.pattern(weight((8, 4, 3)), 0.8)
    with pytest.raises(ValueError, match=r"cannot go below sparsity 0\.5556"):
        prune.pattern(weight((4, 4, 3, 3)), 0.5, n=4)
    with pytest.raises(ValueError, match="distinct positions"):
        prune.pattern(weight((4, 4, 3, 3)), 0.8, patterns=[[0, 0, 1, 2]])


# ------------------------------------------------------------------------------------------------
# Nesting and constraints


def all_methods(shape):
    out = [("irregular", {})] + list(STRUCTURED.items())
    return out + ([("pattern", {"n": 4, "num_patterns": 8})] if len(shape) == 4 else [])


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_nested_masks_nest_for_every_method(shape):
    w = weight(shape, 11)
    for method, opts in all_methods(shape):
        sps = (0.9, 0.75, 0.6) if method == "pattern" else (0.9, 0.75, 0.5)
        masks = prune.nested_masks(w, method, sps, **opts)
        assert len(masks) == 3
        for sparse, dense in zip(masks, masks[1:]):
            assert not (sparse & ~dense).any(), method
        for m, s in zip(masks, sps):
            assert prune.check_structure(m, method, **opts)
            tol = 0 if method == "irregular" else (4 if method == "pattern" else unit_size(shape, method, opts))
            assert abs(zeros(m) - (round(s * w.numel()) if method == "irregular" else s * w.numel())) <= tol
        if method == "pattern":  # a kernel keeps one pattern at every level
            table, ids = prune.pattern_assignment(masks[-1])
            for m in masks:
                kept = m.reshape(-1, 9).any(1).numpy()
                assert np.array_equal(m.reshape(-1, 9).numpy()[kept],
                                      masks[-1].reshape(-1, 9).numpy()[kept])


def test_nested_masks_validates_order():
    with pytest.raises(ValueError, match="strictly decreasing"):
        prune.nested_masks(weight((4, 4)), "irregular", (0.5, 0.75))


@FAST
@given(seed=st.integers(0, 2**16), s_sparse=st.floats(0.6, 1.0), s_dense=st.floats(0.0, 0.4))
def test_irregular_must_keep_and_allowed(seed, s_sparse, s_dense):
    w = weight((9, 7), seed)
    sparse = prune.irregular(w.flip(0), s_sparse)  # an unrelated sparser mask
    grown = prune.irregular(w, s_dense, must_keep=sparse)
    assert not (sparse & ~grown).any() and zeros(grown) == round(s_dense * w.numel())
    dense = prune.irregular(w.flip(1), s_dense)
    carved = prune.irregular(w, s_sparse, allowed=dense)
    assert not (carved & ~dense).any() and zeros(carved) == round(s_sparse * w.numel())


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("method", STRUCTURED)
def test_structured_must_keep_and_allowed_are_in_units(shape, method):
    opts = STRUCTURED[method]
    w, other = weight(shape, 1), weight(shape, 2)
    fn = getattr(prune, method)
    sparse = fn(other, 0.8, **opts)
    grown = fn(w, 0.4, must_keep=sparse, **opts)
    assert not (sparse & ~grown).any() and prune.check_structure(grown, method, **opts)
    assert abs(zeros(grown) - 0.4 * w.numel()) <= unit_size(shape, method, opts)
    dense = fn(other, 0.4, **opts)
    carved = fn(w, 0.8, allowed=dense, **opts)
    assert not (carved & ~dense).any() and prune.check_structure(carved, method, **opts)
    # one element of must_keep forces its whole unit; one missing element of allowed forbids it
    one = torch.zeros(shape, dtype=torch.bool)
    one.view(-1)[0] = True
    assert fn(w, 0.9, must_keep=one, **opts).view(-1)[0]
    assert not fn(w, 0.0, allowed=~one, **opts).view(-1)[0]


def test_row_accepts_unit_shaped_constraints():
    w = weight((6, 5))
    keep_rows = torch.tensor([False, False, False, False, False, True])
    m = prune.row(w, 0.8, must_keep=keep_rows)
    assert m[5].all() and m.sum() == 5


def test_pattern_must_keep_grows_with_same_patterns():
    w = weight((8, 6, 3, 3), 4)
    sparse = prune.pattern(w, 0.9)
    w2 = w + 0.5 * weight(w.shape, 9)  # retrained weights: new kernels may prefer other sets
    grown = prune.pattern(w2, 0.7, must_keep=sparse)
    assert not (sparse & ~grown).any()
    assert prune.check_structure(grown, "pattern", num_patterns=16)
    kept = sparse.reshape(-1, 9).any(1)
    assert torch.equal(grown.reshape(-1, 9)[kept], sparse.reshape(-1, 9)[kept])


def test_constraint_conflicts_raise():
    w = weight((10, 10))
    with pytest.raises(ValueError, match="must_keep already keeps"):
        prune.irregular(w, 0.9, must_keep=torch.ones(10, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="allowed permits only"):
        prune.row(w, 0.2, allowed=prune.row(w, 0.8))
    with pytest.raises(ValueError, match="conflict"):
        prune.irregular(w, 0.5, must_keep=torch.eye(10, dtype=torch.bool),
                        allowed=~torch.eye(10, dtype=torch.bool))
    with pytest.raises(ValueError, match="shape"):
        prune.column(w, 0.5, allowed=torch.ones(3, dtype=torch.bool))


# ------------------------------------------------------------------------------------------------
# Model-level helpers and hard pruning


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x):
        x = F.relu(self.bn(self.conv1(x)))
        return self.head(F.relu(self.conv2(x)))


class WithConv1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(2, 4, 3)
        self.fc = nn.Linear(4, 3)


def test_prunable_weights_keys_and_include():
    m = SmallCNN()
    keys = list(prune.prunable_weights(m))
    assert keys == ["conv1.weight", "conv2.weight", "head.1.weight", "head.3.weight"]
    assert set(keys) <= set(m.state_dict())
    assert list(prune.prunable_weights(m, include=[r"^conv"])) == ["conv1.weight", "conv2.weight"]
    assert list(prune.prunable_weights(m, include=lambda k: k.startswith("head"))) == ["head.1.weight",
                                                                                      "head.3.weight"]
    assert list(prune.prunable_weights(WithConv1d())) == ["c.weight", "fc.weight"]


def test_compute_masks_same_ratio_per_layer():
    m = SmallCNN()
    masks = prune.compute_masks(m, "irregular", 0.7)
    assert list(masks) == list(prune.prunable_weights(m))
    for k, mask in masks.items():
        assert zeros(mask) == round(0.7 * mask.numel()), k
    mixed = prune.compute_masks(m, {"conv1.weight": "pattern", "conv2.weight": "pattern",
                                    "head.1.weight": "row", "head.3.weight": "irregular"}, 0.7)
    assert prune.check_structure(mixed["conv2.weight"], "pattern")
    assert prune.check_structure(mixed["head.1.weight"], "row")
    only = prune.compute_masks(m, "column", 0.5, weights=["conv2.weight"])
    assert list(only) == ["conv2.weight"]


OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
}


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
def test_hard_prune_keeps_pruned_weights_and_grads_at_zero(opt_name):
    torch.manual_seed(0)
    model = SmallCNN()
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 4, (32,))
    opt = OPTIMIZERS[opt_name](model.parameters())

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):  # dense steps first: momentum / Adam moments are non-zero when pruning starts
        step()
    masks = prune.compute_masks(model, "irregular", 0.6)
    masks["conv2.weight"] = prune.row(model.conv2.weight, 0.5).numpy()  # numpy masks work too
    params = dict(model.named_parameters())
    handle = prune.hard_prune(model, masks, opt)
    before = {k: params[k].detach().clone() for k in masks}
    losses = [step() for _ in range(6)]
    for k, m in masks.items():
        m = torch.as_tensor(m)
        assert (params[k][~m] == 0).all(), k
        assert (params[k].grad[~m] == 0).all(), k
        assert not torch.equal(params[k][m], before[k][m]), f"{k}: kept weights did not train"
    assert losses[-1] < losses[0]
    handle.remove()
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    assert (params["head.1.weight"].grad[~masks["head.1.weight"]] != 0).any()  # hooks are gone


def test_hard_prune_rejects_unknown_keys_and_shapes():
    model = SmallCNN()
    with pytest.raises(KeyError, match="fc9.weight"):
        prune.hard_prune(model, {"fc9.weight": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="shape"):
        prune.hard_prune(model, {"conv1.weight": torch.ones(2, 2, dtype=torch.bool)})


def test_hard_prune_post_step_hook_re_zeros_weights():
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    masks = {"head.1.weight": prune.irregular(model.head[1].weight, 0.5)}
    handle = prune.hard_prune(model, masks, opt)
    w = model.head[1].weight
    opt.state[w]["momentum_buffer"] = torch.ones_like(w)  # state the gradient hook cannot see
    F.cross_entropy(model(torch.randn(4, 3, 8, 8)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()
    assert (w[~masks["head.1.weight"]] == 0).all()
    handle.remove()
    opt.step()  # without the hook, the momentum moves pruned weights again
    assert (w[~masks["head.1.weight"]] != 0).any()
