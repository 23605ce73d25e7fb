"""Regenerates the tables of README.md and docs/*.md from the committed result files.

    python docs/tables.py           # rewrite every table in place
    python docs/tables.py --check   # exit 1, naming the stale tables, if any table is out of date

A table sits between two markers::

    <!-- table: NAME [ARG ...] -->
    ...
    <!-- /table -->

NAME picks one of the functions in TABLES below; ARGs (a result folder, a file) are passed to it.
Every number in a table is read from a JSON file under lab/card/ or lab/results/, or, for the drag
settings, from the package's presets, so the docs never hold a number copied by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARD = ROOT / "lab" / "card"
BENCH = ROOT / "lab" / "results" / "bench"
DOCUMENTS = ("README.md", "docs/*.md")
MARKER = re.compile(r"(<!-- table: ([^>]*?) -->\n)(.*?)(<!-- /table -->)", re.S)


# ----- formatting ----------------------------------------------------------------------------------


def num(value, digits: int = 3) -> str:
    """A number to ``digits`` significant digits; "–" for a missing one."""
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def fixed(value, places: int = 2) -> str:
    return "–" if value is None else f"{value:.{places}f}"


def percent(share) -> str:
    return "–" if share is None else f"{100 * share:.0f} %"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# ----- the embedded model: lab/card/ ---------------------------------------------------------------


def scorecard_table() -> str:
    """Every target of the embedded model beside its measurement (lab/card/scorecard.json)."""
    card = load(CARD / "scorecard.json")
    rows = []
    for t in card["targets"]:
        limit = ("≤ " if t["at_most"] else "≥ ") + num(t["limit"])
        rows.append(
            [
                t["asks"],
                f"{num(t['measured'])} ({t['unit']})",
                limit,
                "met" if t["met"] else "missed",
                t["detail"],
            ]
        )
    return table(["target", "measured", "limit", "", "detail"], rows)


def _target(card: dict, *words: str) -> dict:
    for t in card["targets"]:
        if all(w in t["asks"] for w in words):
            return t
    raise KeyError(f"no scorecard target asks for {words}")


def scorecard_brief_table() -> str:
    """Four lines of the scorecard for the README."""
    card = load(CARD / "scorecard.json")
    speed = card["speed"]
    window = speed["edit_seconds_by_window"]["two_blocks_in"]
    edit = _target(card, "8 px edit")
    animation = _target(card, "animation follows")
    psnr = _target(card, "non-editable")
    rows = [
        ["frames generated per second, no drag", num(speed["frames_per_second"])],
        [
            "an edit drag, computed in the kernel (on demand / prepared while the drag is drawn)",
            f"{fixed(window['on_demand'])} s / {fixed(window['prepared'])} s",
        ],
        [
            "an 8 px edit: distance of the object from its target, median",
            f"{num(edit['measured'])} px ({edit['detail']})",
        ],
        [
            "a curved 12-frame animation: mean distance from its path, median",
            f"{num(animation['measured'])} px ({animation['detail']})",
        ],
        [
            "the rest of the frame against the video without the drag, median PSNR",
            f"{num(psnr['measured'])} dB",
        ],
    ]
    threads = f"{speed['threads']} threads of an {speed['cpu']} CPU"
    return table(["the embedded model, " + threads, "measured"], rows)


def toy_config_table() -> str:
    """The embedded model's configuration (the shipped toyworld.json) and its parameter counts."""
    config = load(ROOT / "dragstream_widget" / "models" / "toyworld" / "weights" / "toyworld.json")
    params = load(CARD / "training_report.json")["parameters"]
    codec = config["codec"]
    size = codec["frame_size"]
    rows = [
        ["frames", f"{size}x{size} RGB, one latent frame per frame"],
        [
            "codec",
            f"convolutional autoencoder, stage widths {', '.join(map(str, codec['widths']))}, {codec['latent_channels']} latent channels; {num(params['codec'])} parameters",
        ],
        [
            "text encoder",
            f"word and position embeddings, one transformer layer, width {config['text_dim']}; {num(params['text_encoder'])} parameters",
        ],
        [
            "transformer",
            f"block-causal Wan: {config['num_layers']} layers, {config['num_heads']} heads of {config['head_dim']}, ffn {config['ffn_dim']}; {num(params['transformer'])} parameters",
        ],
        [
            "sampler",
            f"{config['sampler_update'].capitalize()} flow sampler, steps {', '.join(map(str, config['steps']))}, shift {num(config['shift'])}",
        ],
        [
            "streaming",
            f"{config['frames_per_block']} frames per block; KV window of {config['cache_frames']} frames, of which {config['sink_frames']} are the opening block kept as an attention sink; each block committed noised to sigma {num(config['commit_sigma'])}; int8 plain passes on the CPU: {num(bool(config['int8_streaming']))}",
        ],
    ]
    return table(["part", "shape"], rows)


