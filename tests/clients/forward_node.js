// Sends numbered events to a forward server with @fluent-org/logger (the real npm client) and
// prints one JSON line: how many emits resolved (with `ack`, only once the server acked) and
// every error the client saw. Usage: node forward_node.js '<json options>'.
"use strict";
const fs = require("fs");
const { FluentClient, EventTime } = require("@fluent-org/logger");

const o = JSON.parse(process.argv[2]);
const errors = [];
const options = {
  eventMode: o.mode,
  socket: { host: "127.0.0.1", port: o.port, timeout: 5000, disableReconnect: !!o.noReconnect },
};
if (o.ack) options.ack = { ackTimeout: 10000 };
if (o.security) options.security = o.security;
if (o.ca) options.socket.tls = { ca: fs.readFileSync(o.ca), servername: "localhost" };

(async () => {
  const client = new FluentClient(o.tag, options);
  // Socket errors (a failed handshake among them) reach only this listener.
  client.socketOn("error", (e) => errors.push(String(e && e.message ? e.message : e)));
  // Without reconnects the client does not connect by itself.
  if (o.noReconnect) client.connect().catch((e) => errors.push(String(e && e.message ? e.message : e)));
  let resolved = 0;
  const emits = [];
  for (let i = 0; i < o.count; i++) {
    const record = { seq: i, message: `event ${i}`, container_name: "/web", nested: { level: "info" } };
    const time = o.eventTime ? new EventTime(o.base + i, o.nanos) : (o.base + i) * 1000;
    emits.push(
      client.emit("n", record, time).then(
        () => { resolved++; },
        (e) => errors.push(String(e && e.message ? e.message : e)),
      ),
    );
  }
  const timer = setTimeout(() => {}, 1 << 30);
  await Promise.race([Promise.all(emits), new Promise((r) => setTimeout(r, o.waitMs || 20000))]);
  clearTimeout(timer);
  await client.disconnect().catch((e) => errors.push(String(e)));
  process.stdout.write(JSON.stringify({ resolved, errors }) + "\n");
  process.exit(0);
})();
