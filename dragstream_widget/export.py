"""Writing videos and pictures: MP4, GIF, contact sheets and side-by-side comparisons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def upscale(frames: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of ``[..., H, W, 3]`` frames (small model frames stay crisp)."""
    if factor == 1:
        return frames
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)


def save_gif(frames: np.ndarray, path: str | Path, fps: float = 12.0, scale: int = 1) -> Path:
    images = [Image.fromarray(f) for f in upscale(frames, scale)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    return Path(path)


def save_mp4(frames: np.ndarray, path: str | Path, fps: float = 12.0, scale: int = 1) -> Path:
    """H.264 MP4 through the ffmpeg binary that the imageio-ffmpeg wheel carries."""
    import imageio.v2 as imageio

    frames = upscale(frames, scale)
    height, width = frames.shape[1:3]
    pad = ((0, 0), (0, height % 2), (0, width % 2), (0, 0))  # H.264 wants even sizes
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1) as writer:
        for frame in np.pad(frames, pad, mode="edge"):
            writer.append_data(frame)
    return Path(path)


def contact_sheet(frames: np.ndarray, columns: int = 12, scale: int = 1, gap: int = 2) -> np.ndarray:
    """Frames tiled in rows of ``columns`` with a white gap, as one ``uint8`` image."""
    frames = upscale(frames, scale)
    count, height, width = frames.shape[:3]
    rows = -(-count // columns)
    sheet = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap, 3), 255, np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[
            r * (height + gap) : r * (height + gap) + height, c * (width + gap) : c * (width + gap) + width
        ] = frame
    return sheet


def side_by_side(rows: list[np.ndarray], columns: int = 12, scale: int = 1, gap: int = 6) -> np.ndarray:
    """Several equally long frame sequences, one contact-sheet row band each, stacked vertically."""
    sheets = [contact_sheet(r, columns, scale) for r in rows]
    width = max(s.shape[1] for s in sheets)
    padded = [np.pad(s, ((0, gap), (0, width - s.shape[1]), (0, 0)), constant_values=255) for s in sheets]
    return np.concatenate(padded)[:-gap]


def save_image(image: np.ndarray, path: str | Path) -> Path:
    Image.fromarray(image).save(path)
    return Path(path)
