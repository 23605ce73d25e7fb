"""``python -m dragstream_widget bench quality``: arguments and the run."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ...arguments import add_float_streaming_flag, at_least

DEFAULT_CASES = Path(__file__).parent / "revel_toyworld.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .variants import VARIANTS

    parser.add_argument(
        "--cases", default=str(DEFAULT_CASES), help="case file (default: the toy-world cases)"
    )
    parser.add_argument("--out", required=True, help="folder for results.json, results.md and images")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=None,
        metavar="NAME",
        help=f"variants to run (default: all): {', '.join(VARIANTS)}",
    )
    parser.add_argument("--limit", type=at_least(1), default=None, help="run only the first N cases")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    add_float_streaming_flag(parser)
    parser.add_argument(
        "--weights", default=None, help="toy world weights folder (default: the shipped ones)"
    )
    parser.add_argument(
        "--tracker",
        default="lucas-kanade",
        choices=("lucas-kanade", "cotracker"),
        help="tracker for cases without toy-world objects (toy-world cases use ground truth)",
    )
    parser.add_argument("--tracker-checkpoint", default=None, help="local CoTracker checkpoint file")
    parser.add_argument("--frechet", default="proxy", choices=("proxy", "inception", "i3d"))
    parser.add_argument("--frechet-weights", default=None, help="local TorchScript file for inception/i3d")
    parser.add_argument(
        "--dai-radius", type=at_least(0), default=3, help="DAI patch radius r in model pixels"
    )
    parser.add_argument(
        "--images", type=at_least(0), default=4, help="comparison images for the first N cases"
    )
    parser.add_argument(
        "--jobs", type=at_least(1), default=1, help="worker processes (one thread each) for the cases"
    )


def main(args: argparse.Namespace) -> dict:
    from ...engine.presets import TOY_DRAG_CONFIG
    from ...models.toyworld.model import FLOAT_STREAMING, load_model
    from .cases import load_cases
    from .features import make_extractor
    from .parallel import WorkerSetup, run_cases_in_workers
    from .report import results_json, write_report
    from .runner import frechet_table, run_bench
    from .tracking import make_tracker
    from .variants import pick_variants

    variants = pick_variants(args.variants)
    cases = load_cases(args.cases)[: args.limit]
    tracker = make_tracker(args.tracker, args.tracker_checkpoint, args.device)
    extractor = make_extractor(args.frechet, args.frechet_weights, args.device)
    streaming = FLOAT_STREAMING if args.float_streaming else {}
    backend = load_model(args.weights, args.device, **streaming)
    start = time.perf_counter()
    if args.jobs == 1:
        runs, frechet = run_bench(
            backend, cases, variants, TOY_DRAG_CONFIG, tracker, extractor, args.dai_radius, args.images
        )
    else:
        setup = WorkerSetup(
            args.weights,
            args.device,
            args.tracker,
            args.tracker_checkpoint,
            args.frechet,
            args.frechet_weights,
            tuple(v.name for v in variants),
            TOY_DRAG_CONFIG,
            args.dai_radius,
            streaming,
        )
        results = run_cases_in_workers(setup, cases, args.images, args.jobs)
        runs, frechet = [run for run, _ in results], frechet_table([f for _, f in results], extractor)
    settings = {
        "cases": Path(args.cases).name,
        "model": "toy world (embedded)" if args.weights is None else str(args.weights),
        "device": args.device,
        "tracker": f"toy-world ground truth where cases name objects, else {tracker.name}",
        "dai_radius": args.dai_radius,
        "int8_streaming": backend.streaming_transformer is not None,
        "base_config": "TOY_DRAG_CONFIG",
        "seconds": round(time.perf_counter() - start, 1),
    }
    results = results_json(runs, variants, TOY_DRAG_CONFIG, frechet, settings)
    written = write_report(args.out, results, runs)
    print(json.dumps(results["summary"], indent=1))
    print("wrote " + ", ".join(str(p) for p in written))
    return results
