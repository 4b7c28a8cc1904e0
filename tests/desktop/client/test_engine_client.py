"""EngineClient against the scripted fake engine process (desktop.testing.fake_engine) over stdio
and TCP."""

from __future__ import annotations

import asyncio

import pytest
from client_harness import S, collect, finished, make_client, of_job, run

from desktop.client import EngineClientError
from desktop.testing.fake_engine import fake_engine_argv
from engine import protocol as p


def test_spawn_list_models_and_close():
    async def test():
        client, states = make_client()
        reply = await client.spawn(fake_engine_argv("normal"))
        assert reply.engine_version == "fake-normal-run1" and client.pid
        assert await client.hello() is reply
        models = await client.list_models()
        assert models.models == [
            {"name": "dreamclear", "status": "installed"}
        ] and models.request_id.startswith("r")
        await client.close()
        assert states == [S.STARTING, S.READY, S.STOPPED]
        assert "fake engine run 1: normal" in client.engine_log.text()
        assert "exited" in client.engine_log.lines[-1]

    run(test)


def test_restore_streams_each_jobs_events_in_order(tmp_path):
    async def test():
        client, states = make_client()
        await client.spawn(fake_engine_argv("normal"))
        seen: list[p.Event] = []
        client.subscribe(seen.append)
        stream = client.events()
        ids = await client.restore(["a.png", "bad.png"], tmp_path)
        assert ids == ["job-1", "job-2"] and client.jobs == ids
        events = await collect(stream, finished(*ids))
        assert of_job(events, "job-1") == [
            "accepted", "queued", "started", "stage", "progress", "progress", "progress", "result"
        ]  # fmt: skip
        assert of_job(events, "job-2") == ["accepted", "queued", "started", "error"]
        error = events[-1]
        assert isinstance(error, p.Error) and error.kind == "bad_input" and error.hint
        result = next(e for e in events if isinstance(e, p.Result))
        assert result.output == str(tmp_path / "a_x4.png")
        assert seen == events
        assert client.jobs == []
        assert states[-2:] == [S.BUSY, S.READY]
        await client.close()
        rest = [event async for event in stream]  # the stream ends on close
        assert [e.TYPE for e in rest] == ["bye"]

    run(test)


def test_a_refused_restore_raises_its_error_and_leaves_no_job():
    async def test():
        client, _ = make_client()
        await client.spawn(fake_engine_argv("normal"))
        with pytest.raises(EngineClientError) as raised:
            await client.restore(["a.png"], "")
        assert (
            raised.value.kind == "bad_setting" and raised.value.hint == "name a folder for results"
        )
        assert client.jobs == [] and client.state is S.READY

    run(test)


def test_an_older_engine_is_sent_strength_only_at_its_default(tmp_path):
    """docs/protocol.md, "Versioning": strength 1 is left out of the request, so an engine from
    before it restores as ever; another strength is refused here, clearly, before sending."""

    async def test():
        client, _ = make_client()
        reply = await client.spawn(fake_engine_argv("older"))
        assert "strength" not in reply.capabilities
        with pytest.raises(EngineClientError) as raised:
            await client.restore(["a.png"], tmp_path, p.RestoreOptionsMessage(strength=0.5))
        error = raised.value
        assert error.kind == "bad_setting" and "cannot apply strength" in error.message
        assert "update the engine" in error.hint
        assert client.jobs == [] and client.state is S.READY
        stream = client.events()
        ids = await client.restore(["a.png"], tmp_path, p.RestoreOptionsMessage(strength=1.0))
        assert isinstance((await collect(stream, finished(*ids)))[-1], p.Result)

        current, _ = make_client()
        assert "strength" in (await current.spawn(fake_engine_argv("normal"))).capabilities
        stream = current.events()
        ids = await current.restore(["a.png"], tmp_path, p.RestoreOptionsMessage(strength=0.5))
        assert isinstance((await collect(stream, finished(*ids)))[-1], p.Result)

    run(test)


