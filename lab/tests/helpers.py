from dragstream_widget.models.toyworld.model import WEIGHTS_DIR


def fine_tune_smoke_args(out, clips: int) -> list[str]:
    """``train`` arguments of a tiny CPU fine-tune of the shipped toy weights, written to ``out``."""
    return ["--out", str(out), "--smoke", "--clips", str(clips), "--init", str(WEIGHTS_DIR)]
