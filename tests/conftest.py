"""Shared fixtures: real MNIST slices (loaded once per session); every test starts from the same RNG
state, whatever ran before it.

No test fixture is cached on disk (trained nets live for the session only). The only thing tests read
from the user cache is derived data ($XDG_CACHE_HOME/sparsenest: HAR windows, MFCCs, decoded JPEGs,
MSP430 board objects), keyed by the checksums of its sources, so a later run reuses exactly what a first
run would build; .ci/run points XDG_CACHE_HOME at an empty folder to see a fresh machine."""
import random

import numpy as np
import pytest
import torch
from hypothesis import settings

from sparsenest import data

# Property tests draw the same examples in every run and keep no example database in the checkout
# (.hypothesis/ would replay what an earlier run found); a timing deadline would flip on a busy machine.
settings.register_profile("sparsenest", derandomize=True, database=None, deadline=None)
settings.load_profile("sparsenest")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Tests that draw from the global RNGs (torch init, np.random, random) see the same numbers in any
    order and any process."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def mnist_train():
    return data.load("mnist", "train")


@pytest.fixture(scope="session")
def mnist_test():
    return data.load("mnist", "test")


@pytest.fixture(scope="session")
def mnist_slice(mnist_train):
    """3,000 real training images as torch tensors (enough to learn LeNet to >90%)."""
    s = mnist_train.subset(3000, seed=1)
    return torch.from_numpy(s.x), torch.from_numpy(s.y)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
