"""Gradual nested pruning with distillation (train/gradual.py): per-layer shares of a level's sparsity,
nested masks that keep structural zeros out, and a short run that reaches the targets and keeps the
teacher's accuracy on a learnable problem."""
import numpy as np
import torch
import torch.nn as nn

from sparsenest.levels import level_mask
from sparsenest.train.gradual import GradualConfig, layer_sparsities, nested_intro, train_gradual
from sparsenest.train.nested import evaluate


def test_layer_sparsities_keep_the_total_and_spare_scaled_layers():
    numels = {"a": 100, "b": 1000, "c": 50}
    s = layer_sparsities(numels, 0.6, {"a": 0.5, "c": 0.5})
    assert s["a"] == s["c"] == 0.3 and s["b"] > 0.6
    assert abs(sum(s[k] * numels[k] for k in numels) - 0.6 * sum(numels.values())) < 1e-9


def test_nested_intro_nests_and_keeps_structural_zeros_out():
    g = torch.Generator().manual_seed(0)
    w = {"a": torch.randn(8, 9, generator=g), "b": torch.randn(16, 8, generator=g)}
    allowed = {"a": torch.ones(8, 9, dtype=torch.bool)}
    allowed["a"][:, 0] = False
    intro = nested_intro(w, [0.8, 0.5], {"a": 0.5}, allowed)
    assert (intro["a"][:, 0] == 0).all()
    for k in w:
        m1, m2 = level_mask(intro[k], 1), level_mask(intro[k], 2)
        assert not (m1 & ~m2).any()
    kept_a = level_mask(intro["a"], 1).sum() / allowed["a"].sum().item()
    assert abs(kept_a - (1 - 0.4)) < 0.03            # half of level 1's 80 %, of the allowed weights


def test_train_gradual_reaches_targets_and_keeps_accuracy():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(700, 20, generator=g)
    y = (x[:, :4].sum(1) > 0).long() + 2 * (x[:, 4:8].sum(1) > 0).long()   # 4 classes
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.Adam(teacher.parameters(), 1e-2)
    for _ in range(150):
        loss = nn.functional.cross_entropy(teacher(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dense = evaluate(teacher, x, y)
    student = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 4))
    student.load_state_dict(teacher.state_dict())
    res = train_gradual(student, teacher, x[:500], y[:500], sparsities=[0.7, 0.4], log=lambda s: None,
                        cfg=GradualConfig(epochs=4, batch_size=100, lr=3e-3, prune_every=5,
                                          dense_scale={"2.weight": 0.5}))
    assert [round(s, 2) for s in res.level_sparsity] == [0.7, 0.4]
    sd = student.state_dict()
    for k, it in res.intro.items():   # weights no level keeps are exactly 0
        assert (sd[k].numpy()[np.asarray(it) == 0] == 0).all()
    acc = [evaluate(student, x[500:], y[500:], res.intro, lv) for lv in (1, 2)]
    assert dense > 0.9 and min(acc) > 0.75, (dense, acc)   # chance: 0.25
