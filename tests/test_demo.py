"""`aiswatch demo` end to end, on the embedded PostgreSQL it starts itself."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def run_demo(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISWATCH_")}
    env["AISWATCH_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "aiswatch", "demo"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_demo_runs_on_embedded_defaults_and_replays_idempotently(tmp_path: Path) -> None:
    first = run_demo(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "embedded PostgreSQL" in first.stdout
    assert re.search(r"lines read +8,551", first.stdout)
    assert re.search(r"stored +3,899\n", first.stdout)
    assert "TRANSJORUND" in first.stdout  # a vessel with its identity, from the capture
    assert "Traceback" not in first.stderr
    # the synthetic scenario's events: a loaded ship leaving Rajin, a dark arrival at Vostochny
    assert "SYNTHETIC" in first.stdout
    assert re.search(r"LADY R +273100001 +Rajin .* loaded", first.stdout)
    assert re.search(r"appeared_in_port +closed +LADY R +273100001 +Vostochny", first.stdout)
    assert re.search(r"dark_gap +closed +LADY R .* could have called at: .*Vostochny", first.stdout)
    assert "215100005" not in first.stdout and "667100006" not in first.stdout  # the decoys
    # the alerts it sends (a file channel) and the scenario day's digest
    assert "Alerts sent (aiswatch alerts log) through the file channel" in first.stdout
    assert "[pager] [aiswatch] LADY R appeared in Vostochny 2024-03-12" in first.stdout
    assert (tmp_path / "digest" / "digest-2024-03-12.html").is_file()
    assert (tmp_path / "digest" / "digest-2024-03-12.png").read_bytes()[:4] == b"\x89PNG"
    events = first.stdout.split("Events (aiswatch events):")[1]
    second = run_demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert re.search(r"already stored +3,899", second.stdout)
    assert "stored nothing twice" in second.stdout
    assert "0 event revisions written" in second.stdout
    assert "no new alerts" in second.stdout  # a delivered alert is never sent twice
    assert second.stdout.split("Events (aiswatch events):")[1] == events
