"""The notebook widget: live streamed video you can drag at any time."""

from .widget import DragStreamWidget

__all__ = ["DragStreamWidget"]
