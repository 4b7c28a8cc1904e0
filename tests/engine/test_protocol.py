"""The protocol module: round trips, framing limits, clear errors; and it never needs torch."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from engine import protocol as p


@pytest.mark.parametrize(
    "message",
    [
        p.Hello(id="1", token="t", client="test"),
        p.Restore(
            id="2",
            inputs=["a.jpg"],
            output_dir="/out",
            options=p.RestoreOptionsMessage(steps=2, seed=3, tile=64),
        ),
        p.Restore(
            id="2s",
            inputs=["a.jpg"],
            output_dir="/out",
            options=p.RestoreOptionsMessage(strength=0.7),
        ),
        p.Cancel(id="3", job_ids=["j1"]),
        p.Interrupt(id="4"),
        p.Shutdown(id="5"),
        p.ListModels(id="6"),
        p.Train(id="7", config="/r/genir.toml", task="genir-prompts", resume=False, max_steps=9),
    ],
)
def test_requests_round_trip(message):
    line = p.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert p.decode(line, p.REQUESTS) == message


def test_events_round_trip():
    events = [
        p.HelloReply(
            request_id="1", engine_version="0.1.0", capabilities=["restore"], device="cpu"
        ),
        p.Progress(job_id="j", stage="denoise", step=3, steps=50, tile=2, tiles=4, eta_s=12.5),
        p.Error(job_id="j", kind="bad_input", message="x.png: not an image", hint="check it"),
        p.Result(job_id="j", input="a.jpg", output="b.jpg", seconds=1.5, peak_memory_bytes=10),
        p.Cancelled(job_id="j", reason="interrupt"),
    ]
    for event in events:
        assert p.decode(p.encode(event), p.EVENTS) == event


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b"not json\n", "not a JSON line"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"type": "explode"}\n', "unknown message type"),
        (b'{"id": "1"}\n', "unknown message type"),
        (b'{"type": "hello", "colour": "red"}\n', "unknown field"),
        (b"\xff\xfe\n", "not a JSON line"),
    ],
)
def test_bad_lines_are_protocol_errors(line, needle):
    with pytest.raises(p.ProtocolError) as error:
        p.decode(line, p.REQUESTS)
    assert needle in str(error.value) and error.value.kind == "protocol"


def test_oversized_lines_are_refused_both_ways():
    huge = b'{"type": "hello", "client": "' + b"x" * p.MAX_MESSAGE_BYTES + b'"}'
    with pytest.raises(p.ProtocolError, match="exceeds"):
        p.decode(huge, p.REQUESTS)
    with pytest.raises(p.ProtocolError, match="exceeds"):
        p.encode(p.Hello(client="x" * p.MAX_MESSAGE_BYTES))


def test_requests_and_events_are_separate_namespaces():
    with pytest.raises(p.ProtocolError):
        p.decode(p.encode(p.Bye()), p.REQUESTS)


def test_protocol_module_imports_no_torch():
    code = "import sys, engine.protocol; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


VERSION_1_OPTIONS = {
    "model", "upscale", "steps", "cfg", "seed", "sampler", "prompt", "caption", "color_fix",
    "tile", "device", "dtype", "output_format", "save_map", "overwrite", "max_megapixels",
}  # fmt: skip
"""The restore options of the first version-1 engines, whose decoder refuses any other."""


def test_an_added_option_at_its_default_is_left_out_so_an_older_engine_reads_the_request():
    request = p.Restore(id="r", inputs=["a.jpg"], output_dir="/out")
    options = json.loads(p.encode(request))["options"]
    assert set(options) == VERSION_1_OPTIONS
    assert p.decode(p.encode(request), p.REQUESTS).options.strength == 1.0
    blended = p.Restore(id="r", options=p.RestoreOptionsMessage(strength=0.25))
    assert json.loads(p.encode(blended))["options"]["strength"] == 0.25
    fields = {f.name for f in dataclasses.fields(p.RestoreOptionsMessage)}
    assert set(p.ADDED_OPTIONS) == fields - VERSION_1_OPTIONS  # every later option is listed


def test_an_engine_without_the_capability_is_sent_no_added_option_away_from_its_default():
    older = ["restore", "models", "cancel", "interrupt", "model_action", "export"]
    assert p.unsupported_options(p.RestoreOptionsMessage(strength=0.5), older) == ["strength"]
    assert p.unsupported_options(p.RestoreOptionsMessage(strength=0.5), [*older, "strength"]) == []
    assert p.unsupported_options(p.RestoreOptionsMessage(strength=1), older) == []
