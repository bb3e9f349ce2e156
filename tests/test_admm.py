"""ADMM pruning: the penalty pulls weights onto the constraint set while the task is still learned."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sparsenest.train import prune
from sparsenest.train.admm import ADMMPruner


def regression_problem(method, sparsity, seed=0):
    """Targets from a weight that is structured-sparse plus dense noise: the dense fit is not in the
    constraint set, but a nearby point of it fits well."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 24, generator=g)
    w = torch.randn(12, 24, generator=g)
    w = w * getattr(prune, method)(w, sparsity) + 0.2 * torch.randn(12, 24, generator=g)
    return x, x @ w.T + 0.05 * torch.randn(256, 12, generator=g)


def train(model, x, y, steps, admm=None, update_every=20, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for i in range(steps):
        loss = F.mse_loss(model(x), y)
        if admm is not None:
            loss = loss + admm.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if admm is not None and (i + 1) % update_every == 0:
            admm.update()
    return F.mse_loss(model(x), y).item()


@pytest.mark.parametrize("method,sparsity", [("irregular", 0.75), ("row", 0.5)])
def test_admm_reduces_distance_to_constraint_set(method, sparsity):
    torch.manual_seed(0)
    x, y = regression_problem(method, sparsity)
    model = nn.Linear(24, 12)
    train(model, x, y, 200, lr=3e-2)
    control = nn.Linear(24, 12)
    control.load_state_dict(model.state_dict())
    admm = ADMMPruner(model, method, sparsity, rho=1e-2, rho_growth=1.3, rho_max=1.0)
    d0 = admm.distance()
    assert set(d0["per_weight"]) == {"weight"} and 0.05 < d0["overall"] < 1
    loss = train(model, x, y, 300, admm)
    train(control, x, y, 300)  # same steps without the penalty: the distance is ADMM's doing
    d1 = admm.distance()
    assert d1["overall"] < 0.1 * d0["overall"], (d0, d1)
    assert d1["per_weight"]["weight"] == pytest.approx(d1["overall"])
    assert ADMMPruner(control, method, sparsity).distance()["overall"] > 0.9 * d0["overall"]
    masks = admm.final_masks()
    assert prune.check_structure(masks["weight"], method)
    assert abs(int((~masks["weight"]).sum()) - sparsity * 288) <= (24 if method == "row" else 0)
    with torch.no_grad():  # W already sits next to the set: the final hard prune costs little
        model.weight.mul_(masks["weight"])
    assert F.mse_loss(model(x), y).item() < 1.05 * loss


def test_update_follows_the_admm_recursion():
    model = nn.Linear(6, 4, bias=False)
    admm = ADMMPruner(model, "irregular", 0.5, rho=0.1, rho_growth=2.0, rho_max=0.3)
    w = model.weight.detach().clone()
    assert torch.equal(admm.Z["weight"], w * prune.irregular(w, 0.5))
    with torch.no_grad():
        model.weight.add_(0.1)
    w = model.weight.detach().clone()
    u_old = admm.U["weight"].clone()
    admm.update()
    z = (w + u_old) * prune.irregular(w + u_old, 0.5)
    assert torch.allclose(admm.Z["weight"], z)
    assert torch.allclose(admm.U["weight"], (u_old + w - z) * 0.5)  # rescaled by rho_old / rho_new
    assert admm.rho == pytest.approx(0.2)
    admm.update()
    assert admm.rho == pytest.approx(0.3)  # capped at rho_max
    pen = admm.penalty()
    pen.backward()
    expected = 0.3 / 2 * (w - admm.Z["weight"] + admm.U["weight"]).square().sum()
    assert pen.item() == pytest.approx(expected.item(), rel=1e-5)
    assert model.weight.grad.abs().sum() > 0


def test_admm_on_a_cnn_with_per_layer_methods():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 3))
    methods = {"0.weight": "pattern", "3.weight": "irregular"}
    admm = ADMMPruner(model, methods, 0.75, weights=list(methods), rho=1e-2)
    x, y = torch.randn(64, 2, 6, 6), torch.randint(0, 3, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    d0 = admm.distance()["overall"]
    for i in range(200):
        loss = F.cross_entropy(model(x), y) + admm.penalty()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (i + 1) % 20 == 0:
            admm.update()
    assert admm.distance()["overall"] < 0.5 * d0
    masks = admm.final_masks()
    assert prune.check_structure(masks["0.weight"], "pattern")
    assert int((~masks["3.weight"]).sum()) == round(0.75 * masks["3.weight"].numel())


def test_bad_arguments_fail_early():
    model = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="unknown pruning method"):
        ADMMPruner(model, "diagonal", 0.5)
    with pytest.raises(ValueError, match="Conv2d"):
        ADMMPruner(model, "pattern", 0.75)
    with pytest.raises(ValueError, match="rho"):
        ADMMPruner(model, "irregular", 0.5, rho=0)
    assert math.isclose(ADMMPruner(nn.Linear(3, 3), "irregular", 0.0).distance()["overall"], 0.0)
