"""Training and research tools of the embedded toy world model, run as ``python -m lab <verb>``."""
