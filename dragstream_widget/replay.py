"""``session replay FILE --out DIR``: replay a saved session on the embedded model; write its frames
(PNG) and a video (MP4), and say whether the frames are those the session had when it was saved.

Sessions of other models are replayed from Python: ``StreamSession.load(path, backend)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from .arguments import positive_number
from .engine.session_file import SessionFileError, frames_digest, load_session, read_document
from .export import save_image, save_mp4
from .models.base import VideoBackend
from .ops import InvalidInstruction

TOY_SETTINGS = {  # identity key -> ToyWorldConfig field
    "cache_max_frames": "cache_frames",
    "cache_sink_frames": "sink_frames",
    "commit_sigma": "commit_sigma",
    "commit_at_last_step": "commit_at_last_step",
    "int8_streaming": "int8_streaming",
}


def embedded_backend(identity: dict, weights: str | None) -> VideoBackend:
    """The embedded model with the streaming settings the session was made with."""
    from .models.toyworld.model import MODEL_NAME, load_model

    if identity.get("name") != MODEL_NAME:
        raise SessionFileError(
            f"model.name: the session was made with {identity.get('name')!r}; the command line replays "
            f"{MODEL_NAME} sessions (others: StreamSession.load(path, backend) in Python)"
        )
    streaming = {field: identity[key] for key, field in TOY_SETTINGS.items() if key in identity}
    if streaming.get("commit_at_last_step"):
        streaming["commit_sigma"] = 0.0  # the backend reports the last step's level; the config holds 0
    if "sampler" in identity and isinstance(identity["sampler"], dict):
        streaming["steps"] = tuple(identity["sampler"].get("steps", ()))
    return load_model(weights, **streaming)


def replay(path: str | Path, out: str | Path, weights: str | None = None, fps: float = 12.0) -> dict:
    document = read_document(path)
    session = load_session(path, embedded_backend(document["model"], weights))
    frames = session.frames()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for k, frame in enumerate(tqdm(frames, desc="replay: writing frames")):
        save_image(frame, out / f"frame_{k:05d}.png")
    if len(frames):
        save_mp4(frames, out / "replay.mp4", fps=fps)
    saved = (document.get("result") or {}).get("frames_sha256")
    return {"frames": len(frames), "blocks": session.num_blocks, "identical": saved == frames_digest(frames)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a session file written by session.save or widget.save")
    parser.add_argument("--out", required=True, help="folder for the frames and replay.mp4")
    parser.add_argument("--weights", help="the embedded model's weights folder (default: the shipped ones)")
    parser.add_argument("--fps", type=positive_number, default=12.0)


def main(args: argparse.Namespace) -> dict:
    try:
        result = replay(args.file, args.out, args.weights, args.fps)
    except (SessionFileError, InvalidInstruction, OSError) as error:
        print(f"session replay: {args.file}: {error}", file=sys.stderr)
        sys.exit(2)
    same = "the same as when saved" if result["identical"] else "NOT the same as when saved"
    print(f"wrote {result['frames']} frames and replay.mp4 to {args.out}: {same}")
    return result
