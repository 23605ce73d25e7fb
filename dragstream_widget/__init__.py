"""dragstream_widget: drag anything, anytime, in a streaming autoregressive video diffusion model."""

from .engine.config import DragConfig, released_code_config
from .engine.events import EventBus
from .engine.session import StreamSession
from .ops import DragInstruction, HandleRegion, InvalidInstruction, Mode, Operation

__all__ = [
    "DragConfig",
    "DragStreamWidget",
    "DragInstruction",
    "EventBus",
    "HandleRegion",
    "InvalidInstruction",
    "Mode",
    "Operation",
    "StreamSession",
    "load_model",
    "released_code_config",
]

__version__ = "0.1.0"


def load_model(path=None, device="cpu", **streaming):
    """The embedded toy world model as a streaming backend (see ``models/toyworld``); ``streaming``
    overrides its saved streaming settings (``steps``, ``commit_sigma``, ``commit_at_last_step``...)."""
    from .models.toyworld.model import load_model as load_toyworld

    return load_toyworld(path, device, **streaming)


def __getattr__(name: str):
    if name == "DragStreamWidget":  # imported on first use: it pulls in the notebook widget stack
        from .widget import DragStreamWidget

        return DragStreamWidget
    raise AttributeError(f"module 'dragstream_widget' has no attribute {name!r}")
