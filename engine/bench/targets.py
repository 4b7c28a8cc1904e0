"""Issue 17's GPU targets against stage-harness reports: one markdown table.

    python -m engine.bench.targets STAGES_1024.json STAGES_4096.json

The first report holds the 1024 px runs (iddpm:50 and dpm++:20, ours and published, with
loads), the second ours at 1024 and 4096 px. GB here is 10^9 bytes, as the targets are written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TFLOP_PER_CFG_STEP_1024 = 44.0
"""Issue 17's estimate for one guided step at 1024 px (two samples of 4096 tokens)."""
PRACTICAL_BF16_TFLOPS = 790.0
"""The bf16 matrix rate an H100 reaches in practice, as issue 17 counts it."""


def _run(report: dict[str, Any], arrangement: str, sampler: str, px: int):
    """The first run of `sampler` (iddpm:50 and dpm++:20 on a GPU; fewer steps in a dry run)."""
    for run in report["runs"]:
        if (run["arrangement"], run["sampler"], run["resolution"]) == (arrangement, sampler, px):
            return run
    return None


def _load(report: dict[str, Any], arrangement: str):
    return next((load for load in report["loads"] if load["arrangement"] == arrangement), None)


def _cell(value: float | None, fmt: str) -> str:
    return "not measured" if value is None else format(value, fmt)


def _verdict(value: float | None, limit: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "not measured"
    met = value >= limit if higher_is_better else value <= limit
    return "met" if met else f"missed by {abs(value - limit):.3g}"


def field(run: dict[str, Any] | None, name: str) -> Any:
    return None if run is None else run[name]


def target_rows(main: dict[str, Any], big: dict[str, Any] | None) -> list[list[str]]:
    px = main["config"]["resolutions"][0]
    steps_50 = {a: _run(main, a, "iddpm", px) for a in ("ours", "published")}
    fast = {a: _run(main, a, "dpm++", px) for a in ("ours", "published")}
    full_steps = field(steps_50["ours"], "steps") or 50
    fast_steps = field(fast["ours"], "steps") or 20

    rows = []
    ours, published = steps_50["ours"], steps_50["published"]
    rows.append(
        [
            f"{px} px x4, {full_steps} iDDPM steps, end to end (model loaded)",
            "<= 6 s",
            _cell(field(ours, "total_seconds"), ".2f"),
            _cell(field(published, "total_seconds"), ".2f"),
            _verdict(field(ours, "total_seconds"), 6.0),
        ]
    )
    if ours is not None and px == 1024 and main["config"]["size"] == "published":
        denoise = ours["stages"]["denoise step"]["seconds"]
        share = 100 * TFLOP_PER_CFG_STEP_1024 * full_steps / denoise / PRACTICAL_BF16_TFLOPS
        rows.append(
            [
                "denoising loop, share of 790 TFLOP/s (44 TFLOP a step, issue's estimate)",
                ">= 45 %",
                f"{share:.0f} %",
                "",
                _verdict(share, 45.0, higher_is_better=True),
            ]
        )
    rows.append(
        [
            f"{px} px x4, {fast_steps}-step DPM-Solver++, end to end",
            "<= 2.5 s",
            _cell(field(fast["ours"], "total_seconds"), ".2f"),
            _cell(field(fast["published"], "total_seconds"), ".2f"),
            _verdict(field(fast["ours"], "total_seconds"), 2.5),
        ]
    )
    peaks = [run["peak_bytes"] for run in main["runs"] if run["arrangement"] == "ours"]
    published_peaks = [r["peak_bytes"] for r in main["runs"] if r["arrangement"] == "published"]
    peak = max(peaks) / 1e9 if peaks else None
    rows.append(
        [
            "peak VRAM, T5 on the CPU, no captioner",
            "<= 12 GB",
            _cell(peak, ".2f"),
            _cell(max(published_peaks) / 1e9 if published_peaks else None, ".2f"),
            _verdict(peak, 12.0),
        ]
    )
    if big is not None:
        sides = sorted(big["config"]["resolutions"])
        by_side = {
            run["resolution"]: run["peak_bytes"]
            for run in big["runs"]
            if run["arrangement"] == "ours"
        }
        ratio = None
        if len(sides) == 2 and all(side in by_side for side in sides):
            ratio = by_side[sides[1]] / by_side[sides[0]]
        rows.append(
            [
                f"peak VRAM, {sides[-1]} px output / {sides[0]} px",
                "<= 1.3x",
                _cell(ratio, ".2f"),
                "",
                _verdict(ratio, 1.3),
            ]
        )
    loads = {a: _load(main, a) for a in ("ours", "published")}
    rows.append(
        [
            "model load (ours: all components from our bf16 safetensors; published: the "
            "transformer from an fp32 pickle)",
            "<= 20 s",
            _cell(field(loads["ours"], "seconds"), ".1f"),
            _cell(field(loads["published"], "seconds"), ".1f"),
            _verdict(field(loads["ours"], "seconds"), 20.0),
        ]
    )
    return rows


def format_targets(main: dict[str, Any], big: dict[str, Any] | None) -> str:
    machine = main["machine"]
    lines = [
        f"Issue 17 targets, {main['config']['size']} size, random weights, on "
        f"{machine.get('gpu') or machine['device']} (torch {machine['torch']}).",
    ]
    if main["config"]["size"] != "published":
        lines.append("Tiny size: a check of this table's plumbing; the targets do not apply.")
    lines += [
        "",
        "| target | goal | ours | published | verdict |",
        "|---|---|---:|---:|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in target_rows(main, big)]
    ours = next((load for load in main["loads"] if load["arrangement"] == "ours"), None)
    if ours:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in ours["parts"].items())
        lines.append(f"\nOur load by part: {parts}.")
    return "\n".join(lines)


def _read(path: str) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        print(f"(no report at {path}: {error})", file=sys.stderr)
        return None


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    main_report = _read(argv[0])
    if main_report is None:
        return 1
    print(format_targets(main_report, _read(argv[1]) if len(argv) > 1 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
