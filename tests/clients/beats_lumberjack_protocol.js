// Sends numbered events through npm lumberjack-protocol, a Lumberjack v1 client over TLS (one
// `1W` per connection, then `1D` frames whose seq counts on across windows), and exits once the
// server acked the last one.
// usage: node beats_lumberjack_protocol.js PORT COUNT WINDOW CA [CERT KEY]
'use strict'
const fs = require('fs')
const lumberjack = require('lumberjack-protocol')
const [port, count, windowSize, ca, cert, key] = process.argv.slice(2)
const tlsOptions = { host: '127.0.0.1', port: Number(port), servername: 'localhost', ca: [fs.readFileSync(ca)] }
if (cert) Object.assign(tlsOptions, { cert: fs.readFileSync(cert), key: fs.readFileSync(key) })
const client = lumberjack.client(tlsOptions, { windowSize: Number(windowSize), reconnect: 60000 })
const acks = []
const timer = setTimeout(() => { console.log(`timeout: acks ${acks.join(',')}`); process.exit(2) }, 20000)
let done = false
client.on('disconnect', (err) => { if (!done) { console.log(`disconnected: ${err}`); process.exit(5) } })
client.on('connect', () => {
  client._socket.on('ack', (seq) => {
    acks.push(seq)
    if (seq === Number(count)) {
      done = true
      console.log(`acks ${acks.join(',')}`)
      clearTimeout(timer)
      client.close()
      process.exit(0)
    }
  })
  for (let n = 0; n < Number(count); n++) {
    client.writeDataFrame({ line: `v1 event ${n}`, file: '/var/log/v1.log', offset: String(n * 10), 'fields.app': 'legacy' })
  }
})
