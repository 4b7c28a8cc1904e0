"""Fixtures for the desktop state and UI tests (imported by their conftest.py files): a qasync
loop inside pytest-qt, a controller driving the scripted fake engine, settings in a temp file."""

from __future__ import annotations

import asyncio

import pytest
import qasync
from PySide6.QtCore import QSettings

from desktop.client import ClientSettings, EngineClient
from desktop.state import AppController, SettingsModel
from desktop.testing.fake_engine import fake_engine_argv

FAST = ClientSettings(
    start_timeout_s=20.0,
    request_timeout_s=10.0,
    interrupt_timeout_s=1.0,
    restart_backoff_s=0.01,
    shutdown_timeout_s=2.0,
)


@pytest.fixture(scope="session")
def qasync_session_loop(qapp):
    """One asyncio loop on Qt's for the whole session. A loop per test was never closed (it is
    never stopped: see `loop`), and each left its Qt timers, notifiers and child-watcher
    callbacks behind; garbage-collected in the middle of a later test's Qt wait, they crashed
    the run (a segfault inside qtbot.waitUntil, depending only on how many modules were
    collected)."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio._set_running_loop(None)
    return loop


@pytest.fixture
def loop(qasync_session_loop):
    """asyncio on Qt's loop: qtbot's waits run asyncio callbacks too.

    Never stopped: stop() would quit Qt's loops (qtbot's waits) for the tests that follow."""
    asyncio.set_event_loop(qasync_session_loop)
    asyncio._set_running_loop(qasync_session_loop)
    yield qasync_session_loop
    asyncio.set_event_loop(None)
    # Unmarked after each test: marked as this thread's running loop, it would make every later
    # asyncio.run() (the client tests) fail "from a running event loop".
    asyncio._set_running_loop(None)


@pytest.fixture
def qsettings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def settings(qsettings, tmp_path):
    model = SettingsModel(qsettings)
    model.set_value("output_dir", str(tmp_path / "out"))
    return model


@pytest.fixture
def make_controller(loop, qtbot, settings, tmp_path):
    """`make_controller(engine_argv)`: a started controller; its engine is closed after.

    Its jobs start as they are added ("Start automatically" on) unless `auto_start` is False:
    most tests are about what happens once a job runs."""
    made: list[AppController] = []

    def make(argv: list[str] | None = None, auto_start: bool = True) -> AppController:
        settings.set_auto_start(auto_start)
        controller = AppController(lambda: EngineClient(FAST), settings, data_dir=tmp_path / "data")
        made.append(controller)
        controller.start(argv or fake_engine_argv())
        qtbot.waitUntil(lambda: controller.status.state == "ready", timeout=20_000)
        return controller

    yield make
    for controller in made:
        task = asyncio.ensure_future(controller.close())
        qtbot.waitUntil(task.done, timeout=10_000)
