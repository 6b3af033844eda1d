"""Publish a file's lines to an MQTT topic, one message per line, QoS 1, as
fast as the broker acknowledges them (paho, a wide in-flight window); exit
when every message is acknowledged. Used by bench/live_bench.py (mosquitto_pub
-l drops what is still queued at end of input)."""

from __future__ import annotations

import sys
import time

import paho.mqtt.client as paho


def main() -> None:
    host, port, topic, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-publisher-{time.monotonic_ns()}")
    client.max_inflight_messages_set(1000)
    client.connect(host, port)
    client.loop_start()
    with open(path, "rb") as fh:
        lines = fh.read().splitlines()
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
    elapsed = time.perf_counter() - began
    client.loop_stop()
    client.disconnect()
    print(f"{len(lines)} {elapsed:.3f}")


if __name__ == "__main__":
    main()
