"""Hostile or broken clients: every request field set to a wrong type, null, a huge and an
empty value is answered with an error (never `internal`) and the engine keeps serving; a
connection without the token cannot keep the real client out."""

from __future__ import annotations

import dataclasses
import socket
import time
import typing

import pytest
from engine_harness import (
    EngineProcess,
    connect,
    connect_and_greet,
    hello,
    serve_tcp,
    write_photo,
)

from engine import protocol as p

HUGE_TEXT = "x" * 200_000


def values_for(hint) -> dict[str, object]:
    """A wrong-type, a huge and an empty value for a field of type `hint` (plus null)."""
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if origin in (typing.Union, __import__("types").UnionType) else hint
    if typing.get_origin(base) is typing.Literal:
        base = type(typing.get_args(base)[0])
    if dataclasses.is_dataclass(base):
        return {"wrong": 7, "null": None, "huge": {"upscale": 10**30}, "empty": {}}
    if typing.get_origin(base) is list:
        return {"wrong": "ab", "null": None, "huge": ["x"] * 10_000, "empty": []}
    if typing.get_origin(base) is dict or base is typing.Any:
        return {"wrong": "ab", "null": None, "huge": {"k": HUGE_TEXT}, "empty": {}}
    return {
        bool: {"wrong": "yes", "null": None, "huge": True, "empty": False},
        int: {"wrong": "x", "null": None, "huge": 10**30, "empty": 0},
        float: {"wrong": "x", "null": None, "huge": 1e308, "empty": 0.0},
        str: {"wrong": 12345, "null": None, "huge": HUGE_TEXT, "empty": ""},
    }[base]


def cases():
    """(request type, field, value label, value) for every request and field."""
    for kind, cls in sorted(p.REQUESTS.items()):
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            for label, value in values_for(hints[field.name]).items():
                yield kind, cls, field.name, label, value
        if kind == "restore":
            option_hints = typing.get_type_hints(p.RestoreOptionsMessage)
            for field in dataclasses.fields(p.RestoreOptionsMessage):
                for label, value in values_for(option_hints[field.name]).items():
                    yield kind, cls, f"options.{field.name}", label, value


def stays_harmless(kind: str, field: str, value, cls) -> bool:
    """Whether sending this would do something real that the test must not trigger: a
    well-typed shutdown stops the engine; a well-typed hello is an ordinary greeting."""
    if kind == "shutdown":
        return field == "id" and not isinstance(value, str)
    return True


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    process = EngineProcess(["--stdio", "--store", str(folder / "store")], folder / "engine.log")
    client = process.stdio_client()
    assert hello(client)["type"] == "hello_reply"
    yield process, client, folder
    process.stop()


def test_every_field_with_a_bad_value_is_refused_and_the_engine_keeps_serving(engine):
    process, client, folder = engine
    answered: dict[str, list[str]] = {}
    for number, (kind, cls, field, label, value) in enumerate(cases()):
        if not stays_harmless(kind, field, value, cls):
            continue
        request_id = f"fuzz-{number}"
        message: dict = {"type": kind, "id": request_id}
        if kind == "restore":  # valid elsewhere, so the bad field is what is judged
            message |= {"inputs": [str(folder / "none.png")], "output_dir": str(folder / "out")}
        if field == "id":
            message["id"] = value
        elif field.startswith("options."):
            message["options"] = {field.split(".", 1)[1]: value}
        else:
            message[field] = value
        client.send(message)
        # Answers carry the id; one that cannot be an id (wrong type, too long) is not echoed.
        sent_id = message["id"]
        echoable = isinstance(sent_id, str) and len(sent_id) <= p.MAX_ID_CHARS
        wanted = sent_id if echoable else None
        if kind in ("cancel", "interrupt") and label != "wrong":
            # Answered only by the jobs they stop, here none: a ping answered after it (the
            # engine handles these in order) shows it was taken without harm.
            client.send({"type": "models", "id": f"ping-{number}"})
            client.until(lambda e, n=number: e.get("request_id") == f"ping-{n}", timeout=30)
            continue
        try:
            answer = client.until(
                lambda e, wanted=wanted: (
                    e.get("request_id") == wanted
                    and e["type"] not in ("progress", "stage", "warning")
                ),
                timeout=30,
            )[-1]
        except Exception as error:
            raise AssertionError(f"no answer to {kind}.{field}={label}") from error
        answered.setdefault(answer["type"], []).append(f"{kind}.{field}={label}")
        assert not (answer["type"] == "error" and answer["kind"] == "internal"), (field, answer)
        if label == "wrong":
            assert answer["type"] == "error", (kind, field, answer)
            assert answer["kind"] in ("bad_request", "protocol"), (kind, field, answer)
    assert len(answered["error"]) > 120
    # The connection still works, and nothing was written outside the given folder.
    assert client.request({"type": "models", "id": "after"})["type"] == "models_reply"
    assert process.process.poll() is None


