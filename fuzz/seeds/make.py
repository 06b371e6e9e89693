#!/usr/bin/env python3
"""Writes the seed corpora into corpus/<target>/: the reference vectors
(../shared/reference/vectors.txt, copied here as vectors.txt so the fuzz crate stands alone),
the syslog lines of the syslog crate's tests (syslog.txt), and what real clients sent
(captures/, made by capture.py).

Stream targets take one leading byte that picks the simulated read size, so
each vector is written twice: read whole (0xff) and a byte at a time (0x00).
"""
import hashlib
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "corpus")

targets = {
    "LJ": ["lumberjack_decode"],
    "FWD": ["forward_decode"],
    "GELF zlib": ["gelf_payload"],
    "GELF TCP": ["gelf_framing"],
    "GELF JSON": ["gelf_payload", "gelf_framing"],
    "SYSLOG": ["syslog_framing"],
}
stream = {"lumberjack_decode", "forward_decode", "gelf_framing", "syslog_framing"}


def write(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def vectors(path):
    for line in open(path, encoding="utf-8"):
        label, sep, value = line.rstrip("\n").partition(": ")
        if not sep:
            continue
        value = value.strip()
        try:
            yield label, bytes.fromhex(value)
        except ValueError:
            yield label, value.encode()


n = 0
for label, data in vectors(os.path.join(here, "vectors.txt")):
    for prefix, ts in targets.items():
        if label.startswith(prefix):
            for t in ts:
                if t in stream:
                    write(t, b"\xff" + data)
                    write(t, b"\x00" + data)
                else:
                    write(t, data)
                n += 1
for line in open(os.path.join(here, "syslog.txt"), "rb"):
    write("syslog_framing", b"\xff" + line)
    write("syslog_framing", b"\x00" + line)
    n += 1
captures = {
    "lumberjack": "lumberjack_decode",
    "forward": "forward_decode",
    "gelf": "gelf_framing",
    "syslog": "syslog_framing",
}
for name in sorted(os.listdir(os.path.join(here, "captures"))):
    data = open(os.path.join(here, "captures", name), "rb").read()
    t = captures[name.split("-")[0]]
    write(t, b"\xff" + data)
    write(t, b"\x00" + data)
    n += 1
print(f"wrote {n} seeds", file=sys.stderr)
