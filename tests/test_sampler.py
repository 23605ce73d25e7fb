import pytest
import torch

from dragstream_widget.models.sampler import FlowSampler, add_noise, next_noise, shift_sigma, x0_from_flow


def test_self_forcing_schedule_effective_timesteps():
    sampler = FlowSampler((1000, 750, 500, 250), shift=5.0)
    expected = [1000.0, 937.5, 833.33, 625.0]
    assert sampler.timesteps == pytest.approx(expected, abs=3.0)
    assert sampler.sigmas[0] == pytest.approx(1.0)


def test_causvid_schedule():
    sampler = FlowSampler((1000, 757, 522), shift=8.0)
    assert sampler.num_steps == 3
    s = 0.757
    assert sampler.sigma(1) == pytest.approx(shift_sigma(s, 8.0), abs=2e-3)


def test_flow_and_noise_are_inverse():
    x0, noise = torch.randn(4, 5), torch.randn(4, 5)
    x_t = add_noise(x0, noise, 0.7)
    assert torch.allclose(x0_from_flow(x_t, noise - x0, 0.7), x0, atol=1e-6)


@pytest.mark.parametrize(
    "steps, message",
    [
        ((), "empty"),
        ((1000, 1000), "strictly decreasing"),
        ((500, 750), "strictly decreasing"),
        ((1200,), "lie in"),
    ],
)
def test_bad_step_lists(steps, message):
    with pytest.raises(ValueError, match=message):
        FlowSampler(steps)


def test_euler_update_is_the_flow_ode_step():
    x_t, flow = torch.randn(3, 4), torch.randn(3, 4)
    sigma, sigma_next = 0.8, 0.5
    x0 = x0_from_flow(x_t, flow, sigma)
    implied = next_noise(x_t, x0, sigma, torch.zeros(3, 4), "euler")
    assert torch.allclose(add_noise(x0, implied, sigma_next), x_t + (sigma_next - sigma) * flow, atol=1e-5)
    fresh = torch.randn(3, 4)
    assert next_noise(x_t, x0, sigma, fresh, "renoise") is fresh
    with pytest.raises(ValueError, match="unknown update"):
        FlowSampler(update="heun")