def test_an_echoed_id_near_the_size_limit_does_not_silence_the_connection(engine):
    _, client, _ = engine
    client.send({"type": "teleport", "id": "i" * (p.MAX_MESSAGE_BYTES - 100)})
    answer = client.next()
    assert answer["type"] == "error" and answer["request_id"] is None
    assert client.request({"type": "models", "id": "still"})["type"] == "models_reply"


@pytest.fixture(scope="module")
def tcp_engine(tmp_path_factory):
    engine, port, token = serve_tcp(tmp_path_factory.mktemp("hostile-tcp"))
    yield engine, port, token
    engine.stop()


def test_idle_connections_without_the_token_cannot_keep_the_real_client_out(tcp_engine):
    _, port, token = tcp_engine
    _, sock = connect_and_greet(port, token)  # the first hello waits for torch's import
    sock.close()
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        started = time.monotonic()
        client, sock = connect_and_greet(port, token)
        with sock:
            assert time.monotonic() - started < 5
            assert client.request({"type": "models", "id": "m"})["type"] == "models_reply"
    finally:
        for connection in idle:
            connection.close()


def test_the_token_is_checked_before_the_version_and_a_refusal_closes(tcp_engine):
    _, port, token = tcp_engine
    for hello_fields, kind in (
        ({"token": "guess", "protocol": 99}, "unauthorized"),
        ({"token": token, "protocol": 99}, "version"),
    ):
        client, sock, reply = connect(port, {"type": "hello", "id": "h", **hello_fields})
        with sock:
            assert reply["type"] == "error" and reply["kind"] == kind
            assert client.next() is None  # closed


@pytest.fixture(scope="module")
def allowed_engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("allowed")
    (folder / "allowed").mkdir()
    engine, port, token = serve_tcp(folder, "--allow", str(folder / "allowed"))
    yield port, token, folder
    engine.stop()


def test_a_tcp_client_may_only_use_the_allowed_folders(allowed_engine):
    port, token, folder = allowed_engine
    inside, outside = folder / "allowed", folder / "elsewhere"
    outside.mkdir()
    write_photo(inside / "in.png")
    write_photo(outside / "out.png")
    (inside / "sneaky").symlink_to(outside)  # followed: it leads outside
    client, sock = connect_and_greet(port, token)
    refused = [
        {"type": "restore", "inputs": [str(outside / "out.png")], "output_dir": str(inside)},
        {"type": "restore", "inputs": [str(inside / "in.png")], "output_dir": str(outside)},
        {
            "type": "restore",
            "inputs": [str(inside / "sneaky" / "out.png")],
            "output_dir": str(inside),
        },
        {"type": "restore", "inputs": [str(inside / "in.png")], "output_dir": "/etc"},
        {"type": "restore", "inputs": ["/etc/*.conf"], "output_dir": str(inside)},
        {"type": "restore", "inputs": [str(outside)], "output_dir": str(inside)},
        {"type": "export", "source": str(inside / "in.png"), "destination": "/etc"},
        {"type": "export", "source": "/etc/hostname", "destination": str(inside)},
        {"type": "model_action", "action": "import", "path": str(outside)},
        {"type": "genir_status", "run": str(outside)},
        {"type": "genir_export", "run": str(outside)},
    ]
    with sock:
        for number, request in enumerate(refused):
            answer = client.request({**request, "id": f"r{number}"})
            assert answer["type"] == "error" and answer["kind"] == "forbidden", (request, answer)
            assert "--allow" in answer["hint"]
        allowed = {"type": "export", "source": str(inside / "in.png"), "destination": str(inside)}
        answer = client.request({**allowed, "id": "ok", "name_pattern": "copy"})
        assert answer["type"] == "exported" and (inside / "copy.png").is_file()
    assert not list(outside.glob("*_x*")) and sorted(p.name for p in outside.iterdir()) == [
        "out.png"
    ]


def test_the_default_allowed_folders_are_home_and_temp():
    import tempfile
    from pathlib import Path

    from engine.path_policy import PathNotAllowedError, PathPolicy

    policy = PathPolicy.for_remote_clients(None)
    policy.check(str(Path.home() / "photos" / "a.jpg"), "the input")
    policy.check(str(Path(tempfile.gettempdir()) / "a.jpg"), "the input")
    with pytest.raises(PathNotAllowedError, match="outside the folders"):
        policy.check("/etc/passwd", "the input")
