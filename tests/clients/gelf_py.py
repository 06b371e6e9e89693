"""Sends numbered log records through a real Python GELF client (graypy or pygelf).

usage: gelf_py.py LIB TRANSPORT HOST PORT COUNT PAD [key=value ...]
  LIB        graypy | pygelf
  TRANSPORT  udp | tcp | tls
  PAD        bytes of incompressible text appended to each message (chunking)
  options    compress=0|1, chunk_size=N, ca=PATH (TLS: verify the server with this CA),
             start=N (the first record's number)

Record i has the message "event <i> <pad>", the extra field seq=i, the extra field
container_name=<LIB>-<TRANSPORT>, and the creation time 1700000000.25 + i, so the test
knows each event's @timestamp exactly.
"""
import logging
import random
import sys
import time

lib, transport, host, port, count, pad = sys.argv[1:7]
port, count, pad = int(port), int(count), int(pad)
opts = dict(a.split("=", 1) for a in sys.argv[7:])
compress = opts.get("compress", "1") == "1"
chunk_size = int(opts.get("chunk_size", "1420"))
ca = opts.get("ca")
start = int(opts.get("start", "0"))
name = f"{lib}-{transport}"

if lib == "graypy":
    import graypy
    import graypy.handler

    common = dict(debugging_fields=False, localname="client-host")
    if transport == "udp":
        chunker = graypy.handler.GELFWarningChunker(chunk_size=chunk_size)
        handler = graypy.GELFUDPHandler(host, port, gelf_chunker=chunker, compress=compress, **common)
    elif transport == "tcp":
        handler = graypy.GELFTCPHandler(host, port, **common)
    else:
        handler = graypy.GELFTLSHandler(host, port, validate=ca is not None, ca_certs=ca, **common)
elif lib == "pygelf":
    import pygelf

    common = dict(include_extra_fields=True)
    if transport == "udp":
        handler = pygelf.GelfUdpHandler(host, port, compress=compress, chunk_size=chunk_size, **common)
    elif transport == "tcp":
        handler = pygelf.GelfTcpHandler(host, port, **common)
    else:
        handler = pygelf.GelfTlsHandler(host=host, port=port, validate=ca is not None, ca_certs=ca, **common)
    handler.domain = "client-host"
else:
    sys.exit(f"unknown client library {lib}")


class FixedTime(logging.Filter):
    def filter(self, record):
        record.created = 1700000000.25 + record.seq
        return True


logger = logging.getLogger(name)
logger.propagate = False
logger.setLevel(logging.INFO)
logger.addHandler(handler)
handler.addFilter(FixedTime())
rng = random.Random(7)
alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
for i in range(start, start + count):
    text = "".join(rng.choice(alphabet) for _ in range(pad))
    logger.info("event %d %s", i, text, extra={"seq": i, "container_name": name})
    if transport == "udp" and i % 20 == 19:
        # Loopback drops nothing at this pace; a burst of chunked messages could overflow
        # the socket buffer of a busy 2-core test machine.
        time.sleep(0.01)
handler.close()
