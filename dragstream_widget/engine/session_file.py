"""Saved sessions: one JSON file from which a session is replayed exactly.

The file (``dragstream-session/1``) holds data only: the model's identity (name, layout, sampler,
streaming settings and a fingerprint of its weights), the session's memory settings, the library
versions and torch thread count it was made with, and the session's log (``StreamSession.log``): every
action in order (the start, blocks, drags, undo, redo, resets, drags prepared while drawn) with the
number of blocks after it, the drag settings whenever they changed, and opening frames as PNG. Loading
reads it strictly (every field checked, sizes checked before anything is decoded), checks that the
backend given is the model it was made with, and carries the actions out again on that backend:
blocks are generated again, so the replay is bit for bit the original where the arithmetic is the same
(same library versions, one torch thread; at more threads a few frame values may differ by one).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import platform
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..models.base import VideoBackend
from ..ops import DragInstruction, check_prompt, check_seed, cut, read_json_object, short
from .config import DragConfig
from .session import StreamSession

FORMAT = "dragstream-session/1"
MAX_FILE_BYTES = 256 * 2**20
MAX_OPENING_FRAMES = 1024
ACTIONS = {"start", "step", "apply", "undo", "undo_action", "redo", "reset", "prepare"}


class SessionFileError(ValueError):
    """A session file that cannot be replayed; the message names the field."""


# ----- writing ------------------------------------------------------------------------------------


def model_identity(backend: VideoBackend) -> dict:
    """What a replay needs to find the same model: its name, layout, sampler, streaming settings and a
    fingerprint of its weights (the sum and sum of squares of each parameter, computed where it lives)."""
    sampler = backend.sampler
    identity = {
        "name": getattr(backend, "name", type(backend).__name__),
        "layout": asdict(backend.layout),
        "sampler": {"steps": list(sampler.steps), "shift": sampler.shift, "update": sampler.update},
    }
    for key in ("cache_max_frames", "cache_sink_frames", "commit_sigma", "commit_at_last_step"):
        if hasattr(backend, key):
            identity[key] = getattr(backend, key)
    if hasattr(backend, "streaming_transformer"):
        identity["int8_streaming"] = backend.streaming_transformer is not None
    transformer = getattr(backend, "transformer", None)
    if transformer is not None:
        identity["fingerprint"] = weights_fingerprint(transformer)
    return identity


def weights_fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, p in module.state_dict().items():
            values = p.detach().double()
            digest.update(f"{name}{tuple(p.shape)}{p.dtype}".encode())
            digest.update(f"{values.sum().item():.10e}{values.square().sum().item():.10e}".encode())
    return digest.hexdigest()


def encode_frames(frames: np.ndarray) -> list[str]:
    """Frames as base64 PNG (lossless)."""
    out = []
    for frame in np.asarray(frames, np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG")
        out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return out


def frames_digest(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames, np.uint8).tobytes()).hexdigest()


def session_document(session: StreamSession) -> dict:
    """The session as the JSON document of the module docstring."""
    actions = []
    for entry in session.log:
        entry = dict(entry)
        if entry.get("opening") is not None:
            entry["opening"] = encode_frames(entry["opening"])
        actions.append(entry)
    complete = all(len(b.frames) == b.num_frames for b in session.blocks)
    return {
        "format": FORMAT,
        "model": model_identity(session.backend),
        "memory": {
            "undo_depth": session.undo_depth,
            "latent_blocks": session.latent_blocks,
            "keep_frames": session.keep_frames,
        },
        "versions": library_versions(),
        "torch_threads": torch.get_num_threads(),
        "actions": actions,
        "result": {
            "blocks": session.num_blocks,
            "frames": sum(b.num_frames for b in session.blocks),
            "frames_sha256": frames_digest(session.frames()) if complete else None,
        },
    }


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import diffusers

    try:
        own = version("dragstream_widget")
    except PackageNotFoundError:  # run from a checkout that is not installed
        own = "unknown"
    return {
        "dragstream_widget": own,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "diffusers": diffusers.__version__,
    }


def save_session(session: StreamSession, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(session_document(session)))
    return path


# ----- reading ------------------------------------------------------------------------------------


def read_document(path: str | Path) -> dict:
    """The file's JSON, its size and format checked first."""
    path = Path(path)
    if not path.is_file():
        raise SessionFileError(f"{path}: not a regular file")
    document = read_json_object(path, MAX_FILE_BYTES, "a session file", SessionFileError)
    if document.get("format") != FORMAT:
        raise SessionFileError(f"format: expected {FORMAT!r}, got {short(document.get('format'))}")
    for key, kind in (("model", dict), ("memory", dict), ("actions", list)):
        if not isinstance(document.get(key), kind):
            raise SessionFileError(f"{key}: expected a JSON {kind.__name__}, got {short(document.get(key))}")
    return document


