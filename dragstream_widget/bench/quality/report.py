"""Bench outputs: ``results.json`` (every score of every case and variant), ``results.md`` (means per
variant, overall and per tag) and comparison images (the variants' frames side by side)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ...engine.config import DragConfig
from .runner import NO_DRAG, CaseRun
from .variants import Variant

COLUMNS = (  # (score key, table header, lower is better)
    ("objmc", "ObjMC px ↓", True),
    ("dai", "DAI ↓", True),
    ("latent_drift", "latent drift ↓", True),
    ("psnr_non_editable", "PSNR non-edit. dB ↑", False),
    ("object_kept", "object kept", None),
    ("seconds", "time s", True),
)


def _number(value) -> float:
    if value is None:
        return float("nan")
    if value == "inf":
        return float("inf")
    return float(value)


def mean_scores(runs: list[CaseRun], name: str) -> dict:
    """Means of each score over the runs (missing values skipped; infinite PSNR left out)."""
    out = {}
    for key, _, _ in COLUMNS:
        values = np.array([_number(r.scores[name].get(key)) for r in runs if name in r.scores])
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if len(finite) else None
    out["cases"] = sum(name in r.scores for r in runs)
    return out


def summarise(runs: list[CaseRun], names: list[str]) -> tuple[dict, dict]:
    overall = {n: mean_scores(runs, n) for n in names}
    tags = sorted({t for r in runs for t in r.case.tags})
    by_tag = {t: {n: mean_scores([r for r in runs if t in r.case.tags], n) for n in names} for t in tags}
    return overall, by_tag


def results_json(
    runs: list[CaseRun], variants: list[Variant], base: DragConfig, frechet: dict, settings: dict
) -> dict:
    names = [NO_DRAG] + [v.name for v in variants]
    overall, by_tag = summarise(runs, names)
    return {
        "settings": settings,
        "variants": {
            v.name: {"description": v.description, "config": asdict(v.config(base))} for v in variants
        },
        "cases": [
            {"name": r.case.name, "tags": list(r.case.tags), "mode": r.case.mode.value, "scores": r.scores}
            for r in runs
        ],
        "summary": overall,
        "by_tag": by_tag,
        "frechet": frechet,
    }


def _cell(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def _table(rows: dict, frechet: dict | None) -> list[str]:
    header = ["variant", *[h for _, h, _ in COLUMNS], "cases"]
    if frechet is not None:
        header.insert(-1, "Frechet (proxy) ↓" if any(f["proxy"] for f in frechet.values()) else "Frechet ↓")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, scores in rows.items():
        cells = [name, *[_cell(scores[k]) for k, _, _ in COLUMNS]]
        if frechet is not None:
            cells.append(_cell(frechet[name]["frechet_distance"]) if name in frechet else "–")
        cells.append(str(scores["cases"]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def results_markdown(results: dict) -> str:
    settings = results["settings"]
    frechet = results["frechet"]
    extractor = next(iter(frechet.values()))["extractor"] if frechet else "none"
    lines = [
        "# Quality bench",
        "",
        f"{len(results['cases'])} case(s) from `{settings['cases']}`, model `{settings['model']}` on "
        f"{settings['device']}; tracker: {settings['tracker']}; DAI radius {settings['dai_radius']} px; "
        f"Frechet extractor: {extractor}.",
        "",
        "Means per variant. `no_drag` is the same stream without the drag (its ObjMC is how far the "
        "targets lie from where the objects go by themselves). Time: the drag's own blocks.",
        "",
        *_table(results["summary"], frechet),
        "",
        "## Per tag",
    ]
    for tag, rows in results["by_tag"].items():
        lines += ["", f"### {tag}", "", *_table(rows, None)]
    lines += ["", "## Variants", ""]
    lines += [f"- `{name}`: {v['description']}" for name, v in results["variants"].items()]
    return "\n".join(lines) + "\n"


def comparison_image(run: CaseRun, path: str | Path, max_frames: int = 9) -> Path:
    """Rows: the drawn frame, then the frames each branch made from the drag on, labelled by variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(run.branches)
    count = min(max_frames, min(len(b.frames) for b in run.branches.values()))
    fig, axes = plt.subplots(
        len(names), count + 1, figsize=(1.1 * (count + 1), 1.15 * len(names)), squeeze=False
    )
    for row, name in enumerate(names):
        frames = run.branches[name].frames
        for col in range(count + 1):
            ax = axes[row, col]
            ax.imshow(run.drawn if col == 0 else frames[col - 1], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            if row == 0:
                ax.set_title("drawn on" if col == 0 else f"+{col}", fontsize=7)
    for region in run.case.instruction.regions:
        handle, targets = np.array(region.handle), np.array(region.targets)
        for row in range(len(names)):
            ax = axes[row, 0]
            ax.plot(*np.vstack([handle, targets]).T, "-", color="white", lw=0.6)
            ax.plot(*handle, "o", color="red", ms=2)
            ax.plot(*targets[-1], "o", color="deepskyblue", ms=2)
    fig.suptitle(f"{run.case.name}: {run.case.mode.value}, {', '.join(run.case.tags)}", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out: str | Path, results: dict, runs: list[CaseRun]) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(results_markdown(results))
    written = [out / "results.json", out / "results.md"]
    for run in runs:
        if run.branches:
            written.append(comparison_image(run, out / f"compare_{run.case.name}.png"))
    return written
