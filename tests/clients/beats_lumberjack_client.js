// Sends numbered events through npm lumberjack-client (Lumberjack v2, one compressed window
// per `log`, seq 1 in every window; the library never reads acks, so this script counts the
// ack frames on its socket) and exits once every window is acked.
// usage: node beats_lumberjack_client.js PORT COUNT [CA CERT KEY]   (TLS when CA is given)
'use strict'
const fs = require('fs')
const LumberjackClient = require('lumberjack-client')
const [port, count, ca, cert, key] = process.argv.slice(2)
const config = { host: '127.0.0.1', port: Number(port) }
if (ca) Object.assign(config, { servername: 'localhost', ca: [fs.readFileSync(ca)], cert: fs.readFileSync(cert), key: fs.readFileSync(key) })
const client = new LumberjackClient(config, Boolean(ca))
let acks = 0, pending = Buffer.alloc(0), keepalives = 0
const timer = setTimeout(() => { console.log(`timeout: ${acks} acks`); process.exit(2) }, 20000)
const watch = () => {
  client.socket.on('data', (data) => {
    pending = Buffer.concat([pending, data])
    while (pending.length >= 6) {
      if (pending.toString('latin1', 0, 2) !== '2A') { console.log('bad frame', pending); process.exit(3) }
      const seq = pending.readUInt32BE(2)
      pending = pending.subarray(6)
      if (seq === 0) { keepalives++; continue }
      if (seq !== 1) { console.log(`ack seq ${seq}, expected 1`); process.exit(4) }
      acks++
    }
    if (acks === Number(count)) {
      console.log(`acks ${acks} keepalives ${keepalives}`)
      clearTimeout(timer)
      client.socket.end()
      process.exit(0)
    }
  })
}
const start = () => {
  if (!client.connected) return setTimeout(start, 10)
  watch()
  for (let n = 0; n < Number(count); n++) {
    client.log({ '@timestamp': new Date(Date.UTC(2024, 4, 1, 10, 0, 0, n)), message: `node event ${n}`, host: { hostname: 'node-1' }, fields: { n } })
  }
}
start()
