"""A journalled job for the kill -9 test: COUNT files of seeded random bytes, each written in
a few chunks with pauses between them, so that a kill often lands in the middle of a write.
It prints one line once the journal is open.

    python journalled_job.py FOLDER [--count 40] [--seed 7] [--size 4096] [--pause-ms 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.jobs.journal import Journal, JournalHeader, item_seed

CHUNKS = 4


def item_bytes(seed: int, index: int, size: int) -> bytes:
    return np.random.default_rng(item_seed(seed, index)).bytes(size)


def slow_writer(data: bytes, pause_s: float):
    def write(file: BinaryIO) -> None:
        step = -(-len(data) // CHUNKS)
        for start in range(0, len(data), step):
            file.write(data[start : start + step])
            file.flush()
            time.sleep(pause_s)

    return write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--pause-ms", type=float, default=2.0)
    args = parser.parse_args()
    settings = {"seed": args.seed, "count": args.count, "size": args.size}
    with Journal.open(
        args.folder / "journal.jsonl", JournalHeader("test.bytes", settings)
    ) as journal:
        print("resuming" if len(journal) else "starting", flush=True)  # the test waits for it
        for index in journal.pending(range(args.count)):
            data = item_bytes(args.seed, index, args.size)
            path = args.folder / f"{index:03d}.bin"
            journal.write(
                index, {path: slow_writer(data, args.pause_ms / 1000)}, {"bytes": len(data)}
            )


if __name__ == "__main__":
    main()
