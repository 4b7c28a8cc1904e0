"""The job journal: a resume skips what is done, never records an item twice, refuses other
settings, and redoes what it cannot prove done."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from engine.errors import BadSettingError, OutputError
from engine.imaging.atomic import atomic_write
from engine.jobs.journal import Journal, JournalHeader, item_seed, read_journal

HEADER = JournalHeader("test.items", {"seed": 7, "batch_size": 4, "size": (8, 8)})


def content(index: int) -> bytes:
    return bytes([index]) * 10


def run(folder: Path, count: int, header: JournalHeader = HEADER, **options) -> list[int]:
    """Do the pending items of a small job in `folder`; returns the keys it did."""
    did = []
    with Journal.open(folder / "journal.jsonl", header, **options) as journal:
        for index in journal.pending(range(count)):
            journal.write(index, {folder / f"{index}.bin": content(index)}, {"index": index})
            did.append(index)
    return did


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]


def test_a_resumed_job_does_only_what_the_journal_lacks(tmp_path):
    assert run(tmp_path, 3) == [0, 1, 2]
    assert run(tmp_path, 5) == [3, 4]
    assert run(tmp_path, 5) == []
    header, *items = records(tmp_path)
    assert header == {
        "type": "header",
        "format": 1,
        "kind": "test.items",
        "settings": {"seed": 7, "batch_size": 4, "size": [8, 8]},
    }
    assert [item["key"] for item in items] == [0, 1, 2, 3, 4]
    assert items[1] == {
        "type": "item",
        "key": 1,
        "outputs": [
            {"path": "1.bin", "size": 10, "sha256": hashlib.sha256(content(1)).hexdigest()}
        ],
        "metadata": {"index": 1},
    }
    with Journal.open(tmp_path / "journal.jsonl", HEADER) as journal:
        assert len(journal) == 5 and 4 in journal and "4" not in journal
        assert journal.items[1].outputs[0].path == tmp_path / "1.bin"
        assert journal.items[1].metadata == {"index": 1}


def test_a_torn_last_line_is_cut_off_and_its_item_redone(tmp_path):
    run(tmp_path, 2)
    journal_path = tmp_path / "journal.jsonl"
    whole = journal_path.read_bytes()
    with open(journal_path, "ab") as file:  # a crash in the middle of appending item 2
        file.write(b'{"type":"item","key":2,"outputs":[{"pa')
    assert run(tmp_path, 3) == [2]
    assert journal_path.read_bytes().startswith(whole)
    assert [record.get("key") for record in records(tmp_path)] == [None, 0, 1, 2]
    # A line without its newline counts as torn too, even when it parses.
    with open(journal_path, "ab") as file:
        file.write(b'{"type":"redo","key":0,"reason":"x"}')
    assert run(tmp_path, 3) == []


def test_a_torn_header_starts_the_journal_afresh(tmp_path):
    (tmp_path / "journal.jsonl").write_bytes(b'{"type":"header","for')
    assert run(tmp_path, 2) == [0, 1]
    assert records(tmp_path)[0]["kind"] == "test.items"


def test_a_damaged_line_before_the_last_is_refused(tmp_path):
    run(tmp_path, 3)
    journal_path = tmp_path / "journal.jsonl"
    text = journal_path.read_text().splitlines(keepends=True)
    text[1] = text[1][:20] + "\n"
    journal_path.write_text("".join(text))
    with pytest.raises(OutputError, match="line 2 is not JSON"):
        run(tmp_path, 3)


def test_an_item_is_never_journalled_twice(tmp_path):
    with Journal.open(tmp_path / "journal.jsonl", HEADER) as journal:
        journal.write(0, {tmp_path / "0.bin": content(0)})
        with pytest.raises(ValueError, match="already journalled"):
            journal.write(0, {tmp_path / "0.bin": content(9)})
        with pytest.raises(ValueError, match="already journalled"):
            journal.record(0, [tmp_path / "0.bin"])
        assert list(journal.pending([0, 1, 0])) == [1]
    assert (tmp_path / "0.bin").read_bytes() == content(0)  # the refused write wrote nothing
    with Journal.open(tmp_path / "journal.jsonl", HEADER) as journal, pytest.raises(ValueError):
        journal.record(0, [])
    # A file where a key appears twice without a redo between was not written by a journal.
    with open(tmp_path / "journal.jsonl", "a") as file:
        file.write(json.dumps(records(tmp_path)[1]) + "\n")
    with pytest.raises(OutputError, match="item 0 a second time"):
        Journal.open(tmp_path / "journal.jsonl", HEADER)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (JournalHeader("test.other", HEADER.settings), "'test.items' job as 'test.other'"),
        (JournalHeader("test.items", {**HEADER.settings, "seed": 8}), "seed = 8: .* seed = 7"),
        (JournalHeader("test.items", {"seed": 7, "size": [8, 8]}), "batch_size = unset: .* = 4"),
        (JournalHeader("test.items", {**HEADER.settings, "model": "x"}), 'model = "x": .* unset'),
    ],
)
def test_resuming_with_other_settings_is_refused_naming_the_setting(tmp_path, header, message):
    run(tmp_path, 2)
    with pytest.raises(BadSettingError, match=message) as error:
        run(tmp_path, 3, header)
    assert error.value.hint
    # Settings are compared as JSON: a tuple and a list are the same setting.
    resumed = JournalHeader("test.items", {"seed": 7, "batch_size": 4, "size": [8, 8]})
    assert run(tmp_path, 3, resumed) == [2]


def test_a_journal_of_another_format_is_refused(tmp_path):
    header = {"type": "header", "format": 2, "kind": "test.items", "settings": {}}
    (tmp_path / "journal.jsonl").write_text(json.dumps(header) + "\n")
    with pytest.raises(OutputError, match="format 2, this version reads 1"):
        run(tmp_path, 1)


def test_output_left_by_an_unjournalled_attempt_is_overwritten_atomically(tmp_path):
    run(tmp_path, 2)
    (tmp_path / "2.bin").write_bytes(b"half of it")  # a killed run that used another writer
    (tmp_path / ".3.bin.partial").write_bytes(b"a killed write")  # a killed `write`
    assert run(tmp_path, 4) == [2, 3]
    assert (tmp_path / "2.bin").read_bytes() == content(2)
    assert sorted(os.listdir(tmp_path)) == ["0.bin", "1.bin", "2.bin", "3.bin", "journal.jsonl"]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.unlink(), "1.bin is missing"),
        (lambda path: path.write_bytes(b"short"), "1.bin has another size"),
        (lambda path: path.write_bytes(content(5)), "1.bin has another sha256"),
    ],
)
def test_a_journalled_item_whose_output_is_gone_or_changed_is_redone(tmp_path, damage, reason):
    run(tmp_path, 3)
    damage(tmp_path / "1.bin")
    assert run(tmp_path, 3) == [1]
    assert (tmp_path / "1.bin").read_bytes() == content(1)
    redo = records(tmp_path)[-2]
    assert redo["type"] == "redo" and redo["key"] == 1 and reason in redo["reason"]
    assert run(tmp_path, 3) == []


def test_size_verification_trusts_a_file_of_the_right_size(tmp_path):
    run(tmp_path, 2)
    (tmp_path / "1.bin").write_bytes(content(5))
    assert run(tmp_path, 2, verify="size") == []
    assert run(tmp_path, 2, verify="sha256") == [1]


def test_record_takes_files_written_by_the_job_and_items_without_files(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    folder = tmp_path / "run"
    folder.mkdir()
    with Journal.open(folder / "journal.jsonl", HEADER) as journal:
        atomic_write(outside / "a.png", lambda file: file.write(b"png"), overwrite=True)
        item = journal.record("a", [outside / "a.png"], {"caption": "a house", "score": 0.5})
        assert item.outputs[0].size == 3
        journal.record("rejected", [], {"reason": "a face"})
    assert records(folder)[1]["outputs"][0]["path"] == str(outside / "a.png")
    with Journal.open(folder / "journal.jsonl", HEADER) as journal:
        assert set(journal.items) == {"a", "rejected"}
        assert journal.items["rejected"].metadata == {"reason": "a face"}


def test_keys_metadata_and_settings_must_be_json(tmp_path):
    with Journal.open(tmp_path / "journal.jsonl", HEADER) as journal:
        with pytest.raises(TypeError, match="int or a str"):
            journal.record(1.5, [])
        with pytest.raises(TypeError, match="JSON"):
            journal.record(1, [], {"path": tmp_path})
        with pytest.raises(TypeError, match="JSON"):
            journal.record(1, [], {"loss": float("nan")})
        assert len(journal) == 0
    with pytest.raises(TypeError, match="JSON"):
        Journal.open(tmp_path / "other.jsonl", JournalHeader("x", {"device": object()}))


@pytest.mark.skipif(os.name != "posix", reason="the lock is POSIX flock")
def test_a_second_writer_is_refused(tmp_path):
    with (
        Journal.open(tmp_path / "journal.jsonl", HEADER),
        pytest.raises(OutputError, match="another job is using"),
    ):
        Journal.open(tmp_path / "journal.jsonl", HEADER)
    Journal.open(tmp_path / "journal.jsonl", HEADER).close()


def test_the_folder_must_exist(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        Journal.open(tmp_path / "missing" / "journal.jsonl", HEADER)


def test_item_seeds_are_fixed_functions_of_run_seed_and_key():
    # Pinned: a change would make resumed runs differ from the runs they resume.
    assert item_seed(7, 0) == 5680374468736924346
    assert item_seed(7, "a") == 7644722150330257745
    seeds = {item_seed(run, key) for run in (0, 1) for key in (0, 1, "0", "a")}
    assert len(seeds) == 8 and all(0 <= seed < 2**63 for seed in seeds)


def test_read_journal_reads_an_open_journal_without_changing_it(tmp_path):
    run(tmp_path, 4)
    path = tmp_path / "journal.jsonl"
    (tmp_path / "2.bin").unlink()
    with open(path, "ab") as file:
        file.write(b'{"type":"item","key":9')  # torn by a crash
    before = path.read_bytes()
    items = read_journal(path, HEADER)
    assert sorted(items) == [0, 1, 3], "the missing file's item is left out"
    assert items[3].metadata == {"index": 3}
    assert sorted(read_journal(path)) == [0, 1, 3]
    assert path.read_bytes() == before, "a reader wrote to the journal"
    with pytest.raises(BadSettingError, match="seed = 8"):
        read_journal(path, JournalHeader("test.items", {**HEADER.settings, "seed": 8}))
    assert read_journal(tmp_path / "none.jsonl") == {}
    with Journal.open(path, HEADER) as journal:  # the writer redoes what the reader left out
        assert sorted(journal.items) == [0, 1, 3]
        assert sorted(read_journal(path, HEADER)) == [0, 1, 3], "a locked journal reads"
