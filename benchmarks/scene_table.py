"""The truth-vs-argusd table of the hard-scene corpus (tests/support/corpus.py) for ByteTrack and BoT-SORT,
written into docs/analytics.md between its scene-table markers (or printed with --print).

    .venv/bin/python benchmarks/scene_table.py [--print]

It runs argusd offline on the scenes, once per tracker (the fall detector at 640: minutes on a CPU). Needs
Redis at 127.0.0.1:6379 and the fetched assets, as the tests do.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.corpus import SCENES, Counts, Scene, Truth, run_corpus

DOC = Path(__file__).resolve().parent.parent / "docs" / "analytics.md"
BEGIN, END = "<!-- scene-table: begin (benchmarks/scene_table.py) -->", "<!-- scene-table: end -->"
TRACKERS = ("bytetrack", "botsort")


def _rules(truth: Truth) -> str:
    names = {"line_cross": "cross", "zone_enter": "enter", "zone_exit": "exit", "loiter": "loiter"}
    return ", ".join(f"{names.get(kind, kind)} {rule}{' ' + direction if direction else ''} {count}"
                     for (kind, rule, direction), count in sorted(truth.items(), key=str)) or "none"


def _cell(scene: Scene, counted: Counts) -> str:
    summary = f"{_rules(counted.rules)}; {counted.objects} object(s), {counted.stationary} stationary"
    return ("✓ " if counted.matches(scene) else "✗ ") + summary


def table(results: dict[str, dict[str, Counts]]) -> str:
    lines = ["| scene | truth | " + " | ".join(f"argusd, {kind}" for kind in TRACKERS) + " |",
             "|---|---|" + "---|" * len(TRACKERS)]
    for name, scene in SCENES.items():
        truth = f"{_rules(scene.truth)}; {scene.objects} object(s), {scene.stationary} stationary"
        lines.append(f"| {name} | {truth} | " + " | ".join(_cell(scene, results[kind][name]) for kind in TRACKERS)
                     + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--print", action="store_true", help="print the table instead of updating the doc")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        results = {kind: run_corpus(Path(directory), kind) for kind in TRACKERS}
    text = table(results)
    if args.print:
        print(text)
        return
    doc = DOC.read_text()
    updated, replaced = re.subn(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{text}\n{END}", doc,
                                flags=re.DOTALL)
    if replaced != 1:
        raise SystemExit(f"{DOC}: no scene-table markers")
    DOC.write_text(updated)
    print(text)


if __name__ == "__main__":
    main()
