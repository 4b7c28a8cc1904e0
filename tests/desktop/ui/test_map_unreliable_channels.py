"""A starter map whose estimator was measured: channels read below the bar are not offered,
and the legend's tooltip says why (issue 15: the user must never be shown a map that is noise)."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.ui.compare_view import CompareView

CHANNELS = ("blur", "noise", "jpeg", "scale")


def write_map(path, spearman=None):
    strengths = np.zeros((4, 2, 3), np.float32)
    strengths[:, 0, 0] = (0.9, 0.3, 0.1, 0.2)  # blur strongest: left out of the mix
    arrays = {"strengths": strengths, "channels": np.asarray(CHANNELS)}
    if spearman is not None:
        arrays["spearman"] = np.asarray(spearman, np.float32)
        arrays["min_spearman"] = np.asarray(0.5, np.float32)
    np.savez_compressed(path, **arrays)
    return str(path)


@pytest.fixture
def view(qtbot):
    widget = CompareView()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    return widget


def offered(view) -> list[str]:
    return [view.layer_box.itemData(i) for i in range(view.layer_box.count())]


def test_a_channel_below_the_bar_is_not_offered_and_the_tooltip_says_why(view, tmp_path):
    view.set_degradation_map(write_map(tmp_path / "a.map.npz", (-0.19, 0.95, 0.95, 0.45)))
    view.set_overlay_visible(False, True)
    assert offered(view) == ["mix", "noise", "jpeg"]
    assert [m.split(":")[0] for _, m in view.legend()] == ["noise", "jpeg"]
    tip = view.legend_widget.toolTip()
    assert "blur not shown" in tip and "-0.19" in tip and "below 0.5" in tip
    assert "scale not shown" in tip and "0.45" in tip
    assert "noise not shown" not in tip
    # The mix colours a token by its strongest shown channel (noise), not by blur.
    rgba = view.canvas.map.rgba(layer="mix")
    assert rgba[0, 0, 3] == round(0.3 * 255)
    assert set(view.canvas.map.values_at(0, 0)) == {"row", "col", "noise", "jpeg"}


def test_a_future_estimator_that_reads_every_channel_shows_them_all(view, tmp_path):
    view.set_degradation_map(write_map(tmp_path / "b.map.npz", (0.62, 0.95, 0.95, 0.71)))
    assert offered(view) == ["mix", *CHANNELS]
    assert view.legend_widget.toolTip() == ""


def test_a_map_without_measurements_shows_every_channel(view, tmp_path):
    view.set_degradation_map(write_map(tmp_path / "c.map.npz"))
    assert offered(view) == ["mix", *CHANNELS]
