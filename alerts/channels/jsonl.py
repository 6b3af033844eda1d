"""The ``file`` channel: one JSON object a line, appended (UTF-8)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from alerts.errors import ChannelError
from alerts.message import Message
from alerts.settings import FileChannel


class JsonLinesChannel:
    def __init__(self, config: FileChannel) -> None:
        self.name = config.name
        self.path = config.path

    async def send(self, message: Message) -> str | None:
        line = json.dumps(
            {
                "written_at": datetime.now(UTC).isoformat(),
                "channel": self.name,
                "message_id": message.message_id,
                "in_reply_to": message.in_reply_to,
                "subject": message.subject,
                "text": message.text,
                "data": dict(message.data),
            },
            ensure_ascii=False,
        )
        try:
            offset = await asyncio.to_thread(_append, self.path, line)
        except OSError as exc:
            raise ChannelError(f"{self.path}: {exc.strerror or exc}", channel=self.name) from exc
        return f"{self.path}@{offset}"


def _append(path: Path, line: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        offset = fh.tell()
        fh.write(line + "\n")
        fh.flush()
    return offset
