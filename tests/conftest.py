import pytest
import torch

from dragstream_widget.models.random_model import TINY, random_backend
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR


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


def fine_tune_smoke_args(out, clips: int) -> list[str]:
    """``train.py`` arguments of a tiny CPU fine-tune of the shipped toy weights, written to ``out``."""
    return ["--out", str(out), "--smoke", "--clips", str(clips), "--init", str(WEIGHTS_DIR)]