def training_table() -> str:
    """The two training runs behind the shipped weights (lab/card/*report.json)."""
    rows = []
    for name, label in (
        ("training_report.json", "base weights (codec and world model)"),
        ("sink_finetune_report.json", "fine-tune with the opening block as a sink (shipped)"),
    ):
        r = load(CARD / name)
        c = r["train_config"]
        rows.append(
            [
                label,
                f"{num(r['clips'])} x {r['clip_frames']} frames",
                str(c["world_batch"]),
                f"{c['world_lr']:.0e}",
                num(c["context_noise"]),
                num(r["world_steps"]),
                fixed(r["world_seconds"] / 60, 0),
                r["device"],
                num(r["final_loss"]),
                f"`lab/card/{name}`",
            ]
        )
    header = [
        "run",
        "clips",
        "batch",
        "lr",
        "context noise",
        "steps",
        "minutes",
        "device",
        "final loss",
        "report",
    ]
    return table(header, rows)


def _rollout_row(label: str, m: dict, ratio: float | None = None) -> list[str]:
    survival = fixed(m["survival"]) + (f" ({fixed(ratio)})" if ratio is not None else "")
    classes = m["shape_iou_per_class"]
    return [
        label,
        survival,
        num(m["shape_iou"]),
        " / ".join(fixed(classes[c]) for c in ("circle", "square", "triangle", "star")),
        percent(m["shape_recognized"]),
        f"{percent(m['size_within_20_percent'])} ({num(100 * m['size_error_median'], 2)} %)",
        fixed(m["speed_median_px_per_frame"]),
        num(m.get("path_error_median_px"), 2) if m.get("path_error_median_px") is not None else "–",
    ]


def rollouts_table() -> str:
    """Rollouts from real opening frames: shipped and base weights, real clips, the codec alone."""
    shipped = load(CARD / "evaluation.json")
    base = load(CARD / "evaluation_base_weights.json")
    rows = [
        _rollout_row("shipped weights", shipped["generated"], shipped["survival_vs_real"]),
        _rollout_row("base weights", base["generated"], base["survival_vs_real"]),
        _rollout_row("real clips", shipped["real"]),
        _rollout_row("real clips through the codec", shipped["codec_round_trip"]),
    ]
    header = [
        f"{shipped['scenes']} scenes, {shipped['frames']} frames",
        "object survival (ratio to real)",
        "shape IoU",
        "circle / square / triangle / star",
        "own shape recognised",
        "sizes within 20 % (median error)",
        "speed px/frame",
        "distance from the real path, px",
    ]
    return table(header, rows)


HELD_AREA = (0.5, 2.0)  # the scene holds while every object keeps 0.5-2x its opening area ...
HELD_LEVELS = 10.0  # ... and the background's mean colour stays within 10 RGB levels


def _held_share(run: dict) -> float:
    held = [
        all(HELD_AREA[0] <= a <= HELD_AREA[1] for a in e["object_area_ratios"])
        and e["background_shift_levels"] <= HELD_LEVELS
        for e in run["trace"]
    ]
    return sum(held) / len(held)


def long_runs_table() -> str:
    """Long streams: the scene held per block, object areas and background shift at the end."""
    runs = load(CARD / "long_run_2000.json")["runs"]
    rows = []
    for key in sorted(runs, key=lambda k: (k.split("_")[-1], not k.startswith("shipped"))):
        run = runs[key]
        weights = "shipped" if key.startswith("shipped") else "base"
        rows.append(_long_row(run, weights, f"long_run_2000.json: {key}"))
    shipped = load(CARD / "long_run_4200_shipped.json")["long_run"]
    rows.append(_long_row(shipped, "shipped", "long_run_4200_shipped.json"))
    header = [
        "scene",
        "frames",
        "weights",
        "scene held (blocks)",
        "object areas at the end",
        "background shift at the end (largest), RGB levels",
        "never held again from frame",
        "source (lab/card/)",
    ]
    return table(header, rows)


def _long_row(run: dict, weights: str, source: str) -> list[str]:
    largest = max(e["background_shift_levels"] for e in run["trace"])
    areas = " and ".join(f"{num(a, 2)}x" for a in run["object_area_ratios_at_end"])
    lost = run["lost_for_good_from_frame"]
    return [
        run["prompt"],
        num(run["frames"]),
        weights,
        percent(_held_share(run)),
        areas,
        f"{num(run['background_shift_levels'], 2)} ({num(largest, 2)})",
        "–" if lost is None else num(lost),
        source,
    ]


