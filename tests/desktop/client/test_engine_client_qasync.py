"""The client runs under qasync's Qt event loop, as in the app (subprocess pipes included)."""

from __future__ import annotations

import asyncio

import qasync
from client_harness import S, collect, finished, make_client

from desktop.testing.fake_engine import fake_engine_argv


def test_client_under_qasync(qapp, tmp_path):
    async def test():
        client, states = make_client()
        await client.spawn(fake_engine_argv("normal"))
        stream = client.events()
        ids = await client.restore(["a.png"], tmp_path)
        events = await collect(stream, finished(*ids))
        await client.close()
        return [event.TYPE for event in events], states

    loop = qasync.QEventLoop(qapp)
    try:
        types, states = loop.run_until_complete(asyncio.wait_for(test(), 20))
    finally:
        loop.close()
    assert types[0] == "accepted" and types[-1] == "result"
    assert states == [S.STARTING, S.READY, S.BUSY, S.READY, S.STOPPED]


def test_download_waits_as_long_as_it_takes_under_qasync(qapp):
    """A download has no time limit; qasync's call_later refused the infinite one it had."""

    async def test():
        client, _ = make_client()
        await client.spawn(fake_engine_argv("normal"))
        progress = []
        try:
            done = await client.model_action("download", "dreamclear", on_progress=progress.append)
        finally:
            await client.close()
        return done, progress

    loop = qasync.QEventLoop(qapp)
    try:
        done, progress = loop.run_until_complete(asyncio.wait_for(test(), 20))
    finally:
        loop.close()
    assert (done.TYPE, done.action, done.name) == ("model_done", "download", "dreamclear")
    assert [event.done_bytes for event in progress] == [100, 200]