def check_model(identity: dict, backend: VideoBackend) -> None:
    """Refuse a backend other than the one the session was made with, naming what differs."""
    have = model_identity(backend)
    for key, value in identity.items():
        if key in have and have[key] != value:
            raise SessionFileError(
                f"model.{key}: the session was made with {short(value)}, the backend has {short(have[key])}"
            )


def decode_frames(data: object, where: str, size: tuple[int, int]) -> np.ndarray:
    """Opening frames from base64 PNG; each image's size is read from its header and checked first."""
    if not isinstance(data, list) or not 0 < len(data) <= MAX_OPENING_FRAMES:
        raise SessionFileError(f"{where}: expected 1 to {MAX_OPENING_FRAMES} PNG frames, got {short(data)}")
    frames = []
    for k, text in enumerate(data):
        try:
            image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)), formats=["PNG"])
        except Exception as error:  # binascii, PIL: anything that is not a PNG
            raise SessionFileError(f"{where}[{k}]: not a base64 PNG ({cut(str(error))})") from None
        if (image.height, image.width) != tuple(size):
            raise SessionFileError(
                f"{where}[{k}]: {image.width}x{image.height}, but the model makes {size[1]}x{size[0]} frames"
            )
        frames.append(np.asarray(image.convert("RGB")))
    return np.stack(frames)


def read_config(data: object, where: str) -> DragConfig:
    known = {f.name for f in fields(DragConfig)}
    if not isinstance(data, dict) or set(data) - known:
        extra = set(data) - known if isinstance(data, dict) else data
        raise SessionFileError(f"{where}: unknown drag settings {short(extra)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return DragConfig(**values)
    except (TypeError, ValueError) as error:
        raise SessionFileError(f"{where}: {cut(str(error), 200)}") from None


def _int(entry: dict, key: str, where: str) -> int:
    value = entry.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SessionFileError(f"{where}.{key}: expected an integer >= 0, got {short(value)}")
    return value


def load_session(path: str | Path, backend: VideoBackend, events=None) -> StreamSession:
    """Replay the session saved at ``path`` on ``backend`` (see the module docstring)."""
    document = read_document(path)
    check_model(document["model"], backend)
    memory = document["memory"]
    settings = {
        "undo_depth": _int(memory, "undo_depth", "memory"),
        "latent_blocks": _int(memory, "latent_blocks", "memory"),
        "keep_frames": memory.get("keep_frames") is not False,
    }
    actions = document["actions"]
    if not actions or not isinstance(actions[0], dict) or actions[0].get("action") != "start":
        raise SessionFileError("actions[0]: a session's log begins with its start")
    size = backend.layout.pixel_size
    session = None
    for k, entry in enumerate(actions):
        where = f"actions[{k}]"
        if not isinstance(entry, dict) or entry.get("action") not in ACTIONS:
            raise SessionFileError(f"{where}: unknown action {short(entry)}")
        action = entry["action"]
        if (action == "start") != (k == 0):
            raise SessionFileError(f"{where}: the start comes first and only once")
        config = read_config(entry["config"], f"{where}.config") if "config" in entry else None
        try:
            if action == "start":
                session = start_session(backend, entry, where, config, size, settings, events)
            else:
                if config is not None:
                    session.config = config
                replay_action(session, action, entry, where, size)
        except SessionFileError:
            raise
        except (ValueError, IndexError) as error:
            raise SessionFileError(f"{where} ({action}): {cut(str(error), 200)}") from None
        if session.num_blocks != _int(entry, "blocks", where):
            raise SessionFileError(
                f"{where}.blocks: the replay holds {session.num_blocks} blocks, the file says {entry['blocks']}"
            )
    return session


def start_session(backend, entry, where, config, size, settings, events) -> StreamSession:
    opening = entry.get("opening")
    frames = None if opening is None else decode_frames(opening, f"{where}.opening", size)
    prompt = check_prompt(entry.get("prompt"), f"{where}.prompt")
    seed = check_seed(entry.get("seed"), f"{where}.seed")
    return StreamSession(backend, prompt, seed, config, events, start_frames=frames, **settings)


def replay_action(session: StreamSession, action: str, entry: dict, where: str, size) -> None:
    if action == "step":
        session.step()
    elif action == "apply":
        session.apply(DragInstruction.from_json(entry.get("instruction"), size))
    elif action == "undo":
        session.undo()
    elif action == "undo_action":
        session.undo_action()
    elif action == "redo":
        session.redo()
    elif action == "prepare":
        session.prepare_drag()
    else:  # reset
        opening = entry.get("opening")
        frames = None if opening is None else decode_frames(opening, f"{where}.opening", size)
        prompt = check_prompt(entry.get("prompt"), f"{where}.prompt")
        seed = check_seed(entry.get("seed"), f"{where}.seed")
        session.reset(prompt, seed, frames)