def test_cancel_drops_queued_jobs_and_interrupt_stops_the_running_one(tmp_path):
    async def test():
        client, _ = make_client()
        await client.spawn(fake_engine_argv("normal", "--steps", "100"))
        stream = client.events()
        ids = await client.restore(["a.png", "b.png", "c.png"], tmp_path)
        await collect(stream, lambda ev: isinstance(ev[-1], p.Started))
        await client.cancel(["job-3"])
        await client.interrupt("job-1")
        events = await collect(stream, finished("job-1", "job-3"))
        reasons = {e.job_id: e.reason for e in events if isinstance(e, p.Cancelled)}
        assert reasons == {"job-1": "interrupt", "job-3": "cancel"}
        assert client.jobs == ["job-2"]
        await client.close()  # the engine cancels job-2 on shutdown
        assert client.state is S.STOPPED and client.jobs == []
        assert ids == ["job-1", "job-2", "job-3"]

    run(test)


def test_jobs_can_be_named_by_the_caller_and_a_cancel_before_accepted_waits_for_it(tmp_path):
    """The app names its queue's rows with `new_job_id` and hands each job over under its row's
    id; a job's events carry that id, and it may name a later try once the job ended."""

    async def test():
        client, _ = make_client()
        await client.spawn(fake_engine_argv("normal", "--steps", "100"))
        stream = client.events()
        ids = [client.new_job_id(), client.new_job_id()]
        assert len(set(ids)) == 2
        submitting = asyncio.create_task(client.restore(["a.png", "b.png"], tmp_path, job_ids=ids))
        await asyncio.sleep(0)  # handed over; the engine has not accepted them yet
        assert client.jobs == ids
        await client.cancel([ids[1]])  # reaches the engine once it has named the job
        assert await submitting == ids
        events = await collect(stream, finished(ids[1]))
        assert of_job(events, ids[1]) == ["accepted", "queued", "cancelled"]
        assert events[-1].reason == "cancel"
        await client.interrupt(ids[0])
        await collect(stream, finished(ids[0]))

        assert await client.restore(["b.png"], tmp_path, job_ids=[ids[1]]) == [ids[1]]  # a retry
        with pytest.raises(ValueError, match="already with the engine"):
            await client.restore(["c.png"], tmp_path, job_ids=[ids[1]])
        await collect(stream, lambda ev: isinstance(ev[-1], p.Started))
        await client.interrupt(ids[1])
        events = await collect(stream, finished(ids[1]))
        assert of_job(events, ids[1])[-1] == "cancelled" and client.jobs == []

    run(test)


def test_crash_fails_the_running_job_restarts_and_resubmits_the_queue(tmp_path):
    async def test():
        client, states = make_client()
        runs = tmp_path / "runs"
        await client.spawn(fake_engine_argv("crash", "--runs", str(runs)))
        stream = client.events()
        await client.restore(["a.png", "b.png"], tmp_path)
        events = await collect(stream, finished("job-1", "job-2"))
        error = next(e for e in events if isinstance(e, p.Error))
        assert (error.job_id, error.kind) == ("job-1", "internal")
        assert error.message == "the engine stopped unexpectedly" and error.hint
        # job-2 ran in the new engine (which called it "e1") and is still job-2 here.
        assert of_job(events, "job-2")[-3:] == ["progress", "progress", "result"]
        assert of_job(events, "job-2").count("accepted") == 1
        assert states == [S.STARTING, S.READY, S.BUSY, S.LOST, S.RESTARTING, S.BUSY, S.READY]
        assert client.hello_reply.engine_version == "fake-normal-run2"
        assert "code 3" in client.engine_log.text()
        await client.close()

    run(test)


def test_crash_requeues_the_running_job_once(tmp_path):
    async def test():
        client, _ = make_client(requeue_on_crash=True)
        runs = tmp_path / "runs"
        await client.spawn(fake_engine_argv("crash", "--runs", str(runs), "--until", "2"))
        stream = client.events()
        await client.restore(["a.png", "b.png"], tmp_path)
        events = await collect(stream, finished("job-1", "job-2"))
        # Crash 1: job-1 runs once more. Crash 2: it fails; job-2 keeps its place and runs.
        job_1 = of_job(events, "job-1")
        assert job_1[-1] == "error" and job_1.count("warning") == 1
        assert job_1.count("started") == 2 and job_1.index("warning") < job_1.index("started", 3)
        assert of_job(events, "job-2")[-1] == "result"
        assert runs.read_text() == "3"
        await client.close()

    run(test)


