"""Markdown tables of a stage-harness report (engine/bench/stages.py)."""

from __future__ import annotations

from engine.bench.stages import STAGES, HarnessReport

_SHORT = {
    "remover": "remover",
    "vae encode": "VAE enc",
    "text encoding": "T5",
    "vae decode": "VAE dec",
    "colour fix": "colour",
}


def _gib(value: int) -> str:
    return f"{value / 2**30:.2f}"


def format_report(report: HarnessReport) -> str:
    machine = report.machine
    cuda = machine["device"].startswith("cuda")
    memory = "peak VRAM GiB (max_memory_allocated)" if cuda else "peak RSS GiB (process)"
    where = machine.get("gpu") or f"CPU, {machine['threads']} torch threads"
    lines = [
        f"DreamClear stages, {report.config['size']} size "
        f"({report.transformer_parameters / 1e6:.1f} M transformer parameters), {where}, "
        f"torch {machine['torch']}; x{report.config['upscale']}, output px square, seconds.",
    ]
    lines += [f"Note: {note}" for note in dict.fromkeys(report.notes)]
    if report.loads:
        lines += [
            "",
            f"| load | seconds | parts (s) | {memory} | anonymous RSS rise GiB "
            "| transformer GiB (dtype) | T5 on |",
            "|---|---:|---|---:|---:|---|---|",
        ]
        for load in report.loads:
            parts = ", ".join(f"{k} {v:.2f}" for k, v in load.parts.items()) or "-"
            lines.append(
                f"| {load.arrangement} | {load.seconds:.2f} | {parts} | {_gib(load.peak_bytes)} "
                f"| {_gib(load.anonymous_peak_rise_bytes)} "
                f"| {_gib(load.transformer_bytes)} ({load.transformer_dtype}) "
                f"| {load.text_encoder_device} |"
            )
    stage_columns = [s for s in STAGES if s != "denoise step"]
    header = ["arrangement", "px", "sampler:steps"]
    header += [_SHORT[s] for s in stage_columns[:3]]
    header += ["step 1", "step mean", "denoise", *(_SHORT[s] for s in stage_columns[3:])]
    header += ["total", "peak GiB", "CPU s in stages"]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(header) - 3)]
    for run in report.runs:

        def seconds(stage: str, run=run) -> str:
            row = run.stages.get(stage)
            return f"{row.seconds:.3f}" if row else "-"

        cells = [run.arrangement, str(run.resolution), f"{run.sampler}:{run.steps}"]
        cells += [seconds(s) for s in stage_columns[:3]]
        cells += [
            f"{run.first_step_seconds:.3f}",
            f"{run.mean_step_seconds:.3f}",
            seconds("denoise step"),
        ]
        cells += [seconds(s) for s in stage_columns[3:]]
        cpu = sum(row.cpu_seconds for row in run.stages.values())
        cells += [f"{run.total_seconds:.2f}", _gib(run.peak_bytes), f"{cpu:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"{memory} per stage:", ""]
    lines += [
        "| arrangement | px | sampler:steps | " + " | ".join(_label(s) for s in STAGES) + " |",
        "|---|---|---|" + "---:|" * len(STAGES),
    ]
    for run in report.runs:
        cells = [run.arrangement, str(run.resolution), f"{run.sampler}:{run.steps}"]
        cells += [_gib(run.stages[s].peak_bytes) if s in run.stages else "-" for s in STAGES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _label(stage: str) -> str:
    return _SHORT.get(stage, "step")
