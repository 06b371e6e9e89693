#!/usr/bin/env python3
"""End-to-end benchmark driver (run it through scripts/bench.sh, which builds and installs first).

For each protocol, the release gateway is started with one listener, against the embedded store
and against a fresh tansu broker, and logport-loadgen drives it twice:
  - max rate: --count events as fast as the gateway takes them -> events/s (wall, first byte to
    last event committed) and the gateway's CPU (user+sys from /proc/PID/stat) per event;
  - fixed offered load: --rate events/s for --seconds -> p50/p99 receive-to-commit latency, from
    the gateway's logport_commit_latency_seconds histogram (difference of the bucket counts
    before and after, interpolated within a bucket), and for Beats and forward the shipper's
    own send-to-ack latency measured by the generator.
Peak RSS is the gateway's VmHWM over both. Every committed event is then read back (`logport
read --from-start`, or a Kafka consumer) and its stamp checked: a run in which any event sent
over TCP is missing fails.

rsyslog (imptcp and imtcp -> omfile) and syslog-ng (syslog() -> file(), flow-controlled) get the
same syslog stream from the same generator and are measured the same way. The overload run stops the broker (SIGSTOP) with a small spool, offers as
much as the generator can send, samples RSS, and after the broker resumes checks that every
event the gateway accepted reached Kafka.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GATEWAY = os.path.join(ROOT, "target/release/logport")
LOADGEN = os.path.join(ROOT, "target/release/logport-loadgen")
TCK = os.sysconf("SC_CLK_TCK")

# name -> (listener protocol, transport, loadgen arguments)
PROTOCOLS = {
    "syslog": ("syslog", "tcp", ["--protocol", "syslog-tcp", "--batch", "1000"]),
    # libbeat's default bulk_max_size is 2048 events a window; compression_level 3 is its default.
    "beats": ("beats", "tcp", ["--protocol", "beats", "--batch", "2048", "--compression-level", "3"]),
    "gelf": ("gelf", "tcp", ["--protocol", "gelf-tcp", "--batch", "1000"]),
    # Fluent Bit's way: PackedForward chunks with acks.
    "forward": ("forward", "tcp", ["--protocol", "forward", "--forward-mode", "packed", "--batch", "1000"]),
}


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def wait_port(port, proc, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def loadgen(*args, check=True):
    out = subprocess.run([LOADGEN, "send", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"loadgen {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}


class Tansu:
    def __init__(self, work):
        self.port = free_port()
        self.log = open(os.path.join(work, f"tansu-{self.port}.log"), "w")
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [os.environ["LOGPORT_TEST_TANSU"], "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "tansu")
        self.address = f"127.0.0.1:{self.port}"

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait()


class Gateway:
    def __init__(self, work, name, protocol, transport, sink_toml="", extra_toml=""):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.admin = free_port()
        self.config = os.path.join(self.dir, "logport.toml")
        with open(self.config, "w") as f:
            f.write(f'data_dir = "{self.dir}/data"\n{extra_toml}\n'
                    f'[admin]\naddress = "127.0.0.1:{self.admin}"\n'
                    '[store]\nsegment_bytes = "256MiB"\nretention_bytes = "8GiB"\n'
                    f"{sink_toml}\n"
                    f'[[listener]]\nname = "bench"\nprotocol = "{protocol}"\n'
                    f'transport = "{transport}"\naddress = "127.0.0.1:{self.port}"\n')
        self.log = open(os.path.join(self.dir, "logport.log"), "w")
        self.proc = subprocess.Popen([GATEWAY, "run", "--config", self.config],
                                     stderr=self.log, env={**os.environ, "LOGPORT_LOG": "info"})
        end = time.time() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: see {self.dir}/logport.log")
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            if time.time() > end:
                raise RuntimeError("gateway not ready within 20 s")
            time.sleep(0.05)
        self.addr = f"127.0.0.1:{self.port}"

    def metrics(self):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=5).read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line:
                continue
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        return out

    def total(self, prefix, m=None):
        m = m if m is not None else self.metrics()
        return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))

    def committed(self, m=None):
        m = m if m is not None else self.metrics()
        # The spool counts as committed for the shipper (it is acked), but a spooled event is
        # counted again when it is replayed to Kafka: count Kafka and the store only, plus the
        # spool while it holds events not yet replayed.
        return sum(v for k, v in m.items() if k.startswith("logport_events_committed_total{")
                   and 'sink="spool"' not in k)

    def wait_committed(self, n, timeout=300):
        end = time.time() + timeout
        while time.time() < end:
            if self.committed() >= n:
                return
            time.sleep(0.01)
        raise RuntimeError(f"{self.committed()} of {n} events committed after {timeout}s; see {self.dir}")

    def buckets(self):
        """Cumulative commit-latency bucket counts by upper bound, summed over sinks."""
        out = {}
        for k, v in self.metrics().items():
            if k.startswith("logport_commit_latency_seconds_bucket{"):
                le = k.split('le="', 1)[1].split('"', 1)[0]
                le = float("inf") if le == "+Inf" else float(le)
                out[le] = out.get(le, 0) + v
        return out

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def quantile(before, after, q):
    """q-quantile of the events recorded between two bucket snapshots, linear within a bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    target = q * total
    lower, below = 0.0, 0.0
    for b, c in zip(bounds, counts):
        if c >= target:
            if b == float("inf"):
                return lower
            return lower + (b - lower) * (target - below) / max(c - below, 1e-9)
        lower, below = b, c
    return lower