def demo_table() -> str:
    """The demo's scripted drags (lab/card/demo_metrics.json)."""
    d = load(CARD / "demo_metrics.json")
    edit, animation = d["edit"], d["animation"]
    shift = math.dist(edit["from"], edit["target"])
    rows = [
        [
            f"edit: the {edit['color']} object moved {num(shift, 2)} px",
            f"lands {num(edit['error_px'], 2)} px from its target",
        ],
        [
            f"animation: the {animation['color']} object along a half circle",
            f"{num(animation['mean_error_px'], 2)} px from its path on average ({animation['frames_tracked']} frames tracked)",
        ],
        [
            "non-editable region of the edited block, PSNR against no drag",
            f"{num(d['psnr_non_editable_edited_block_db'])} dB",
        ],
        ["frames before the edit unchanged, bit for bit", num(bool(d["frames_before_edit_identical"]))],
    ]
    return table([f'demo: "{d["prompt"]}", seed {d["seed"]}', "result"], rows)


SPEED_FILES = (  # the latest first
    ("cpu_speed_prepared_edits.json", "the settings of the time, three runs in a row"),
    ("cpu_speed_quiet_hour.json", "a quiet hour, CSS map on the gradient"),
    ("cpu_speed_shipped_settings.json", "a slower hour, CSS map on the gradient"),
    ("cpu_speed.json", "an earlier run of the shipped weights"),
    ("cpu_speed_base_weights.json", "the base weights, a slow hour"),
)


def cpu_speed_table() -> str:
    """The embedded model's streaming and drag speed on a 2-core CPU (lab/card/cpu_speed*.json)."""
    rows = []
    for name, label in SPEED_FILES:
        data = load(CARD / name)
        runs = data["runs"] if "runs" in data else [data]
        for i, r in enumerate(runs):
            prepared = r.get("edit_seconds_prepared", {}).get("two_blocks_in")
            rows.append(
                [
                    f"`{name}`" + (f" run {i + 1}" if len(runs) > 1 else "") + f": {label}",
                    str(r["threads"]),
                    num(r["frames_per_second_no_drag"]),
                    num(r["frames_per_second_float_streaming"]),
                    num(r["frames_per_second_folded_commit"]),
                    fixed(r["edit_seconds_toy_config"]),
                    "–" if prepared is None else fixed(prepared["prepared"]),
                    fixed(r["edit_seconds_toy_fast_edit_config"]),
                    fixed(r["edit_seconds_toy_config_14px"]),
                    fixed(r["seconds_per_animated_block_toy_config"]),
                    fixed(r["edit_phases_toy_config"]["per_iteration"], 3),
                ]
            )
    header = [
        "run",
        "threads",
        "frames/s (int8 streaming)",
        "frames/s (float)",
        "frames/s (`FOLDED_COMMIT`)",
        "6 px edit, s",
        "the same, prepared while drawn, s",
        "with `TOY_FAST_EDIT_CONFIG`, s",
        "14 px edit, s",
        "animated block, s",
        "one iteration, s",
    ]
    return table(header, rows)


def _speed(run: str) -> dict:
    return load(BENCH / run / "speed.json")


BLOCK_NAMES = {
    "animated_block": "an animated block",
    "edit_on_demand": "a 6 px edit, reference features on demand",
    "edit_prepared": "the same edit, reference features prepared while drawn",
}
SETTING_NAMES = {
    "shipped": "shipped",
    "per_segment": "before: 4 iterations a segment, every block walked from the reference frame",
}


def drag_cost_table(run: str) -> str:
    """What a drag costs on this CPU: the embedded model's blocks timed in turns (speed.json)."""
    e = _speed(run)["embedded"]
    rows = [["a plain block", "", fixed(e["seconds_plain_block"], 3), "1", "–"]]
    for setting, costs in e["settings"].items():
        for kind, label in BLOCK_NAMES.items():
            its = costs["iterations"]["animated_block" if kind == "animated_block" else "edit"]
            rows.append(
                [
                    label,
                    SETTING_NAMES.get(setting, setting),
                    fixed(costs["seconds"][kind], 3),
                    f"{costs['ratios_to_plain_block'][kind]:.2f}x",
                    ", ".join(map(str, sorted(set(its)))),
                ]
            )
    return table(["block", "settings", "seconds (median)", "over a plain block", "iterations"], rows)


def drag_cost_real_size_table(run: str) -> str:
    """What a drag costs at real size, counted on meta tensors (speed.json): iterations and FLOP ratios."""
    d = _speed(run)["real_size"]
    rows = []
    for name, by_setting in d["drags"].items():
        for setting, cost in by_setting.items():
            rows.append(
                [
                    f"`{name}` ({cost['mode']})",
                    setting,
                    ", ".join(map(str, cost["iterations_per_block"])),
                    ", ".join(str(b["segments"]) for b in cost["blocks"]),
                    f"{cost['flop_ratio']:.2f}",
                ]
            )
    header = ["drag", "settings", "iterations per block", "segments per block", "FLOPs over plain blocks"]
    return table(header, rows)


