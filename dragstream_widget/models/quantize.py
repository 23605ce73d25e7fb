"""An int8 copy of a causal transformer, for the passes that need no gradient.

On a CPU, streaming spends most of its time in the linear layers of the transformer blocks. Dynamic
int8 quantisation (int8 weights, activations quantised on the fly) runs them faster on x86 CPUs.
Quantised layers have no autograd, so a drag's optimisation and every pass that records features keep
the float model; plain denoising steps and the commit pass can use the copy.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .causal_wan import CausalWanTransformer3DModel


def int8_blocks_copy(transformer: CausalWanTransformer3DModel) -> CausalWanTransformer3DModel | None:
    """A copy of ``transformer`` whose blocks compute their linear layers in int8, or None where that
    cannot run: off the CPU (a GPU streams the float model; no warning) or in a torch without eager
    dynamic quantisation (a warning). The patch and time embeddings and the output head stay in float:
    they are small, and diffusers reads their parameters' dtype."""
    if next(transformer.parameters()).device.type != "cpu":
        return None
    quantize = getattr(getattr(torch, "ao", None), "quantization", None)
    if quantize is None or not hasattr(quantize, "quantize_dynamic"):
        warnings.warn(
            "this torch has no eager int8 quantisation; streaming with the float model", stacklevel=2
        )
        return None
    quantized = copy.deepcopy(transformer)
    with warnings.catch_warnings():  # torch marks its eager quantisation as deprecated; it works
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        quantized.blocks = quantize.quantize_dynamic(quantized.blocks, {nn.Linear}, dtype=torch.qint8)
    return quantized.eval()
