"""Command line.

python -m dragstream_widget demo --out DIR
python -m dragstream_widget labels import LABEL_DIR --out drag.json
python -m dragstream_widget labels export drag.json --out LABEL_DIR
python -m dragstream_widget bench quality --cases FILE --out DIR [--variants ...] [--limit N] [--device cpu|cuda]
python -m dragstream_widget bench drift --out DIR [--drags N] [--runs N]
"""

from __future__ import annotations

import argparse
import json

from .arguments import at_least


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dragstream_widget")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="stream a prompt on the embedded model, edit and animate it")
    demo.add_argument("--out", required=True, help="folder for demo.mp4, demo.gif, images and metrics.json")
    demo.add_argument("--prompt", default=None)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--blocks", type=at_least(1), default=10)
    demo.add_argument("--weights", default=None, help="toy world weights folder (default: the shipped ones)")
    labels = commands.add_parser("labels", help="convert the reference implementation's saved drag labels")
    direction = labels.add_subparsers(dest="direction", required=True)
    importing = direction.add_parser("import", help="label folder (JSON + mask PNGs) -> instruction JSON")
    importing.add_argument("source", help="a folder holding one block_*_trajectory.json, or that file")
    importing.add_argument("--out", required=True)
    exporting = direction.add_parser("export", help="instruction JSON -> label folder")
    exporting.add_argument("source", help="a JSON file written by 'labels import'")
    exporting.add_argument("--out", required=True, help="folder to write the label JSON and mask PNGs into")
    bench = commands.add_parser("bench", help="benchmarks")
    bench_kind = bench.add_subparsers(dest="bench", required=True)
    from .bench import drift
    from .bench.quality import cli as quality_cli

    quality_cli.add_arguments(
        bench_kind.add_parser("quality", help="the REVEL quality bench: variants and baselines")
    )
    drift.add_arguments(
        bench_kind.add_parser("drift", help="latent drift under repeated drags, with and without ADSR")
    )
    args = parser.parse_args(argv)
    if args.command == "bench" and args.bench == "quality":
        quality_cli.run(args)
    if args.command == "bench" and args.bench == "drift":
        drift.main(args)
    if args.command == "labels":
        run_labels(args)
    if args.command == "demo":
        from dataclasses import replace

        from . import load_model
        from .demo import DemoScript, run_demo
        from .engine.presets import TOY_DRAG_CONFIG

        script = replace(DemoScript(), seed=args.seed, blocks=args.blocks)
        if args.prompt:
            script = replace(script, prompt=args.prompt)
        metrics = run_demo(load_model(args.weights), args.out, script, TOY_DRAG_CONFIG)
        print(json.dumps({k: v for k, v in metrics.items() if k != "animation"}, indent=2))
        print(f"wrote {args.out}/demo.mp4, demo.gif, drag_vs_nodrag.png, plots.png, metrics.json")


def run_labels(args) -> None:
    from pathlib import Path

    from .labels import LabelledDrag, export_labels, import_labels
    from .ops import DragInstruction

    if args.direction == "import":
        drag = import_labels(args.source)
        Path(args.out).write_text(json.dumps(drag.to_json()))
        regions = len(drag.instruction.regions)
        print(f"wrote {args.out}: {drag.instruction.mode.value}, {regions} region(s), block {drag.block}")
    else:
        data = json.loads(Path(args.source).read_text())
        drag = LabelledDrag(DragInstruction.from_json(data["instruction"]), data["prompt"], data["block"])
        print(f"wrote {export_labels(drag, args.out)}")


if __name__ == "__main__":
    main()
