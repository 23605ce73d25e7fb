"""The command line: ``python -m dragstream_widget <verb>``.

    demo                    stream a prompt on the embedded model, edit and animate it
    labels import|export    convert the reference implementation's saved drag labels
    session replay          replay a saved session: its frames and a video
    soak                    a long stream with drags: memory must stay flat
    bench quality           the REVEL quality bench: variants of the method and baselines
    bench drift             latent drift under repeated drags, with and without ADSR
    bench speed             what a drag costs: on this CPU, and counted at real size
    bench gpu-smoke         a Wan-1.3B-shaped model with random weights, streamed on a GPU
    bench gpu-pipeline      the whole real-size pipeline with random weights
    bench select            click to select: one click per object against the toy world's masks

Each verb's module holds its arguments (``add_arguments(parser)``) and its run (``main(args)``). Only
the chosen verb's module is imported, so no verb waits on, or needs, another verb's dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    module: str  # relative to this package
    help: str


@dataclass(frozen=True)
class Group:
    help: str
    verbs: dict[str, Verb]


COMMANDS: dict[str, Verb | Group] = {
    "demo": Verb("demo", "stream a prompt on the embedded model, edit and animate it"),
    "labels": Verb("labels", "convert the reference implementation's saved drag labels"),
    "session": Group(
        "saved sessions", {"replay": Verb("replay", "replay a saved session: its frames and a video")}
    ),
    "soak": Verb("soak", "a long stream with drags on the embedded model: memory must stay flat"),
    "bench": Group(
        "benchmarks: each prints its numbers and saves them",
        {
            "quality": Verb(
                "bench.quality.cli", "the REVEL quality bench: variants of the method and baselines"
            ),
            "drift": Verb("bench.drift", "latent drift under repeated drags, with and without ADSR"),
            "speed": Verb("bench.speed", "what a drag costs: on this CPU, and counted at real size"),
            "gpu-smoke": Verb(
                "bench.gpu_smoke", "a Wan-1.3B-shaped model with random weights, streamed on a GPU"
            ),
            "gpu-pipeline": Verb("bench.gpu_pipeline", "the whole real-size pipeline with random weights"),
            "select": Verb(
                "bench.select", "click to select: one click per object against the toy world's masks"
            ),
        },
    ),
}


def add_verbs(
    parser: argparse.ArgumentParser, verbs: dict[str, Verb | Group], words: Sequence[str], dest: str
) -> None:
    """One sub-parser per verb; the one that ``words`` name gets its module's arguments and run."""
    choices = parser.add_subparsers(dest=dest, required=True, metavar=dest.upper())
    for name, entry in verbs.items():
        sub = choices.add_parser(name, help=entry.help, description=entry.help)
        if not words or words[0] != name:
            continue
        if isinstance(entry, Group):
            add_verbs(sub, entry.verbs, words[1:], name)
        else:
            module = importlib.import_module(f".{entry.module}", __package__)
            module.add_arguments(sub)
            sub.set_defaults(run=module.main)


def main(argv: Sequence[str] | None = None) -> object:
    """Parse ``argv`` (default: the process's arguments), stopping with exit status 2 and a message that
    names the bad argument before any work; then run the chosen verb and return what it returns."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m dragstream_widget",
        description="Drag anything, anytime, in a streaming video diffusion model.",
    )
    add_verbs(parser, COMMANDS, words, "verb")
    args = parser.parse_args(words)
    return args.run(args)


if __name__ == "__main__":
    main()
