"""Drive DreamClear Studio for docs/screenshots (run by scripts/screenshots under Xvfb).

    python scripts/screenshot_driver.py --model MODEL --photo PHOTO --out docs/screenshots

Opens the main window, adds PHOTO (shrunk to 256 px so a CPU run stays short), presses
Restore, shows the result in split view with the tile grid, the degradation map's mix and one
of its channels, then the queue's large-output warning and a result run again, and saves PNGs
of the window.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

import qasync
from PIL import Image

log = logging.getLogger("screenshots")


async def drive(args: argparse.Namespace, work: Path) -> int:
    from PySide6.QtCore import QSettings

    from desktop.client import ClientSettings, EngineClient
    from desktop.state import AppController, SettingsModel
    from desktop.ui.main_window import MainWindow

    settings = SettingsModel(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    for name, value in (
        ("model", args.model),
        ("steps", args.steps),
        ("upscale", 2),
        ("seed", 0),
        ("seed_locked", True),
        ("output_dir", str(work / "out")),
    ):
        settings.set_value(name, value)
    client_settings = ClientSettings(start_timeout_s=300, request_timeout_s=120)
    controller = AppController(lambda: EngineClient(client_settings), settings, data_dir=work)
    controller.log.install()
    window = MainWindow(controller, QSettings(str(work / "ui.ini"), QSettings.Format.IniFormat))
    window.resize(1440, 900)
    window.show()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    async def shot(name: str) -> None:
        await asyncio.sleep(0.3)  # let layouts and paints settle
        window.grab().save(str(out / f"{name}.png"))
        log.info("saved %s", out / f"{name}.png")

    controller.start(store=str(work / "store"))
    photo = work / Path(args.photo).with_suffix(".png").name
    with Image.open(args.photo) as image:
        image.thumbnail((256, 256))
        image.convert("RGB").save(photo)
    [job] = controller.add_paths([photo])
    window.queue.select(job.id)
    await shown(window)
    await shot("01-photo-added")  # shown at once; waits for Restore with its size and time
    await until(lambda: controller.status.state == "ready", 300)
    window.start_bar.start()  # the user presses Restore
    await until(lambda: job.step >= 1 or job.state in ("done", "failed"), 300)
    await shot("02-running")
    await until(lambda: job.state in ("done", "failed"), 600)
    compare = window.compare
    await shown(window)
    compare.set_mode("split")
    compare.set_split(0.5)
    compare.set_overlay_visible(True, False)
    await shot("03-result-split-tiles")
    compare.set_overlay_visible(False, True)
    compare.set_map_opacity(0.6)
    await shot("04-result-split-degradation-map")
    compare.set_map_layer("noise")  # blur is hidden: the estimator does not read it (issue 15)
    await shot("05-degradation-map-one-channel")
    large_photo = work / "large.png"  # 2048 px wide at x4: 42 MP, over the warning line
    with Image.open(args.photo) as image:
        image.convert("RGB").resize((2048, 2048 * image.height // image.width)).save(large_photo)
    settings.set_value("upscale", 4)
    [large] = controller.add_paths([large_photo])
    await until(lambda: large.input_size is not None, 10)
    window.queue.select(large.id)
    await shot("06-queue-large-output-warning")
    again = controller.run_again(job.id)
    if again is not None:
        window.queue.select(again.id)
    await shot("07-queue-run-again")
    await controller.close()
    controller.log.uninstall()
    window.close()
    return 0 if job.state == "done" else 1


async def until(condition, timeout_s: float) -> None:
    for _ in range(int(timeout_s * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)


async def shown(window) -> None:
    """Wait until the compare view shows what it was last given (decoded off the GUI thread)."""
    for _ in range(300):
        if window.compare.canvas.after is not None and not window.compare.loading:
            return
        await asyncio.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--photo", required=True)
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from PySide6.QtWidgets import QApplication

    from desktop.ui.theme import follow_system

    app = QApplication(sys.argv[:1])
    follow_system(app)
    with tempfile.TemporaryDirectory(prefix="dreamclear-shots-") as work:
        return qasync.run(drive(args, Path(work)))


if __name__ == "__main__":
    sys.exit(main())
