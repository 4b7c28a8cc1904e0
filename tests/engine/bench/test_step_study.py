"""The fewer-step study at tiny size: every sampler and count, compared with the reference."""

from __future__ import annotations

import json
import math

from engine.bench import step_study


def test_step_study_compares_each_count_with_the_reference() -> None:
    study = step_study.run(counts=(2, 4), resolution=64, reference_steps=4)
    rows = {(s.sampler, s.steps): s for s in study.samples}
    assert set(rows) == {("dpm++", 2), ("dpm++", 4), ("iddpm", 2), ("iddpm", 4)}
    same = rows["iddpm", 4]
    assert math.isinf(same.psnr) and same.max_abs_diff == 0
    for key in (("dpm++", 2), ("dpm++", 4), ("iddpm", 2)):
        assert 0 < rows[key].max_abs_diff <= 1 and math.isfinite(rows[key].psnr), key
        assert rows[key].seconds > 0
    table = step_study.format_table(study)
    assert "| iddpm | 4 |" in table and "identical" in table
    data = json.loads(json.dumps(step_study.to_json(study)))
    assert data["reference_steps"] == 4 and len(data["samples"]) == 4


def test_compare_is_psnr_and_max_abs_difference() -> None:
    import torch

    a = torch.zeros(1, 3, 4, 4)
    b = a.clone()
    b[0, 0, 0, 0] = 0.5
    psnr, worst = step_study.compare(b, a)
    assert worst == 0.5
    assert math.isclose(psnr, 10 * math.log10(1 / (0.25 / 48)), rel_tol=1e-6)