def drag_cost_parts_table(run: str, drag: str = "animation-monster", setting: str = "shipped") -> str:
    """Where a dragged block's FLOPs go at real size, part by part, beside a plain block's."""
    cost = _speed(run)["real_size"]["drags"][drag][setting]
    block = cost["blocks"][0]
    plain, dragged = block["plain_block"], block["dragged_block"]
    rows = []
    for name in dragged:
        p = plain.get(name)
        rows.append(
            [
                name.replace("_", " "),
                "–" if p is None else f"{num(p['count'])} x, {p['flops'] / 1e12:.1f}",
                f"{num(dragged[name]['count'])} x, {dragged[name]['flops'] / 1e12:.1f}",
            ]
        )
    total_plain = sum(p["flops"] for p in plain.values()) / 1e12
    total_dragged = sum(p["flops"] for p in dragged.values()) / 1e12
    rows.append(["total", f"{total_plain:.1f}", f"{total_dragged:.1f}"])
    return table(["part", "plain block: count, TFLOP", "dragged block: count, TFLOP"], rows)


def drag_cost_goals_table(run: str) -> str:
    """The drag-cost goals against the bench's committed run (speed.json)."""
    d = _speed(run)
    e, r = d["embedded"], d["real_size"]["drags"]
    shipped, before = e["settings"]["shipped"], e["settings"]["per_segment"]
    animation = r["animation-monster"]
    machine, load = d["machine"], e["load_average_1min"]
    where = f"{machine['threads']} thread(s), load {load['before']:.1f}-{load['after']:.1f}"
    plain = f"a plain block {e['seconds_plain_block']:.3f} s"

    def edit(kind: str) -> str:
        return (
            f"{shipped['seconds'][kind]:.3f} s = {shipped['ratios_to_plain_block'][kind]:.2f}x {plain} "
            f"(before: {before['ratios_to_plain_block'][kind]:.2f}x)"
        )

    rows = [
        [
            "real size: iterations per block of the reference animation",
            "≤ 8",
            ", ".join(map(str, animation["shipped"]["iterations_per_block"]))
            + f" (paper's walk: {', '.join(map(str, animation['paper']['iterations_per_block']))})",
        ],
        [
            "real size: FLOPs of a dragged block over a plain one",
            "≤ 2.0 (aim 1.5)",
            f"{d['drag_flop_ratio_real_size']:.2f} (paper's walk: {animation['paper']['flop_ratio']:.2f})",
        ],
        [
            f"this CPU ({where}): an animated block over a plain one",
            "≤ 3x",
            f"{d['drag_overhead_ratio']:.2f}x (before: {before['ratios_to_plain_block']['animated_block']:.2f}x)",
        ],
        ["this CPU: a 6 px edit, prepared while drawn", "< 0.3 s in a quiet hour", edit("edit_prepared")],
        ["this CPU: the same edit on demand", "< 0.4 s in a quiet hour", edit("edit_on_demand")],
    ]
    return table(["drag cost", "goal", "measured"], rows)


# ----- benches: lab/results/bench/ -----------------------------------------------------------------

SCORES = (  # (key, header)
    ("objmc", "ObjMC px ↓"),
    ("dai", "DAI ↓"),
    ("latent_drift", "latent drift ↓"),
    ("psnr_non_editable", "PSNR non-edit. dB ↑"),
    ("object_kept", "object kept"),
)
LOWER_IS_BETTER = {
    "objmc": True,
    "dai": True,
    "latent_drift": True,
    "psnr_non_editable": False,
    "object_kept": None,
}


def _score(value) -> float:
    if value is None:
        return math.nan
    if value == "inf":
        return math.inf
    return float(value)


def quality_means_table(run: str) -> str:
    """Means per variant of one quality bench run (its results.json summary)."""
    results = load(BENCH / run / "results.json")
    frechet = results["frechet"]
    rows = []
    for name, s in results["summary"].items():
        cells = [f"`{name}`", *[num(s[k]) for k, _ in SCORES], num(s["seconds"])]
        cells.append(num(frechet[name]["frechet_distance"]) if name in frechet else "–")
        rows.append([*cells, str(s["cases"])])
    proxy = any(f.get("proxy") for f in frechet.values())
    header = [
        "variant",
        *[h for _, h in SCORES],
        "time s (median)",
        "Frechet (proxy) ↓" if proxy else "Frechet ↓",
        "cases",
    ]
    return table(header, rows)


def paired(cases: list[dict], name: str, key: str, reference: str = "full") -> dict | None:
    """Mean over cases of (variant - reference), its standard error, and the cases where it is better."""
    diffs = []
    for c in cases:
        scores = c["scores"]
        if name in scores and reference in scores:
            a, b = _score(scores[name].get(key)), _score(scores[reference].get(key))
            if math.isfinite(a) and math.isfinite(b):
                diffs.append(a - b)
    if len(diffs) < 2:
        return None
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    lower = LOWER_IS_BETTER[key]
    better = None if lower is None else sum((d < 0) if lower else (d > 0) for d in diffs)
    return {"mean": mean, "stderr": math.sqrt(var / len(diffs)), "better": better, "cases": len(diffs)}


