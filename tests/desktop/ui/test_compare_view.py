"""CompareView: loading off the GUI thread, modes, shared zoom and pan, 1:1 pixels, overlays,
legend, hover, frame time."""

from __future__ import annotations

import logging
import statistics
import threading

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QPoint, QPointF, QSize, Qt, QThreadPool
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from desktop.bench.compare import measure_pan, pattern_image
from desktop.ui import compare_loader
from desktop.ui.compare_canvas import TILE_PEN, CompareCanvas
from desktop.ui.compare_state import CompareState
from desktop.ui.compare_view import CompareView

log = logging.getLogger(__name__)

W, H = 400, 300  # the "after" (output) size
BEFORE_RGB = (255, 0, 255)  # the after image never has blue 255, so magenta means "before"


def to_qimage(rgb: np.ndarray) -> QImage:
    h, w, _ = rgb.shape
    data = np.ascontiguousarray(rgb, dtype=np.uint8)
    return QImage(data.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def after_pixels() -> np.ndarray:
    """Every pixel says where it is: red = x mod 256, green = y mod 256, blue = 100."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x % 256, y % 256, np.full_like(x, 100)], axis=-1).astype(np.uint8)


def rgb_at(image: QImage, x: int, y: int) -> tuple[int, int, int]:
    colour = image.pixelColor(x, y)
    return colour.red(), colour.green(), colour.blue()


def frame(view: CompareView) -> QImage:
    return view.canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)


@pytest.fixture
def files(tmp_path):
    after = tmp_path / "after.png"
    before = tmp_path / "before.png"
    to_qimage(after_pixels()).save(str(after))
    to_qimage(np.broadcast_to(np.array(BEFORE_RGB, np.uint8), (H // 4, W // 4, 3))).save(
        str(before)
    )
    return str(before), str(after)


@pytest.fixture
def view(qtbot, files):
    widget = CompareView()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(widget.imagesShown):
        widget.set_images(*files)
    return widget


class Gate:
    """Holds the worker thread's decoding of `paths` until `open()`."""

    def __init__(self) -> None:
        self.paths: set[str] = set()
        self._opened = threading.Event()

    def open(self) -> None:
        self._opened.set()

    def pass_through(self, path: str) -> None:
        if path in self.paths:
            self._opened.wait(10)


@pytest.fixture
def gate(monkeypatch):
    gate = Gate()
    real_load = compare_loader.load_image

    def held_load(path: str) -> QImage:
        gate.pass_through(path)
        return real_load(path)

    monkeypatch.setattr(compare_loader, "load_image", held_load)
    yield gate
    gate.open()  # never leave a pool thread waiting


def dreamclear_map(path, router: np.ndarray, magnitude: np.ndarray) -> str:
    np.savez_compressed(path, router=router, magnitude=magnitude, token_size_px=np.asarray(16))
    return str(path)


def image_point_device(view: CompareView, pane_index: int, x: float, y: float) -> QPoint:
    """Where output pixel (x, y)'s centre is on the canvas."""
    canvas = view.canvas
    origin = canvas.origin(canvas.panes()[pane_index])
    zoom = view.zoom()
    return QPoint(int(origin.x() + (x + 0.5) * zoom), int(origin.y() + (y + 0.5) * zoom))


def test_images_load_and_modes_switch(view, qtbot):
    canvas = view.canvas
    assert view.zoom() == pytest.approx(min(canvas.width() / W, canvas.height() / H))
    image = frame(view)
    middle_y = canvas.height() // 2
    assert rgb_at(image, canvas.split_x() - 20, middle_y) == BEFORE_RGB
    assert rgb_at(image, canvas.split_x() + 20, middle_y)[2] == 100  # after

    view.set_mode("side_by_side")
    left, right = canvas.panes()
    assert (left.side, right.side) == ("before", "after") and left.rect.size() == right.rect.size()
    view.set_mode("toggle")
    centre = canvas.rect().center()
    assert rgb_at(frame(view), centre.x(), centre.y())[2] == 100
    qtbot.keyClick(canvas, Qt.Key.Key_Space)
    assert rgb_at(frame(view), centre.x(), centre.y()) == BEFORE_RGB
    assert view.mode_box.currentData() == "toggle"

    view.clear()
    assert canvas.after is None and view.legend() == []


def test_before_is_drawn_at_the_after_size(view):
    canvas = view.canvas
    assert canvas.before.size == QSize(W // 4, H // 4)
    assert canvas.before.display_size == canvas.after.display_size == QSize(W, H)


def test_wheel_zooms_around_the_cursor(view):
    canvas = view.canvas
    view.zoom_to(1.0)
    cursor = QPointF(300, 200)
    pane = canvas.panes()[0]
    under_cursor = canvas.to_image(pane, cursor)
    for _ in range(3):
        event = QWheelEvent(
            cursor,
            canvas.mapToGlobal(cursor),
            QPoint(),
            QPoint(0, 120),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(canvas, event)
    assert view.zoom() == pytest.approx(1.25**3)
    after = canvas.to_image(canvas.panes()[0], cursor)
    assert abs(after.x() - under_cursor.x()) < 1 and abs(after.y() - under_cursor.y()) < 1


def test_zoom_and_pan_stay_in_sync_side_by_side(view, qtbot, files):
    _, after = files
    with qtbot.waitSignal(view.imagesShown):  # the same picture both sides: the panes must match
        view.set_images(after, after)
    view.set_overlay_visible(False, False)
    view.set_mode("side_by_side")
    canvas = view.canvas
    with qtbot.waitSignal(view.viewChanged) as changed:
        qtbot.keyClick(canvas, Qt.Key.Key_2)
    assert changed.args[0] == 2.0 and view.zoom() == 2.0
    left, right = canvas.panes()
    start = left.rect.center()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(canvas, start + QPoint(-37, -23))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=start + QPoint(-37, -23))
    assert view.state.centre == QPointF(W / 2 + 37 / 2, H / 2 + 23 / 2)
    assert canvas.visible_image_rect(left) == canvas.visible_image_rect(right)

    image = frame(view)
    offset = right.rect.left() - left.rect.left()
    for x, y in ((20, 60), (left.rect.width() // 2, 300), (left.rect.width() - 30, 600)):
        assert rgb_at(image, x, y) == rgb_at(image, x + offset, y)


def test_split_follows_drag_and_keys(view, qtbot):
    canvas = view.canvas
    y = canvas.height() // 4  # away from the handle in the middle of the line
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(canvas.split_x() + 2, y))
    qtbot.mouseMove(canvas, QPoint(225, y))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(225, y))
    assert view.state.split == pytest.approx(225 / canvas.width())
    assert view.state.centre == QPointF(W / 2, H / 2)  # grabbing the line does not pan
    image = frame(view)
    assert rgb_at(image, 215, y) == BEFORE_RGB and rgb_at(image, 240, y)[2] == 100

    split = view.state.split
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert view.state.split == pytest.approx(split + 0.02)
    qtbot.keyClick(canvas, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert view.state.split == pytest.approx(split - 0.08)
    view.set_split(2.0)
    assert view.state.split == 1.0


def test_100_percent_shows_one_to_one_pixels_and_200_percent_blocks(view, qtbot):
    view.set_overlay_visible(False, False)
    view.set_split(0.0)  # all "after"
    qtbot.keyClick(view.canvas, Qt.Key.Key_1)
    assert view.zoom() == 1.0
    image, pixels = frame(view), after_pixels()
    origin = view.canvas.origin(view.canvas.panes()[0])
    ox, oy = int(origin.x()), int(origin.y())
    assert origin == QPointF(ox, oy)
    for x, y in ((0, 0), (1, 0), (57, 33), (W - 1, H - 1), (W // 2 + 1, H // 2)):
        assert rgb_at(image, ox + x, oy + y) == tuple(pixels[y, x])

    view.zoom_to(2.0)
    image = frame(view)
    origin = view.canvas.origin(view.canvas.panes()[0])
    ox, oy = int(origin.x()), int(origin.y())
    for x, y in ((150, 100), (151, 101), (249, 199)):
        block = {rgb_at(image, ox + 2 * x + dx, oy + 2 * y + dy) for dx in (0, 1) for dy in (0, 1)}
        assert block == {tuple(pixels[y, x])}  # nearest neighbour: no blending


def test_tile_grid_toggles(view):
    view.set_tile_grid([(0, 0, 160, 220), (140, 200, 160, 200)])
    view.set_split(0.0)
    view.zoom_to(1.0)
    origin = view.canvas.origin(view.canvas.panes()[0])
    line = (int(origin.x()) + 100, int(origin.y()))  # the first box's top edge
    off_line = (int(origin.x()) + 100, int(origin.y()) + 50)
    tile = (TILE_PEN.red(), TILE_PEN.green(), TILE_PEN.blue())

    view.set_overlay_visible(True, False)
    drawn = rgb_at(frame(view), *line)
    assert drawn != tuple(after_pixels()[0, 100])
    assert all(abs(a - b) < 60 for a, b in zip(drawn, tile, strict=True))
    assert rgb_at(frame(view), *off_line) == tuple(after_pixels()[50, 100])
    view.set_overlay_visible(False, False)
    assert rgb_at(frame(view), *line) == tuple(after_pixels()[0, 100])


def test_heatmap_changes_pixels_where_expected(view, tmp_path):
    th, tw = 6, 8  # tokens of 50 x 50 output pixels
    router = np.full((2, th, tw, 3), 1 / 3, np.float32)
    router[:, 1, 2] = (1, 0, 0)  # token (1, 2) is all expert 1 in both blocks
    router[1, 4, 5] = (0, 0, 1)  # token (4, 5): expert 3 in block 1, expert 2 in block 0
    router[0, 4, 5] = (0, 1, 0)
    view.set_degradation_map(dreamclear_map(tmp_path / "a.map.npz", router, np.ones((2, th, tw))))
    view.set_split(0.0)
    view.zoom_to(1.0)
    view.set_map_opacity(1.0)
    view.set_overlay_visible(False, True)
    red_token = image_point_device(view, 0, 2 * 50 + 25, 1 * 50 + 25)
    grey_token = image_point_device(view, 0, 3 * 50 + 25, 1 * 50 + 25)
    image = frame(view)
    assert rgb_at(image, red_token.x(), red_token.y()) == (255, 0, 0)
    assert rgb_at(image, grey_token.x(), grey_token.y()) == (85, 85, 85)

    view.set_map_opacity(0.5)
    below = after_pixels()[75, 125]
    half = rgb_at(frame(view), red_token.x(), red_token.y())
    assert half[0] == pytest.approx((255 + int(below[0])) / 2, abs=3)
    assert half[2] == pytest.approx(int(below[2]) / 2, abs=3)

    view.set_map_opacity(1.0)
    mixed = image_point_device(view, 0, 5 * 50 + 25, 4 * 50 + 25)
    assert rgb_at(frame(view), mixed.x(), mixed.y()) == (0, 128, 128)  # the average of blocks
    view.set_map_view(1)
    assert rgb_at(frame(view), mixed.x(), mixed.y()) == (0, 0, 255)
    assert view.block_box.currentData() == 1

    view.set_split(1.0)  # only the before is left: no heatmap over it
    assert rgb_at(frame(view), red_token.x(), red_token.y()) == BEFORE_RGB
    view.set_split(0.0)
    view.set_overlay_visible(False, False)
    assert rgb_at(frame(view), red_token.x(), red_token.y()) == tuple(below)


def test_legend_matches_the_map_kind(view, tmp_path):
    assert view.legend() == []
    path = dreamclear_map(
        tmp_path / "d.map.npz", np.full((3, 4, 5, 3), 1 / 3), np.linspace(0, 2, 60).reshape(3, 4, 5)
    )
    view.set_degradation_map(path)
    view.set_overlay_visible(True, True)
    assert [m for _, m in view.legend()] == [f"expert {i} router weight" for i in (1, 2, 3)]
    assert [c.name() for c, _ in view.legend()] == [
        QColor(230, 40, 40).name(),
        QColor(40, 200, 60).name(),
        QColor(50, 90, 240).name(),
    ]
    assert "averaged over blocks" in view.legend_widget.text()
    view.set_map_layer("magnitude")
    view.set_map_view(2)
    meanings = [m for _, m in view.legend()]
    assert meanings[0].startswith("magnitude 1.36") and meanings[-1].startswith("magnitude 2")
    assert view.legend_widget.legend().colormap and "block 2" in view.legend_widget.text()
    with pytest.raises(ValueError, match="block should be"):
        view.set_map_view(3)

    strengths = np.random.default_rng(0).random((4, 6, 8)).astype(np.float32)
    np.savez_compressed(
        tmp_path / "s.map.npz",
        strengths=strengths,
        channels=np.asarray(("blur", "noise", "jpeg", "scale")),
        token_size_px=np.asarray(16),
    )
    view.set_degradation_map(str(tmp_path / "s.map.npz"))
    assert [m.split(":")[0] for _, m in view.legend()] == ["blur", "noise", "jpeg", "scale"]
    assert not view.block_box.isVisibleTo(view)
    assert [view.layer_box.itemData(i) for i in range(view.layer_box.count())] == [
        "mix",
        "blur",
        "noise",
        "jpeg",
        "scale",
    ]
    view.set_map_layer("noise")
    assert [m for _, m in view.legend()] == [
        "noise strength 0 (none)",
        "noise strength 1 (strongest)",
    ]


def test_the_mix_lists_every_channel_and_one_channel_has_a_value_scale(view, tmp_path):
    """The starter's mix once left out its fourth channel (scale) and had no value scale."""
    strengths = np.zeros((4, 2, 2), np.float32)
    strengths[:, 0, 0] = (0.9, 0.1, 0.0, 0.0)  # blur
    strengths[:, 1, 1] = (0.1, 0.0, 0.2, 0.5)  # scale
    np.savez_compressed(
        tmp_path / "s.map.npz",
        strengths=strengths,
        channels=np.asarray(("blur", "noise", "jpeg", "scale")),
    )
    view.set_degradation_map(str(tmp_path / "s.map.npz"))
    view.set_overlay_visible(False, True)
    colours = [colour for colour, _ in view.legend()]
    assert len(set(c.name() for c in colours)) == 4  # one colour per channel
    text = view.legend_widget.text()
    assert "clear (0) to solid (1)" in text
    assert "scale: here 0.00 to 0.50, mean 0.12" in text
    rgba = view.canvas.map.rgba(layer="mix")
    assert tuple(rgba[0, 0]) == (*colours[0].getRgb()[:3], round(0.9 * 255))
    assert tuple(rgba[1, 1]) == (*colours[3].getRgb()[:3], round(0.5 * 255))
    assert rgba[0, 1, 3] == 0  # nothing wrong: the photo shows through

    view.set_map_layer("scale")
    assert "scale: 0, 0.25, 0.5, 0.75, 1" in view.legend_widget.text()
    assert "Estimated scale strength (here 0.00 to 0.50, mean 0.12)" in view.legend_widget.text()


def test_hover_reports_the_token_under_the_cursor(view, qtbot, tmp_path):
    strengths = np.zeros((4, 6, 8), np.float32)
    strengths[:, 3, 7] = (0.1, 0.2, 0.3, 0.4)
    np.savez_compressed(
        tmp_path / "s.map.npz",
        strengths=strengths,
        channels=np.asarray(("blur", "noise", "jpeg", "scale")),
        token_size_px=np.asarray(16),
    )
    view.set_degradation_map(str(tmp_path / "s.map.npz"))
    view.set_mode("side_by_side")  # either pane reports the same token
    where = image_point_device(view, 0, 7 * 50 + 10, 3 * 50 + 40)
    with qtbot.waitSignal(view.hoverToken) as hovered:
        qtbot.mouseMove(view.canvas, where)
    values = hovered.args[0]
    assert (values["row"], values["col"]) == (3, 7)
    assert [values[c] for c in ("blur", "noise", "jpeg", "scale")] == pytest.approx(
        [0.1, 0.2, 0.3, 0.4]
    )
    assert view.hover_label.text() == "token 3, 7: blur 0.10, noise 0.20, jpeg 0.30, scale 0.40"


def test_a_foreign_npz_is_refused_with_a_hint(view, tmp_path):
    np.savez(tmp_path / "x.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a degradation map"):
        view.set_degradation_map(str(tmp_path / "x.npz"))
    with pytest.raises(ValueError, match="cannot read"):
        view.set_degradation_map(str(tmp_path / "missing.map.npz"))


def test_set_images_decodes_off_the_gui_thread(view, qtbot, tmp_path, gate):
    old = view.canvas.after
    small = str(tmp_path / "small.png")
    to_qimage(np.full((100, 200, 3), (0, 200, 0), np.uint8)).save(small)
    gate.paths.add(small)
    view.set_images(small, small)
    # The worker is held: the previous result stays on screen and the view keeps working.
    assert view.loading and view.canvas.after is old
    view.set_tile_grid([(0, 0, 50, 100)])
    router = np.zeros((1, 2, 4, 3), np.float32)
    router[..., 0] = 1  # all red
    view.set_degradation_map(dreamclear_map(tmp_path / "m.map.npz", router, np.ones((1, 2, 4))))
    view.set_overlay_visible(True, True)
    view.set_map_opacity(1.0)
    view.set_split(0.0)  # all "after"
    qtbot.keyClick(view.canvas, Qt.Key.Key_1)
    assert view.zoom() == 1.0 and view.canvas.image_size() == QSize(W, H)
    point = image_point_device(view, 0, 20, 20)
    # The new overlays are not drawn over the old images.
    assert rgb_at(frame(view), point.x(), point.y()) == tuple(after_pixels()[20, 20])

    with qtbot.waitSignal(view.imagesShown):
        gate.open()
    assert not view.loading and view.canvas.after is not old
    assert view.canvas.image_size() == QSize(200, 100) and view.state.fitted
    assert view.canvas.tile_grid == [(0, 0, 50, 100)] and view.tiles_box.isEnabled()
    point = image_point_device(view, 0, 20, 20)
    assert rgb_at(frame(view), point.x(), point.y()) == (255, 0, 0)  # the map, now on its image


def test_the_latest_set_images_wins(view, qtbot, tmp_path, monkeypatch):
    paths = {}
    for name, (w, h) in {"a": (120, 90), "b": (200, 100)}.items():
        paths[name] = str(tmp_path / f"{name}.png")
        to_qimage(np.zeros((h, w, 3), np.uint8)).save(paths[name])
    shown = []
    show = view.canvas.show_pyramids
    monkeypatch.setattr(
        view.canvas, "show_pyramids", lambda b, a: (shown.append(a.size), show(b, a))
    )
    # a is decoded and its answer waits in the event queue when b is asked for: a is dropped.
    view.set_images(paths["a"], paths["a"])
    assert QThreadPool.globalInstance().waitForDone(10_000)
    with qtbot.waitSignal(view.imagesShown):
        view.set_images(paths["b"], paths["b"])
    assert shown == [QSize(200, 100)]
    assert QThreadPool.globalInstance().waitForDone(10_000)
    QApplication.processEvents()
    assert shown == [QSize(200, 100)]


def test_a_load_still_decoding_when_a_newer_one_is_asked_for_is_never_shown(
    view, qtbot, tmp_path, gate
):
    paths = {}
    for name, (w, h) in {"a": (120, 90), "b": (200, 100)}.items():
        paths[name] = str(tmp_path / f"{name}.png")
        to_qimage(np.zeros((h, w, 3), np.uint8)).save(paths[name])
    gate.paths.add(paths["a"])
    shown = []
    view.imagesShown.connect(lambda: shown.append(view.canvas.image_size()))
    view.set_images(paths["a"], paths["a"])
    with qtbot.waitSignal(view.imagesShown):
        view.set_images(paths["b"], paths["b"])
    gate.open()
    assert QThreadPool.globalInstance().waitForDone(10_000)
    QApplication.processEvents()
    assert shown == [QSize(200, 100)] and not view.loading


def test_a_file_that_cannot_be_read_shows_a_message(view, qtbot, tmp_path, files, caplog):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    before, _ = files
    with qtbot.waitSignal(view.loadFailed) as failed:
        view.set_images(before, str(broken))
    assert "cannot open" in failed.args[0] and "broken.jpg" in failed.args[0]
    assert "cannot open" in caplog.text
    assert view.canvas.after is None and not view.loading
    assert view.canvas.message == failed.args[0]
    with qtbot.waitSignal(view.loadFailed) as failed:
        view.set_images(str(tmp_path / "none.png"), before)
    assert "none.png" in failed.args[0] and "check that the file exists" in failed.args[0]
    assert not view.canvas.grab().isNull()  # the message paints without raising
    with qtbot.waitSignal(view.imagesShown):  # and the view recovers
        view.set_images(*files)
    assert view.canvas.message == "" and view.canvas.image_size() == QSize(W, H)


def test_destroying_the_view_while_it_loads_is_safe(qtbot, files, gate, capfd):
    widget = CompareView()
    gate.paths.add(files[1])
    widget.set_images(*files)
    assert widget.loading
    shiboken6.delete(widget)  # the worker still holds the files
    gate.open()
    assert QThreadPool.globalInstance().waitForDone(10_000)
    QApplication.processEvents()  # the worker's answer has nowhere to go
    assert "Error" not in capfd.readouterr().err


def test_a_16_megapixel_result_pans_smoothly(qtbot):
    after = pattern_image(QSize(4608, 3456))
    before = after.scaled(1152, 864)
    canvas = CompareCanvas(CompareState())
    qtbot.addWidget(canvas)
    canvas.resize(1280, 800)
    canvas.set_images(before, after)
    results = {}
    for zoom in ("fit", 1.0):
        if zoom == 1.0:
            canvas.zoom_to(1.0)
        times = measure_pan(canvas, frames=15)
        results[zoom] = statistics.median(times) * 1e3
    log.info("16 MP pan, ms per frame (median): %s", results)
    assert max(results.values()) < 200  # loose: the real numbers are in docs/benchmarks.md
