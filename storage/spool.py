"""A bounded on-disk spool for batches the database did not take.

One file per batch, named by a sequence number, written to a temporary name,
fsynced and renamed, so a crash leaves whole batches or none. The writer
replays them oldest first when the database is back (and at start, after a
crash); a replayed position that was stored after all is recognised by the
database (``ON CONFLICT``), so every position is stored exactly once. When
the spool would grow past ``max_bytes``, the batch is refused: the caller
counts the loss and says so loudly.

The files are pickles of aiswatch's own records, written and read only by
aiswatch in its data directory.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

from ingest.records import Position, StaticReport

log = logging.getLogger(__name__)

SpooledBatch = list[tuple[str, list[Position], list[StaticReport]]]


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.tmp"):  # a write cut by a crash
            stale.unlink()
        self._files = sorted(directory.glob("*.batch"))
        self.bytes = sum(f.stat().st_size for f in self._files)
        self._next = int(self._files[-1].stem) + 1 if self._files else 0
        if self._files:
            log.warning(
                "spool %s: %d batches (%d bytes) from before, to replay",
                directory,
                len(self._files),
                self.bytes,
            )

    def __len__(self) -> int:
        return len(self._files)

    def put(self, batch: SpooledBatch) -> bool:
        """Keep ``batch`` on disk; False (nothing written) if it would pass the limit."""
        data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        if self.bytes + len(data) > self.max_bytes:
            return False
        path = self.directory / f"{self._next:012d}.batch"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(path)
        self._next += 1
        self._files.append(path)
        self.bytes += len(data)
        return True

    def oldest(self) -> SpooledBatch | None:
        if not self._files:
            return None
        batch: SpooledBatch = pickle.loads(self._files[0].read_bytes())  # noqa: S301 - our own file
        return batch

    def pop(self) -> None:
        """The oldest batch is stored: forget it."""
        path = self._files.pop(0)
        self.bytes -= path.stat().st_size
        path.unlink()
