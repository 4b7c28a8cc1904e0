"""StopRequest: which signals ask a training run to stop, and which it leaves alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from trainer.interrupt import StopRequest

posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGTERM handlers are POSIX's")


@posix_only
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_only_asks_and_the_defaults_come_back(stop_signal):
    default = signal.getsignal(stop_signal)
    with StopRequest() as stop:
        os.kill(os.getpid(), stop_signal)
        assert stop.asked
    assert signal.getsignal(stop_signal) is default


@posix_only
def test_an_ignored_signal_stays_ignored():
    # A shell starts background jobs with SIGINT ignored: the run must not start obeying it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopRequest() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert not stop.asked
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


@posix_only
def test_a_second_sigterm_ends_the_process_as_sigterm_does():
    script = (
        "import os, signal, time\n"
        "from trainer.interrupt import StopRequest\n"
        "with StopRequest() as stop:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    assert stop.asked\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(5)\n"
        "print('survived')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGTERM
    assert b"survived" not in done.stdout
