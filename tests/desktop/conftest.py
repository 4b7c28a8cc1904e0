"""What every desktop test shares."""

import gc

import pytest


@pytest.fixture(autouse=True)
def collect_garbage_on_the_gui_thread():
    """Free each test's garbage here, on the GUI thread, when the test ends.

    Left to Python, a collection can happen in any thread that allocates, such as asyncio's
    child-watcher thread waiting on an engine process; a Qt object of an earlier test (a
    timer, a socket notifier, a widget) destroyed there while the GUI thread is inside a
    qtbot wait crashed the run with a segfault, at a place that moved with the number of
    modules collected."""
    yield
    gc.collect()