def read_back(gw, sink, tansu, expect):
    """Reads every committed event back and checks the stamps: distinct >= expect."""
    check = subprocess.Popen([LOADGEN, "check", "--expect", str(expect)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if sink == "store":
        src = subprocess.Popen([GATEWAY, "read", "--from-start", "--data-dir", f"{gw.dir}/data"],
                               stdout=check.stdin)
    else:
        src = subprocess.Popen([LOADGEN, "consume", "--brokers", tansu.address, "--topic", "logs",
                                "--expect", str(expect), "--idle", "10"],
                               stdout=check.stdin, stderr=subprocess.DEVNULL)
    check.stdin.close()
    out, err = check.stdout.read(), check.stderr.read()
    check.wait()
    src.wait()
    if check.returncode != 0:
        raise RuntimeError(f"read-back check failed: {err.decode().strip()} {out.decode().strip()}")
    return json.loads(out)


def run_protocol(work, name, sink, args, results):
    protocol, transport, lg = PROTOCOLS[name]
    tansu = Tansu(work) if sink == "kafka" else None
    sink_toml = f'[sink]\ntype = "kafka"\n[kafka]\nbrokers = "{tansu.address}"\n' if tansu else ""
    gw = Gateway(work, f"{name}-{sink}", protocol, transport, sink_toml)
    try:
        common = [*lg, "--addr", gw.addr, "--connections", str(args.connections), "--size", args.size]
        # Max rate.
        perf = None
        if args.perf:
            os.makedirs(args.perf, exist_ok=True)
            data = os.path.join(args.perf, f"{name}-{sink}.data")
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", data, "-p", str(gw.proc.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        t0, c0 = time.time(), cpu_ticks(gw.proc.pid)
        kb0 = cpu_ticks(tansu.proc.pid) if tansu else 0
        sent = loadgen(*common, "--count", str(args.count))
        gw.wait_committed(args.count)
        t1, c1 = time.time(), cpu_ticks(gw.proc.pid)
        kb1 = cpu_ticks(tansu.proc.pid) if tansu else 0
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            with open(os.path.join(args.perf, f"{name}-{sink}.txt"), "w") as f:
                subprocess.run(["perf", "report", "-i", data, "--no-children", "--percent-limit", "1",
                                "--stdio", "-g", "none", "--sort", "symbol"], stdout=f, stderr=subprocess.DEVNULL)
        # Fixed offered load.
        fixed_n = args.rate * args.seconds
        before = gw.buckets()
        fc0 = cpu_ticks(gw.proc.pid)
        fixed = loadgen(*common, "--rate", str(args.rate), "--count", str(fixed_n), "--conn-base", "1000")
        gw.wait_committed(args.count + fixed_n)
        fc1 = cpu_ticks(gw.proc.pid)
        after = gw.buckets()
        hwm = status_kib(gw.proc.pid, "VmHWM")
        gw.stop()
        back = read_back(gw, sink, tansu, args.count + fixed_n)
        row = {
            "protocol": name, "sink": sink, "events": args.count, "size": args.size,
            "connections": args.connections,
            "events_per_second": args.count / (t1 - t0),
            "cpu_us_per_event": (c1 - c0) / TCK / args.count * 1e6,
            "peak_rss_mib": hwm / 1024,
            "fixed_rate": args.rate,
            "fixed_cpu_us_per_event": (fc1 - fc0) / TCK / fixed_n * 1e6,
            "commit_latency_ms_p50": round(quantile(before, after, 0.5) * 1e3, 3),
            "commit_latency_ms_p99": round(quantile(before, after, 0.99) * 1e3, 3),
            "read_back": back,
        }
        if "ack_latency_us" in fixed:
            row["ack_latency_ms_p50"] = fixed["ack_latency_us"]["p50"] / 1e3
            row["ack_latency_ms_p99"] = fixed["ack_latency_us"]["p99"] / 1e3
        if tansu:
            row["broker_cpu_us_per_event"] = (kb1 - kb0) / TCK / args.count * 1e6
        results["runs"].append(row)
        print(json.dumps(row), flush=True)
    finally:
        if gw.proc.poll() is None:
            gw.proc.kill()
        if tansu:
            tansu.stop()


def run_rsyslog(work, module, args, results):
    d = os.path.join(work, f"rsyslog-{module}")
    os.makedirs(d)
    port = free_port()
    with open(f"{d}/rsyslog.conf", "w") as f:
        f.write(f'global(workDirectory="{d}")\nmodule(load="{module}")\n'
                f'input(type="{module}" port="{port}" address="127.0.0.1")\n'
                f'action(type="omfile" file="{d}/out.log")\n')
    proc = subprocess.Popen([os.environ["LOGPORT_TEST_RSYSLOGD"], "-n", "-f", f"{d}/rsyslog.conf",
                             "-i", f"{d}/pid", "-M", os.environ["LOGPORT_TEST_RSYSLOG_MODULES"]],
                            stderr=open(f"{d}/err.log", "w"))
    run_peer(f"rsyslog {module} -> omfile", proc, proc.pid, port, d, args, results)


def run_syslog_ng(work, args, results):
    """syslog-ng (Debian's, unpacked by install-test-deps.sh): its RFC 6587 `syslog()` source
    -> `file()`. flow-control makes it lossless like the others (by default a full queue drops
    messages); its window is raised to match (the default of 100 per connection throttles)."""
    if "LOGPORT_BENCH_SYSLOG_NG" not in os.environ:
        print("bench: WARNING: syslog-ng is not set up (no LOGPORT_BENCH_SYSLOG_NG in .tools/env.sh: "
              "run scripts/install-test-deps.sh); measuring without it", file=sys.stderr, flush=True)
        return
    d = os.path.join(work, "syslog-ng")
    os.makedirs(d)
    port = free_port()
    with open(f"{d}/syslog-ng.conf", "w") as f:
        f.write("@version: 3.38\n"
                "options { threaded(yes); stats_freq(0); log_fifo_size(100000); };\n"
                f'source s_net {{ syslog(ip("127.0.0.1") port({port}) transport("tcp") '
                f"max-connections({max(10, args.connections)}) log-iw-size(40000)); }};\n"
                f'destination d_file {{ file("{d}/out.log"); }};\n'
                "log { source(s_net); destination(d_file); flags(flow-control); };\n")
    env = dict(os.environ, LD_LIBRARY_PATH=os.environ["LOGPORT_BENCH_SYSLOG_NG_LIBS"])
    proc = subprocess.Popen([os.environ["LOGPORT_BENCH_SYSLOG_NG"], "-F", "--no-caps",
                             f"--module-path={os.environ['LOGPORT_BENCH_SYSLOG_NG_MODULES']}",
                             "-f", f"{d}/syslog-ng.conf", "-R", f"{d}/persist", "-p", f"{d}/pid",
                             "-c", f"{d}/ctl"], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(f"{d}/err.log", "w"))
    run_peer("syslog-ng syslog() -> file()", proc, proc.pid, port, d, args, results)


def run_peer(name, proc, pid, port, d, args, results):
    """Feeds a started syslog peer the same stream as logport's syslog run; it writes a line
    per event to d/out.log, and is done when all are there."""
    try:
        wait_port(port, proc, name)
        t0, c0 = time.time(), cpu_ticks(pid)
        loadgen(*PROTOCOLS["syslog"][2], "--addr", f"127.0.0.1:{port}", "--connections",
                str(args.connections), "--size", args.size, "--count", str(args.count))

        def lines():
            try:
                with open(f"{d}/out.log", "rb") as f:
                    return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
            except FileNotFoundError:
                return 0
        end = time.time() + 300
        while lines() < args.count:
            if time.time() > end:
                raise RuntimeError(f"{name} wrote {lines()} of {args.count} lines")
            time.sleep(0.05)
        t1, c1 = time.time(), cpu_ticks(pid)
        row = {
            "peer": name, "events": args.count, "size": args.size,
            "connections": args.connections,
            "events_per_second": args.count / (t1 - t0),
            "cpu_us_per_event": (c1 - c0) / TCK / args.count * 1e6,
            "peak_rss_mib": status_kib(pid, "VmHWM") / 1024,
        }
        results["peers"].append(row)
        print(json.dumps(row), flush=True)
    finally:
        proc.kill()
        proc.wait()


def run_overload(work, args, results):
    """Kafka stopped, a small spool: the sink accepts nothing once the spool is full, while
    the generator offers all it can for --overload-seconds."""
    tansu = Tansu(work)
    budget_mib = 64
    gw = Gateway(work, "overload", "syslog", "tcp",
                 f'[sink]\ntype = "kafka"\n[kafka]\nbrokers = "{tansu.address}"\nspool_after = "2s"\n'
                 '[spool]\nmax_bytes = "16MiB"\nsegment_bytes = "4MiB"\n',
                 f'in_flight_bytes = "{budget_mib}MiB"')
    try:
        # A first event makes the topic and the producer's connection, so the stop below is a
        # broker that hangs mid-session, the harder case.
        loadgen("--protocol", "syslog-tcp", "--addr", gw.addr, "--count", "1")
        gw.wait_committed(1)
        tansu.signal(signal.SIGSTOP)
        peak = [0]
        spool_full_at = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], status_kib(gw.proc.pid, "VmRSS"))
                except (OSError, RuntimeError):  # gone (or a zombie, without VmRSS)
                    return
                if not spool_full_at:
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{gw.admin}/ready", timeout=1)
                    except urllib.error.HTTPError as e:
                        if b"spool full" in e.read():
                            spool_full_at.append(time.time())
                    except OSError:
                        pass
                time.sleep(0.05)
        sampler = threading.Thread(target=sample)
        sampler.start()
        offer_start = time.time()
        sent = loadgen("--protocol", "syslog-tcp", "--addr", gw.addr, "--connections", "8",
                       "--size", args.size, "--count", "100000000",
                       "--duration", str(args.overload_seconds), "--conn-base", "1000")
        offer_end = time.time()
        m = gw.metrics()
        spooled = gw.total('logport_events_committed_total{sink="spool"}', m)
        in_flight = gw.total("logport_in_flight_bytes", m)
        time.sleep(1)
        tansu.signal(signal.SIGCONT)
        # What was still in the kernel's socket buffers when the generator gave up is read and
        # accepted after it: "accepted" is the count once everything has settled. All of it
        # must reach Kafka, directly or through the spool's replay.
        end = time.time() + 300
        last = None
        while True:
            m = gw.metrics()
            received = gw.total("logport_events_received_total", m)
            if (gw.total("logport_spool_replay_lag_events", m) == 0
                    and gw.total("logport_in_flight_bytes", m) == 0 and received == last):
                break
            last = received
            if time.time() > end:
                raise RuntimeError(f"overload: not settled within 300 s; see {gw.dir}")
            time.sleep(0.5)
        stop.set()
        sampler.join()
        hwm = status_kib(gw.proc.pid, "VmHWM")
        gw.stop()
        back = read_back(gw, "kafka", tansu, int(received))
        row = {
            "budget_mib": budget_mib, "spool_max_mib": 16, "seconds": args.overload_seconds,
            "offered_events": sent["sent"], "offered_per_second": sent["events_per_second"],
            "accepted_events": int(received), "spooled_events": int(spooled),
            "in_flight_mib_at_end_of_offer": in_flight / 2**20,
            "seconds_until_spool_full": round(spool_full_at[0] - offer_start, 1) if spool_full_at else None,
            "seconds_of_backpressure": round(offer_end - spool_full_at[0], 1) if spool_full_at else 0,
            "peak_rss_mib": max(peak[0], hwm) / 1024,
            "rss_limit_mib": budget_mib + 64,
            "read_back": back,
        }
        row["lost"] = max(0, row["accepted_events"] - back["distinct"])
        results["overload"] = row
        print(json.dumps(row), flush=True)
        if not spool_full_at:
            raise RuntimeError("overload: the spool never filled; offer longer (--overload-seconds)")
        if row["peak_rss_mib"] > row["rss_limit_mib"]:
            raise RuntimeError(f"overload: peak RSS {row['peak_rss_mib']:.0f} MiB over the budget + 64 MiB")
    finally:
        if gw.proc.poll() is None:
            gw.proc.kill()
        tansu.stop()