def quality_paired_table(run: str) -> str:
    """Each variant minus `full`, case by case: mean ± standard error (cases where it is better)."""
    results = load(BENCH / run / "results.json")
    cases = results["cases"]
    rows = []
    for name in results["summary"]:
        if name == "full":
            continue
        cells = [f"`{name}`"]
        for key, _ in SCORES:
            d = paired(cases, name, key)
            if d is None:
                cells.append("–")
                continue
            cell = f"{d['mean']:+.2g} ± {d['stderr']:.1g}"
            cells.append(cell if d["better"] is None else f"{cell} ({d['better']}/{d['cases']} better)")
        rows.append(cells)
    return table(["variant − full", *[h for _, h in SCORES]], rows)


def quality_paired_against_table(before: str, after: str, variant: str = "full") -> str:
    """One variant in two runs of the same cases, case by case (after − before): mean ± standard error
    (cases where the later run is better), over every case and over edits and animations alone."""
    runs = [{c["name"]: c for c in load(BENCH / run / "results.json")["cases"]} for run in (before, after)]
    rows = []
    for label, tag in (("every case", None), ("edits", "edit"), ("animations", "animate")):
        cases = [
            {"scores": {"before": runs[0][name]["scores"][variant], "after": case["scores"][variant]}}
            for name, case in runs[1].items()
            if name in runs[0] and (tag is None or tag in case["tags"])
        ]
        cells = [f"{label} ({len(cases)})"]
        for key, _ in SCORES:
            d = paired(cases, "after", key, reference="before")
            if d is None:
                cells.append("–")
                continue
            cell = f"{d['mean']:+.2g} ± {d['stderr']:.1g}"
            cells.append(cell if d["better"] is None else f"{cell} ({d['better']} better)")
        rows.append(cells)
    return table([f"`{after}` − `{before}`", *[h for _, h in SCORES]], rows)


def quality_by_tag_table(run: str) -> str:
    """`full` against no drag, per kind of case."""
    results = load(BENCH / run / "results.json")
    rows = []
    for tag, variants in results["by_tag"].items():
        full, none = variants["full"], variants["no_drag"]
        rows.append(
            [
                tag,
                str(full["cases"]),
                num(none["objmc"]),
                num(full["objmc"]),
                num(full["dai"]),
                num(full["latent_drift"]),
                num(full["psnr_non_editable"]),
            ]
        )
    header = [
        "cases tagged",
        "cases",
        "ObjMC without a drag, px",
        "ObjMC `full`, px ↓",
        "DAI ↓",
        "latent drift ↓",
        "PSNR non-edit. dB ↑",
    ]
    return table(header, rows)


def _settings(config: dict) -> str:
    parts = [
        f"L_rec {config['reconstruction_loss'].upper() if config['reconstruction_loss'] == 'l1' else 'squared error'}",
        f"step index {config['optimize_step']}, {config['iterations']} x {num(config['learning_rate'])}",
        f"CSS α {num(config['css_alpha'])} on the {config.get('css_on') or 'gradient'}",
    ]
    if config.get("rotation_x0_weight"):
        parts.append(f"rotation term {num(config['rotation_x0_weight'])}")
    if config.get("walk_from") == "previous_block":
        parts.append("animated blocks walk from the previous block")
    if config.get("animation_max_iterations"):
        parts.append(f"at most {config['animation_max_iterations']} iterations an animated block")
    if config.get("edit_iterations"):
        parts.append(
            f"edits of {config.get('edit_max_segments') or 'any number of'} segment(s): "
            f"{config['edit_iterations']} x {num(config.get('edit_learning_rate') or config['learning_rate'])}"
        )
    return "; ".join(parts)


# What each committed run was (the result files hold the settings, not the weights or the machine).
RUNS = {
    "quality_cpu": "base weights, every pass in float; CPU workers of a GPU host",
    "quality_cpu_int8": "shipped weights, the L1 settings used before; the 2-core CPU",
    "quality_cpu_int8_base_weights": "base weights; the 2-core CPU",
    "quality_host16_css_on_gradient_beside": "shipped weights, CSS map on the gradient, beside the next run; a 16-core host",
    "quality_host16_css_on_step": "shipped weights and settings; a 16-core host",
    "quality_host16_int8": "shipped weights, every variant, CSS map on the gradient; a 16-core host",
    "quality_mse_lr02": "a candidate setting that was not shipped; earlier weights",
    "quality_cpu_before_cheap_drags": "`full` with the settings before cheaper drags, beside the next run; the 2-core CPU",
    "quality_cpu_cheap_drags": "`full` with the shipped settings (cheaper drags); the 2-core CPU",
    "drift_cpu_before_cheap_drags": "the settings before cheaper drags, beside the next run; the 2-core CPU",
    "drift_cpu_cheap_drags": "the shipped settings (cheaper drags); the 2-core CPU",
    "drift_cpu_before_cheap_drags_16_runs": "the settings before cheaper drags, beside the next run; the 2-core CPU",
    "drift_cpu_two_step_edits_16_runs": "a candidate not shipped: edits of one segment in 2 iterations of 0.9; the 2-core CPU",
    "drift_cpu": "shipped weights, the L1 settings used before; the 2-core CPU",
    "drift_cpu_base_weights": "base weights, every pass in float, the L1 settings; the 2-core CPU",
    "drift_cpu_css_on_gradient_beside": "squared-error settings, CSS map on the gradient, beside the next run",
    "drift_cpu_css_on_step": "the shipped settings (CSS map on AdamW's step); the 2-core CPU",
    "drift_cpu_l1_beside": "the L1 settings, beside the next run; the 2-core CPU",
    "drift_cpu_squared_error": "squared-error settings, CSS map on the gradient; the 2-core CPU",
    "drift_host16_squared_error": "squared-error settings, CSS map on the gradient; a 16-core host",
}


