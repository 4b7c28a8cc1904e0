"""Asking the user from a coroutine: a window-modal box, awaited, with no nested event loop.

`QMessageBox.exec()` inside a qasync task runs other asyncio tasks inside this one, which
asyncio refuses; `open()` plus a future does not.
"""

from __future__ import annotations

import asyncio

from PySide6.QtWidgets import QAbstractButton, QMessageBox


async def ask(box: QMessageBox) -> QAbstractButton | None:
    """Show `box` and return the button clicked (None when it was closed otherwise)."""
    answer: asyncio.Future[QAbstractButton | None] = asyncio.get_running_loop().create_future()

    def finished(_result: int) -> None:
        if not answer.done():
            answer.set_result(box.clickedButton())

    box.finished.connect(finished)
    box.open()
    try:
        return await answer
    finally:
        box.deleteLater()
