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
