"""Command line: ``python -m dragstream_widget demo --out DIR``."""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dragstream_widget")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="stream a prompt on the embedded model, edit and animate it")
    demo.add_argument("--out", required=True, help="folder for demo.mp4, demo.gif, images and metrics.json")
    demo.add_argument("--prompt", default=None)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--blocks", type=int, default=10)
    demo.add_argument("--weights", default=None, help="toy world weights folder (default: the shipped ones)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from dataclasses import replace

        from . import load_model
        from .demo import DemoScript, run_demo
        from .models.toyworld.model import TOY_DRAG_CONFIG

        script = replace(DemoScript(), seed=args.seed, blocks=args.blocks)
        if args.prompt:
            script = replace(script, prompt=args.prompt)
        metrics = run_demo(load_model(args.weights), args.out, script, TOY_DRAG_CONFIG)
        print(json.dumps({k: v for k, v in metrics.items() if k != "animation"}, indent=2))
        print(f"wrote {args.out}/demo.mp4, demo.gif, drag_vs_nodrag.png, plots.png, metrics.json")


if __name__ == "__main__":
    main()
