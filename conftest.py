"""Fixtures shared by the suite (tests/) and the lab's tests (lab/tests/)."""

import pytest
import torch

from dragstream_widget.models.random_model import TINY, random_backend


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_backend():
    return random_backend(TINY, seed=0)


@pytest.fixture
def one_torch_thread():
    """Compute on one thread, as the benches' worker processes do, so in-process results sum floats
    in the same order as theirs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
