"""The suite sees what a fresh machine sees: fixtures are seeded and do not disturb the caller's RNG, and
caches live where XDG_CACHE_HOME / SPARSENEST_CACHE say (issue #11)."""
from pathlib import Path

import torch

from sn_compile_helpers import trained_net
from sparsenest import data


def test_trained_net_is_the_same_whatever_the_global_seed():
    nets = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        state = torch.random.get_rng_state()
        nets.append(trained_net.__wrapped__("lenet5-small", steps=3))
        assert torch.equal(torch.random.get_rng_state(), state)   # the caller's RNG is left alone
    a, b = (n.state_dict() for n in nets)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SPARSENEST_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_root() == tmp_path / "xdg" / "sparsenest"
    assert data.cache_root() in data.search_path()
    monkeypatch.setenv("XDG_CACHE_HOME", "")                  # empty = unset (XDG spec), never the cwd
    assert data.cache_root() == Path.home() / ".cache" / "sparsenest"
    monkeypatch.setenv("SPARSENEST_CACHE", str(tmp_path / "own"))
    assert data.cache_dir() == tmp_path / "own" and (tmp_path / "own").is_dir()
