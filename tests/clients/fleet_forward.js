// A Fluentd-like shipper for the fleet test: @fluent-org/logger with acks (requireAck) emits
// numbered events from its own source address, reconnecting and retrying on its own. Prints one
// JSON line: the numbers whose emit resolved (the server acked them) and the errors seen.
// usage: node fleet_forward.js SOURCE_IP PORT COUNT PAUSE_MS
"use strict";
const net = require("net");
const { FluentClient } = require("@fluent-org/logger");

const [source, port, count, pauseMs] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5]];
// The client has no option for its source address; the fleet test tells clients apart by it.
const createConnection = net.createConnection;
net.createConnection = (opts, ...rest) => createConnection({ ...opts, localAddress: source }, ...rest);

const client = new FluentClient("fleet.forward", {
  socket: { host: "127.0.0.1", port, timeout: 5000, reconnect: { delay: 100, backoff: 1.5, maxDelay: 1000 } },
  ack: { ackTimeout: 5000 },
  // An emit whose connection closed before its ack is sent again (at-least-once).
  eventRetry: { attempts: 30, backoff: 1.5, delay: 100, maxDelay: 1000 },
});
const errors = [];
client.socketOn("error", (e) => errors.push(String(e && e.message ? e.message : e)));

(async () => {
  const acked = [];
  const emits = [];
  for (let n = 0; n < count; n++) {
    emits.push(
      client.emit({ n, message: `forward ${n}`, app: "fleet-forward" }).then(
        () => acked.push(n),
        (e) => errors.push(`event ${n}: ${e && e.message ? e.message : e}`),
      ),
    );
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  await Promise.race([Promise.all(emits), new Promise((r) => setTimeout(r, 40000))]);
  await client.disconnect().catch((e) => errors.push(String(e)));
  acked.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ acked, errors: errors.slice(-5), error_count: errors.length }) + "\n");
  process.exit(0);
})();
