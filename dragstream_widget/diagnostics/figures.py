"""Matplotlib figures of the diagnostics (each function draws into given axes or a new figure)."""

from __future__ import annotations

import numpy as np

from .recorders import IterationRecorder, LatentStatsRecorder


def _axes(ax, figsize=(6, 3.5)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_latent_drift(runs: dict[str, LatentStatsRecorder], ax=None):
    """The paper's Figure 2a: latent mean, std, min and max per frame for several runs."""
    ax = _axes(ax, (7, 4))
    styles = {"mean": "-", "std": "--", "min": ":", "max": ":"}
    for (name, recorder), color in zip(runs.items(), ("tab:gray", "tab:red", "tab:blue", "tab:green")):
        series = recorder.series()
        for key, style in styles.items():
            ax.plot(series[key], style, color=color, label=f"{name}" if key == "mean" else None)
    ax.set_xlabel("latent frame")
    ax.set_ylabel("value (solid mean, dashed std, dotted min/max)")
    ax.set_title("latent drift")
    ax.legend()
    return ax


def plot_losses(recorder: IterationRecorder, ax=None):
    """L_rec and L_cst per iteration; vertical lines mark new trajectory segments."""
    ax = _axes(ax)
    rec = [r.l_rec for r in recorder.log]
    cst = [r.l_cst for r in recorder.log]
    ax.plot(rec, label="L_rec")
    ax.plot(cst, label="L_cst")
    for i in range(1, len(recorder.log)):
        previous, current = recorder.log[i - 1], recorder.log[i]
        if (current.block, current.segment) != (previous.block, previous.segment):
            ax.axvline(i - 0.5, color="lightgray", lw=0.8)
    ax.set_xlabel("iteration")
    ax.set_title("losses (gray lines: next segment or block)")
    ax.legend()
    return ax


def plot_gradient_map(
    frame: np.ndarray, recorder: IterationRecorder, handle_mask: np.ndarray | None = None, axes=None
):
    """The frame with the handle outlined, the CSS Gaussian map, the latent gradient magnitude and the
    magnitude of the step AdamW took (where the map acts on the gradient, Adam rescales it away)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 4, figsize=(13, 3.3))
    axes[0].imshow(frame)
    if handle_mask is not None:
        axes[0].contour(handle_mask, levels=[0.5], colors="red", linewidths=1)
    axes[0].set_title("frame now, handle as drawn")
    if recorder.gradient_map is not None:
        axes[1].imshow(recorder.gradient_map[-1], cmap="magma", vmin=0, vmax=1)
    axes[1].set_title("CSS Gaussian map")
    if recorder.gradient_magnitude is not None:
        axes[2].imshow(recorder.gradient_magnitude[-1], cmap="viridis")
    axes[2].set_title("|gradient| of the latent")
    if recorder.step_magnitude is not None:
        axes[3].imshow(recorder.step_magnitude[-1], cmap="viridis")
    axes[3].set_title("|step| the latent took")
    for ax in axes:
        ax.axis("off")
    return axes


def plot_frequency(contribution: dict[float, float], bands: dict[str, np.ndarray] | None = None, axes=None):
    """Attention change of the dragged tokens per cutoff, and context K/V energy by radial band."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2 if bands else 1, figsize=(9 if bands else 4.5, 3.3), squeeze=False)
        axes = axes[0]
    cutoffs = sorted(contribution)
    axes[0].bar([str(c) for c in cutoffs], [contribution[c] for c in cutoffs], color="tab:purple")
    axes[0].set_xlabel("cutoff (1 = unfiltered)")
    axes[0].set_title("change of dragged tokens' attention output")
    if bands:
        centers = (bands["band_edges"][:-1] + bands["band_edges"][1:]) / 2
        axes[1].plot(centers, bands["keys"], "o-", label="keys")
        axes[1].plot(centers, bands["values"], "s-", label="values")
        axes[1].set_xlabel("radial frequency (1 = Nyquist)")
        axes[1].set_yscale("log")
        axes[1].set_title("context K/V energy by band")
        axes[1].legend()
    return axes
