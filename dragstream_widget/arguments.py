"""Argument types shared by the command-line scripts: a value out of range stops the script at once
with a one-line message, before any model is loaded or any work is done."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def positive_number(text: str) -> float:
    """An argparse ``type``: a finite number above zero."""
    value = _number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_number(text: str) -> float:
    """An argparse ``type``: a finite number from zero up."""
    value = _number(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or a positive number, got {text}")
    return value


def fraction(text: str) -> float:
    """An argparse ``type``: a number from 0 to 1."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_float_streaming_flag(parser: argparse.ArgumentParser) -> None:
    """``--float-streaming``: the toy model streams every pass on the float model (``FLOAT_STREAMING``)."""
    parser.add_argument(
        "--float-streaming",
        action="store_true",
        help="every pass on the float model (the saved setting streams plain passes in int8 on the CPU)",
    )
