"""Sweep drag settings on the toy world model: the checks of ``drag_checks`` and the time of one edit
drag for every candidate :class:`DragConfig`, many candidates at once in worker processes.

    python -m lab drag-sweep --workers 15 --out runs/sweep.json
    python -m lab drag-sweep --configs candidates.json --seeds 4

``--configs`` takes a JSON list of ``{"name": ..., "overrides": {field: value}}`` (fields of
:class:`DragConfig`; lists become tuples); without it the built-in grid around ``TOY_DRAG_CONFIG`` runs.
Each worker computes with ``--threads`` threads (1 by default), so edit times measured with several
workers busy compare candidates with one another, not with an idle machine. Results are saved after
every candidate, so a sweep cut short keeps what it finished; ``--deadline`` stops starting new ones.
The workers' own progress bars interleave; ``TQDM_DISABLE=1`` silences them all.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, replace
from typing import Any

import torch
from tqdm import tqdm

from dragstream_widget.arguments import at_least, positive_number
from dragstream_widget.bench.cpu_speed import edit_seconds
from dragstream_widget.engine.config import EDIT_SETTINGS, DragConfig
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG, TOY_FAST_EDIT_CONFIG
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, ToyWorldModel

from .drag_checks import CHECKS, run_checks

TUPLE_FIELDS = ("feature_layers", "cutoffs")
FAST_EDITS = {name: getattr(TOY_FAST_EDIT_CONFIG, name) for name in EDIT_SETTINGS}

# The targets of the toy model's drags (model card, "Drags").
EDIT_WITHIN_PX = 2.0
ANIMATION_MEAN_PX = 3.0
ROTATION_DEGREES, ROTATION_TOLERANCE = 45.0, 7.0
PSNR_FLOOR_DB = 30.0


def built_in_grid() -> list[dict[str, Any]]:
    """Candidates around ``TOY_DRAG_CONFIG``: its faster edits, the step and its size against the
    iterations, then one knob at a time, then the knobs that make an edit cheaper."""
    grid: list[dict[str, Any]] = [
        {"name": "toy", "overrides": {}},
        {"name": "toy_fast_edits", "overrides": FAST_EDITS},
    ]
    for step in (2, 3):
        for iterations in (2, 3, 4, 6, 8):
            for travel in (0.8, 1.2, 1.6):
                lr = round(travel / iterations, 3)
                grid.append(
                    {
                        "name": f"s{step}_i{iterations}_lr{lr}",
                        "overrides": {
                            "optimize_step": step,
                            "iterations": iterations,
                            "learning_rate": lr,
                        },
                    }
                )
    for lr in (0.2, 0.3):
        grid.append(
            {
                "name": f"s1_i8_lr{lr}",
                "overrides": {"optimize_step": 1, "iterations": 8, "learning_rate": lr},
            }
        )
    one_knob = {
        "mse": {"reconstruction_loss": "mse"},
        "mse_lr0.2": {"reconstruction_loss": "mse", "learning_rate": 0.2},
        "cst0.3": {"constraint_weight": 0.3},
        "cst3": {"constraint_weight": 3.0},
        "last_frame": {"edit_frames": "last"},
        "css2": {"css_alpha": 2.0},
        "css3.75": {"css_alpha": 3.75},
        "css_on_gradient": {"css_on": "gradient"},
        "clip1": {"gradient_clip": 1.0},
        "adsr3": {"adsr_frames": 3},
        "adsr9": {"adsr_frames": 9},
        "no_adsr": {"adsr": False},
        "reset_adam": {"reset_optimizer_each_iteration": True},
        "seg0.5": {"segment_tokens": 0.5},
        "seg2": {"segment_tokens": 2.0},
        "deg4": {"segment_degrees": 4.0},
        "deg15": {"segment_degrees": 15.0},
        "deg45": {"segment_degrees": 45.0},
        "gauss": {"reconstruction_weight": "gaussian"},
        "x0_cst": {"constraint": "x0"},
    }
    speed = {
        "cut1": {"cutoffs": (1.0,)},
        "cut0.4_1": {"cutoffs": (0.4, 1.0)},
        "layers1-4": {"feature_layers": (1, 2, 3, 4)},
        "layers2-5": {"feature_layers": (2, 3, 4, 5)},
        "layers2-3": {"feature_layers": (2, 3)},
        "layers3-4": {"feature_layers": (3, 4)},
        "layers4-7": {"feature_layers": (4, 5, 6, 7)},
    }
    grid += [{"name": name, "overrides": overrides} for name, overrides in {**one_knob, **speed}.items()]
    return grid


def make_config(overrides: dict[str, Any], base: DragConfig = TOY_DRAG_CONFIG) -> DragConfig:
    values = {k: tuple(v) if k in TUPLE_FIELDS and v is not None else v for k, v in overrides.items()}
    return replace(base, **values)


def meets(summary: dict) -> dict[str, bool]:
    """Which targets one candidate's checks meet (only the targets of the checks that ran)."""
    rotations = summary["rotation_turned_degrees_mod_90"]
    animation = summary["animation_error_px_mean"]
    ran = summary["checks"]
    met = {
        "edit": summary["edit_within_2px"] == 1.0,
        "animation": animation is not None and animation < ANIMATION_MEAN_PX,
        "rotation": all(r is not None and abs(r - ROTATION_DEGREES) <= ROTATION_TOLERANCE for r in rotations),
        "psnr": (summary["psnr_non_editable_db_median"] or 0.0) >= PSNR_FLOOR_DB,
    }
    needs = {"edit": "edits", "animation": "animations", "rotation": "rotations", "psnr": "edits"}
    return {target: value for target, value in met.items() if needs[target] in ran}


