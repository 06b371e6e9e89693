"""The well-behaved neighbour of the hostile-client suite: pylogbeat (a Lumberjack v2 client
nobody here wrote) sends one numbered event per window every 10 ms until killed, and prints
"N SECONDS" after each ack: how long that window took from send to ack (its commit latency).

usage: beats_neighbour.py PORT
"""
import sys
import time

import pylogbeat

client = pylogbeat.PyLogBeatClient("127.0.0.1", int(sys.argv[1]), timeout=30)
client.connect()
n = 0
while True:
    n += 1
    doc = {"message": "neighbour %08d" % n, "fields": {"app": "neighbour", "n": n}}
    started = time.monotonic()
    client.send([doc])
    print("%d %.6f" % (n, time.monotonic() - started), flush=True)
    time.sleep(0.01)