def quality_runs_table() -> str:
    """Every committed quality bench run, `full`'s means and the settings it ran with."""
    rows = []
    for path in sorted(BENCH.glob("quality_*/results.json")):
        r = load(path)
        s = r["settings"]
        full = r["summary"]["full"]
        rows.append(
            [
                f"`{relative(path.parent)}/`",
                RUNS.get(path.parent.name, ""),
                _settings(r["variants"]["full"]["config"]),
                num(bool(s.get("int8_streaming", False))),
                str(len(r["variants"])),
                num(full["objmc"]),
                num(full["dai"]),
                num(full["latent_drift"]),
                num(full["psnr_non_editable"]),
                str(full["cases"]),
                fixed(s["seconds"] / 60, 1),
            ]
        )
    header = [
        "run",
        "what",
        "`full` settings",
        "int8 streaming",
        "variants",
        "ObjMC px",
        "DAI",
        "latent drift",
        "PSNR dB",
        "cases",
        "minutes",
    ]
    return table(header, rows)


def variants_table(run: str) -> str:
    """The bench's variants, as a results.json describes them."""
    results = load(BENCH / run / "results.json")
    rows = [["`no_drag`", "the same stream without the drag"]]
    rows += [[f"`{name}`", v["description"]] for name, v in results["variants"].items()]
    return table(["variant", "what it runs"], rows)


DRIFT_VARIANTS = ("drag without ADSR", "drag with ADSR", "drag with released ADSR")


def _paired_cell(d: dict | None) -> str:
    if d is None:
        return "–"
    return f"{d['mean']:+.2g} ± {d['stderr']:.1g} (lower in {d['lower_in_runs']} of {d['runs']})"


def drift_runs_table() -> str:
    """Every committed drift bench run: drift against the undragged stream, mean over blocks (last)."""
    rows = []
    for path in sorted(BENCH.glob("drift_*/drift.json")):
        r = load(path)
        s, summary = r["settings"], r["summary"]
        cells = [
            f"`{relative(path.parent)}/`",
            RUNS.get(path.parent.name, ""),
            str(s["runs"]),
            str(s["drags"]),
        ]
        for variant in DRIFT_VARIANTS:
            v = summary[variant]
            cells.append(f"{num(v['drift_mean'], 2)} ({num(v['drift_last_block'], 2)})")
        cells += [
            _paired_cell(summary["drag with ADSR"].get("minus_without_adsr")),
            _paired_cell(summary["drag with released ADSR"].get("minus_without_adsr")),
        ]
        rows.append(cells)
    header = [
        "run",
        "what",
        "runs",
        "drags in a row",
        "no ADSR",
        "the paper's ADSR",
        "the released code's ADSR",
        "paper's ADSR − none, paired",
        "released ADSR − none, paired",
    ]
    return table(header, rows)


def _gpu_rows(data: dict, rows: list[tuple[str, str]]) -> str:
    return table(["", data["device"] + ", " + data["dtype"]], [list(r) for r in rows])


def gpu_smoke_table() -> str:
    """A Wan-1.3B-shaped model with random weights on a GPU (lab/results/bench/gpu_smoke_h100.json)."""
    d = load(BENCH / "gpu_smoke_h100.json")
    without, with_drag = d["seconds_per_block_without_drag"], d["seconds_per_block_with_drag"]
    rows = [
        ("resolution; latent per block", f"{d['resolution']}; {' x '.join(map(str, d['latent']))}"),
        ("transformer parameters", num(d["parameters"])),
        ("building the model, s", fixed(d["build_seconds"], 1)),
        (
            "a block without a drag, s (first block, with warm-up; later blocks)",
            f"{fixed(without[0])}; {', '.join(fixed(x) for x in without[1:])}",
        ),
        ("a block with an animation drag, s", ", ".join(fixed(x, 1) for x in with_drag)),
        ("drag iterations in those blocks", ", ".join(map(str, d["drag_iterations_per_block"]))),
        ("peak GPU memory, GiB", fixed(d["peak_memory_gib"], 1)),
    ]
    return _gpu_rows(d, rows)


