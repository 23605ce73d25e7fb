import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dragstream_widget.diagnostics.figures import (
    plot_frequency,
    plot_gradient_map,
    plot_latent_drift,
    plot_losses,
)  # noqa: E402
from dragstream_widget.diagnostics.recorders import IterationRecorder, LatentStatsRecorder  # noqa: E402
from dragstream_widget.diagnostics.spectrum import (  # noqa: E402
    band_energy,
    cutoff_contribution,
    frequency_contribution,
    kv_band_energy,
)
from dragstream_widget.engine.config import DragConfig  # noqa: E402
from dragstream_widget.engine.session import StreamSession  # noqa: E402
from dragstream_widget.models.random_model import TINY, random_backend  # noqa: E402
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation  # noqa: E402

SIZE = (32, 32)


def handle():
    mask = np.zeros(SIZE, bool)
    mask[8:16, 8:16] = True
    return mask


def edit():
    return DragInstruction(
        Mode.EDIT, SIZE, (HandleRegion(handle(), Operation.TRANSLATE, (12.0, 12.0), ((18.0, 12.0),)),)
    )


def recorded_session(blocks: int):
    """A tiny stream of ``blocks`` blocks with both recorders attached, its last block edited."""
    session = StreamSession(random_backend(TINY), "a red circle", seed=0, config=DragConfig(iterations=2))
    stats, iterations = LatentStatsRecorder(session.events), IterationRecorder(session.events)
    for _ in range(blocks):
        session.step()
    session.edit(edit())
    return session, stats, iterations


def test_recorders_collect_what_the_engine_emits_and_detach():
    session, stats, iterations = recorded_session(3)
    series = stats.series()
    assert len(series["mean"]) == 3 * TINY.frames_per_block  # the edit replaced block 2's statistics
    assert np.allclose(
        series["mean"][-2:], session.latents()[0, :, -2:].mean(dim=(0, 2, 3)).numpy(), atol=1e-6
    )
    assert [r.iteration for r in iterations.log][:2] == [0, 1]
    assert iterations.gradient_magnitude.shape == (TINY.frames_per_block, 8, 8)
    assert iterations.step_magnitude.shape == (TINY.frames_per_block, 8, 8)
    assert iterations.step_magnitude.max() > 0  # the iteration moved the latent
    assert 0.5 < iterations.gradient_map.max() <= 1.0  # peak between cells when the box has even size
    stats.close()
    iterations.close()
    count = len(iterations.log)
    session.edit(edit())
    assert len(iterations.log) == count


def test_frequency_probes():
    session = StreamSession(random_backend(TINY), "a red circle", seed=0)
    for _ in range(3):
        session.step()
    contribution = frequency_contribution(session, handle())
    assert contribution[1.0] == 0.0
    assert contribution[0.2] > 0.0
    bands = kv_band_energy(session, layer=1, bands=4)
    assert bands["keys"].sum() == pytest.approx(1.0) and bands["values"].sum() == pytest.approx(1.0)
    assert len(bands["band_edges"]) == 5


def test_cutoff_contribution_by_hand():
    base = torch.zeros(2, 1, 2, 2)
    base[0, 0, 0, 0], base[1, 0, 0, 0] = 3.0, 4.0  # token (0, 0): norm 5
    base[0, 0, 1, 1] = 1.0  # token (1, 1), outside the weight
    filtered = base.clone()
    filtered[0, 0, 0, 0] += 1.5  # token (0, 0) changes by 1.5 of 5: 0.3
    filtered[0, 0, 1, 1] += 100.0  # ignored: weight 0 there
    weight = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    change = cutoff_contribution({1.0: base, 0.4: filtered}, weight)
    assert list(change) == [0.4, 1.0]
    assert change[0.4] == pytest.approx(0.3) and change[1.0] == 0.0
    with pytest.raises(ValueError, match="unfiltered"):
        cutoff_contribution({0.4: filtered}, weight)
    with pytest.raises(ValueError, match="empty"):
        cutoff_contribution({1.0: base}, torch.zeros(2, 2))


def test_band_energy_of_a_constant_and_a_checkerboard():
    h = w = 8
    grid = torch.ones(2, h, w, 3)  # [frames, h, w, dim]: all energy at frequency 0
    checker = (-1.0) ** (torch.arange(h)[:, None] + torch.arange(w)[None, :])
    check = checker[None, :, :, None].expand(2, h, w, 3)  # all energy at (Nyquist, Nyquist): radius sqrt(2)
    as_tokens = lambda g: g.reshape(1, 2 * h * w, 3)  # noqa: E731  [heads, tokens, dim]
    bands = band_energy(as_tokens(grid), as_tokens(check), (h, w), bands=4)
    np.testing.assert_allclose(bands["keys"], [1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(bands["values"], [0, 0, 0, 1], atol=1e-6)
    assert bands["band_edges"][-1] == pytest.approx(np.sqrt(2), abs=1e-5)


def test_figures_draw_their_data():
    session, drift, iterations = recorded_session(2)
    ax = plot_latent_drift({"drag": drift})
    assert len(ax.lines) == 4 and len(ax.lines[0].get_ydata()) == 2 * TINY.frames_per_block
    ax = plot_losses(iterations)
    assert [line.get_label() for line in ax.lines[:2]] == ["L_rec", "L_cst"]
    axes = plot_gradient_map(session.frames()[-1], iterations, handle())
    assert axes[2].images[0].get_array().shape == (8, 8)
    assert axes[3].images[0].get_array().shape == (8, 8)  # the step taken
    axes = plot_frequency(
        {0.2: 0.5, 1.0: 0.0},
        {"band_edges": np.linspace(0, 1, 3), "keys": np.array([0.9, 0.1]), "values": np.array([0.8, 0.2])},
    )
    assert len(axes[0].patches) == 2
    plt.close("all")
