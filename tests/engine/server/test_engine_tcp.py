"""The engine over TCP: token, one client at a time, loopback only, `restore --engine`."""

from __future__ import annotations

import asyncio

import pytest
from engine_harness import (
    connect,
    connect_and_greet,
    serve_tcp,
    tcp_client,
    write_photo,
)

from dreamclear.cli import main
from engine import protocol as p
from engine.cli.remote_restore import check_engine_takes
from engine.errors import EngineError
from engine.server import EngineServer, ServeConfig


@pytest.fixture(scope="module")
def tcp_engine(tmp_path_factory):
    engine, port, token = serve_tcp(tmp_path_factory.mktemp("tcp-engine"))
    yield engine, port, token
    engine.stop()


def test_a_bad_token_is_refused_and_the_connection_closed(tcp_engine):
    _, port, token = tcp_engine
    client, sock, reply = connect(port, {"type": "hello", "id": "h", "token": "guess"})
    with sock:
        assert reply["type"] == "error" and reply["kind"] == "unauthorized"
        assert client.next() is None  # closed
    client, sock = connect_and_greet(port, token)
    sock.close()


def test_requests_before_hello_and_a_second_client_are_refused(tcp_engine):
    _, port, token = tcp_engine
    _, sock, reply = connect(port, {"type": "models", "id": "early"})
    sock.close()
    assert reply["kind"] == "protocol" and "before hello" in reply["message"]
    client, sock = connect_and_greet(port, token)
    with sock:
        other, other_sock = tcp_client(port)
        with other_sock:
            # Refused once it proves itself: before that it holds no slot and hears nothing.
            other.send({"type": "hello", "id": "h2", "token": token})
            refusal = other.next()
            assert refusal["type"] == "error" and "another client" in refusal["message"]
            assert other.next() is None
        assert client.request({"type": "models", "id": "m"})["type"] == "models_reply"


def test_restore_command_runs_jobs_on_a_served_engine(tcp_engine, tiny_model_dir, tmp_path, capsys):
    _, port, token = tcp_engine
    photo = write_photo(tmp_path / "remote.png")
    out = tmp_path / "out"
    args = [str(photo), "-o", str(out), "--model", str(tiny_model_dir), "--steps", "2"]
    args += ["--strength", "0.5"]  # this engine lists the strength capability
    code = main(
        ["restore", *args, "--upscale", "2", "--engine", f"127.0.0.1:{port}", "--token", token]
    )
    text = capsys.readouterr().err
    assert code == 0, text
    assert "1 restored, 0 failed" in text and "wrote" in text
    assert (out / "remote_x2.png").exists()


def test_restore_command_reports_a_wrong_token(tcp_engine, tmp_path, capsys):
    _, port, _ = tcp_engine
    code = main(["restore", "x.png", "--engine", f"127.0.0.1:{port}", "--token", "nope"])
    assert code == 2
    assert "wrong or missing token" in capsys.readouterr().err


def test_restore_command_refuses_strength_for_an_engine_older_than_it():
    """Such an engine would refuse the unknown field; at the default it is not sent at all."""
    older = p.HelloReply(engine_version="0.1.0", capabilities=["restore", "models"])
    blended = p.RestoreOptionsMessage(strength=0.7)
    with pytest.raises(EngineError, match="--strength") as error:
        check_engine_takes(blended, older, "gpu-box:7420")
    assert "0.1.0" in error.value.message and "update the engine" in error.value.hint
    check_engine_takes(p.RestoreOptionsMessage(), older, "gpu-box:7420")
    check_engine_takes(blended, p.HelloReply(capabilities=["strength"]), "gpu-box:7420")


def test_a_non_loopback_host_must_be_named_explicitly():
    server = EngineServer(ServeConfig(host="0.0.0.0", port=0))
    with pytest.raises(EngineError, match="non-loopback"):
        asyncio.run(server._serve_tcp())


def test_engine_tokens_can_be_passed_as_a_command_line_value():
    from dreamclear.cli import build_parser
    from engine.server import new_token

    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000 and all(len(token) == 48 for token in tokens)
    # A token starting with "-" would be read by argparse as an option, not as --token's value.
    assert not any(token.startswith("-") for token in tokens)
    token = min(tokens)
    args = build_parser().parse_args(["restore", "x.png", "--engine", "h:1", "--token", token])
    assert args.token == token


def test_a_request_type_without_a_handler_is_answered_at_once(tmp_path):
    """A protocol message this engine has no handler for gets a `protocol` error (a client
    would otherwise wait out its timeout)."""
    from dataclasses import dataclass
    from typing import ClassVar

    from engine import protocol as p
    from engine.server import EngineServer, ServeConfig

    @dataclass
    class Unhandled(p.Request):
        TYPE: ClassVar[str] = "unhandled_for_the_test"

    class Client:
        def __init__(self) -> None:
            self.sent: list[p.Event] = []

        def send(self, event: p.Event) -> None:
            self.sent.append(event)

    server = EngineServer(ServeConfig(store_root=str(tmp_path / "store")))
    client = Client()
    asyncio.run(server.dispatch(client, Unhandled(id="u1")))
    (error,) = client.sent
    assert (error.TYPE, error.kind, error.request_id) == ("error", "protocol", "u1")
    assert "unhandled_for_the_test" in error.message
