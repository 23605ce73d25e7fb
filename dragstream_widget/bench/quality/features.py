"""Feature extractors for the Frechet distance: the weight-free proxy by default, or a learned network
(Inception for frames, I3D for clips) loaded only from a local TorchScript file.

Every extractor carries a ``label`` that the results print beside the distance, so a proxy number is
never mistaken for FID/FVD.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...metrics import proxy_video_features

PROXY_LABEL = "proxy (colour and edge statistics, not Inception/I3D)"


@dataclass(frozen=True)
class FeatureExtractor:
    label: str
    extract: Callable[[np.ndarray], np.ndarray]  # uint8 [N, H, W, 3] frames -> [N, D]
    is_proxy: bool


def proxy_extractor() -> FeatureExtractor:
    return FeatureExtractor(PROXY_LABEL, proxy_video_features, True)


def _load_torchscript(path: str | Path, kind: str, device: str) -> torch.jit.ScriptModule:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no {kind} weights at {path}: the {kind} extractor loads a local TorchScript file only "
            "(nothing is downloaded); leave --frechet-weights out to use the labelled proxy extractor"
        )
    return torch.jit.load(str(path), map_location=device).eval()


def inception_extractor(path: str | Path, device: str = "cpu", size: int = 299) -> FeatureExtractor:
    """Per-frame features of a TorchScript Inception taking ``float [N, 3, size, size]`` in 0..255."""
    model = _load_torchscript(path, "Inception", device)

    @torch.no_grad()
    def extract(frames: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).float().to(device)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return model(x).reshape(len(x), -1).double().cpu().numpy()

    return FeatureExtractor(f"inception ({Path(path).name})", extract, False)


def i3d_extractor(path: str | Path, device: str = "cpu", clip: int = 16, size: int = 224) -> FeatureExtractor:
    """Per-clip features of a TorchScript I3D taking ``float [N, 3, T, size, size]`` in -1..1; frames are
    cut into consecutive clips of ``clip`` frames (the last one padded by repeating its final frame)."""
    model = _load_torchscript(path, "I3D", device)

    @torch.no_grad()
    def extract(frames: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        pad = (-len(x)) % clip
        x = torch.cat([x, x[-1:].expand(pad, -1, -1, -1)]) if pad else x
        clips = x.reshape(-1, clip, 3, size, size).transpose(1, 2)
        return model(clips).reshape(len(clips), -1).double().cpu().numpy()

    return FeatureExtractor(f"i3d ({Path(path).name})", extract, False)


def make_extractor(kind: str = "proxy", weights: str | None = None, device: str = "cpu") -> FeatureExtractor:
    if kind == "proxy":
        return proxy_extractor()
    if weights is None:
        raise ValueError(f"the {kind} extractor needs --frechet-weights PATH (a local TorchScript file)")
    if kind == "inception":
        return inception_extractor(weights, device)
    if kind == "i3d":
        return i3d_extractor(weights, device)
    raise ValueError(f"unknown feature extractor {kind!r}; choose proxy, inception or i3d")
