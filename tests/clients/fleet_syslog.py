"""A syslog shipper for the fleet test: Python's own logging.handlers.SysLogHandler over TCP from
its own source address, one numbered line at a time. Syslog has no acks: it prints how many
lines the handler reported as written, and the handler's errors.

usage: fleet_syslog.py SOURCE_IP PORT COUNT PAUSE_S
"""
import json
import logging
import logging.handlers
import socket
import sys
import time

source, port, count, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

_connect = socket.socket.connect


def connect_from_source(self, address):
    self.bind((source, 0))
    return _connect(self, address)


# SysLogHandler has no option for its source address; the fleet test tells clients apart by it.
socket.socket.connect = connect_from_source

errors = []


class Handler(logging.handlers.SysLogHandler):
    def handleError(self, record):
        errors.append(repr(sys.exc_info()[1])[:200])
        # The next emit connects again (SysLogHandler does when it has no socket).
        try:
            self.socket.close()
        except Exception:
            pass
        self.socket = None


handler = Handler(address=("127.0.0.1", port), socktype=socket.SOCK_STREAM)
handler.append_nul = False  # LF framing (RFC 6587 non-transparent), as rsyslog sends
handler.ident = "fleet-syslog: "
handler.setFormatter(logging.Formatter("%(message)s\n"))
log = logging.getLogger("fleet")
log.addHandler(handler)
log.setLevel(logging.INFO)
for n in range(count):
    log.info("syslog %d", n)
    time.sleep(pause)
handler.close()
print(json.dumps({"errors": errors[-5:], "error_count": len(errors)}))
