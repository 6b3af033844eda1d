"""Benchmark: instructions per line, aiswatch's decoder against pyais's bare
decode, counted by valgrind (callgrind). Counts are repeatable on a shared,
noisy machine where wall-clock times drift by a third.

Each variant runs in its own process under callgrind over the same 20,000
tag-blocked lines of gpsd's AISHub sample; a run that only loads the lines is
subtracted. Variants:

* ``pyais``: ``IterMessages`` + ``decode()`` (no checksums, nothing kept);
* ``aiswatch``: :class:`ingest.pipeline.LineDecoder` (checksums, tag blocks,
  reassembly, duplicate window, records, accounting) with the worker process's
  garbage-collector settings, fed 5,000 lines at a time and taking each
  chunk's records as the decoding process does (``take_batch``: positions by
  column, decoded there).

Usage: ``bench/decode`` (needs valgrind: ``apt-get install valgrind``).
Results go to stdout and bench/results/decode.json.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINES = 20_000


def variant(mode: str, path: str) -> None:
    """Runs under callgrind."""
    from pyais.stream import IterMessages  # noqa: PLC0415 - imported in every variant, measured in none

    from ingest.pipeline import LineDecoder  # noqa: PLC0415

    logging.disable(logging.WARNING)
    lines = Path(path).read_bytes().splitlines()
    if mode == "pyais":
        for message in IterMessages(lines):
            try:
                message.decode()
            except Exception:
                continue
    elif mode == "aiswatch":
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)  # as in the decoding process (ingest/offload.py)
        decoder = LineDecoder("bench")
        for start in range(0, len(lines), 5000):  # as the decoding process takes them (aiswatch/pump.py)
            decoder.feed(lines[start : start + 5000], time.time())
            decoder.take_batch()  # the positions are decoded here, a chunk at a time
        decoder.close()
        decoder.take_batch()


def count(mode: str, path: str) -> int:
    with tempfile.NamedTemporaryFile(prefix="callgrind.") as out:
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}",
             sys.executable, __file__, "--variant", mode, path],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    match = re.search(r"Collected : (\d+)", result.stderr)
    assert match, result.stderr
    return int(match[1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--variant":
        variant(sys.argv[2], sys.argv[3])
        return
    sys.path.insert(0, str(REPO / "bench"))
    from ingest_bench import tagged_copies  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "lines.nmea")
        Path(path).write_bytes(b"\n".join(tagged_copies(1)[:LINES]) + b"\n")
        base = count("load", path)
        pyais = count("pyais", path) - base
        ours = count("aiswatch", path) - base
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "lines": LINES,
        "pyais_instructions_per_line": round(pyais / LINES),
        "aiswatch_instructions_per_line": round(ours / LINES),
        "instruction_ratio_aiswatch_to_pyais": round(ours / pyais, 3),
    }
    out = REPO / "bench" / "results" / "decode.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