def gpu_pipeline_table() -> str:
    """The whole pipeline at real size with random weights (lab/results/bench/gpu_pipeline_h100.json)."""
    d = load(BENCH / "gpu_pipeline_h100.json")
    p = d["parameters"]
    blocks, decode = d["seconds_per_block"], d["decode_seconds_per_block"]
    rows = [
        ("resolution; latent per block", f"{d['resolution']}; {' x '.join(map(str, d['latent_block']))}"),
        (
            "parameters: transformer / VAE / text encoder",
            f"{num(p['transformer'])} / {num(p['vae'])} / {num(p['text_encoder'])}",
        ),
        ("building the pipeline, s", fixed(d["build_seconds"], 1)),
        ("encoding the prompt, s", fixed(d["prompt_encoding_seconds"], 2)),
        (
            "a block without a drag, s (first block, with warm-up; later blocks)",
            f"{fixed(blocks[0])}; {', '.join(fixed(x) for x in blocks[1:])}",
        ),
        ("decoding a block, s", ", ".join(fixed(x) for x in decode)),
        (
            f"a block with the drag ({d['drag_mode']}, labels `{d['labels']}`), s",
            ", ".join(fixed(x, 1) for x in d["seconds_per_block_with_drag"]),
        ),
        ("drag iterations in those blocks", ", ".join(map(str, d["drag_iterations_per_block"]))),
        ("frames streamed", " x ".join(map(str, d["frames"]))),
        ("peak GPU memory, GiB", fixed(d["peak_memory_gib"], 1)),
    ]
    return _gpu_rows(d, rows)


# ----- the drag settings: the package's presets ----------------------------------------------------

OPTION_MEANING = {
    "optimize_step": "T': the sampler step (index) at which the latent is optimised",
    "iterations": "AdamW iterations per trajectory segment",
    "learning_rate": "AdamW step size",
    "feature_layers": "layers whose self-attention output is F(z) (None: the backend's)",
    "reconstruction_loss": "L_rec as L1 (paper) or squared error (released code)",
    "constraint": "L_cst on the features (paper) or on the x0 prediction (released code)",
    "constraint_weight": "weight of L_cst",
    "edit_frames": "an edit supervises every frame of the block or only the last",
    "reset_optimizer_each_iteration": "a fresh AdamW state at every iteration (released code)",
    "gradient_clip": "gradient norm clipping (None: none)",
    "segment_tokens": "trajectory segment length, in token widths",
    "segment_degrees": "rotation segment, in degrees",
    "adsr": "ADSR on or off",
    "adsr_frames": "L_n: previous frames whose statistics the latent is restored to",
    "adsr_reference": "restore to the previous frames' statistics or the block's own before optimising",
    "adsr_stats": "one mean and std for the latent, or one per frame and channel",
    "adsr_min_sigma": "apply ADSR only at steps at least this noisy",
    "sfs": "SFS on or off",
    "cutoffs": "the cutoff switch set (1 = unfiltered)",
    "butterworth_order": "order of the Butterworth filter",
    "sfs_scope": "low-pass the context keys/values only, or the whole attention window",
    "css": "CSS on or off",
    "css_alpha": "alpha: the Gaussian map's sigma is alpha times half the target box",
    "css_on": "the map weighs the gradient (paper) or AdamW's step",
    "x0_rectify": "renormalise each x0 prediction to the previous two blocks (released code)",
    "reconstruction_weight": "L_rec weighted by the mask or by a Gaussian over each target box (SG-I2V-style)",
    "latent_lowpass": "keep only the low frequencies of the latent's change (SG-I2V-style; None: off)",
    "rotation_x0_weight": "2D rotations: L_rec and L_cst repeated on the x0 prediction, this weight (0: off)",
    "rotation_x0_constraint_weight": "that term's L_cst weight alone (None: the same)",
    "edit_optimize_step": "an edit's own T' (None: shared)",
    "edit_iterations": "an edit's own iterations (None: shared)",
    "edit_learning_rate": "an edit's own step size (None: shared)",
    "edit_max_segments": "the edit settings apply to edits of at most this many segments (None: all)",
    "walk_from": "an animated block walks its segments from the reference frame or the previous block's end",
    "animation_max_iterations": "at most this many iterations per animated block, spread over its segments (None: no limit)",
}


