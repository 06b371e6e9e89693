#!/usr/bin/env python3
"""Captures what real clients send (pylogbeat, fluent-logger, pygelf, util-linux logger) on a
loopback socket and writes it to seeds/captures/<protocol>-<client>.bin; make.py then adds
them to the stream targets' corpora. Needs the clients scripts/install-test-deps.sh installs."""
import os
import socket
import subprocess
import sys
import threading

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "captures")
os.makedirs(out, exist_ok=True)


def capture(name, send, secs=2.0):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = bytearray()

    def serve():
        conn, _ = srv.accept()
        conn.settimeout(secs)
        try:
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                got.extend(b)
        except socket.timeout:
            pass
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        send(port)
    except Exception as e:  # clients that wait for an ack give up when we close
        print(f"{name}: client ended with {e!r}", file=sys.stderr)
    t.join()
    srv.close()
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(bytes(got))
    print(f"{name}: {len(got)} bytes", file=sys.stderr)


def pylogbeat_send(port):
    import pylogbeat
    c = pylogbeat.PyLogBeatClient("127.0.0.1", port, timeout=1)
    c.connect()
    c.send([{"message": "hello %d" % i, "fields": {"app": "web"}} for i in range(3)])


def fluent_send(port):
    from fluent import sender
    s = sender.FluentSender("app", host="127.0.0.1", port=port, nanosecond_precision=True)
    s.emit("web", {"log": "hello", "container_name": "web"})
    s.emit("web", {"log": "world"})
    s.close()


def pygelf_send(port):
    import logging
    from pygelf import GelfTcpHandler
    log = logging.getLogger("capture")
    h = GelfTcpHandler(host="127.0.0.1", port=port, _app="web")
    log.addHandler(h)
    log.warning("hello gelf")
    log.error("second")
    h.close()


def logger_send(port):
    for framing in ["--octet-count", "--rfc3164"]:
        subprocess.run(["logger", "-n", "127.0.0.1", "-P", str(port), "-T", framing, "-t", "web", "hello syslog"], check=False)


capture("lumberjack-pylogbeat", pylogbeat_send)
capture("forward-fluent-logger", fluent_send)
capture("gelf-pygelf", pygelf_send)
capture("syslog-logger", logger_send, secs=1.0)
