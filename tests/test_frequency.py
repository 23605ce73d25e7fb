import math

import pytest
import torch

from dragstream_widget.engine import frequency
from dragstream_widget.engine.frequency import (
    PAPER_CUTOFFS,
    CutoffSwitch,
    butterworth_lowpass,
    kv_lowpass_filter,
    lowpass_spatial,
    radial_frequency,
    tokens_lowpass,
)


def test_butterworth_is_one_half_at_the_cutoff():
    # On a 40x40 grid, (f_y, f_x) = (0, 4/40) has D = 2 * 0.1 = 0.2.
    response = butterworth_lowpass(40, 40, cutoff=0.2)
    assert radial_frequency(40, 40)[0, 4] == pytest.approx(0.2)
    assert response[0, 4] == pytest.approx(0.5, abs=1e-6)
    assert response[0, 0] == 1.0
    assert response[0, 2] > 0.98 and response[0, 8] < 0.01  # order 4: steep on both sides


def test_butterworth_order_sets_the_slope():
    d = radial_frequency(40, 40)[0, 8]  # D = 0.4, twice the cutoff
    for order in (1, 2, 4):
        assert butterworth_lowpass(40, 40, 0.2, order)[0, 8] == pytest.approx(
            1 / (1 + (d / 0.2) ** (2 * order))
        )


def test_lowpass_keeps_constants_and_removes_fine_stripes():
    x = torch.full((2, 16, 16), 3.0)
    assert torch.allclose(lowpass_spatial(x, 0.2), x, atol=1e-5)
    stripes = torch.cos(math.pi * torch.arange(16.0))[None, :].expand(16, 16)  # Nyquist along x
    assert lowpass_spatial(stripes, 0.4).abs().max() < 1e-3
    assert lowpass_spatial(stripes, 1.0) is stripes


def test_switch_draws_every_cutoff_uniformly():
    switch = CutoffSwitch(PAPER_CUTOFFS, torch.Generator().manual_seed(0))
    draws = [switch.draw() for _ in range(4000)]
    counts = {c: draws.count(c) for c in PAPER_CUTOFFS}
    assert set(draws) == set(PAPER_CUTOFFS)
    assert all(900 < n < 1100 for n in counts.values())


def test_switch_rejects_bad_sets():
    with pytest.raises(ValueError, match="empty"):
        CutoffSwitch(())
    with pytest.raises(ValueError, match="positive"):
        CutoffSwitch((0.2, -1))


def test_token_filter_works_per_frame_and_channel():
    grid = (2, 6, 8)
    tokens = torch.randn(1, 2 * 6 * 8, 3, 4)
    filtered = tokens_lowpass(tokens, grid, 0.4)
    frame0 = tokens[:, :48].reshape(1, 6, 8, 3, 4).permute(0, 3, 4, 1, 2)
    expected = lowpass_spatial(frame0, 0.4).permute(0, 3, 4, 1, 2).reshape(1, 48, 3, 4)
    assert torch.allclose(filtered[:, :48], expected, atol=1e-6)


def test_matrix_and_fft_forms_of_the_token_filter_agree(monkeypatch):
    grid = (3, 8, 8)
    tokens = torch.randn(2, 3 * 64, 4, 16)
    as_matrix = tokens_lowpass(tokens, grid, 0.2)
    monkeypatch.setattr(frequency, "MATRIX_FILTER_MAX_TOKENS", 0)
    as_fft = tokens_lowpass(tokens, grid, 0.2)
    torch.testing.assert_close(as_matrix, as_fft, rtol=0, atol=1e-5)
    assert not torch.allclose(as_matrix, tokens, atol=1e-2)


@pytest.mark.parametrize("max_tokens", [256, 0])  # matrix form, then FFT form
def test_per_sample_cutoffs_filter_each_sample_as_its_own_cutoff_would(monkeypatch, max_tokens):
    monkeypatch.setattr(frequency, "MATRIX_FILTER_MAX_TOKENS", max_tokens)
    grid = (2, 8, 8)
    tokens = torch.randn(3, 2 * 64, 2, 8)
    cutoffs = (0.2, 1.0, 0.6)
    batched = tokens_lowpass(tokens, grid, cutoffs)
    for i, cutoff in enumerate(cutoffs):
        alone = tokens_lowpass(tokens[i : i + 1], grid, cutoff)
        torch.testing.assert_close(batched[i : i + 1], alone, rtol=0, atol=1e-5)
    assert torch.equal(batched[1], tokens[1])  # cutoff 1 leaves its sample untouched
    assert kv_lowpass_filter((1.0, 1.0)) is None
    with pytest.raises(ValueError, match="2 cutoffs for a batch of 3"):
        tokens_lowpass(tokens, grid, (0.2, 0.4))


def test_kv_filter_scopes():
    keys, values = torch.randn(1, 3 * 12, 2, 4), torch.randn(1, 3 * 12, 2, 4)
    grid = (3, 3, 4)
    context_only = kv_lowpass_filter(0.2, "context")
    k, v = context_only(keys, values, 0, grid, 2)
    assert torch.equal(k[:, 24:], keys[:, 24:]) and not torch.allclose(k[:, :24], keys[:, :24])
    window = kv_lowpass_filter(0.2, "window")
    k, v = window(keys, values, 0, grid, 2)
    assert not torch.allclose(k[:, 24:], keys[:, 24:]) and not torch.allclose(v, values)
    assert kv_lowpass_filter(1.0) is None
    limited = kv_lowpass_filter(0.2, "context", layers=[1])
    assert limited(keys, values, 0, grid, 2)[0] is keys
    with pytest.raises(ValueError, match="scope"):
        kv_lowpass_filter(0.2, "everything")