def _option(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(_option(v) for v in value)
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def drag_config_table() -> str:
    """Every DragConfig option: the paper's default, the released code's, and the presets of Wan and the embedded model."""
    sys.path.insert(0, str(ROOT))
    from dragstream_widget.engine.config import DragConfig, released_code_config
    from dragstream_widget.engine.presets import TOY_DRAG_CONFIG, TOY_FAST_EDIT_CONFIG, WAN_DRAG_CONFIG

    columns = (DragConfig(), released_code_config(), WAN_DRAG_CONFIG, TOY_DRAG_CONFIG, TOY_FAST_EDIT_CONFIG)
    rows = []
    for f in dataclasses.fields(DragConfig):
        values = [getattr(c, f.name) for c in columns]
        cells = [_option(values[0])] + [
            ("**" + _option(v) + "**") if v != values[0] else "" for v in values[1:]
        ]
        rows.append([f"`{f.name}`", *cells, OPTION_MEANING.get(f.name, "see `engine/config.py`")])
    header = [
        "option",
        "paper (`DragConfig()`)",
        "`released_code_config()`",
        "`WAN_DRAG_CONFIG`",
        "`TOY_DRAG_CONFIG`",
        "`TOY_FAST_EDIT_CONFIG`",
        "what it does",
    ]
    return table(header, rows)


# ----- the markers ---------------------------------------------------------------------------------


def select_table() -> str:
    """Click to select against the toy world's masks (lab/card/select.json, ``bench select``)."""
    result = load(CARD / "select.json")["summary"]
    q1, q3 = result["quartiles_iou"]
    return table(
        ["clicks", "frames", "median IoU", "quartiles", "IoU ≥ 0.8", "median seconds a click"],
        [
            [
                str(result["clicks"]),
                str(result["frames"]),
                fixed(result["median_iou"]),
                f"{fixed(q1)} – {fixed(q3)}",
                percent(result["share_at_least_0.8"]),
                fixed(result["median_seconds"]),
            ]
        ],
    )


SOAK = ROOT / "lab" / "results" / "soak"


def soak_table(run: str) -> str:
    """Resident memory and latent statistics of a long stream with drags (``soak``), every 1000 frames."""
    data = load(SOAK / f"{run}.json")
    rows = [
        [
            str(r["frames"]),
            str(r["drags"]),
            fixed(r["rss_mb"], 0),
            fixed(r["latent_std"], 3),
            str(r["finite"]),
        ]
        for r in data["reports"]
        if r["frames"] // 500 % 2 == 0 or r is data["reports"][-1]
    ]
    note = (
        f"\nGrowth after the warm-up of {data['warmup_frames']} frames: {fixed(data['growth_after_warmup_mb'], 0)} MB "
        f"against a bound of {fixed(data['bound_mb'], 0)} MB ({'held' if data['held'] else 'not held'}); "
        f"{data['threads']} torch thread; `{relative(SOAK / f'{run}.json')}`.\n"
    )
    return table(["frames", "drags", "resident MB", "latent std", "finite"], rows) + note


TABLES: dict[str, Callable[..., str]] = {
    "soak": soak_table,
    "scorecard": scorecard_table,
    "scorecard-brief": scorecard_brief_table,
    "toy-config": toy_config_table,
    "training": training_table,
    "rollouts": rollouts_table,
    "long-runs": long_runs_table,
    "demo": demo_table,
    "select": select_table,
    "cpu-speed": cpu_speed_table,
    "drag-cost": drag_cost_table,
    "drag-cost-real-size": drag_cost_real_size_table,
    "drag-cost-parts": drag_cost_parts_table,
    "drag-cost-goals": drag_cost_goals_table,
    "quality-means": quality_means_table,
    "quality-paired": quality_paired_table,
    "quality-by-tag": quality_by_tag_table,
    "quality-paired-against": quality_paired_against_table,
    "quality-runs": quality_runs_table,
    "variants": variants_table,
    "drift-runs": drift_runs_table,
    "gpu-smoke": gpu_smoke_table,
    "gpu-pipeline": gpu_pipeline_table,
    "drag-config": drag_config_table,
}


def documents() -> list[Path]:
    found: list[Path] = []
    for pattern in DOCUMENTS:
        found += sorted(ROOT.glob(pattern))
    return found


def regenerate(text: str, where: str) -> tuple[str, list[str]]:
    """The text with every table rebuilt, and the names of the tables that changed."""
    changed: list[str] = []

    def rebuild(match: re.Match) -> str:
        spec = match.group(2).split()
        if not spec or spec[0] not in TABLES:
            raise SystemExit(f"{where}: unknown table {match.group(2)!r}; known: {', '.join(TABLES)}")
        body = TABLES[spec[0]](*spec[1:])
        if body != match.group(3):
            changed.append(f"{where}: {match.group(2)}")
        return match.group(1) + body + match.group(4)

    return MARKER.sub(rebuild, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    stale: list[str] = []
    for path in documents():
        text = path.read_text()
        new, changed = regenerate(text, relative(path))
        stale += changed
        if changed and not args.check:
            path.write_text(new)
    if args.check and stale:
        print("stale tables (run python docs/tables.py):\n  " + "\n  ".join(stale))
        return 1
    print("rewrote:\n  " + "\n  ".join(stale) if stale else "every table is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
