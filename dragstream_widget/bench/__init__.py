"""Benchmarks: scripts that print their numbers and save them as JSON."""

import json


def report(result: dict, path: str | None) -> dict:
    """Print ``result`` as JSON and, when ``path`` is given, save it there."""
    print(json.dumps(result, indent=2))
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
    return result