def markdown(results):
    out = []
    cfg = results["config"]
    out.append(f"{cfg['count']:,} events of {cfg['size']} bytes of text per run, {cfg['connections']} "
               f"connections; fixed load {cfg['rate']:,} events/s for {cfg['seconds']} s.\n")
    out.append("| protocol → sink | events/s (max) | CPU µs/event (max) | CPU µs/event at fixed load "
               "| receive→commit p50 / p99 ms | send→ack p50 / p99 ms | peak RSS MiB | read back |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        ack = (f"{r['ack_latency_ms_p50']:.1f} / {r['ack_latency_ms_p99']:.1f}"
               if "ack_latency_ms_p50" in r else "—")
        extra = (f" (+ broker {r['broker_cpu_us_per_event']:.2f})" if "broker_cpu_us_per_event" in r else "")
        out.append(f"| {r['protocol']} → {r['sink']} | {r['events_per_second']:,.0f} | "
                   f"{r['cpu_us_per_event']:.2f}{extra} | {r['fixed_cpu_us_per_event']:.2f} | "
                   f"{r['commit_latency_ms_p50']:.2f} / {r['commit_latency_ms_p99']:.2f} | {ack} | "
                   f"{r['peak_rss_mib']:.0f} | {r['read_back']['distinct']:,} |")
    if results["peers"]:
        out.append("\n| syslog receiver | events/s | CPU µs/event | peak RSS MiB | logport (store) / it, CPU |")
        out.append("|---|---|---|---|---|")
        lp = next((r for r in results["runs"] if r["protocol"] == "syslog" and r["sink"] == "store"), None)
        if lp:
            out.append(f"| logport syslog/tcp → store | {lp['events_per_second']:,.0f} | "
                       f"{lp['cpu_us_per_event']:.2f} | {lp['peak_rss_mib']:.0f} | 1.00 |")
        for p in results["peers"]:
            ratio = f"{lp['cpu_us_per_event'] / p['cpu_us_per_event']:.2f}" if lp else "—"
            out.append(f"| {p['peer']} | {p['events_per_second']:,.0f} | {p['cpu_us_per_event']:.2f} | "
                       f"{p['peak_rss_mib']:.0f} | {ratio} |")
    if results.get("overload"):
        o = results["overload"]
        out.append(f"\nOverload: Kafka stopped (SIGSTOP), spool capped at {o['spool_max_mib']} MiB, "
                   f"in_flight_bytes {o['budget_mib']} MiB, 8 connections offering all they can for "
                   f"{o['seconds']} s: {o['accepted_events']:,} events accepted ({o['spooled_events']:,} "
                   f"into the spool); the spool was full after {o['seconds_until_spool_full']} s, "
                   f"then {o['seconds_of_backpressure']} s of backpressure (the sink taking nothing). Peak RSS **{o['peak_rss_mib']:.0f} MiB** "
                   f"(limit {o['rss_limit_mib']} MiB). After the broker resumed, "
                   f"{o['read_back']['distinct']:,} distinct events read back from Kafka: "
                   f"**{o['lost']} lost**, {o['read_back']['duplicates']:,} duplicates.")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=300_000, help="events per max-rate run")
    ap.add_argument("--rate", type=int, default=20_000, help="fixed offered load, events/s")
    ap.add_argument("--seconds", type=int, default=5, help="length of the fixed-load run")
    ap.add_argument("--size", default="200", help="event text bytes: N or MIN-MAX")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--sinks", default="store,kafka")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-overload", action="store_true")
    ap.add_argument("--overload-seconds", type=int, default=15)
    ap.add_argument("--perf", metavar="DIR", help="perf record the gateway during each max-rate run; reports in DIR")
    ap.add_argument("--keep", action="store_true", help="keep the working directory (logs, data)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benches/results/e2e.json"))
    args = ap.parse_args()
    results = {
        "config": {"count": args.count, "rate": args.rate, "seconds": args.seconds, "size": args.size,
                   "connections": args.connections, "cpus": os.cpu_count(),
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "runs": [], "peers": [], "overload": None,
    }
    work = tempfile.mkdtemp(prefix="logport-bench-")
    print(f"bench: working in {work}", flush=True)
    try:
        for name in filter(None, args.protocols.split(",")):
            if name not in PROTOCOLS:
                sys.exit(f"bench: unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
            for sink in args.sinks.split(","):
                run_protocol(work, name, sink, args, results)
        if not args.no_peers:
            for module in ("imptcp", "imtcp"):
                run_rsyslog(work, module, args, results)
            run_syslog_ng(work, args, results)
        if not args.no_overload:
            run_overload(work, args, results)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    md = markdown(results)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"bench: figures in {args.out} and {os.path.splitext(args.out)[0]}.md")


if __name__ == "__main__":
    main()