def test_a_job_that_ignores_interrupt_gets_its_engine_killed(tmp_path):
    async def test():
        client, states = make_client()
        runs = tmp_path / "runs"
        argv = fake_engine_argv(
            "ignore_interrupt", "--runs", str(runs), "--steps", "200", "--step-s", "0.05"
        )
        await client.spawn(argv)
        first_pid = client.pid
        stream = client.events()
        await client.restore(["a.png", "b.png"], tmp_path)
        await collect(stream, lambda ev: isinstance(ev[-1], p.Started))
        await client.interrupt()
        events = await collect(stream, lambda ev: isinstance(ev[-1], p.Cancelled))
        assert (events[-1].job_id, events[-1].reason) == ("job-1", "interrupt")
        await client.wait_for_state(S.BUSY, timeout=5)
        assert client.pid != first_pid and client.jobs == ["job-2"]
        assert states[-3:] == [S.LOST, S.RESTARTING, S.BUSY]
        await client.close()

    run(test)


def test_restarts_in_a_row_are_capped_then_lost_with_an_error():
    async def test():
        client, states = make_client(max_restarts=2)
        await client.spawn(fake_engine_argv("exit_after_hello"))
        async with asyncio.timeout(10):
            while client.error is None:
                await client.wait_for_state(S.LOST, timeout=5)
                await asyncio.sleep(0.02)
        assert client.error.kind == "crashed" and "3 times in a row" in client.error.message
        assert "restart the engine" in client.error.hint
        assert states == [S.STARTING, S.READY] + [S.LOST, S.RESTARTING, S.READY] * 2 + [S.LOST]
        with pytest.raises(EngineClientError) as raised:
            await client.restore(["a.png"], "out")
        assert raised.value is client.error
        await client.close()
        assert client.state is S.STOPPED

    run(test)


def test_close_terminates_then_kills_an_engine_that_will_not_stop():
    async def test():
        client, states = make_client(shutdown_timeout_s=0.3)
        await client.spawn(fake_engine_argv("stubborn"))
        await client.close()
        assert states[-1] is S.STOPPED
        assert client.engine_log.lines[-1].endswith("code -9 ---")

    run(test)


def test_a_wrong_protocol_version_is_a_clear_error_without_restarts():
    async def test():
        client, states = make_client()
        with pytest.raises(EngineClientError) as raised:
            await client.spawn(fake_engine_argv("wrong_version"))
        assert raised.value.kind == "version" and "protocol 99" in raised.value.message
        assert "same DreamClear Studio version" in raised.value.hint
        assert client.state is S.LOST and client.error is raised.value
        assert states == [S.STARTING, S.LOST]
        await client.close()

    run(test)


def test_a_reply_that_does_not_come_times_out_and_the_engine_stays_usable():
    async def test():
        client, _ = make_client(request_timeout_s=0.2)
        await client.spawn(fake_engine_argv("slow", "--delay", "0.5"))
        with pytest.raises(EngineClientError) as raised:
            await client.list_models()
        assert raised.value.kind == "timeout" and "'models'" in raised.value.message
        assert client.state is S.READY
        client.settings.request_timeout_s = 2.0
        assert (await client.list_models()).models == [
            {"name": "dreamclear", "status": "installed"}
        ]
        await client.close()

    run(test)


def test_an_engine_that_cannot_start_is_reported():
    async def test():
        client, _ = make_client()
        with pytest.raises(EngineClientError) as raised:
            await client.spawn(["/nonexistent/python", "-m", "engine", "--stdio"])
        assert raised.value.kind == "start_failed" and client.state is S.LOST

    run(test)


def test_tcp_connect_needs_the_token(tmp_path):
    async def test():
        server = await asyncio.create_subprocess_exec(
            *fake_engine_argv("normal", "--tcp", "--token", "secret"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            line = await asyncio.wait_for(server.stdout.readline(), 10)
            port = int(line.split()[1])
            client, states = make_client()
            with pytest.raises(EngineClientError) as raised:
                await client.connect("127.0.0.1", port, "wrong")
            assert raised.value.kind == "unauthorized" and "token" in raised.value.hint
            reply = await client.connect("127.0.0.1", port, "secret")
            assert reply.engine_version == "fake-normal-run1" and client.pid is None
            stream = client.events()
            ids = await client.restore(["a.png"], tmp_path)
            events = await collect(stream, finished(*ids))
            assert of_job(events, "job-1")[-1] == "result"
            await client.close()
            assert await asyncio.wait_for(server.wait(), 5) == 0
            assert states[-1] is S.STOPPED
        finally:
            if server.returncode is None:
                server.kill()
                await server.wait()

    run(test)
