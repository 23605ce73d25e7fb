"""Do two bench runs give the same numbers? ``python -m lab compare-results A.json B.json``

Compares two result files of the same bench (the quality bench's ``results.json``, the drift bench's
``drift.json``, a scorecard) number by number, leaving out what is expected to differ between runs:
times and the settings block. Prints how many numbers were compared, the largest relative difference
and the first that differ beyond ``--tolerance``; exits 1 when any does, or when a value is missing on
one side. A change that should not move scores (a refactor) is checked by running the same bench,
on the same machine, before and after it, and comparing the two files.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterator
from pathlib import Path

# Keys whose values differ between identical runs: wall-clock times and the run's own settings.
UNSTABLE_KEYS = ("seconds", "settings", "elapsed", "per_second")


def leaves(value, path: str = "") -> Iterator[tuple[str, object]]:
    """Every scalar in a JSON document with its path (``/summary/full/objmc``, ``/cases[3]/...``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def stable(path: str) -> bool:
    return not any(key in part for part in path.split("/") for key in UNSTABLE_KEYS)


def relative_difference(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def compare(before: dict, after: dict, tolerance: float) -> dict:
    """The numbers of ``before`` and ``after`` side by side: counts, the worst relative difference,
    and every path whose values differ beyond ``tolerance`` (or exist on one side only)."""
    a = {p: v for p, v in leaves(before) if stable(p)}
    b = {p: v for p, v in leaves(after) if stable(p)}
    differ, worst, numbers = [], 0.0, 0
    for path in sorted(a.keys() | b.keys()):
        if path not in a or path not in b:
            differ.append(
                {"path": path, "before": a.get(path, "(missing)"), "after": b.get(path, "(missing)")}
            )
            continue
        x, y = a[path], b[path]
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            numbers += 1
            difference = relative_difference(float(x), float(y))
            worst = max(worst, difference)
            if difference > tolerance:
                differ.append({"path": path, "before": x, "after": y})
        elif x != y:
            differ.append({"path": path, "before": x, "after": y})
    return {"numbers": numbers, "worst_relative_difference": worst, "differ": differ}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m lab compare-results",
        description="Do two runs of a bench give the same numbers? Times and settings are left out.",
    )
    parser.add_argument("before", type=Path, help="a result file of the bench")
    parser.add_argument("after", type=Path, help="the same bench's result file from another run")
    parser.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest relative difference taken as equal (1e-6)"
    )
    args = parser.parse_args(argv)
    result = compare(json.loads(args.before.read_text()), json.loads(args.after.read_text()), args.tolerance)
    print(
        f"{result['numbers']} numbers compared, largest relative difference "
        f"{result['worst_relative_difference']:.2e}; {len(result['differ'])} differ beyond {args.tolerance:g}"
    )
    for entry in result["differ"][:20]:
        print(f"  {entry['path']}: {entry['before']} -> {entry['after']}")
    if result["differ"]:
        raise SystemExit(1)
    return result