_backend = None


def _start_worker(weights: str, threads: int) -> None:
    global _backend
    torch.set_num_threads(threads)
    _backend = ToyWorldModel.load(weights).backend()


def evaluate(
    candidate: dict[str, Any], seeds: range, repeats: int, kinds: tuple[str, ...] = CHECKS
) -> dict[str, Any]:
    """Checks (the ``kinds`` of :data:`~.drag_checks.CHECKS`) and edit time of one candidate (in a worker)."""
    config = make_config(candidate["overrides"])
    start = time.perf_counter()
    checks = run_checks(_backend, config, seeds, checks=kinds)
    times = edit_seconds(_backend, config, repeats) if repeats else []
    return {
        **candidate,
        "config": asdict(config),
        **checks,
        "meets": meets(checks),
        "edit_seconds": statistics.median(times) if times else None,
        "sweep_seconds": time.perf_counter() - start,
    }


def run_sweep(
    candidates: list[dict[str, Any]],
    weights: str,
    workers: int,
    threads: int,
    seeds: range,
    repeats: int,
    out: str | None,
    deadline: float | None,
    kinds: tuple[str, ...] = CHECKS,
) -> list[dict[str, Any]]:
    """Evaluate ``candidates`` in ``workers`` processes with the checks ``kinds``; save after each one; none
    starts after ``deadline`` seconds."""
    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    queue = list(candidates)
    context = multiprocessing.get_context("spawn")  # workers must not inherit an initialised accelerator
    with ProcessPoolExecutor(
        workers, context, initializer=_start_worker, initargs=(weights, threads)
    ) as pool:
        running = {}
        with tqdm(total=len(candidates), desc="candidates") as progress:
            while queue or running:
                in_time = deadline is None or time.perf_counter() - start < deadline
                while queue and len(running) < workers and in_time:
                    candidate = queue.pop(0)
                    running[pool.submit(evaluate, candidate, seeds, repeats, kinds)] = candidate
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    candidate = running.pop(future)
                    try:
                        results.append(future.result())
                    except Exception as error:  # a candidate that fails is recorded, not fatal
                        results.append({**candidate, "error": repr(error)})
                    progress.update()
                if out:
                    with open(out, "w") as f:
                        json.dump(results, f, indent=2)
    return results


def table_row(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"{result['name']:<22} error: {result['error']}"

    def shown(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    rotations = ", ".join(shown(r, ".1f") for r in result["rotation_turned_degrees_mod_90"]) or "-"
    return (
        f"{result['name']:<22} edit {shown(result['edit_error_px_median'], '5.2f')} px"
        f" {shown(result['edit_within_2px'], '4.2f')}"
        f" | {result['long_edit_px']:.0f} px edit {shown(result['long_edit_error_px_median'], '5.2f')} px"
        f" ghost {shown(result['long_edit_ghost_fraction_median'], '4.2f')}"
        f" | anim {shown(result['animation_error_px_mean'], '5.2f')} px | rot {rotations:<11}"
        f" | psnr {shown(result['psnr_non_editable_db_median'], '5.1f')}"
        f" | edit {shown(result['edit_seconds'], '5.2f')} s"
        f" | met {sum(result['meets'].values())}/{len(result['meets'])}"
    )


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m lab drag-sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(WEIGHTS_DIR))
    parser.add_argument("--configs", default=None, help="JSON list of {name, overrides}")
    parser.add_argument("--workers", type=at_least(1), default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--seeds", type=at_least(1), default=2)
    parser.add_argument("--first-seed", type=at_least(0), default=0, help="seeds run from here (fresh cases)")
    parser.add_argument("--repeats", type=at_least(0), default=3, help="timed edits per candidate (0: none)")
    parser.add_argument(
        "--deadline", type=positive_number, default=None, help="seconds after which none starts"
    )
    parser.add_argument(
        "--checks", nargs="+", choices=CHECKS, default=list(CHECKS), help="the kinds of drag to check"
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.configs:
        with open(args.configs) as f:
            candidates = json.load(f)
    else:
        candidates = built_in_grid()
    results = run_sweep(
        candidates,
        args.weights,
        args.workers,
        args.threads,
        range(args.first_seed, args.first_seed + args.seeds),
        args.repeats,
        args.out,
        args.deadline,
        tuple(args.checks),
    )
    for result in sorted(results, key=lambda r: r["name"]):
        print(table_row(result))
    return results
