"""A Filebeat-like shipper for the fleet test: pylogbeat (a Lumberjack v2 client) sends numbered
windows from its own source address; when a connection fails it reconnects and sends the same
window again, as libbeat does. Prints one JSON line: the event numbers whose window was acked,
and how often it had to reconnect.

usage: fleet_beats.py SOURCE_IP PORT WINDOWS PER_WINDOW PAUSE_S
"""
import json
import socket
import sys
import time

import pylogbeat

source, port, windows, per_window, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

# pylogbeat has no option for its source address; the fleet test tells clients apart by it.
_connect = socket.socket.connect


def connect_from_source(self, address):
    self.bind((source, 0))
    return _connect(self, address)


socket.socket.connect = connect_from_source


def event(n):
    return {
        "@timestamp": "2024-05-01T10:00:00.000Z",
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.13.4"},
        "message": "beats %d" % n,
        "host": {"name": "web-1"},
        "fields": {"app": "fleet-beats", "n": n},
    }


acked, reconnects, errors = [], 0, []
client = None
deadline = time.monotonic() + 60
for w in range(windows):
    window = [event(w * per_window + i) for i in range(per_window)]
    while True:
        try:
            if client is None:
                client = pylogbeat.PyLogBeatClient("127.0.0.1", port, timeout=5)
                client.connect()
            client.send(window)
            break
        except Exception as e:  # a drained or killed node, a refused reconnect: try again
            errors.append(repr(e)[:200])
            reconnects += 1
            try:
                client.close()
            except Exception:
                pass
            client = None
            if time.monotonic() > deadline:
                print(json.dumps({"acked": acked, "reconnects": reconnects, "errors": errors[-5:], "gave_up": w}))
                sys.exit(1)
            time.sleep(0.1)
    acked.extend(range(w * per_window, (w + 1) * per_window))
    time.sleep(pause)
client.close()
print(json.dumps({"acked": acked, "reconnects": reconnects, "errors": errors[-5:]}))
