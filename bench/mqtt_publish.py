"""Publish a file's lines to an MQTT topic, one message per line, QoS 1
(paho, a wide in-flight window). Used by bench/live_bench.py, in a process of
its own so that the benchmark's polling does not slow it.

- ``HOST PORT TOPIC FILE``: as fast as the broker acknowledges; exit when
  every message is acknowledged (mosquitto_pub -l drops what is still queued at
  end of input). Prints ``messages seconds``.
- ``... --rate R --seconds S``: R messages/s for S seconds through
  ``mosquitto_pub`` (Debian's mosquitto-clients), lines starting with ``!`` in
  turn, each tag-blocked with its publish time in milliseconds. Prints
  ``messages lag_s``: how late the last line was handed over against its
  schedule (the publisher's own shortfall, which would count as latency).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from functools import reduce
from operator import xor

import paho.mqtt.client as paho


def connect(host: str, port: int) -> paho.Client:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-publisher-{time.monotonic_ns()}")
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    return client


def flat_out(client: paho.Client, topic: str, lines: list[bytes]) -> str:
    began = time.perf_counter()
    window: list[paho.MQTTMessageInfo] = []
    for line in lines:
        window.append(client.publish(topic, line, qos=1))
        if len(window) >= 2000:  # keep the client's queue bounded: wait for the oldest half
            for info in window[:1000]:
                info.wait_for_publish()
            del window[:1000]
    for info in window:
        info.wait_for_publish()
    return f"{len(lines)} {time.perf_counter() - began:.3f}"


def paced(host: str, port: int, topic: str, lines: list[bytes], rate: int, seconds: float) -> str:
    """Through mosquitto_pub (C): a Python publisher cannot keep 5,000 QoS 1
    messages/s on a loaded two-core machine, and its lag would count as
    aiswatch's latency. Lines go to its stdin on schedule; stdin stays open a
    few seconds at the end so that nothing queued is dropped."""
    sentences = [line for line in lines if line.startswith(b"!")]
    total = int(rate * seconds)
    pub = subprocess.Popen(
        ["mosquitto_pub", "-h", host, "-p", str(port), "-t", topic, "-q", "1", "-M", "1000", "-l"],
        stdin=subprocess.PIPE,
    )
    assert pub.stdin is not None
    began = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - began) * rate) + 1)
        body = f"c:{int(time.time() * 1000)}"
        tag = f"\\{body}*{reduce(xor, body.encode(), 0):02X}\\".encode()
        pub.stdin.write(b"".join(tag + sentences[i % len(sentences)] + b"\n" for i in range(sent, due)))
        pub.stdin.flush()
        sent = due
        time.sleep(0.002)
    lag_s = time.perf_counter() - (began + (total - 1) / rate)
    time.sleep(3)
    pub.stdin.close()
    pub.wait(30)
    return f"{total} {lag_s:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("topic")
    parser.add_argument("path")
    parser.add_argument("--rate", type=int)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with open(args.path, "rb") as fh:
        lines = fh.read().splitlines()
    if args.rate:
        print(paced(args.host, args.port, args.topic, lines, args.rate, args.seconds))
        return
    client = connect(args.host, args.port)
    print(flat_out(client, args.topic, lines))
    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main()
