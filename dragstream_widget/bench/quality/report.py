"""Bench outputs: ``results.json`` (every score of every case and variant), ``results.md`` (means per
variant, overall and per tag) and comparison images (the variants' frames side by side)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ...engine.config import DragConfig
from .measures import trajectory_targets
from .runner import NO_DRAG, CaseRun
from .variants import Variant

COLUMNS = (  # (score key, table header, lower is better)
    ("objmc", "ObjMC px ↓", True),
    ("dai", "DAI ↓", True),
    ("latent_drift", "latent drift ↓", True),
    ("psnr_non_editable", "PSNR non-edit. dB ↑", False),
    ("object_kept", "object kept", None),
    ("foreign_color_px", "foreign colour px ↓", True),
    ("objects_spawned_or_lost", "objects +/- ↓", True),
    ("seconds", "time s (median)", True),
)
PAIRED = ("objmc", "dai", "latent_drift", "psnr_non_editable", "object_kept")
REFERENCE = "full"


def _number(value) -> float:
    if value is None:
        return float("nan")
    if value == "inf":
        return float("inf")
    return float(value)


def _values(cases: list[dict], name: str, key: str) -> np.ndarray:
    return np.array([_number(c["scores"][name].get(key)) for c in cases if name in c["scores"]])


def mean_scores(cases: list[dict], name: str) -> dict:
    """Means of each score over case records (missing values and infinite PSNR left out); the median
    for time, which a busy machine inflates in a few cases."""
    out = {}
    for key, _, _ in COLUMNS:
        values = _values(cases, name, key)
        finite = values[np.isfinite(values)]
        average = np.median if key == "seconds" else np.mean
        out[key] = float(average(finite)) if len(finite) else None
    out["cases"] = sum(name in c["scores"] for c in cases)
    return out


def summarise(cases: list[dict], names: list[str]) -> tuple[dict, dict]:
    """Per-variant scores over all case records and per tag."""
    overall = {n: mean_scores(cases, n) for n in names}
    tags = sorted({t for c in cases for t in c["tags"]})
    by_tag = {t: {n: mean_scores([c for c in cases if t in c["tags"]], n) for n in names} for t in tags}
    return overall, by_tag


def paired_differences(cases: list[dict], name: str, reference: str = REFERENCE) -> dict:
    """Per score: mean over cases of (variant - reference), its standard error, and in how many cases
    the variant is better, so that a small effect can be told from case-to-case noise."""
    out = {}
    lower_is_better = {key: lower for key, _, lower in COLUMNS}
    for key in PAIRED:
        pairs = [
            (_number(c["scores"][name].get(key)), _number(c["scores"][reference].get(key)))
            for c in cases
            if name in c["scores"] and reference in c["scores"]
        ]
        diff = np.array([a - b for a, b in pairs if math.isfinite(a) and math.isfinite(b)])
        if len(diff) < 2:
            continue
        lower = lower_is_better[key]
        better = None if lower is None else int(((diff < 0) if lower else (diff > 0)).sum())
        stderr = float(diff.std(ddof=1) / math.sqrt(len(diff)))
        out[key] = {"mean": float(diff.mean()), "stderr": stderr, "better": better, "cases": len(diff)}
    return out


def results_json(
    runs: list[CaseRun], variants: list[Variant], base: DragConfig, frechet: dict, settings: dict
) -> dict:
    names = [NO_DRAG] + [v.name for v in variants]
    cases = [
        {"name": r.case.name, "tags": list(r.case.tags), "mode": r.case.mode.value, "scores": r.scores}
        for r in runs
    ]
    overall, by_tag = summarise(cases, names)
    return {
        "settings": settings,
        "variants": {
            v.name: {"description": v.description, "config": asdict(v.config(base))} for v in variants
        },
        "cases": cases,
        "summary": overall,
        "by_tag": by_tag,
        "frechet": frechet,
    }


def _cell(value, digits: int = 3) -> str:
    if isinstance(value, str):  # "inf" as stored in results.json
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def scores_table(rows: dict[str, dict], frechet: dict | None = None) -> list[str]:
    """Markdown rows of the bench's columns, one per variant: means (with a "cases" count) or one
    case's scores; with ``frechet``, its distance too."""
    counted = all("cases" in scores for scores in rows.values())
    header = ["variant", *[h for _, h, _ in COLUMNS]]
    if frechet is not None:
        header.append("Frechet (proxy) ↓" if any(f["proxy"] for f in frechet.values()) else "Frechet ↓")
    if counted:
        header.append("cases")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, scores in rows.items():
        cells = [name, *[_cell(scores.get(k)) for k, _, _ in COLUMNS]]
        if frechet is not None:
            cells.append(_cell(frechet[name]["frechet_distance"]) if name in frechet else "–")
        if counted:
            cells.append(str(scores["cases"]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _paired_table(cases: list[dict], names: list[str]) -> list[str]:
    titles = {key: title for key, title, _ in COLUMNS}
    header = ["variant − full", *[titles[k] for k in PAIRED]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        paired = paired_differences(cases, name)
        cells = [name]
        for key in PAIRED:
            d = paired.get(key)
            if d is None:
                cells.append("–")
                continue
            cell = f"{d['mean']:+.2g} ± {d['stderr']:.1g}"
            cells.append(cell if d["better"] is None else f"{cell} ({d['better']}/{d['cases']} better)")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def results_markdown(results: dict) -> str:
    """The report, rebuilt from the case records of a ``results.json``."""
    settings = results["settings"]
    frechet = results["frechet"]
    extractor = next(iter(frechet.values()))["extractor"] if frechet else "none"
    cases = results["cases"]
    names = [NO_DRAG, *results["variants"]]
    overall, by_tag = summarise(cases, names)
    lines = [
        "# Quality bench",
        "",
        f"{len(cases)} case(s) from `{settings['cases']}`, model `{settings['model']}` on "
        f"{settings['device']}; tracker: {settings['tracker']}; DAI radius {settings['dai_radius']} px; "
        f"Frechet extractor: {extractor}.",
        "",
        "Means per variant. `no_drag` is the same stream without the drag (its ObjMC is how far the "
        "targets lie from where the objects go by themselves). Time: the drag's own blocks, median.",
        "",
        *scores_table(overall, frechet),
    ]
    if REFERENCE in results["variants"]:
        lines += [
            "",
            f"## Paired against `{REFERENCE}`",
            "",
            "Mean over cases of (variant − full) ± its standard error, and in how many cases the variant "
            "scores better; a difference within about two standard errors is noise.",
            "",
            *_paired_table(cases, [n for n in names if n != REFERENCE]),
        ]
    lines += ["", "## Per tag"]
    for tag, rows in by_tag.items():
        lines += ["", f"### {tag}", "", *scores_table(rows)]
    lines += ["", "## Variants", ""]
    lines += [f"- `{name}`: {v['description']}" for name, v in results["variants"].items()]
    return "\n".join(lines) + "\n"


def comparison_image(run: CaseRun, path: str | Path, max_frames: int = 9) -> Path:
    """Rows: the drawn frame, then the frames each branch made from the drag on, labelled by variant;
    open blue circles mark where each dragged point should be on that frame."""
    from matplotlib.figure import Figure  # not pyplot: leaves a notebook's backend alone

    names = list(run.branches)
    count = min(max_frames, min(len(b.frames) for b in run.branches.values()))
    fig = Figure(figsize=(1.1 * (count + 1), 1.15 * len(names)))
    axes = fig.subplots(len(names), count + 1, squeeze=False)
    targets = trajectory_targets(run.case.instruction, count)
    for row, name in enumerate(names):
        frames = run.branches[name].frames
        for col in range(count + 1):
            ax = axes[row, col]
            ax.imshow(run.drawn if col == 0 else frames[col - 1], interpolation="nearest")
            if col > 0:
                ax.plot(*targets[col - 1].T, "o", ms=3, mfc="none", mec="deepskyblue", mew=0.7)
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
    fig.suptitle(f"{run.case.name}: {', '.join(run.case.tags)}", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
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
