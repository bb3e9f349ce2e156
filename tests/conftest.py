"""Shared fixtures: real MNIST slices (loaded once per session)."""
import numpy as np
import pytest
import torch

from sparsenest import data


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
