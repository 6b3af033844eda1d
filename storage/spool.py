"""A bounded on-disk spool for batches the database did not take.

One file per batch, named by a sequence number, written to a temporary name,
fsynced and renamed, so a crash leaves whole batches or none. The writer
replays them oldest first when the database is back (and at start, after a
crash); a replayed position that was stored after all is recognised by the
database (``ON CONFLICT``), so every position is stored exactly once. When
the spool would grow past ``max_bytes``, or the disk cannot take it (full,
read-only), the batch is refused: the caller counts the loss and says so
loudly, and nothing half-written is left behind. A spool file that cannot be
read back (cut short, damaged) is moved aside to ``damaged/``, reported, and
the rest replayed.

Its methods do blocking disk I/O (pickling, fsync): call them from a thread
(``asyncio.to_thread``), not on the event loop.

The files are pickles of aiswatch's own records, written and read only by
aiswatch in its data directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
from pathlib import Path

from ingest.batch import PositionBatch
from ingest.errors import StorageError
from ingest.records import Position, StaticReport

log = logging.getLogger(__name__)

#: Batches spooled before positions went by column hold lists of records (the writer takes both).
SpooledBatch = list[tuple[str, PositionBatch | list[Position], list[StaticReport]]]


class SpoolFull(StorageError):
    """The spool cannot take a batch; ``reason`` says why (full, or the disk's error)."""


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        #: Files that could not be read back, moved aside.
        self.damaged = 0
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for stale in directory.glob("*.tmp"):  # a write cut by a crash
                stale.unlink()
        except OSError as exc:
            raise StorageError(
                f"the spool directory {directory} cannot be used: {exc.strerror or exc}"
            ) from exc
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

    def put(self, batch: SpooledBatch) -> None:
        """Keep ``batch`` on disk, or raise :class:`SpoolFull` (nothing kept)."""
        data = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"the spool is full ({self.bytes:,} of {self.max_bytes:,} bytes)")
        path = self.directory / f"{self._next:012d}.batch"
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            tmp.rename(path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise SpoolFull(f"the spool {self.directory} cannot be written: {exc.strerror or exc}") from exc
        self._next += 1
        self._files.append(path)
        self.bytes += len(data)

    def oldest(self) -> SpooledBatch | None:
        """The oldest batch that can be read; damaged files are moved aside."""
        while self._files:
            path = self._files[0]
            try:
                batch: SpooledBatch = pickle.loads(path.read_bytes())  # noqa: S301 - our own file
                return batch
            except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
                self._set_aside(path, exc)
        return None

    def _set_aside(self, path: Path, exc: BaseException) -> None:
        self._files.pop(0)
        size = path.stat().st_size if path.exists() else 0
        self.bytes -= size
        self.damaged += 1
        aside = self.directory / "damaged"
        try:
            aside.mkdir(exist_ok=True)
            path.rename(aside / path.name)
            where = f"moved to {aside / path.name}"
        except OSError as move_error:
            where = f"left in place ({move_error.strerror or move_error})"
        log.error(
            "spool %s: %s (%d bytes) cannot be read back (%s: %s): %s; its records are not replayed",
            self.directory, path.name, size, type(exc).__name__, exc, where,
        )  # fmt: skip

    def pop(self) -> None:
        """The oldest batch is stored: forget it."""
        path = self._files.pop(0)
        self.bytes -= path.stat().st_size
        path.unlink()
