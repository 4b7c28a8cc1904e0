"""Drive the GenIR wizard for docs/screenshots (run by `scripts/screenshots` under Xvfb).

    python scripts/wizard_screenshot_driver.py --out docs/screenshots

Makes a run the way a user does (a photos folder from resources/photos, two of them shrunk below
the minimum side, a base model folder, `dreamclear genir init` through the Sources page), then
runs each stage against the scripted fake engine (desktop/testing/fake_engine.py: it computes
nothing, it writes small files where the real stages write theirs) and saves a PNG of each
page: 09-wizard-new-run ... 17-wizard-export-and-training, the generate stage both stopped
by an engine crash (14) and resumed (15). The real stages need an SDXL model; the pages are the same.
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
ROOT = Path(__file__).resolve().parents[1]


def make_inputs(work: Path) -> tuple[Path, Path]:
    photos, base = work / "photos", work / "base"
    photos.mkdir()
    base.mkdir()
    (base / "model_index.json").write_text("{}")  # stands in for an SDXL folder
    sources = sorted((ROOT / "resources" / "photos").glob("*.jpg"))[:8]
    for n, source in enumerate(sources):
        side = 48 if n in (2, 5) else 160  # two too small for the minimum side of 96
        with Image.open(source) as image:
            image.thumbnail((side * 2, side))
            image.convert("RGB").save(photos / f"{source.stem}.png")
        if n != 6:  # one photo without a caption yet: typed in the grid
            caption = f"a photo of {source.stem}, natural light"
            (photos / f"{source.stem}.txt").write_text(caption)
    return photos, base


async def drive(args: argparse.Namespace, work: Path) -> int:
    from desktop.client import ClientSettings, EngineClient
    from desktop.state.genir_wizard import GenirWizard
    from desktop.testing.fake_engine import fake_engine_argv
    from desktop.ui.genir_wizard.window import GenirWizardWindow

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    client = EngineClient(ClientSettings(start_timeout_s=60, restart_backoff_s=0.2))
    # the first engine crashes in the middle of the generation; the restarted one does not
    argv = fake_engine_argv("genir_crash", "--runs", str(work / "runs"), "--step-s", "0.15")
    await client.spawn(argv)
    wizard = GenirWizard(client)
    window = GenirWizardWindow(wizard)
    window.resize(1180, 800)
    window.show()

    async def shot(name: str, settle_s: float = 0.6) -> None:
        await asyncio.sleep(settle_s)  # let layouts, thumbnails and paints settle
        window.grab().save(str(out / f"{name}.png"))
        log.info("saved %s", out / f"{name}.png")

    async def stage(page: str, name: str) -> None:
        window.go(page)
        wizard.start(name)
        await until(lambda: wizard.stage_run(name).status in ("done", "failed"), 60)

    photos, base = make_inputs(work)
    sources = window.sources
    sources.run_edit.setText(str(work / "harbour-dataset"))
    sources.images_edit.setText(str(photos))
    sources.base_edit.setText(str(base))
    await shot("09-wizard-new-run")
    await sources.create()
    run = wizard.run
    assert run is not None, sources.error.text()
    wizard.save_settings(
        {
            ("pairs", "min_side"): 96,
            ("prompts", "count"): 24,
            ("generation", "resolution"): 1024,
            ("finetune", "steps"): 20,
            ("finetune", "lora_rank"): 4,
            ("finetune", "vectors_per_token"): 2,
        }
    )
    window.open_run(run)
    await until(lambda: sources.grid.rowCount() > 0, 20)
    sources.grid.selectRow(1)
    await shot("10-wizard-sources")
    await stage("base", "pairs")
    await shot("11-wizard-base-model-and-pairs")
    await stage("finetune", "finetune")
    await shot("12-wizard-finetune")
    await stage("prompts", "prompts")
    await shot("13-wizard-prompts")
    window.go("generate")
    wizard.start("generate")  # the first engine crashes at the third image
    await until(lambda: wizard.stage_run("generate").status == "failed", 30)
    await shot("14-wizard-generate-engine-crashed")
    await until(lambda: client.state.value in ("ready", "busy"), 30)
    wizard.start("generate")  # Resume, on the restarted engine
    await until(lambda: wizard.stage_run("generate").step >= 14, 30)
    await shot("15-wizard-generate-resumed", 0.2)
    await until(lambda: wizard.stage_run("generate").status == "done", 30)
    await stage("filter", "filter")
    filters = window.pages["filter"]
    filters.slider.setValue(40)
    filters.regroup()
    filters.rejected.setCurrentRow(0)
    filters.note.setText("the haze is the scene, not a fault")
    await shot("16-wizard-filter")
    filters.keep_button.click()
    await stage("export", "export")
    window.go("export")
    wizard.train_starter(max_steps=5)
    await until(lambda: wizard.stage_run("train").status in ("done", "failed"), 30)
    await shot("17-wizard-export-and-training")
    wizard.close()
    window.close()
    await client.close()
    return 0


async def until(condition, timeout_s: float) -> None:
    for _ in range(int(timeout_s * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    log.warning("gave up waiting after %s s", timeout_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from PySide6.QtWidgets import QApplication

    from desktop.ui.theme import follow_system

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # the driver ends when it is done
    follow_system(app)
    with tempfile.TemporaryDirectory(prefix="dreamclear-wizard-shots-") as work:
        return qasync.run(drive(args, Path(work)))


if __name__ == "__main__":
    sys.exit(main())
