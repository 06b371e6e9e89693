"""Sends numbered Filebeat-like events through pylogbeat (a Lumberjack v2 client), one window
per `send`, and prints the ack pylogbeat saw after each window.

usage: beats_pylogbeat.py PORT WINDOWS PER_WINDOW [--first N] [--timeout S] [--pad BYTES]
                          [--tls CA [CERT KEY]]

--pad adds a field `pad` of that many hex digits that compress poorly (to make large windows).
"""
import hashlib
import sys
import time

import pylogbeat

args = sys.argv[1:]
port, windows, per_window = int(args[0]), int(args[1]), int(args[2])
first, timeout, tls, pad = 0, 10.0, None, 0
rest = args[3:]
while rest:
    flag = rest.pop(0)
    if flag == "--first":
        first = int(rest.pop(0))
    elif flag == "--pad":
        pad = int(rest.pop(0))
    elif flag == "--timeout":
        timeout = float(rest.pop(0))
    elif flag == "--tls":
        tls = [rest.pop(0)]
        if rest and not rest[0].startswith("--"):
            tls += [rest.pop(0), rest.pop(0)]


def event(n):
    doc = {
        "@timestamp": "2024-05-01T10:00:00.%03dZ" % (n % 1000),
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.13.4"},
        "message": "event %d <b>" % n,
        "log": {"offset": n * 100, "file": {"path": "/var/log/app.log"}},
        "input": {"type": "filestream"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": "web-1"},
        "agent": {"type": "filebeat", "version": "8.13.4", "name": "web-1"},
        "fields": {"app": "billing", "n": n},
        "tags": ["t1"],
    }
    if pad:
        doc["pad"] = "".join(hashlib.sha256(b"%d-%d" % (n, i)).hexdigest() for i in range(pad // 64 + 1))[:pad]
    return doc


kwargs = {"timeout": timeout}
if tls:
    kwargs.update(ssl_enable=True, ssl_verify=True, ca_certs=tls[0])
    if len(tls) == 3:
        kwargs.update(certfile=tls[1], keyfile=tls[2])
client = pylogbeat.PyLogBeatClient("127.0.0.1", port, **kwargs)
client.connect()
n = first
for w in range(windows):
    started = time.monotonic()
    client.send([event(n + i) for i in range(per_window)])
    n += per_window
    print("ack %d after %.1fs" % (client._last_ack, time.monotonic() - started), flush=True)
client.close()
