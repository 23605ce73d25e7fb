"""The notebook widget: live streamed video you can drag at any time, and live plots beside it."""

from .live import LiveStrips
from .widget import DragStreamWidget

__all__ = ["DragStreamWidget", "LiveStrips"]
