"""The lab's command line: ``python -m lab <verb> [options]``; ``python -m lab <verb> -h`` lists a
verb's options. Each verb is the ``main(argv)`` of one module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# verb -> (module, what it does)
VERBS = {
    "train": (
        "lab.toyworld.train",
        "train the embedded toy world model: codec, then text encoder + transformer",
    ),
    "teacher": ("lab.toyworld.teacher", "train the bidirectional teacher: whole clips, no causal mask"),
    "self-forcing": (
        "lab.toyworld.self_forcing",
        "distil the teacher into the causal student on its own rollouts (distribution matching)",
    ),
    "evaluate": (
        "lab.toyworld.evaluate",
        "measure its rollouts: objects, shapes, sizes, motion, long runs, speed",
    ),
    "drag-checks": ("lab.toyworld.drag_checks", "do drags land? edits, curved animations and 2D rotations"),
    "drag-sweep": ("lab.toyworld.drag_sweep", "the drag checks and an edit's time for many drag settings"),
    "scorecard": ("lab.toyworld.scorecard", "the model against its targets: rollouts, drags and speed"),
    "shape-probe": (
        "lab.toyworld.shape_probe",
        "where streamed shapes go: by object and with swapped prompts",
    ),
    "make-cases": ("lab.make_toyworld_cases", "write the quality bench's toy-world cases"),
    "compare-results": ("lab.compare_results", "do two runs of a bench give the same numbers?"),
}


def main(argv: Sequence[str] | None = None) -> object:
    """Run the verb that ``argv`` (default: the process's arguments) names with the arguments after it,
    and return what it returns; a missing or unknown verb stops with exit status 2."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m lab",
        description="Training and research tools of the embedded toy world model.",
        epilog="verbs:\n" + "\n".join(f"  {verb:<16} {about}" for verb, (_, about) in VERBS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("verb", choices=list(VERBS), metavar="VERB")
    parser.parse_args(words[:1])
    module = importlib.import_module(VERBS[words[0]][0])
    return module.main(words[1:])


if __name__ == "__main__":
    main()
